#include "host/model_shapes.h"

#include "common/model_tensors.h"

namespace qmc::host {
namespace {

namespace fs = std::filesystem;

const char* FamilyName(image::Arch arch) {
  switch (arch) {
    case image::Arch::kLlama: return "llama";
    case image::Arch::kQwen2: return "qwen2";
    case image::Arch::kPhi: return "phi";
    case image::Arch::kHymba: return "hymba";
  }
  return "unknown";
}

TensorUse UseOf(const image::TensorRequirement& r) {
  if (r.role == image::Role::kTokenEmbd) return TensorUse::kEmbedding;
  if (r.role == image::Role::kMetaTokens) return TensorUse::kPrefix;
  return r.is_matrix ? TensorUse::kMatrix : TensorUse::kVector;
}

ModelShape FromConfigJson(const fs::path& file) {
  const ModelSpec spec = LoadHuggingFaceConfig(file);
  ModelShape s = ShapeOfConfig(spec.config, spec.detail);
  s.source = file.string();
  return s;
}

}  // namespace

uint64_t ModelShape::MatrixWeights() const {
  uint64_t n = 0;
  for (const ShapeTensor& t : tensors) {
    if (t.spec.is_matrix) n += static_cast<uint64_t>(t.spec.rows) * t.spec.cols;
  }
  return n;
}

ModelShape ShapeOfConfig(const image::ModelConfig& config, const image::ModelDetail& detail) {
  RequiredTensors(config, detail);  // validates both: the lists below assume it
  ModelShape s;
  s.family = FamilyName(static_cast<image::Arch>(config.arch));
  s.config = config;
  s.detail = detail;
  s.tied_classifier = (config.flags & image::kModelSharedClassifier) != 0;
  const uint32_t count = image::RequiredTensorCount(config, detail);
  for (uint32_t i = 0; i < count; ++i) {
    const image::TensorRequirement r = image::RequiredTensor(config, detail, i);
    s.tensors.push_back({{r.name, r.rows, r.cols, r.is_matrix}, UseOf(r)});
  }
  for (uint32_t l = 0; l < config.n_layers; ++l) {
    const bool global = (detail.layer_flags[l] & image::kLayerGlobalAttention) != 0;
    s.attention.push_back({config.n_kv_heads, config.head_dim, detail.value_head_dim, image::OwnsKv(detail, l),
                           global ? 0u : detail.attn_window});
    // Hymba's SSM: the last ssm_conv − 1 inputs of the conv and the ssm_state-wide state, per inner channel.
    s.state_elements += static_cast<uint64_t>(detail.ssm_inner) * (detail.ssm_conv == 0 ? 0 : detail.ssm_conv - 1) +
                        static_cast<uint64_t>(detail.ssm_inner) * detail.ssm_state;
  }
  s.prefix_tokens = detail.meta_tokens;
  s.max_positions = config.seq_len;
  s.vocab_size = config.vocab_size;
  return s;
}

ModelShape LoadModelShape(const fs::path& input) {
  std::error_code ec;
  if (fs::is_directory(input, ec)) {
    if (!fs::exists(input / "config.json")) throw InputError(input.string() + ": no config.json in the directory");
    return FromConfigJson(input / "config.json");
  }
  if (input.extension() == ".json") return FromConfigJson(input);
  // A checkpoint file: its configuration and tokenizer (the weights are read, then dropped).
  Checkpoint checkpoint = LoadCheckpoint(input);
  ModelShape s = ShapeOfConfig(checkpoint.config, checkpoint.detail);
  s.source = input.string();
  s.tokenizer = std::move(checkpoint.tokenizer);
  return s;
}

}  // namespace qmc::host
