// The Cortex-M55 matvec: Helium (MVE) dot products straight from the packed
// codes (four rows per vector, no unpacked row), MVE half-to-single
// conversion for fp16. Built only when the compiler targets MVE with
// floating point (QMC_HELIUM_KERNELS, the m55 cross build); every CPU such
// a binary runs on has it, so no probe is needed.
#pragma once

#include <cstdint>

#include "common/image_reader.h"

namespace qmc::kernels {

// As MatVecScalar.
void MatVecHelium(const image::ImageView& image, const image::TensorEntry& t, const float* x, float* y,
                  float* row_buffer);

// As DotAvx2 and AxpyAvx2, in 2 × 4 lanes.
float DotHelium(const float* a, const float* b, uint32_t n);
void AxpyHelium(float a, const float* x, float* y, uint32_t n);

}  // namespace qmc::kernels
