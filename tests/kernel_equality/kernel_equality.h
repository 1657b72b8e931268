// The kernel-equality check, freestanding (no heap, stdio or GoogleTest) so
// the host tests and the Cortex-M55 target program run the same code: a
// tensor's matvec by one kernel against the reference, the definition, on
// a deterministic pseudo-random x.
//
// Bound: |y − y_ref| ≤ kTolerance · Σ_c |w_c·x_c| per row, w the row as the
// reference decodes it (image::DequantizeRow). The kernels round the same
// products and sums in other orders; one code read a level off moves a row
// by ~1e-3 of that sum, hundreds of times the bound (the reasoning is in
// tests/matvec_kernels_test.cpp).
#pragma once

#include <cstdint>
#include <span>

#include "common/image_reader.h"
#include "common/matvec.h"

namespace qmc::kernel_equality {

inline constexpr double kTolerance = 2e-6;

// Buffers the caller owns: `x` and `row` hold at least the tensor's cols
// floats, `y` and `y_reference` at least its rows.
struct Scratch {
  std::span<float> x;
  std::span<float> row;
  std::span<float> y;
  std::span<float> y_reference;
};

struct TensorResult {
  double worst;        // max over rows of |y − y_ref| / Σ|w·x| (0 where both are 0)
  uint32_t worst_row;
  bool pass;           // worst ≤ kTolerance
};

// The largest cols and rows over the image's tensors: what Scratch must hold.
uint32_t MaxCols(const image::ImageView& image);
uint32_t MaxRows(const image::ImageView& image);

// Tensor `index` of a validated image by `kernel` (available here) and by the
// reference, x drawn from `seed` (the same x for the same seed on any target).
TensorResult CheckTensor(const image::ImageView& image, uint32_t index, MatVecKernel kernel, uint32_t seed,
                         const Scratch& scratch);

}  // namespace qmc::kernel_equality
