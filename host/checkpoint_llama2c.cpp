// llama2.c checkpoints, as karpathy/llama2.c export.py writes them: the
// legacy v0 file (legacy_export: 7 x int32 header, then fp32 tensors) and the
// v2 "ak42" file (version2_export: 256-byte header, fp32 norms, Q8_0 matrices).
// llama2.c stores matrices row-major [out][in] with interleaved RoPE rows,
// which is the canonical layout, so tensors are copied as they are.
#include <cstring>
#include <map>

#include "common/model_tensors.h"
#include "host/byte_reader.h"
#include "host/checkpoint.h"
#include "host/mapped_file.h"
#include "host/reader_support.h"

namespace qmc::host {
namespace {

constexpr uint32_t kAk42Magic = 0x616b3432;  // "ak42" as a little-endian uint32
constexpr uint64_t kV0HeaderSize = 7 * sizeof(int32_t);
constexpr uint64_t kV2HeaderSize = 256;

// Per-layer tensors in llama2.c's order: every layer's tensor of one kind, then the next kind.
constexpr const char* kV0LayerKinds[] = {"attn_norm.weight", "attn_q.weight",      "attn_k.weight",
                                         "attn_v.weight",    "attn_output.weight", "ffn_norm.weight",
                                         "ffn_gate.weight",  "ffn_down.weight",    "ffn_up.weight"};
constexpr const char* kV2NormKinds[] = {"attn_norm.weight", "ffn_norm.weight"};
constexpr const char* kV2MatrixKinds[] = {"attn_q.weight",   "attn_k.weight",   "attn_v.weight", "attn_output.weight",
                                          "ffn_gate.weight", "ffn_down.weight", "ffn_up.weight"};

// The seven header ints (widened, so that v0's negated vocab_size can be negated back safely).
struct Params {
  int64_t dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len;
};

Params ReadParams(ByteReader& in) {
  Params p{};
  for (int64_t* field : {&p.dim, &p.hidden_dim, &p.n_layers, &p.n_heads, &p.n_kv_heads, &p.vocab_size, &p.seq_len}) {
    *field = in.Read<int32_t>("the header");
  }
  return p;
}

image::ModelConfig ToConfig(const Params& p, bool shared_classifier, const ByteReader& in) {
  const std::pair<const char*, int64_t> fields[] = {
      {"dim", p.dim},         {"hidden_dim", p.hidden_dim}, {"n_layers", p.n_layers},
      {"n_heads", p.n_heads}, {"n_kv_heads", p.n_kv_heads}, {"vocab_size", p.vocab_size},
      {"seq_len", p.seq_len}};
  for (const auto& [name, value] : fields) {
    if (value <= 0)
      in.Fail("header field " + std::string(name) + " is " + std::to_string(value) + ", expected a positive number");
  }
  if (p.dim % p.n_heads != 0) {
    in.Fail("dim " + std::to_string(p.dim) + " is not a multiple of n_heads " + std::to_string(p.n_heads));
  }
  image::ModelConfig c{};
  c.arch = static_cast<uint32_t>(image::Arch::kLlama);
  c.dim = static_cast<uint32_t>(p.dim);
  c.hidden_dim = static_cast<uint32_t>(p.hidden_dim);
  c.n_layers = static_cast<uint32_t>(p.n_layers);
  c.n_heads = static_cast<uint32_t>(p.n_heads);
  c.n_kv_heads = static_cast<uint32_t>(p.n_kv_heads);
  c.head_dim = static_cast<uint32_t>(p.dim / p.n_heads);
  c.vocab_size = static_cast<uint32_t>(p.vocab_size);
  c.seq_len = static_cast<uint32_t>(p.seq_len);
  c.rope_theta = 10000.0f;  // llama2.c hard-codes both
  c.norm_eps = 1e-5f;
  c.flags = shared_classifier ? image::kModelSharedClassifier : 0u;
  CheckModelConfig(c, in.file());  // bounds every dimension, so the size arithmetic below cannot overflow
  return c;
}

std::map<std::string, TensorSpec> SpecsByName(const image::ModelConfig& config) {
  std::map<std::string, TensorSpec> specs;
  for (TensorSpec& spec : RequiredTensors(config, image::DefaultDetail(config))) specs.emplace(spec.name, spec);
  return specs;
}

// `kinds` for every layer: blk.0.<kinds[0]>, blk.1.<kinds[0]>, ..., blk.0.<kinds[1]>, ...
void AppendLayerNames(std::vector<std::string>& names, std::span<const char* const> kinds, uint32_t n_layers) {
  for (const char* kind : kinds) {
    for (uint32_t layer = 0; layer < n_layers; ++layer) names.push_back("blk." + std::to_string(layer) + "." + kind);
  }
}

uint64_t Count(const TensorSpec& spec) { return static_cast<uint64_t>(spec.rows) * spec.cols; }

// The header fixes the file size; a different size means a damaged or misread file.
void CheckFileSize(const ByteReader& in, uint64_t expected) {
  if (in.size() < expected) {
    in.Fail("file is truncated: " + std::to_string(in.size()) + " bytes, the header implies " +
            std::to_string(expected));
  }
  if (in.size() > expected) {
    in.Fail(std::to_string(in.size() - expected) + " unexpected trailing bytes: the header implies " +
            std::to_string(expected) + " bytes, the file has " + std::to_string(in.size()));
  }
}

Tensor ReadF32(ByteReader& in, const TensorSpec& spec) {
  Tensor t{spec.rows, spec.cols, std::vector<float>(Count(spec))};
  std::memcpy(t.data.data(), in.Bytes(4 * Count(spec), spec.name.c_str()).data(), 4 * Count(spec));
  return t;
}

// Q8_0 as version2_export writes it: int8 q[n], then float scale[n / group_size]; w = q * scale.
Tensor ReadQ80(ByteReader& in, const TensorSpec& spec, uint32_t group_size) {
  const uint64_t n = Count(spec);
  const std::span<const uint8_t> q = in.Bytes(n, spec.name.c_str());
  std::vector<float> scales(n / group_size);
  std::memcpy(scales.data(), in.Bytes(4 * scales.size(), spec.name.c_str()).data(), 4 * scales.size());
  Tensor t{spec.rows, spec.cols, std::vector<float>(n)};
  for (uint64_t i = 0; i < n; ++i) t.data[i] = static_cast<float>(static_cast<int8_t>(q[i])) * scales[i / group_size];
  return t;
}

Checkpoint LoadV0(ByteReader& in) {
  Params p = ReadParams(in);
  const bool shared = p.vocab_size > 0;  // v0 flags a separate classifier by negating vocab_size
  p.vocab_size = shared ? p.vocab_size : -p.vocab_size;
  Checkpoint checkpoint;
  checkpoint.format = "llama2c-v0";
  checkpoint.config = ToConfig(p, shared, in);
  checkpoint.detail = image::DefaultDetail(checkpoint.config);
  const image::ModelConfig& c = checkpoint.config;
  const std::map<std::string, TensorSpec> specs = SpecsByName(c);

  std::vector<std::string> order = {"token_embd.weight"};
  AppendLayerNames(order, kV0LayerKinds, c.n_layers);
  order.push_back("output_norm.weight");
  // freq_cis_real and freq_cis_imag, seq_len * head_dim / 2 floats each: the engine computes RoPE itself.
  const uint64_t rope_table_bytes = 4ull * c.seq_len * c.head_dim;

  uint64_t expected = kV0HeaderSize + rope_table_bytes;
  for (const auto& [name, spec] : specs) expected += 4 * Count(spec);  // includes output.weight when not shared
  CheckFileSize(in, expected);

  for (const std::string& name : order) checkpoint.tensors[name] = ReadF32(in, specs.at(name));
  in.Bytes(rope_table_bytes, "freq_cis");
  if (!shared) checkpoint.tensors["output.weight"] = ReadF32(in, specs.at("output.weight"));
  return checkpoint;
}

Checkpoint LoadV2(ByteReader& in) {
  in.Read<uint32_t>("the magic");
  const int32_t version = in.Read<int32_t>("the version");
  if (version != 2) {
    in.Fail("unsupported llama2.c version " + std::to_string(version) + " (legacy v0 and v2 are read)");
  }
  const Params p = ReadParams(in);
  const uint8_t shared = in.Read<uint8_t>("the header");
  const int32_t group_size = in.Read<int32_t>("the header");
  if (shared > 1) in.Fail("shared_classifier flag is " + std::to_string(shared) + ", expected 0 or 1");
  if (group_size <= 0) in.Fail("group_size is " + std::to_string(group_size) + ", expected a positive number");

  Checkpoint checkpoint;
  checkpoint.format = "llama2c-v2";
  checkpoint.config = ToConfig(p, shared == 1, in);
  checkpoint.detail = image::DefaultDetail(checkpoint.config);
  const image::ModelConfig& c = checkpoint.config;
  const std::map<std::string, TensorSpec> specs = SpecsByName(c);

  std::vector<std::string> norms;
  AppendLayerNames(norms, kV2NormKinds, c.n_layers);
  norms.push_back("output_norm.weight");
  std::vector<std::string> matrices = {"token_embd.weight"};
  AppendLayerNames(matrices, kV2MatrixKinds, c.n_layers);
  if (shared == 0) matrices.push_back("output.weight");

  uint64_t expected = kV2HeaderSize;
  for (const std::string& name : norms) expected += 4 * Count(specs.at(name));
  for (const std::string& name : matrices) {
    const uint64_t n = Count(specs.at(name));
    if (n % static_cast<uint32_t>(group_size) != 0) {
      in.Fail("tensor " + name + " has " + std::to_string(n) + " weights, not a multiple of group_size " +
              std::to_string(group_size));
    }
    expected += n + 4 * (n / static_cast<uint32_t>(group_size));
  }
  CheckFileSize(in, expected);

  in.Seek(kV2HeaderSize);
  for (const std::string& name : norms) checkpoint.tensors[name] = ReadF32(in, specs.at(name));
  for (const std::string& name : matrices) {
    checkpoint.tensors[name] = ReadQ80(in, specs.at(name), static_cast<uint32_t>(group_size));
  }
  return checkpoint;
}

}  // namespace

Checkpoint LoadLlama2c(const std::filesystem::path& path) {
  const MappedFile file(path);
  ByteReader in(file.bytes(), file.name());
  uint32_t magic = 0;
  if (in.size() >= sizeof magic) std::memcpy(&magic, file.bytes().data(), sizeof magic);
  return magic == kAk42Magic ? LoadV2(in) : LoadV0(in);
}

}  // namespace qmc::host
