// GPTQ: the inverse-Hessian factor, the blocked column loop, and the two
// ways QMC's layouts use it (group-affine, split). The factorisations work
// on row panels so a wide Hessian (8192 inputs) streams through cache a few
// dozen times rather than once per row.
#include "host/gptq.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "common/half.h"
#include "common/quant_layout.h"
#include "common/split_layout.h"

namespace qmc::host {
namespace {

constexpr uint32_t kPanel = 64;   // rows factored together
constexpr uint32_t kChunk = 512;  // columns updated together
constexpr int kDampRetries = 3;
// A pivot this small against its diagonal entry means H is singular in double.
constexpr double kMinPivot = 1e-12;

// The hot loops are also built for AVX2 (picked at load time); without FMA
// contraction the results are the same bits as the baseline build's.
#define QMC_WIDE_LOOP __attribute__((target_clones("avx2", "default")))

// In place, the upper Cholesky factor U of a = UᵀU (row-major, the upper
// triangle read and written). False when a is not positive definite.
QMC_WIDE_LOOP bool CholeskyUpper(std::vector<double>& a, uint32_t n) {
  std::vector<double> diag(n);
  for (uint32_t i = 0; i < n; ++i) diag[i] = a[static_cast<size_t>(i) * n + i];
  for (uint32_t p0 = 0; p0 < n; p0 += kPanel) {
    const uint32_t p1 = std::min(n, p0 + kPanel);
    // The panel's rows take the updates of every factored row above them.
    for (uint32_t c0 = p0; c0 < n; c0 += kChunk) {
      const uint32_t c1 = std::min(n, c0 + kChunk);
      for (uint32_t m = 0; m < p0; ++m) {
        const double* um = a.data() + static_cast<size_t>(m) * n;
        for (uint32_t j = p0; j < p1; ++j) {
          double* aj = a.data() + static_cast<size_t>(j) * n;
          const double f = um[j];
          for (uint32_t k = std::max(j, c0); k < c1; ++k) aj[k] -= f * um[k];
        }
      }
    }
    // Then the panel factors itself.
    for (uint32_t j = p0; j < p1; ++j) {
      double* aj = a.data() + static_cast<size_t>(j) * n;
      if (!(aj[j] > kMinPivot * diag[j]) || !std::isfinite(aj[j])) return false;
      const double d = std::sqrt(aj[j]);
      for (uint32_t k = j; k < n; ++k) aj[k] /= d;
      for (uint32_t i = j + 1; i < p1; ++i) {
        double* ai = a.data() + static_cast<size_t>(i) * n;
        const double f = aj[i];
        for (uint32_t k = i; k < n; ++k) ai[k] -= f * aj[k];
      }
    }
  }
  return true;
}

// In place, the inverse of upper-triangular u (also upper): row i of U⁻¹ is
// (e_i − Σ_{m>i} u_im · row m of U⁻¹) / u_ii, so rows are solved bottom up.
QMC_WIDE_LOOP void InvertUpper(std::vector<double>& u, uint32_t n) {
  std::vector<double> acc(static_cast<size_t>(kPanel) * n);
  for (uint32_t p1 = n, p0; p1 > 0; p1 = p0) {
    p0 = p1 > kPanel ? p1 - kPanel : 0;
    // The panel's rows take the solved rows below them.
    std::fill(acc.begin(), acc.end(), 0.0);
    for (uint32_t c0 = p1; c0 < n; c0 += kChunk) {
      const uint32_t c1 = std::min(n, c0 + kChunk);
      for (uint32_t m = p1; m < c1; ++m) {
        const double* xm = u.data() + static_cast<size_t>(m) * n;
        for (uint32_t i = p0; i < p1; ++i) {
          double* ai = acc.data() + static_cast<size_t>(i - p0) * n;
          const double f = u[static_cast<size_t>(i) * n + m];
          for (uint32_t k = std::max(m, c0); k < c1; ++k) ai[k] -= f * xm[k];
        }
      }
    }
    // Then the panel solves itself, bottom up, each row over its own U row.
    for (uint32_t i = p1; i-- > p0;) {
      double* ui = u.data() + static_cast<size_t>(i) * n;
      double* ai = acc.data() + static_cast<size_t>(i - p0) * n;
      ai[i] = 1.0;
      for (uint32_t m = i + 1; m < p1; ++m) {
        const double* xm = u.data() + static_cast<size_t>(m) * n;
        for (uint32_t k = m; k < n; ++k) ai[k] -= ui[m] * xm[k];
      }
      const double d = ui[i];
      for (uint32_t k = i; k < n; ++k) ui[k] = ai[k] / d;
    }
  }
}

// The columns past the block [b0, b1) take its errors at once, in column
// chunks whose Hinv rows stay in cache.
QMC_WIDE_LOOP void UpdateRest(std::vector<float>& w, uint32_t rows, uint32_t cols, const std::vector<float>& hinv,
                const std::vector<float>& err, uint32_t block, uint32_t b0, uint32_t b1) {
  for (uint32_t j0 = b1; j0 < cols; j0 += kChunk) {
    const uint32_t j1 = std::min(cols, j0 + kChunk);
    for (uint32_t r = 0; r < rows; ++r) {
      float* row = w.data() + static_cast<size_t>(r) * cols;
      for (uint32_t k = b0; k < b1; ++k) {
        const float e = err[static_cast<size_t>(r) * block + (k - b0)];
        const float* h = hinv.data() + static_cast<size_t>(k) * cols;
        for (uint32_t j = j0; j < j1; ++j) row[j] -= e * h[j];
      }
    }
  }
}

// What GPTQ works on: the columns in processing order, the weights of dead
// inputs (never nonzero in calibration) zeroed as the reference does, and
// the inverse factor of the Hessian in that order.
struct Problem {
  std::vector<uint32_t> order;  // processing position -> column
  std::vector<float> w;         // rows x cols, columns in processing order
  std::vector<float> hinv;
};

Problem Prepare(const TensorSpec& spec, const Tensor& tensor, const InputStats& input, const GptqOptions& options) {
  const uint32_t rows = tensor.rows, n = tensor.cols;
  std::vector<double> diag(n);
  for (uint32_t i = 0; i < n; ++i) diag[i] = input.xtx[static_cast<size_t>(i) * n + i];
  Problem p;
  p.order.resize(n);
  std::iota(p.order.begin(), p.order.end(), 0u);
  if (options.act_order) {
    // Dead inputs sort as H_ii = 1, where the reference puts them.
    std::stable_sort(p.order.begin(), p.order.end(), [&diag](uint32_t a, uint32_t b) {
      return (diag[a] == 0.0 ? 1.0 : diag[a]) > (diag[b] == 0.0 ? 1.0 : diag[b]);
    });
  }
  std::vector<double> h(static_cast<size_t>(n) * n);
  for (uint32_t i = 0; i < n; ++i) {
    const double* from = input.xtx.data() + static_cast<size_t>(p.order[i]) * n;
    for (uint32_t j = 0; j < n; ++j) h[static_cast<size_t>(i) * n + j] = from[p.order[j]];
    if (diag[p.order[i]] == 0.0) h[static_cast<size_t>(i) * n + i] = 1.0;
  }
  p.hinv = GptqInverseFactor(h, n, options.damp, spec.name);
  p.w.resize(tensor.data.size());
  for (uint32_t r = 0; r < rows; ++r) {
    for (uint32_t k = 0; k < n; ++k) {
      const uint32_t c = p.order[k];
      p.w[static_cast<size_t>(r) * n + k] = diag[c] == 0.0 ? 0.0f : tensor.data[static_cast<size_t>(r) * n + c];
    }
  }
  return p;
}

// A group's params must be fitted from weights that have taken every
// earlier column's error: a block holds whole groups.
uint32_t AlignedBlock(uint32_t block, uint32_t group) { return group >= block ? group : block - block % group; }

}  // namespace

std::vector<float> GptqInverseFactor(const std::vector<double>& h, uint32_t n, double damp, const std::string& name) {
  double mean = 0.0;
  for (uint32_t i = 0; i < n; ++i) mean += h[static_cast<size_t>(i) * n + i];
  mean /= n;
  for (int attempt = 0; attempt <= kDampRetries; ++attempt, damp = std::max(10.0 * damp, 0.01)) {
    // U is built from H's reversal J H J = VᵀV: then H = MᵀM with M = J V J
    // lower, H⁻¹ = M⁻¹M⁻ᵀ, and M⁻ᵀ = J V⁻ᵀ J is H⁻¹'s upper factor.
    std::vector<double> a(h.rbegin(), h.rend());  // J H J: both axes reversed
    for (uint32_t i = 0; i < n; ++i) a[static_cast<size_t>(i) * n + i] += damp * mean;
    if (!CholeskyUpper(a, n)) continue;
    InvertUpper(a, n);
    std::vector<float> u(static_cast<size_t>(n) * n, 0.0f);
    for (uint32_t i = 0; i < n; ++i) {
      for (uint32_t j = i; j < n; ++j) {
        u[static_cast<size_t>(i) * n + j] = static_cast<float>(a[static_cast<size_t>(n - 1 - j) * n + (n - 1 - i)]);
      }
    }
    return u;
  }
  throw InputError("tensor " + name + ": the Hessian of its inputs is singular even after dampening");
}

void GptqLoop(std::vector<float>& w, uint32_t rows, uint32_t cols, const std::vector<float>& hinv, uint32_t block,
              const GptqRound& round) {
  std::vector<float> q(rows), err(static_cast<size_t>(rows) * block);
  for (uint32_t b0 = 0; b0 < cols; b0 += block) {
    const uint32_t b1 = std::min(cols, b0 + block);
    for (uint32_t k = b0; k < b1; ++k) {
      round(k, w, q.data());
      const float* h = hinv.data() + static_cast<size_t>(k) * cols;
      for (uint32_t r = 0; r < rows; ++r) {
        float* row = w.data() + static_cast<size_t>(r) * cols;
        const float e = (row[k] - q[r]) / h[k];
        err[static_cast<size_t>(r) * block + (k - b0)] = e;
        row[k] = q[r];
        for (uint32_t j = k + 1; j < b1; ++j) row[j] -= e * h[j];
      }
    }
    UpdateRest(w, rows, cols, hinv, err, block, b0, b1);
  }
}

GroupCodes GptqGroupAffine(const TensorSpec& spec, const Tensor& tensor, const std::vector<bool>& is_outlier,
                           const QuantOptions& options, const InputStats& input) {
  const uint32_t rows = tensor.rows, cols = tensor.cols, group = options.group_size;
  const uint32_t max_code = (1u << options.bits) - 1u, groups = quant::GroupsPerRow(cols, group);
  const bool up_front = options.gptq.act_order || group >= cols;
  GroupCodes out = up_front ? QuantizeGroupAffine(tensor, is_outlier, options.bits, group, options.inlier_noise)
                            : GroupCodes{std::vector<uint8_t>(tensor.data.size()),
                                         std::vector<uint16_t>(static_cast<size_t>(rows) * groups * 2u)};
  auto outlier = [&is_outlier](size_t i) { return !is_outlier.empty() && is_outlier[i]; };
  Problem p = Prepare(spec, tensor, input, options.gptq);
  std::vector<float> inliers(group);

  // Without act-order the processing order is the natural one (k == c).
  auto fit_groups = [&](uint32_t c, const std::vector<float>& w) {
    const uint32_t n = std::min(group, cols - c);
    for (uint32_t r = 0; r < rows; ++r) {
      const size_t base = static_cast<size_t>(r) * cols + c;
      uint32_t count = 0;
      for (uint32_t i = 0; i < n; ++i) {
        if (!outlier(base + i)) inliers[count++] = w[base + i];
      }
      const AffineFit fit = FitAffine(inliers.data(), count, max_code, kGroupGrid, options.inlier_noise);
      CheckFit(fit, inliers.data(), count, r, c / group);
      const size_t pair = (static_cast<size_t>(r) * groups + c / group) * 2u;
      out.scale_zero[pair] = fit.scale;
      out.scale_zero[pair + 1] = fit.zero;
    }
  };
  GptqLoop(p.w, rows, cols, p.hinv, up_front ? options.gptq.block : AlignedBlock(options.gptq.block, group),
           [&](uint32_t k, const std::vector<float>& w, float* q) {
             const uint32_t c = p.order[k];
             if (!up_front && c % group == 0) fit_groups(c, w);
             for (uint32_t r = 0; r < rows; ++r) {
               const size_t i = static_cast<size_t>(r) * cols + c;
               const size_t pair = (static_cast<size_t>(r) * groups + c / group) * 2u;
               const AffineFit fit{out.scale_zero[pair], out.scale_zero[pair + 1], 0.0};
               // An outlier codes the zero point (0) and adds its fp16 value.
               const bool o = outlier(i);
               const uint32_t code = AffineCode(o ? 0.0f : w[static_cast<size_t>(r) * cols + k], fit, max_code);
               out.codes[i] = static_cast<uint8_t>(code);
               q[r] = quant::DequantGroupAffine(code, fit.scale, fit.zero) + (o ? RoundToHalf(tensor.data[i]) : 0.0f);
             }
           });
  return out;
}

QuantizedTensor GptqSplit(const TensorSpec& spec, const Tensor& tensor, const QuantOptions& options,
                          const InputStats& input) {
  const uint32_t rows = tensor.rows, cols = tensor.cols;
  const uint32_t group = options.group_size == kPerChannel ? cols : options.group_size;
  const uint32_t pairs = quant::SplitScalePairsPerRow(cols, group);
  const uint32_t inlier_max = (1u << options.bits) - 1u, outlier_max = (1u << options.outlier_bits) - 1u;
  SplitCodes split = FitSplit(tensor, options);
  // Each weight's grid: the row's outlier fit, or its inlier group's.
  std::vector<uint32_t> pair_of(tensor.data.size());
  for (uint32_t r = 0; r < rows; ++r) {
    uint32_t inliers = 0;
    for (uint32_t c = 0; c < cols; ++c) {
      const size_t i = static_cast<size_t>(r) * cols + c;
      pair_of[i] = static_cast<uint32_t>(r) * pairs + (split.is_outlier[i] ? 0u : 1u + inliers++ / group);
    }
  }
  Problem p = Prepare(spec, tensor, input, options.gptq);
  GptqLoop(p.w, rows, cols, p.hinv, options.gptq.block, [&](uint32_t k, const std::vector<float>& w, float* q) {
    const uint32_t c = p.order[k];
    for (uint32_t r = 0; r < rows; ++r) {
      const size_t i = static_cast<size_t>(r) * cols + c;
      const AffineFit& fit = split.fits[pair_of[i]];
      const uint32_t code = AffineCode(w[static_cast<size_t>(r) * cols + k], fit, split.is_outlier[i] ? outlier_max : inlier_max);
      split.codes[i] = static_cast<uint8_t>(code);
      q[r] = quant::DequantGroupAffine(code, fit.scale, fit.zero);
    }
  });
  return WriteSplit(split, rows, cols, options);
}

}  // namespace qmc::host
