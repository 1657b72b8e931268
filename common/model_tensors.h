// The tensors a model requires, by canonical (GGUF-style) name and shape, in
// image order, for each architecture family. The packer writes exactly
// these; the reader checks exactly these; the engine finds each by its role.
#pragma once

#include <cstdint>

#include "common/image_format.h"
#include "common/status.h"

namespace qmc::image {

// What a tensor is for. A family uses a subset; layer roles repeat per layer.
enum class Role : uint8_t {
  // Outside the layers.
  kTokenEmbd,
  kMetaTokens,      // Hymba: meta_tokens x dim, run before every sequence
  kOutputNorm,
  kOutputNormBias,  // Phi: the final LayerNorm's bias
  kOutput,          // the classifier, absent when it shares the embedding
  kOutputBias,      // Phi
  // In a layer.
  kAttnNorm,
  kAttnNormBias,  // Phi: LayerNorm bias
  kQ,
  kK,
  kV,
  kQBias,
  kKBias,
  kVBias,
  kAttnOut,
  kAttnOutBias,  // Phi
  kFfnNorm,
  kGate,
  kUp,
  kUpBias,  // Phi: fc1 bias
  kDown,
  kDownBias,  // Phi: fc2 bias
  // Hymba's fused attention + SSM block.
  kInProj,      // [q | k | v (layers that own a KV cache) | xs | z] rows
  kConv,        // ssm_inner x ssm_conv
  kConvBias,    // ssm_inner
  kXProj,       // (dt_rank + 2 ssm_state) x ssm_inner
  kDtNorm,      // dt_rank
  kBNorm,       // ssm_state
  kCNorm,       // ssm_state
  kDtProj,      // ssm_inner x dt_rank
  kDtBias,      // ssm_inner
  kALog,        // ssm_inner x ssm_state
  kD,           // ssm_inner
  kAttnOutNorm, // the fusion's norm of the attention output
  kSsmOutNorm,  // the fusion's norm of the SSM output
  kOutProj,     // dim x ssm_inner
  kCount
};
inline constexpr uint32_t kRoleCount = static_cast<uint32_t>(Role::kCount);
inline constexpr uint32_t kNoLayer = 0xFFFFFFFFu;

struct TensorRequirement {
  char name[kTensorNameSize];
  uint32_t rows;
  uint32_t cols;
  bool is_matrix;  // a weight matrix (quantizable), not a norm, bias or SSM vector
  uint32_t layer;  // kNoLayer outside the layers
  Role role;
};

// What an image without a model-detail section (1.1) means: full rotary,
// value heads as wide as key heads, no window, every layer global and owning
// its KV cache, no SSM, no meta tokens.
ModelDetail DefaultDetail(const ModelConfig& config);

// Whether `layer` computes and caches its own keys and values.
inline bool OwnsKv(const ModelDetail& detail, uint32_t layer) { return detail.kv_source[layer] == layer; }

uint32_t RequiredTensorCount(const ModelConfig& config, const ModelDetail& detail);

// Requirement `index` (< RequiredTensorCount). Config and detail must have
// passed ValidateModelConfig and ValidateModelDetail.
TensorRequirement RequiredTensor(const ModelConfig& config, const ModelDetail& detail, uint32_t index);

Status ValidateModelConfig(const ModelConfig& config);
// Checks `detail` against a validated `config`.
Status ValidateModelDetail(const ModelConfig& config, const ModelDetail& detail);

}  // namespace qmc::image
