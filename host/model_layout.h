// Where every byte of a model goes, by memory window: either read from an
// image, or laid out from a model's shape and `qmc pack` options exactly as
// packing would lay it out (host/image_writer.cpp, docs/image-format.md),
// with no weights. `qmc memsim`'s input; a test holds the two equal.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "common/image_reader.h"
#include "host/model_shapes.h"
#include "host/quantize.h"

namespace qmc::host {

struct LaidTensor {
  ShapeTensor shape;
  // The directory entry packing would write: scheme, bits, cell_bits,
  // outlier_bits, group_size, rows, cols, outlier_count and each blob's
  // length (blob sections are not meaningful; windows are below).
  image::TensorEntry entry{};
  image::Window data_window = image::Window::kSram;
  image::Window scales_window = image::Window::kSram;
  image::Window outliers_window = image::Window::kSram;
  // Mean bytes of each blob one row lookup reads (the embedding), over the
  // tensor's rows: exact for an image; with outliers spread evenly over the
  // rows for a layout without weights.
  double row_data = 0, row_scales = 0, row_outliers = 0;
};

struct ModelLayout {
  ModelShape shape;
  std::string scheme;        // the preset, or the scheme and its parameters
  bool from_image = false;
  std::vector<LaidTensor> tensors;  // shape.tensors' order
  // As image::ImageView::WindowBytes: the end of the last section in each
  // window (MRAM: at least the boot record). 64-bit: paper-size models
  // exceed the image format's 4 GiB.
  std::array<uint64_t, image::kWindowCount> window_bytes{};
  // Bits per cell of what each window stores: the inlier codes' cell mode
  // in ReRAM, 0 for plain bytes.
  std::array<uint32_t, image::kWindowCount> window_cell_bits{};
  // Over weight matrices, as `qmc inspect` counts them.
  uint64_t matrix_weights = 0;
  uint64_t matrix_bytes = 0;  // data + scales + outliers
  uint64_t outliers = 0;
  // Stored value bits (the paper's accounting: codes and outlier values
  // only), by the window that holds them.
  std::array<uint64_t, image::kWindowCount> value_bits{};

  uint64_t TotalValueBits() const;
  double BitsPerWeight() const { return 8.0 * static_cast<double>(matrix_bytes) / static_cast<double>(matrix_weights); }
  double ValueBitsPerWeight() const {
    return static_cast<double>(TotalValueBits()) / static_cast<double>(matrix_weights);
  }
};

// Lays `shape` out under `options` (validated as `qmc pack` validates them).
ModelLayout LayOutModel(const ModelShape& shape, const QuantOptions& options, const std::string& scheme_name);

// The layout of a validated image (a Llama-family model).
ModelLayout LayOutImage(const image::ImageView& view);

// Value bits of a weight matrix (the paper's accounting; `qmc inspect`'s
// value_bits_per_weight): codes and outlier values, not scales, positions or padding.
uint64_t ValueBits(const image::TensorEntry& t);

}  // namespace qmc::host
