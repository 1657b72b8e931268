#include "common/kernels/matvec_scalar.h"

#include "common/kernels/code_stream.h"
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

// One split row: the inliers (clear bitmap bits, in column order) group by
// group, then the outliers (set bits) under their one scale. Walking the
// bits of each bitmap word keeps the loops free of per-weight branches.
float SplitRowDot(const SplitTensor& p, const image::TensorEntry& t, uint32_t r, const float* x) {
  const uint8_t* scales = p.RowScales(r);
  const uint32_t* bitmap = p.RowBitmap(r);
  CodeStream inliers(p.inlier_words, p.InlierFirst(r), t.bits, t.cell_bits);
  float sum = 0.0f, group_sum = 0.0f;
  uint32_t group = 0, left = t.group_size;
  GroupScale s = AffineScale(scales, 1);
  for (uint32_t w = 0; w < p.bitmap_words; ++w) {
    const float* xw = x + w * 32u;
    for (uint32_t m = ~bitmap[w] & p.ColumnMask(w); m != 0; m &= m - 1u) {
      if (left == 0) {  // the previous group is complete: its scale is applied
        sum += s.scale * group_sum;
        group_sum = 0.0f;
        left = t.group_size;
        s = AffineScale(scales, 1u + ++group);
      }
      group_sum += (static_cast<float>(inliers.Next()) - s.zero) * xw[__builtin_ctz(m)];
      --left;
    }
  }
  sum += s.scale * group_sum;

  CodeStream outliers(p.outlier_words, p.OutlierFirst(r), t.outlier_bits, 1);
  const GroupScale o = AffineScale(scales, 0);
  float outlier_sum = 0.0f;
  for (uint32_t w = 0; w < p.bitmap_words; ++w) {
    const float* xw = x + w * 32u;
    for (uint32_t m = bitmap[w] & p.ColumnMask(w); m != 0; m &= m - 1u) {
      outlier_sum += (static_cast<float>(outliers.Next()) - o.zero) * xw[__builtin_ctz(m)];
    }
  }
  return sum + o.scale * outlier_sum;
}

void SplitMatVec(const image::ImageView& image, const image::TensorEntry& t, const float* x, float* y) {
  const SplitTensor p(image, t);
  for (uint32_t r = 0; r < t.rows; ++r) y[r] = SplitRowDot(p, t, r, x);
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
    case image::Scheme::kSplit: return SplitMatVec(image, t, x, y);
  }
}

}  // namespace qmc::kernels
