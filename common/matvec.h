// Matrix-vector products over image tensors of every scheme.
//
// The reference kernel is the definition: each row is decoded in place
// (image::DequantizeRow) into a row buffer and dotted in plain scalar order.
// The optimised kernels decode packed codes a whole word at a time and scale
// per group (Σ_g scale_g·Σ (code − zero)·x, then the outliers); they sum in
// a different order, so they equal the reference up to f32 rounding
// (tests/matvec_kernels_test.cpp holds them to it).
#pragma once

#include <cstddef>
#include <cstdint>

#include "common/image_reader.h"
#include "common/status.h"

namespace qmc {

enum class MatVecKernel : uint8_t {
  kReference,  // the definition
  kScalar,     // portable C++, any target
  kAvx2,       // x86-64 hosts with AVX2, FMA and F16C
  kAvx512,     // as kAvx2, the batched MatMul's dot in AVX-512F where the CPU has it
  kHelium,     // Cortex-M55 builds (MVE with floating point)
};

// Whether `kernel` is built in and this CPU runs it.
bool MatVecKernelAvailable(MatVecKernel kernel);

// The kernel a program starts with: the reference in a
// QMC_REFERENCE_KERNELS build, else the fastest available.
MatVecKernel DefaultMatVecKernel();

// The kernel MatVec uses: DefaultMatVecKernel() until UseMatVecKernel changes it.
MatVecKernel ActiveMatVecKernel();

// Makes `kernel` the one MatVec uses, for the whole program: how tests and
// benchmarks run the engine on each kernel. Refuses an unavailable kernel.
Status UseMatVecKernel(MatVecKernel kernel);

// y[t.rows] = W x[t.cols] by the active kernel; `row_buffer` holds t.cols
// floats. `t` comes from a validated image.
void MatVec(const image::ImageView& image, const image::TensorEntry& t, const float* x, float* y, float* row_buffer);

// The same by `kernel`, which must be available.
void MatVec(const image::ImageView& image, const image::TensorEntry& t, const float* x, float* y, float* row_buffer,
            MatVecKernel kernel);

// Y = X Wᵀ for n inputs: y[i * y_stride + r] = row r of W · x[i * x_stride ..].
// The reference kernel is n reference MatVecs; the others decode each row
// of W once (into `row_buffer`, t.cols floats, or the x86 kernels' tile of
// rows) and dot it with all n inputs, so the weights are read once for the
// n tokens.
void MatMul(const image::ImageView& image, const image::TensorEntry& t, const float* x, size_t x_stride, float* y,
            size_t y_stride, uint32_t n, float* row_buffer);

// The same by `kernel`, which must be available.
void MatMul(const image::ImageView& image, const image::TensorEntry& t, const float* x, size_t x_stride, float* y,
            size_t y_stride, uint32_t n, float* row_buffer, MatVecKernel kernel);

// The vector steps of one token's attention, by the active kernel (or
// `kernel`, which must be available): a · b over n floats, and y[i] += a · x[i].
// The reference (and scalar) kernel sums the dot in order and rounds the
// product and the sum apart; the vector kernels sum in lanes and fuse, so
// they equal it up to f32 rounding (tests/attention_kernels_test.cpp).
float Dot(const float* a, const float* b, uint32_t n);
float Dot(const float* a, const float* b, uint32_t n, MatVecKernel kernel);
void Axpy(float a, const float* x, float* y, uint32_t n);
void Axpy(float a, const float* x, float* y, uint32_t n, MatVecKernel kernel);

// Row `row` of `t` decoded into out[t.cols]: the embedding lookup.
Status LookupRow(const image::ImageView& image, const image::TensorEntry& t, uint32_t row, float* out);

}  // namespace qmc
