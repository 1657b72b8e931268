// The Cortex-M55 matvec: Helium (MVE) code expansion and FMA dot products,
// MVE half-to-single conversion for fp16. Built only when the compiler
// targets MVE with floating point (QMC_HELIUM_KERNELS, the m55 cross
// build); every CPU such a binary runs on has it, so no probe is needed.
#pragma once

#include <cstdint>

#include "common/image_reader.h"

namespace qmc::kernels {

// As MatVecScalar.
void MatVecHelium(const image::ImageView& image, const image::TensorEntry& t, const float* x, float* y,
                  float* row_buffer);

// As UnpackCodes.
void UnpackCodesHelium(const uint32_t* row_words, uint32_t cols, uint32_t bits, uint32_t cell_bits, uint32_t flip,
                       float* out);

}  // namespace qmc::kernels
