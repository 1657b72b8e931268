#include "host/checkpoint.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>

#include "common/model_tensors.h"
#include "host/atomic_file.h"

namespace qmc::host {

std::vector<TensorSpec> RequiredTensors(const image::ModelConfig& config, const image::ModelDetail& detail) {
  Status status = image::ValidateModelConfig(config);
  if (status.ok()) status = image::ValidateModelDetail(config, detail);
  if (!status.ok()) throw InputError(std::string("model config: ") + status.what);
  std::vector<TensorSpec> specs;
  const uint32_t count = image::RequiredTensorCount(config, detail);
  specs.reserve(count);
  for (uint32_t i = 0; i < count; ++i) {
    const image::TensorRequirement r = image::RequiredTensor(config, detail, i);
    specs.push_back({r.name, r.rows, r.cols, r.is_matrix});
  }
  return specs;
}

void ValidateCheckpoint(const Checkpoint& checkpoint) {
  for (const TensorSpec& spec : RequiredTensors(checkpoint.config, checkpoint.detail)) {
    const auto it = checkpoint.tensors.find(spec.name);
    if (it == checkpoint.tensors.end()) throw InputError("missing tensor " + spec.name);
    ValidateTensor(spec, it->second);
  }
}

void ValidateTensor(const TensorSpec& spec, const Tensor& t) {
  if (t.rows != spec.rows || t.cols != spec.cols) {
    throw InputError("tensor " + spec.name + " has shape [" + std::to_string(t.rows) + ", " + std::to_string(t.cols) +
                     "], expected [" + std::to_string(spec.rows) + ", " + std::to_string(spec.cols) + "]");
  }
  if (t.data.size() != static_cast<size_t>(t.rows) * t.cols) {
    throw InputError("tensor " + spec.name + " holds " + std::to_string(t.data.size()) + " values for its shape");
  }
  for (size_t i = 0; i < t.data.size(); ++i) {
    if (!std::isfinite(t.data[i])) {
      throw InputError("tensor " + spec.name + " has a non-finite weight (" + std::to_string(t.data[i]) +
                       ") at index " + std::to_string(i));
    }
  }
}

Checkpoint LoadCheckpoint(const std::filesystem::path& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) return LoadHuggingFace(path);
  std::ifstream in(path, std::ios::binary);
  if (!in) throw IoError(path.string() + ": cannot open: " + std::strerror(errno));
  char head[28] = {};  // a llama2.c header's seven ints
  in.read(head, sizeof head);
  if (in.gcount() < 4) throw InputError(path.string() + ": too short to be a checkpoint");
  if (std::string(head, 4) == "GGUF") return LoadGguf(path);
  // Text (a config, a script, /etc/passwd): a llama2.c header's small ints
  // always hold zero bytes, so all-printable leading bytes are no checkpoint.
  const auto read = static_cast<size_t>(in.gcount());
  if (std::all_of(head, head + read, [](char c) { return c == '\t' || c == '\n' || c == '\r' || (c >= 0x20 && c < 0x7F); })) {
    throw InputError(path.string() +
                     ": not a recognised checkpoint format (a llama2.c .bin, a GGUF file or a HuggingFace directory)");
  }
  if (path.extension() == ".safetensors") {
    throw InputError(path.string() + ": pass the HuggingFace directory (with config.json), not the .safetensors file");
  }
  return LoadLlama2c(path);  // v0 has no magic; v2 starts with "ak42", told apart inside
}

}  // namespace qmc::host
