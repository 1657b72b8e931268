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

// One tile of the batched dot: y[i * y_stride + r] = w row r · x input i for
// the tile's rows (w_stride apart) and inputs (x_stride apart).
using DotRowsTile = void (*)(const float* w, size_t w_stride, uint32_t cols, const float* x, size_t x_stride, float* y,
                             size_t y_stride);

// y[i * y_stride + r] = w row r · x input i for `rows` rows and n inputs,
// by tiles[R − 1][N − 1] of R ≤ tile_rows rows and N ≤ tile_inputs inputs:
// the inputs in blocks of tile_inputs and, within a block, every row, so a
// block's inputs are read from L1 for each row.
inline void DotRowsInTiles(const DotRowsTile* const* tiles, uint32_t tile_rows, uint32_t tile_inputs, const float* w,
                           size_t w_stride, uint32_t rows, uint32_t cols, const float* x, size_t x_stride, uint32_t n,
                           float* y, size_t y_stride) {
  for (uint32_t i = 0; i < n; i += tile_inputs) {
    const uint32_t inputs = n - i < tile_inputs ? n - i : tile_inputs;
    for (uint32_t r = 0; r < rows; r += tile_rows) {
      const uint32_t count = rows - r < tile_rows ? rows - r : tile_rows;
      tiles[count - 1][inputs - 1](w + r * w_stride, w_stride, cols, x + i * x_stride, x_stride, y + i * y_stride + r,
                                   y_stride);
    }
  }
}

// W's rows dotted with n inputs (DotRowsInTiles's arguments): 4 × 3 tiles
// of 256-bit FMAs.
void DotRowsAvx2(const float* w, size_t w_stride, uint32_t rows, uint32_t cols, const float* x, size_t x_stride,
                 uint32_t n, float* y, size_t y_stride);

// As MatMul (common/matvec.h): each row decoded once (AVX2), a tile of rows
// at a time, each tile dotted with the n inputs by `dot_rows`
// (DotRowsAvx2, or DotRowsAvx512 where the CPU has it).
using DotRowsFunction = void (*)(const float* w, size_t w_stride, uint32_t rows, uint32_t cols, const float* x,
                                 size_t x_stride, uint32_t n, float* y, size_t y_stride);
void MatMulAvx2(const image::ImageView& image, const image::TensorEntry& t, const float* x, size_t x_stride, float* y,
                size_t y_stride, uint32_t n, float* row_buffer, DotRowsFunction dot_rows);

// a · b over n floats, in 4 × 8 lanes of FMAs.
float DotAvx2(const float* a, const float* b, uint32_t n);

// y[i] += a · x[i] for n floats, fused (one rounding per element).
void AxpyAvx2(float a, const float* x, float* y, uint32_t n);

// As UnpackCodes.
void UnpackCodesAvx2(const uint32_t* row_words, uint32_t cols, uint32_t bits, uint32_t cell_bits, uint32_t flip,
                     float* out);

}  // namespace qmc::kernels
