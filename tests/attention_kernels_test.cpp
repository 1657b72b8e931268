// The attention's vector kernels (Dot, Axpy; common/matvec.h) against the
// reference, the definition, on random vectors of every length up to a few
// vectors' worth (tails included), within the matvec kernels' tolerance:
// |r − r_ref| ≤ kTolerance · Σ|a_i·b_i| for a dot, and per element
// ≤ kTolerance · (|y_i| + |a·x_i|) for an axpy. A lane dropped or read twice
// moves a result by one whole product, far past it.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "common/matvec.h"
#include "tests/kernel_equality/kernel_equality.h"

namespace qmc {
namespace {

constexpr double kTolerance = kernel_equality::kTolerance;

std::vector<MatVecKernel> OptimisedKernels() {
  std::vector<MatVecKernel> kernels;
  for (MatVecKernel kernel : {MatVecKernel::kScalar, MatVecKernel::kAvx2, MatVecKernel::kAvx512, MatVecKernel::kHelium}) {
    if (MatVecKernelAvailable(kernel)) kernels.push_back(kernel);
  }
  return kernels;
}

TEST(AttentionKernels, DotEqualsTheReferenceAtEveryLength) {
  std::mt19937 rng(13);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (uint32_t n = 0; n <= 80; ++n) {
    // One spare element each side: a kernel must read neither.
    std::vector<float> a(n + 2, NAN), b(n + 2, NAN);
    for (uint32_t i = 1; i <= n; ++i) a[i] = normal(rng), b[i] = normal(rng);
    double magnitude = 0.0;
    for (uint32_t i = 1; i <= n; ++i) magnitude += std::fabs(static_cast<double>(a[i]) * b[i]);
    const float expected = Dot(a.data() + 1, b.data() + 1, n, MatVecKernel::kReference);
    for (MatVecKernel kernel : OptimisedKernels()) {
      const float got = Dot(a.data() + 1, b.data() + 1, n, kernel);
      EXPECT_LE(std::fabs(static_cast<double>(got) - expected), kTolerance * magnitude)
          << "kernel " << static_cast<int>(kernel) << " n " << n;
    }
  }
}

TEST(AttentionKernels, AxpyEqualsTheReferenceAtEveryLength) {
  std::mt19937 rng(14);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (uint32_t n = 0; n <= 80; ++n) {
    std::vector<float> x(n + 2, NAN), y(n + 2);
    for (float& v : y) v = normal(rng);
    for (uint32_t i = 1; i <= n; ++i) x[i] = normal(rng);
    const float a = normal(rng);
    std::vector<float> expected = y;
    Axpy(a, x.data() + 1, expected.data() + 1, n, MatVecKernel::kReference);
    for (MatVecKernel kernel : OptimisedKernels()) {
      std::vector<float> got = y;
      Axpy(a, x.data() + 1, got.data() + 1, n, kernel);
      // The elements outside [1, n] untouched, bit for bit.
      EXPECT_EQ(got.front(), y.front());
      EXPECT_EQ(got.back(), y.back());
      for (uint32_t i = 1; i <= n; ++i) {
        const double bound = kTolerance * (std::fabs(y[i]) + std::fabs(static_cast<double>(a) * x[i]));
        EXPECT_LE(std::fabs(static_cast<double>(got[i]) - expected[i]), bound)
            << "kernel " << static_cast<int>(kernel) << " n " << n << " element " << i;
      }
    }
  }
}

}  // namespace
}  // namespace qmc
