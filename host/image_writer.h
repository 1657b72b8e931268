// Lays quantized tensors out into a QMC image (docs/image-format.md):
// placement by memory window, alignment, CRCs, header last.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "common/image_format.h"
#include "host/quantize.h"

namespace qmc::host {

// What an image says besides its tensors.
struct ImageModel {
  image::ModelConfig config{};
  image::ModelDetail detail{};
  image::Quantizer quantizer = image::Quantizer::kQmc;
  float outlier_ratio = 0.0f;
  std::string preset;              // the qmc pack preset, "" for none
  std::vector<uint8_t> tokenizer;  // the tokenizer section
};

// Builds an image one tensor at a time, keeping only the tensors' blobs (no
// f32 reconstructions), so a model packs without its whole f32 checkpoint
// in memory. The same model and tensors always give the same bytes.
class ImageWriter {
 public:
  explicit ImageWriter(ImageModel model);

  // The next tensor, in RequiredTensors order; its blobs move into the writer.
  // Throws InputError when a section would pass the format's 32-bit offsets.
  void Add(QuantizedTensor tensor);

  // The image; the writer is left empty. Throws InputError as Add does.
  std::vector<uint8_t> Finish();

 private:
  // One section's blobs at their offsets, 16-aligned, in the order added.
  struct Section {
    uint64_t size = 0;
    std::vector<std::pair<uint32_t, std::vector<uint8_t>>> blobs;
  };
  // Places `blob` in the section of `kind`: a reference naming the kind
  // (Finish turns kinds into section indices), absent if empty.
  image::BlobRef Place(image::SectionKind kind, std::vector<uint8_t> blob);

  ImageModel model_;
  std::vector<image::TensorEntry> entries_;
  Section params_, codes_, dense_;
  bool any_codes_ = false;
  bool any_dense_ = false;
};

}  // namespace qmc::host
