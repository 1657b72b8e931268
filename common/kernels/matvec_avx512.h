// The AVX-512 batched product: the dot of decoded weight rows with many
// inputs (MatMul's microkernel) in 512-bit vectors, for x86-64 hosts whose
// CPU has AVX-512F. Row decoding and the one-token matvec stay AVX2
// (common/kernels/matvec_avx2.h): measured on a Zen 5 host, 16-lane FMAs
// pay where the products dominate, in the batched dot. Built with the AVX2
// kernels (QMC_AVX2_KERNELS); call only when Avx512Supported().
#pragma once

#include <cstddef>
#include <cstdint>

namespace qmc::kernels {

// The CPU (and OS) run AVX-512F, and the AVX2 kernels.
bool Avx512Supported();

// As DotRowsAvx2 (common/kernels/matvec_avx2.h).
void DotRowsAvx512(const float* w, size_t w_stride, uint32_t rows, uint32_t cols, const float* x, size_t x_stride,
                   uint32_t n, float* y, size_t y_stride);

}  // namespace qmc::kernels
