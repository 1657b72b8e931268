// What the checkpoint readers share: checking a model config read from a
// file, and turning a tensor's f32/f16/bf16 bytes into a shape-checked Tensor.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "host/checkpoint.h"

namespace qmc::host {

enum class ElementType : uint8_t { kF32, kF16, kBf16 };

uint64_t ElementSize(ElementType type);
const char* ElementTypeName(ElementType type);

// Throws InputError("<file>: invalid model config: ...") unless `config`
// passes image::ValidateModelConfig.
void CheckModelConfig(const image::ModelConfig& config, const std::string& file);

// A tensor as a file stores it; `data` lies inside the file (the reader checked).
struct SourceTensor {
  std::string name;             // as the file names it
  std::vector<uint64_t> shape;  // outermost first: {rows, cols}, or {cols} for a vector
  ElementType type;
  std::span<const uint8_t> data;
};

// Checks `source` has the shape `spec` asks for ({cols} for a 1 x cols
// norm or bias, {rows, cols} otherwise) and exactly the bytes that shape
// needs, and decodes it.
// Errors name `file` and the tensor as the file names it.
Tensor ConvertTensor(const SourceTensor& source, const TensorSpec& spec, const std::string& file);

// "[768, 288]"
std::string FormatShape(std::span<const uint64_t> shape);

}  // namespace qmc::host
