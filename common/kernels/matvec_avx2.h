// The x86-64 matvec: AVX2 code expansion and FMA dot products, F16C for
// fp16. Built only for x86-64 hosts (QMC_AVX2_KERNELS); the functions are
// compiled for AVX2 while the rest of the program is not, so they may be
// called only when Avx2Supported().
#pragma once

#include <cstddef>
#include <cstdint>

#include "common/image_reader.h"

namespace qmc::kernels {

// The CPU (and OS) run AVX2, FMA and F16C.
bool Avx2Supported();

// As MatVecScalar.
void MatVecAvx2(const image::ImageView& image, const image::TensorEntry& t, const float* x, float* y, float* row_buffer);

// As MatMul (common/matvec.h): each row decoded once, dotted with the n inputs.
void MatMulAvx2(const image::ImageView& image, const image::TensorEntry& t, const float* x, size_t x_stride, float* y,
                size_t y_stride, uint32_t n, float* row_buffer);

// As UnpackCodes.
void UnpackCodesAvx2(const uint32_t* row_words, uint32_t cols, uint32_t bits, uint32_t cell_bits, uint32_t flip,
                     float* out);

}  // namespace qmc::kernels
