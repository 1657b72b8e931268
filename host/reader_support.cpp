#include "host/reader_support.h"

#include <cstring>

#include "common/half.h"
#include "common/model_tensors.h"

namespace qmc::host {

uint64_t ElementSize(ElementType type) { return type == ElementType::kF32 ? 4 : 2; }

const char* ElementTypeName(ElementType type) {
  switch (type) {
    case ElementType::kF32:
      return "F32";
    case ElementType::kF16:
      return "F16";
    case ElementType::kBf16:
      return "BF16";
  }
  return "?";
}

void CheckModelConfig(const image::ModelConfig& config, const std::string& file) {
  const Status status = image::ValidateModelConfig(config);
  if (!status.ok()) throw InputError(file + ": invalid model config: " + status.what);
}

Tensor ConvertTensor(const SourceTensor& source, const TensorSpec& spec, const std::string& file) {
  const std::vector<uint64_t> expected =
      spec.is_matrix || spec.rows > 1 ? std::vector<uint64_t>{spec.rows, spec.cols} : std::vector<uint64_t>{spec.cols};
  if (source.shape != expected) {
    throw InputError(file + ": tensor '" + source.name + "' has shape " + FormatShape(source.shape) + ", expected " +
                     FormatShape(expected));
  }
  const size_t count = static_cast<size_t>(spec.rows) * spec.cols;
  const uint64_t bytes = count * ElementSize(source.type);
  if (source.data.size() != bytes) {
    throw InputError(file + ": tensor '" + source.name + "' has " + std::to_string(source.data.size()) +
                     " bytes of data, its shape in " + ElementTypeName(source.type) + " needs " +
                     std::to_string(bytes));
  }
  Tensor tensor{spec.rows, spec.cols, std::vector<float>(count)};
  const uint8_t* in = source.data.data();
  switch (source.type) {
    case ElementType::kF32:
      std::memcpy(tensor.data.data(), in, bytes);
      break;
    case ElementType::kF16:
    case ElementType::kBf16:
      for (size_t i = 0; i < count; ++i) {
        const uint16_t bits = static_cast<uint16_t>(in[2 * i] | (in[2 * i + 1] << 8));
        tensor.data[i] = source.type == ElementType::kF16 ? HalfToFloat(bits) : Bf16ToFloat(bits);
      }
      break;
  }
  return tensor;
}

std::string FormatShape(std::span<const uint64_t> shape) {
  std::string out = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i > 0) out += ", ";
    out += std::to_string(shape[i]);
  }
  return out + "]";
}

}  // namespace qmc::host
