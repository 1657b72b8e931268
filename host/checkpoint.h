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
  image::ModelDetail detail{};  // image::DefaultDetail(config) for families that need no more
  std::map<std::string, Tensor> tensors;
  std::vector<uint8_t> tokenizer;  // the image's tokenizer section (LoadTokenizerFile); empty if the file has none
};

// One tensor the model needs: its canonical name and expected shape.
struct TensorSpec {
  std::string name;
  uint32_t rows;
  uint32_t cols;
  bool is_matrix;  // a weight matrix (quantizable), not a norm or bias
};

// Every tensor the model requires, in image order.
std::vector<TensorSpec> RequiredTensors(const image::ModelConfig& config, const image::ModelDetail& detail);

// Throws InputError naming the first problem: an inconsistent config, a
// missing tensor, a shape mismatch or a non-finite weight.
void ValidateCheckpoint(const Checkpoint& checkpoint);
// The same for one tensor the model requires: its shape and weights.
void ValidateTensor(const TensorSpec& spec, const Tensor& tensor);

// Detects the format (a directory is HuggingFace; files by magic) and reads it.
Checkpoint LoadCheckpoint(const std::filesystem::path& path);

Checkpoint LoadLlama2c(const std::filesystem::path& path);
Checkpoint LoadHuggingFace(const std::filesystem::path& directory);
// The model a HuggingFace config.json describes, as LoadHuggingFace reads it,
// without weights: the classifier is shared when tie_word_embeddings says so.
struct ModelSpec {
  image::ModelConfig config;
  image::ModelDetail detail;
};
ModelSpec LoadHuggingFaceConfig(const std::filesystem::path& config_json);
Checkpoint LoadGguf(const std::filesystem::path& path);

// The tokenizer section an image of a model with `vocab_size` rows embeds,
// from a llama2.c tokenizer.bin (exactly vocab_size entries) or a
// HuggingFace tokenizer.json (at most vocab_size tokens: embeddings may be
// padded). Throws InputError naming the file otherwise.
std::vector<uint8_t> LoadTokenizerFile(const std::filesystem::path& path, uint32_t vocab_size);
// The same for no model: every entry of a tokenizer.bin.
std::vector<uint8_t> LoadTokenizerFile(const std::filesystem::path& path);
// Ids a tokenizer section gives a text: a llama2.c vocabulary's entries, a BPE's tokens.
uint32_t TokenizerTokenCount(const std::vector<uint8_t>& section);

// The tokenizer an image of the checkpoint at `checkpoint_path` embeds:
// `tokenizer_file` when given, else a HuggingFace directory's
// tokenizer.json, else `carried` (what the checkpoint file holds, as GGUF
// does). A HuggingFace directory's config.json then names a BPE's EOS.
std::vector<uint8_t> CheckpointTokenizer(const std::filesystem::path& checkpoint_path,
                                         const std::filesystem::path& tokenizer_file, uint32_t vocab_size,
                                         std::vector<uint8_t> carried);

// Checks a tokenizer section (either format) for a model of `vocab_size` rows.
void ValidateTokenizer(const std::vector<uint8_t>& bytes, uint32_t vocab_size);

}  // namespace qmc::host
