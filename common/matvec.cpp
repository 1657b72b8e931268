#include "common/matvec.h"

#include "common/dequantize.h"
#include "common/kernels/matvec_scalar.h"
#if QMC_AVX2_KERNELS
#include "common/kernels/matvec_avx2.h"
#include "common/kernels/matvec_avx512.h"
#endif
#if QMC_HELIUM_KERNELS
#include "common/kernels/matvec_helium.h"
#endif

namespace qmc {
namespace {

void ReferenceMatVec(const image::ImageView& image, const image::TensorEntry& t, const float* x, float* y,
                     float* row_buffer) {
  for (uint32_t r = 0; r < t.rows; ++r) {
    image::DequantizeRow(image, t, r, row_buffer);
    float sum = 0.0f;
    for (uint32_t c = 0; c < t.cols; ++c) sum += row_buffer[c] * x[c];
    y[r] = sum;
  }
}

// Chosen on first use rather than during static initialisation, when the
// CPU feature probe may not have run yet.
MatVecKernel active_kernel = MatVecKernel::kReference;
bool kernel_chosen = false;

}  // namespace

MatVecKernel DefaultMatVecKernel() {
#if QMC_REFERENCE_KERNELS
  return MatVecKernel::kReference;
#else
  if (MatVecKernelAvailable(MatVecKernel::kAvx512)) return MatVecKernel::kAvx512;
  if (MatVecKernelAvailable(MatVecKernel::kAvx2)) return MatVecKernel::kAvx2;
  if (MatVecKernelAvailable(MatVecKernel::kHelium)) return MatVecKernel::kHelium;
  return MatVecKernel::kScalar;
#endif
}

bool MatVecKernelAvailable(MatVecKernel kernel) {
  switch (kernel) {
    case MatVecKernel::kReference:
    case MatVecKernel::kScalar: return true;
    case MatVecKernel::kAvx2:
#if QMC_AVX2_KERNELS
      return kernels::Avx2Supported();
#else
      return false;
#endif
    case MatVecKernel::kAvx512:
#if QMC_AVX2_KERNELS
      return kernels::Avx512Supported();
#else
      return false;
#endif
    case MatVecKernel::kHelium:
#if QMC_HELIUM_KERNELS
      return true;  // the build targets MVE, so the CPU has it
#else
      return false;
#endif
  }
  return false;
}

MatVecKernel ActiveMatVecKernel() {
  if (!kernel_chosen) {
    active_kernel = DefaultMatVecKernel();
    kernel_chosen = true;
  }
  return active_kernel;
}

Status UseMatVecKernel(MatVecKernel kernel) {
  if (!MatVecKernelAvailable(kernel)) return Error(StatusCode::kInvalidValue, "matvec kernel not available here");
  active_kernel = kernel;
  kernel_chosen = true;
  return Status::Ok();
}

void MatVec(const image::ImageView& image, const image::TensorEntry& t, const float* x, float* y, float* row_buffer) {
  MatVec(image, t, x, y, row_buffer, ActiveMatVecKernel());
}

void MatVec(const image::ImageView& image, const image::TensorEntry& t, const float* x, float* y, float* row_buffer,
            MatVecKernel kernel) {
  switch (kernel) {
    case MatVecKernel::kReference: return ReferenceMatVec(image, t, x, y, row_buffer);
    case MatVecKernel::kScalar: return kernels::MatVecScalar(image, t, x, y, row_buffer);
    case MatVecKernel::kAvx2:
    case MatVecKernel::kAvx512:  // one token: the AVX2 kernel (the AVX-512 one pays only in MatMul)
#if QMC_AVX2_KERNELS
      return kernels::MatVecAvx2(image, t, x, y, row_buffer);
#else
      break;  // never available: MatVecKernelAvailable says so
#endif
    case MatVecKernel::kHelium:
#if QMC_HELIUM_KERNELS
      return kernels::MatVecHelium(image, t, x, y, row_buffer);
#else
      break;  // never available: MatVecKernelAvailable says so
#endif
  }
}

namespace {

// Each row decoded once, dotted with every input: the dot sums in 8 lanes
// (a vectorisable order), then the lanes in order.
void DecodeOnceMatMul(const image::ImageView& image, const image::TensorEntry& t, const float* x, size_t x_stride,
                      float* y, size_t y_stride, uint32_t n, float* row_buffer) {
  for (uint32_t r = 0; r < t.rows; ++r) {
    image::DequantizeRow(image, t, r, row_buffer);
    for (uint32_t i = 0; i < n; ++i) {
      const float* xi = x + i * x_stride;
      float lanes[8] = {};
      uint32_t c = 0;
      for (; c + 8 <= t.cols; c += 8) {
        for (uint32_t k = 0; k < 8; ++k) lanes[k] += row_buffer[c + k] * xi[c + k];
      }
      for (; c < t.cols; ++c) lanes[c % 8] += row_buffer[c] * xi[c];
      float sum = 0.0f;
      for (float lane : lanes) sum += lane;
      y[i * y_stride + r] = sum;
    }
  }
}

}  // namespace

void MatMul(const image::ImageView& image, const image::TensorEntry& t, const float* x, size_t x_stride, float* y,
            size_t y_stride, uint32_t n, float* row_buffer) {
  MatMul(image, t, x, x_stride, y, y_stride, n, row_buffer, ActiveMatVecKernel());
}

void MatMul(const image::ImageView& image, const image::TensorEntry& t, const float* x, size_t x_stride, float* y,
            size_t y_stride, uint32_t n, float* row_buffer, MatVecKernel kernel) {
  switch (kernel) {
    case MatVecKernel::kReference:
      for (uint32_t i = 0; i < n; ++i) ReferenceMatVec(image, t, x + i * x_stride, y + i * y_stride, row_buffer);
      return;
    case MatVecKernel::kScalar:
    case MatVecKernel::kHelium:
      return DecodeOnceMatMul(image, t, x, x_stride, y, y_stride, n, row_buffer);
    case MatVecKernel::kAvx2:
#if QMC_AVX2_KERNELS
      return kernels::MatMulAvx2(image, t, x, x_stride, y, y_stride, n, row_buffer, kernels::DotRowsAvx2);
#else
      break;  // never available: MatVecKernelAvailable says so
#endif
    case MatVecKernel::kAvx512:
#if QMC_AVX2_KERNELS
      return kernels::MatMulAvx2(image, t, x, x_stride, y, y_stride, n, row_buffer, kernels::DotRowsAvx512);
#else
      break;  // never available: MatVecKernelAvailable says so
#endif
  }
}

namespace {

float DotScalar(const float* a, const float* b, uint32_t n) {
  float sum = 0.0f;
  for (uint32_t i = 0; i < n; ++i) sum += a[i] * b[i];
  return sum;
}

void AxpyScalar(float a, const float* x, float* y, uint32_t n) {
  for (uint32_t i = 0; i < n; ++i) y[i] += a * x[i];
}

// The attention steps of `kernel`: the in-order scalar loops for the
// reference and scalar kernels, else the vector ones.
struct AttentionKernels {
  float (*dot)(const float*, const float*, uint32_t);
  void (*axpy)(float, const float*, float*, uint32_t);
};

AttentionKernels AttentionKernelsOf(MatVecKernel kernel) {
  switch (kernel) {
    case MatVecKernel::kReference:
    case MatVecKernel::kScalar: break;
    case MatVecKernel::kAvx2:
    case MatVecKernel::kAvx512:
#if QMC_AVX2_KERNELS
      return {kernels::DotAvx2, kernels::AxpyAvx2};
#else
      break;  // never available: MatVecKernelAvailable says so
#endif
    case MatVecKernel::kHelium:
#if QMC_HELIUM_KERNELS
      return {kernels::DotHelium, kernels::AxpyHelium};
#else
      break;  // never available: MatVecKernelAvailable says so
#endif
  }
  return {DotScalar, AxpyScalar};
}

}  // namespace

float Dot(const float* a, const float* b, uint32_t n) { return Dot(a, b, n, ActiveMatVecKernel()); }

float Dot(const float* a, const float* b, uint32_t n, MatVecKernel kernel) {
  return AttentionKernelsOf(kernel).dot(a, b, n);
}

void Axpy(float a, const float* x, float* y, uint32_t n) { Axpy(a, x, y, n, ActiveMatVecKernel()); }

void Axpy(float a, const float* x, float* y, uint32_t n, MatVecKernel kernel) {
  AttentionKernelsOf(kernel).axpy(a, x, y, n);
}

Status LookupRow(const image::ImageView& image, const image::TensorEntry& t, uint32_t row, float* out) {
  if (row >= t.rows) return Error(StatusCode::kOutOfBounds, "row index past the tensor");
  image::DequantizeRow(image, t, row, out);
  return Status::Ok();
}

}  // namespace qmc
