// Lays quantized tensors out into a QMC image (docs/image-format.md):
// placement by memory window, alignment, CRCs, header last.
#pragma once

#include <cstdint>
#include <vector>

#include "common/image_format.h"
#include "host/quantize.h"

namespace qmc::host {

struct ImageContents {
  image::ModelConfig config{};
  image::Quantizer quantizer = image::Quantizer::kQmc;
  float outlier_ratio = 0.0f;
  std::string preset;  // the qmc pack preset, "" for none
  std::vector<uint8_t> tokenizer;        // llama2.c tokenizer.bin bytes
  std::vector<QuantizedTensor> tensors;  // in RequiredTensors order
};

// The same contents always give the same bytes.
std::vector<uint8_t> BuildImage(const ImageContents& contents);

}  // namespace qmc::host
