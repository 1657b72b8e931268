#include "common/kernels/matvec_avx512.h"

// GCC 12's AVX-512 intrinsics (the 256-bit cast and extracts) read an
// "undefined" vector that its own warnings call uninitialised: silenced
// for the header's lines only.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

#include "common/kernels/matvec_avx2.h"

// Per function, as in matvec_avx2.cpp: the rest of the program stays
// baseline x86-64.
#define QMC_AVX512 __attribute__((target("avx512f,avx2,fma")))

namespace qmc::kernels {
namespace {

// 4 rows × 6 inputs: 24 accumulators, 6 inputs and a row in 31 of the 32
// registers, so each 16 columns cost 4 weight and 6 input loads for 24
// FMAs (the AVX2 tile's 4 × 3 would leave half the registers idle).
constexpr uint32_t kTileRows = 4;
constexpr uint32_t kTileInputs = 6;

// a's two 256-bit halves added: 8 lanes that sum to a's sum.
QMC_AVX512 inline __m256 Halves(__m512 a) {
  return _mm256_add_ps(_mm512_castps512_ps256(a), _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(a), 1)));
}

QMC_AVX512 inline float Sum(__m512 a) {
  const __m256 h = Halves(a);
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  return _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)));
}

// The 4 sums of a, one per vector, in lanes 0..3.
QMC_AVX512 inline __m128 SumFour(__m512 a0, __m512 a1, __m512 a2, __m512 a3) {
  const __m256 s = _mm256_hadd_ps(_mm256_hadd_ps(Halves(a0), Halves(a1)), _mm256_hadd_ps(Halves(a2), Halves(a3)));
  return _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
}

// y[i * y_stride + r] = w row r · x input i, for R rows w_stride apart and
// N inputs x_stride apart; the last partial 16 columns read masked.
template <uint32_t R, uint32_t N>
QMC_AVX512 void DotTile(const float* w, size_t w_stride, uint32_t cols, const float* x, size_t x_stride, float* y,
                        size_t y_stride) {
  __m512 acc[R][N];
  for (uint32_t r = 0; r < R; ++r) {
    for (uint32_t i = 0; i < N; ++i) acc[r][i] = _mm512_setzero_ps();
  }
  uint32_t c = 0;
  for (; c + 16 <= cols; c += 16) {
    __m512 xs[N];
    for (uint32_t i = 0; i < N; ++i) xs[i] = _mm512_loadu_ps(x + i * x_stride + c);
    for (uint32_t r = 0; r < R; ++r) {
      const __m512 ws = _mm512_loadu_ps(w + r * w_stride + c);
      for (uint32_t i = 0; i < N; ++i) acc[r][i] = _mm512_fmadd_ps(ws, xs[i], acc[r][i]);
    }
  }
  if (c < cols) {
    const auto m = static_cast<__mmask16>((1u << (cols - c)) - 1u);
    __m512 xs[N];
    for (uint32_t i = 0; i < N; ++i) xs[i] = _mm512_maskz_loadu_ps(m, x + i * x_stride + c);
    for (uint32_t r = 0; r < R; ++r) {
      const __m512 ws = _mm512_maskz_loadu_ps(m, w + r * w_stride + c);
      for (uint32_t i = 0; i < N; ++i) acc[r][i] = _mm512_fmadd_ps(ws, xs[i], acc[r][i]);
    }
  }
  for (uint32_t i = 0; i < N; ++i) {
    if constexpr (R == 4) {  // the 4 rows' outputs are adjacent in y
      _mm_storeu_ps(y + i * y_stride, SumFour(acc[0][i], acc[1][i], acc[2][i], acc[3][i]));
    } else {
      for (uint32_t r = 0; r < R; ++r) y[i * y_stride + r] = Sum(acc[r][i]);
    }
  }
}

template <uint32_t R>
constexpr DotRowsTile kTileRow[kTileInputs] = {DotTile<R, 1>, DotTile<R, 2>, DotTile<R, 3>,
                                               DotTile<R, 4>, DotTile<R, 5>, DotTile<R, 6>};
// kDotTiles[R − 1][N − 1] = DotTile<R, N>: the full tile and the edges.
constexpr const DotRowsTile* kDotTiles[kTileRows] = {kTileRow<1>, kTileRow<2>, kTileRow<3>, kTileRow<4>};

}  // namespace

bool Avx512Supported() {
  __builtin_cpu_init();
  return Avx2Supported() && __builtin_cpu_supports("avx512f");
}

void DotRowsAvx512(const float* w, size_t w_stride, uint32_t rows, uint32_t cols, const float* x, size_t x_stride,
                   uint32_t n, float* y, size_t y_stride) {
  DotRowsInTiles(kDotTiles, kTileRows, kTileInputs, w, w_stride, rows, cols, x, x_stride, n, y, y_stride);
}

}  // namespace qmc::kernels
