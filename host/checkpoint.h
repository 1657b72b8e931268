// A model checkpoint as every host tool sees it, whatever file it came from:
// the model configuration and f32 tensors under canonical (GGUF-style) names,
// with q/k rows in the interleaved RoPE order the engine uses (llama2.c's).
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include "common/image_format.h"

namespace qmc::host {

// Bad input (file content, user flags): the message is one line naming the
// problem; the CLI prints it and exits non-zero.
class InputError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct Tensor {
  uint32_t rows = 0;  // a vector has rows == 1
  uint32_t cols = 0;
  std::vector<float> data;  // row-major, rows * cols
};

struct Checkpoint {
  std::string format;  // "llama2c-v0", "llama2c-v2", "safetensors", "gguf"
  image::ModelConfig config{};
  std::map<std::string, Tensor> tensors;
  std::vector<uint8_t> tokenizer;  // llama2.c tokenizer.bin bytes; empty if the file has none
};

// One tensor the model needs: its canonical name and expected shape.
struct TensorSpec {
  std::string name;
  uint32_t rows;
  uint32_t cols;
  bool is_matrix;  // a weight matrix (quantizable), not a norm or bias
};

// Every tensor `config` requires, in image order.
std::vector<TensorSpec> RequiredTensors(const image::ModelConfig& config);

// Throws InputError naming the first problem: an inconsistent config, a
// missing tensor, a shape mismatch or a non-finite weight.
void ValidateCheckpoint(const Checkpoint& checkpoint);

// Detects the format (a directory is HuggingFace; files by magic) and reads it.
Checkpoint LoadCheckpoint(const std::filesystem::path& path);

Checkpoint LoadLlama2c(const std::filesystem::path& path);
Checkpoint LoadHuggingFace(const std::filesystem::path& directory);
// The model configuration of a HuggingFace config.json alone, as
// LoadHuggingFace reads it (llama, qwen2), without weights: the classifier
// is shared when tie_word_embeddings says so.
image::ModelConfig LoadHuggingFaceConfig(const std::filesystem::path& config_json);
Checkpoint LoadGguf(const std::filesystem::path& path);

// Reads a llama2.c tokenizer.bin and returns the bytes of its first
// `vocab_size` entries in the same format (what the image embeds).
std::vector<uint8_t> LoadTokenizerFile(const std::filesystem::path& path, uint32_t vocab_size);

// Checks llama2.c tokenizer bytes hold exactly `vocab_size` well-formed entries.
void ValidateTokenizer(const std::vector<uint8_t>& bytes, uint32_t vocab_size);

}  // namespace qmc::host
