// The weight tensors of a model and what one decoded token reads besides
// them (KV cache rows, recurrent state), from its configuration alone: no
// weights. The tensors are common/model_tensors.h's lists, for every family
// (Llama, Qwen2, Phi, Hymba), exactly as `qmc pack` writes them; `qmc
// memsim` lays them out as packing would.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "common/image_format.h"
#include "host/checkpoint.h"

namespace qmc::host {

// How a decode step reads a tensor.
enum class TensorUse : uint8_t {
  kMatrix,     // a weight matrix read whole by a matvec
  kEmbedding,  // the token embedding: one row per token (and whole again when it is also the classifier)
  kVector,     // norms, biases and small parameters (SSM A, D, conv taps), read whole, kept f32
  kPrefix,     // read only when a sequence starts (Hymba's meta tokens), kept f32
};

struct ShapeTensor {
  TensorSpec spec;  // is_matrix: quantized like the other weight matrices
  TensorUse use;
};

// One attention layer's cache traffic per decoded token.
struct AttentionLayer {
  uint32_t kv_heads = 0;
  uint32_t key_dim = 0;    // per KV head
  uint32_t value_dim = 0;  // per KV head
  bool owns_cache = true;  // computes and stores this position's K/V (else reads another layer's cache)
  // 0: attends to every cached position; else to positions at most `window`
  // behind it, plus the model's prefix (meta) tokens.
  uint32_t window = 0;
};

struct ModelShape {
  std::string family;  // llama, qwen2, phi, hymba
  std::string source;  // the file the shape came from
  std::vector<ShapeTensor> tensors;  // in image order
  bool tied_classifier = false;      // the classifier is the embedding matrix
  // What an image of the model carries.
  image::ModelConfig config{};
  image::ModelDetail detail{};
  std::vector<AttentionLayer> attention;
  uint32_t prefix_tokens = 0;    // cached ahead of the prompt (Hymba's 128 meta tokens)
  uint64_t state_elements = 0;   // recurrent state per sequence (Hymba: conv + SSM), read and written per token
  uint32_t max_positions = 0;    // the model's context
  uint32_t vocab_size = 0;
  std::vector<uint8_t> tokenizer;  // llama2.c tokenizer bytes an image would embed; empty when unknown

  // Weights in matrices (the embedding counted once when tied): the N of bits per weight.
  uint64_t MatrixWeights() const;
};

// A model as an image describes it (any family).
ModelShape ShapeOfConfig(const image::ModelConfig& config, const image::ModelDetail& detail);

// From a HuggingFace config.json (model_type llama, qwen2, phi, hymba; read
// by LoadHuggingFaceConfig) or a directory holding one; or from a checkpoint
// file `qmc pack` reads (llama2.c .bin, GGUF), of which only the
// configuration and tokenizer are used. Throws InputError naming the file and key.
ModelShape LoadModelShape(const std::filesystem::path& input);

}  // namespace qmc::host
