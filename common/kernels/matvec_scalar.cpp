#include "common/kernels/matvec_scalar.h"

#include "common/kernels/fast_half.h"
#include "common/kernels/packed_tensor.h"
#include "common/kernels/unpack_codes.h"

namespace qmc::kernels {
namespace {

// Four independent partial sums: the adds do not wait on each other.
float Dot(const float* a, const float* b, uint32_t n) {
  float s0 = 0.0f, s1 = 0.0f, s2 = 0.0f, s3 = 0.0f;
  uint32_t i = 0;
  for (; i + 4 <= n; i += 4) {
    s0 += a[i] * b[i];
    s1 += a[i + 1] * b[i + 1];
    s2 += a[i + 2] * b[i + 2];
    s3 += a[i + 3] * b[i + 3];
  }
  for (; i < n; ++i) s0 += a[i] * b[i];
  return (s0 + s1) + (s2 + s3);
}

// Σ_g scale_g · Σ_{i in g} (code_i − zero_g)·x_i: one multiply by the scale
// per group instead of per weight; code − zero is exact in f32.
template <GroupScale (*kScaleOf)(const uint8_t*, uint32_t)>
float GroupedDot(const float* codes, const float* x, uint32_t cols, uint32_t group_size, const uint8_t* row_scales) {
  float sum = 0.0f;
  for (uint32_t g = 0, begin = 0; begin < cols; ++g, begin += group_size) {
    const uint32_t n = cols - begin < group_size ? cols - begin : group_size;
    const GroupScale s = kScaleOf(row_scales, g);
    const float* c = codes + begin;
    const float* v = x + begin;
    float s0 = 0.0f, s1 = 0.0f, s2 = 0.0f, s3 = 0.0f;
    uint32_t i = 0;
    for (; i + 4 <= n; i += 4) {
      s0 += (c[i] - s.zero) * v[i];
      s1 += (c[i + 1] - s.zero) * v[i + 1];
      s2 += (c[i + 2] - s.zero) * v[i + 2];
      s3 += (c[i + 3] - s.zero) * v[i + 3];
    }
    for (; i < n; ++i) s0 += (c[i] - s.zero) * v[i];
    sum += s.scale * ((s0 + s1) + (s2 + s3));
  }
  return sum;
}

template <GroupScale (*kScaleOf)(const uint8_t*, uint32_t)>
void PackedMatVec(const image::ImageView& image, const image::TensorEntry& t, uint32_t flip, const float* x, float* y,
                  float* codes) {
  const PackedTensor p(image, t);
  for (uint32_t r = 0; r < t.rows; ++r) {
    UnpackCodes(p.RowWords(r), t.cols, t.bits, t.cell_bits, flip, codes);
    y[r] = GroupedDot<kScaleOf>(codes, x, t.cols, t.group_size, p.RowScales(r)) + p.OutlierDot(r, x);
  }
}

}  // namespace

void MatVecScalar(const image::ImageView& image, const image::TensorEntry& t, const float* x, float* y,
                  float* row_buffer) {
  const uint8_t* data = image.blob(t.data).data();
  switch (static_cast<image::Scheme>(t.scheme)) {
    case image::Scheme::kF32: {
      const auto* w = reinterpret_cast<const float*>(data);
      for (uint32_t r = 0; r < t.rows; ++r) y[r] = Dot(w + static_cast<size_t>(r) * t.cols, x, t.cols);
      return;
    }
    case image::Scheme::kF16: {
      const auto* w = reinterpret_cast<const uint16_t*>(data);
      for (uint32_t r = 0; r < t.rows; ++r) {
        const uint16_t* row = w + static_cast<size_t>(r) * t.cols;
        for (uint32_t c = 0; c < t.cols; ++c) row_buffer[c] = FastHalfToFloat(row[c]);
        y[r] = Dot(row_buffer, x, t.cols);
      }
      return;
    }
    case image::Scheme::kGroupAffine: return PackedMatVec<AffineScale>(image, t, 0u, x, y, row_buffer);
    case image::Scheme::kMxInt4: return PackedMatVec<MxScale>(image, t, kMxCodeFlip, x, y, row_buffer);
  }
}

}  // namespace qmc::kernels
