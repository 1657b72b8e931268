// GPTQ (host/gptq.h): the inverse-Hessian factor against a plain inverse,
// the blocked loop against the column-by-column algorithm written here,
// the output error against RTN's, QMC + GPTQ in both outlier modes, and the
// images decoding to the quantizer's reconstruction.
#include "host/gptq.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <map>
#include <numeric>
#include <random>

#include "common/dequantize.h"
#include "common/half.h"
#include "common/image_reader.h"
#include "common/quant_layout.h"
#include "common/split_layout.h"
#include "host/image_writer.h"
#include "tests/random_checkpoint.h"

namespace qmc::host {
namespace {

using image::Quantizer;

// Inputs with correlated channels and a few loud ones, as a layer's are:
// x = z·A, z Gaussian, A mixing each channel with its neighbours.
InputStats CorrelatedInputs(uint32_t width, uint32_t tokens, uint32_t seed,
                            const std::function<void(std::vector<double>&)>& edit = {}) {
  std::mt19937 rng(seed);
  std::normal_distribution<double> normal(0.0, 1.0);
  std::vector<double> gain(width);
  for (uint32_t i = 0; i < width; ++i) gain[i] = (i % 37 == 3) ? 8.0 : 0.5 + std::fabs(normal(rng));
  InputStats s{width, tokens, std::vector<double>(static_cast<size_t>(width) * width, 0.0), std::vector<double>(width, 0.0)};
  std::vector<double> z(width), x(width);
  for (uint32_t t = 0; t < tokens; ++t) {
    for (double& v : z) v = normal(rng);
    for (uint32_t i = 0; i < width; ++i) {
      x[i] = gain[i] * (z[i] + 0.6 * z[(i + 1) % width] + 0.3 * z[(i + 7) % width]);
    }
    if (edit) edit(x);
    for (uint32_t i = 0; i < width; ++i) {
      s.mean_abs[i] += std::fabs(x[i]) / tokens;
      for (uint32_t j = 0; j < width; ++j) s.xtx[static_cast<size_t>(i) * width + j] += x[i] * x[j];
    }
  }
  return s;
}

Tensor HeavyMatrix(uint32_t rows, uint32_t cols, uint32_t seed) {
  std::mt19937 rng(seed);
  std::student_t_distribution<float> heavy(4.0f);
  Tensor t{rows, cols, std::vector<float>(static_cast<size_t>(rows) * cols)};
  for (float& w : t.data) w = 0.05f * heavy(rng);
  return t;
}

// tr((W − Ŵ) H (W − Ŵ)ᵀ), plainly.
double OutputError(const Tensor& w, const std::vector<float>& w_hat, const InputStats& s) {
  double total = 0.0;
  for (uint32_t r = 0; r < w.rows; ++r) {
    for (uint32_t i = 0; i < w.cols; ++i) {
      const double di = static_cast<double>(w.data[r * w.cols + i]) - w_hat[r * w.cols + i];
      for (uint32_t j = 0; j < w.cols; ++j) {
        total += di * s.xtx[static_cast<size_t>(i) * w.cols + j] * (static_cast<double>(w.data[r * w.cols + j]) - w_hat[r * w.cols + j]);
      }
    }
  }
  return total;
}

double RelativeDistance(const std::vector<float>& a, const std::vector<float>& b) {
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    num += (static_cast<double>(a[i]) - b[i]) * (static_cast<double>(a[i]) - b[i]);
    den += static_cast<double>(b[i]) * b[i];
  }
  return std::sqrt(num / den);
}

TensorSpec Spec(const Tensor& t) { return {"blk.0.ffn_down.weight", t.rows, t.cols, true}; }

QuantOptions Gptq(uint32_t bits, uint32_t group) {
  QuantOptions o;
  o.quantizer = Quantizer::kGptq;
  o.bits = bits;
  o.group_size = group;
  return o;
}

TEST(Gptq, InverseFactorIsTheUpperCholeskyFactorOfTheDampedInverse) {
  const uint32_t n = 150;  // more than two row panels
  const InputStats s = CorrelatedInputs(n, 400, 1);
  const std::vector<float> u = GptqInverseFactor(s.xtx, n, 0.01, "t");
  double mean = 0;
  for (uint32_t i = 0; i < n; ++i) mean += s.xtx[i * n + i] / n;
  // (UᵀU)(H + λI) must be I; U upper with a positive diagonal.
  double worst = 0;
  for (uint32_t i = 0; i < n; ++i) {
    EXPECT_GT(u[i * n + i], 0.0f);
    for (uint32_t j = 0; j < i; ++j) ASSERT_EQ(u[i * n + j], 0.0f);
  }
  std::vector<double> inv(static_cast<size_t>(n) * n, 0.0);
  for (uint32_t i = 0; i < n; ++i) {
    for (uint32_t j = 0; j < n; ++j) {
      for (uint32_t k = 0; k <= std::min(i, j); ++k) inv[i * n + j] += static_cast<double>(u[k * n + i]) * u[k * n + j];
    }
  }
  for (uint32_t i = 0; i < n; ++i) {
    for (uint32_t j = 0; j < n; ++j) {
      double v = 0;
      for (uint32_t k = 0; k < n; ++k) v += inv[i * n + k] * (s.xtx[k * n + j] + (k == j ? 0.01 * mean : 0.0));
      worst = std::max(worst, std::fabs(v - (i == j ? 1.0 : 0.0)));
    }
  }
  EXPECT_LT(worst, 1e-3);
}

// The column-by-column algorithm: every column's error goes into every later
// column at once; group params fitted when a group's first column is reached
// (dynamic) or from the original weights (act-order, per channel).
std::vector<float> SequentialGptq(const Tensor& w, const InputStats& s, const QuantOptions& o) {
  const uint32_t rows = w.rows, n = w.cols, group = o.group_size == kPerChannel ? n : o.group_size;
  const uint32_t max_code = (1u << o.bits) - 1u, groups = quant::GroupsPerRow(n, group);
  std::vector<uint32_t> order(n);
  std::iota(order.begin(), order.end(), 0u);
  if (o.gptq.act_order) {
    std::stable_sort(order.begin(), order.end(), [&](uint32_t a, uint32_t b) { return s.xtx[a * n + a] > s.xtx[b * n + b]; });
  }
  std::vector<double> h(static_cast<size_t>(n) * n);
  for (uint32_t i = 0; i < n; ++i) {
    for (uint32_t j = 0; j < n; ++j) h[i * n + j] = s.xtx[order[i] * n + order[j]];
  }
  const std::vector<float> hinv = GptqInverseFactor(h, n, o.gptq.damp, "t");
  const bool dynamic = !o.gptq.act_order && group < n;
  std::vector<AffineFit> fits(static_cast<size_t>(rows) * groups);
  if (!dynamic) {
    for (uint32_t r = 0; r < rows; ++r) {
      for (uint32_t g = 0; g < groups; ++g) {
        fits[r * groups + g] = FitAffine(&w.data[r * n + g * group], std::min(group, n - g * group), max_code, kGroupGrid, 0.0);
      }
    }
  }
  std::vector<float> cur(w.data.size()), out(w.data.size());
  for (uint32_t r = 0; r < rows; ++r) {
    for (uint32_t k = 0; k < n; ++k) cur[r * n + k] = w.data[r * n + order[k]];
  }
  for (uint32_t k = 0; k < n; ++k) {
    const uint32_t c = order[k];
    for (uint32_t r = 0; r < rows; ++r) {
      float* row = &cur[r * n];
      if (dynamic && c % group == 0) fits[r * groups + c / group] = FitAffine(row + c, std::min(group, n - c), max_code, kGroupGrid, 0.0);
      const AffineFit& fit = fits[r * groups + c / group];
      const float q = quant::DequantGroupAffine(AffineCode(row[k], fit, max_code), fit.scale, fit.zero);
      const float e = (row[k] - q) / hinv[k * n + k];
      for (uint32_t j = k + 1; j < n; ++j) row[j] -= e * hinv[k * n + j];
      out[r * n + c] = q;
    }
  }
  return out;
}

TEST(Gptq, BlockedLoopEqualsTheSequentialAlgorithm) {
  const Tensor w = HeavyMatrix(24, 300, 2);
  const InputStats s = CorrelatedInputs(300, 500, 3);
  struct Case {
    uint32_t bits, group, block;
    bool act_order;
  };
  for (const Case& c : {Case{4, 32, 64, false}, Case{3, 32, 50, false}, Case{2, 128, 16, false}, Case{3, kPerChannel, 64, false},
                        Case{4, 64, 128, true}, Case{3, kPerChannel, 7, true}}) {
    QuantOptions o = Gptq(c.bits, c.group);
    o.gptq.block = c.block;
    o.gptq.act_order = c.act_order;
    const QuantizedTensor q = QuantizeTensor(Spec(w), w, o, &s);
    const std::vector<float> reference = SequentialGptq(w, s, o);
    EXPECT_LT(RelativeDistance(q.reconstruction, reference), 1e-5)
        << "bits " << c.bits << " group " << c.group << " block " << c.block << " act_order " << c.act_order;
  }
}

TEST(Gptq, LowerOutputErrorThanRtn) {
  const Tensor w = HeavyMatrix(64, 256, 4);
  const InputStats s = CorrelatedInputs(256, 600, 5);
  for (uint32_t bits = 2; bits <= 4; ++bits) {
    for (uint32_t group : {128u, kPerChannel}) {
      for (bool act_order : {false, true}) {
        QuantOptions o = Gptq(bits, group);
        o.gptq.act_order = act_order;
        QuantOptions rtn = o;
        rtn.quantizer = Quantizer::kRtn;
        const double e_gptq = OutputError(w, QuantizeTensor(Spec(w), w, o, &s).reconstruction, s);
        const double e_rtn = OutputError(w, QuantizeTensor(Spec(w), w, rtn).reconstruction, s);
        EXPECT_LT(e_gptq, 0.9 * e_rtn) << "bits " << bits << " group " << group << " act_order " << act_order;
      }
    }
  }
}

// Every scheme GPTQ writes decodes, through the device-side reader, to the
// quantizer's reconstruction bit for bit.
TEST(Gptq, ImagesDecodeToTheReconstruction) {
  const Checkpoint model = testing::RandomCheckpoint(96, 160, 6);
  std::map<uint32_t, InputStats> stats;
  for (uint32_t width : {96u, 160u, 2u}) stats[width] = CorrelatedInputs(width, 300, width);
  struct Case {
    Quantizer q;
    uint32_t bits, group, outlier_bits;
    bool act_order;
  };
  for (const Case& c : {Case{Quantizer::kGptq, 4, 32, 0, false}, Case{Quantizer::kGptq, 3, 64, 0, true},
                        Case{Quantizer::kGptq, 2, kPerChannel, 0, false}, Case{Quantizer::kQmc, 3, 32, 0, false},
                        Case{Quantizer::kQmc, 3, 64, 0, true}, Case{Quantizer::kQmc, 3, kPerChannel, 5, false},
                        Case{Quantizer::kQmc, 2, 48, 8, true}}) {
    QuantOptions o = Gptq(c.bits, c.group);
    o.quantizer = c.q;
    o.gptq.enabled = true;
    o.gptq.act_order = c.act_order;
    o.outlier_bits = c.outlier_bits;
    o.outlier_ratio = 0.02;
    ImageWriter writer({model.config, model.detail, c.q, 0.0f, "", model.tokenizer});
    std::vector<QuantizedTensor> tensors;
    for (const TensorSpec& spec : RequiredTensors(model.config, model.detail)) {
      const InputStats* input = spec.is_matrix ? &stats.at(spec.cols) : nullptr;
      tensors.push_back(QuantizeTensor(spec, model.tensors.at(spec.name), o, input));
      writer.Add(tensors.back());
    }
    const std::vector<uint8_t> bytes = writer.Finish();
    const image::ImageView view = image::ImageView::OpenFile(bytes).value();
    ASSERT_TRUE(view.Validate().ok()) << view.Validate().what;
    for (uint32_t i = 0; i < view.tensor_count(); ++i) {
      const image::TensorEntry t = view.tensor(i);
      std::vector<float> row(t.cols);
      for (uint32_t r = 0; r < t.rows; ++r) {
        image::DequantizeRow(view, t, r, row.data());
        ASSERT_EQ(std::memcmp(row.data(), tensors[i].reconstruction.data() + static_cast<size_t>(r) * t.cols, t.cols * 4u), 0)
            << tensors[i].name << " row " << r << " quantizer " << static_cast<int>(c.q) << " outlier bits " << c.outlier_bits;
      }
    }
  }
}

TEST(Gptq, QmcExactOutliersKeepTheirBytesAndGptqLowersTheError) {
  const Tensor w = HeavyMatrix(48, 256, 7);
  const InputStats s = CorrelatedInputs(256, 600, 8);
  for (uint32_t bits = 2; bits <= 4; ++bits) {
    QuantOptions plain;
    plain.bits = bits;
    plain.group_size = 64;
    plain.outlier_ratio = 0.01;
    QuantOptions gptq = plain;
    gptq.gptq.enabled = true;
    const QuantizedTensor a = QuantizeTensor(Spec(w), w, plain, &s);
    const QuantizedTensor b = QuantizeTensor(Spec(w), w, gptq, &s);
    ASSERT_GT(a.outlier_count, 0u);
    EXPECT_EQ(a.outliers, b.outliers) << bits;
    EXPECT_LT(OutputError(w, b.reconstruction, s), 0.9 * OutputError(w, a.reconstruction, s)) << bits;
  }
}

TEST(Gptq, QmcSplitKeepsItsOutlierSetAndGptqLowersTheError) {
  const Tensor w = HeavyMatrix(48, 256, 9);
  const InputStats s = CorrelatedInputs(256, 600, 10);
  for (uint32_t bits = 2; bits <= 4; ++bits) {
    QuantOptions plain;
    plain.bits = bits;
    plain.group_size = kPerChannel;
    plain.outlier_bits = 5;
    plain.outlier_ratio = 0.02;
    QuantOptions gptq = plain;
    gptq.gptq.enabled = true;
    const QuantizedTensor a = QuantizeTensor(Spec(w), w, plain, &s);
    const QuantizedTensor b = QuantizeTensor(Spec(w), w, gptq, &s);
    // Same row starts, bitmap and scales: only codes differ.
    const size_t index = quant::SplitCodesOffset(w.rows, w.cols);
    EXPECT_EQ(std::vector<uint8_t>(a.outliers.begin(), a.outliers.begin() + index),
              std::vector<uint8_t>(b.outliers.begin(), b.outliers.begin() + index));
    EXPECT_EQ(a.scales, b.scales);
    EXPECT_LT(OutputError(w, b.reconstruction, s), 0.9 * OutputError(w, a.reconstruction, s)) << bits;
  }
}

TEST(Gptq, DeadAndDependentInputsAreDampened) {
  const Tensor w = HeavyMatrix(16, 64, 11);
  // Inputs 0..7 never fire and input 20 copies 21: singular without damp.
  const InputStats s = CorrelatedInputs(64, 200, 12, [](std::vector<double>& x) {
    std::fill(x.begin(), x.begin() + 8, 0.0);
    x[20] = x[21];
  });
  QuantOptions o = Gptq(3, 32);
  o.gptq.damp = 0.0;
  const QuantizedTensor q = QuantizeTensor(Spec(w), w, o, &s);
  for (float v : q.reconstruction) ASSERT_TRUE(std::isfinite(v));
  // A Hessian no damp rescues (all zero: the damp scales with its diagonal) names the tensor.
  try {
    GptqInverseFactor(std::vector<double>(16, 0.0), 4, 0.0, "blk.3.attn_q.weight");
    FAIL() << "zero Hessian accepted";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("blk.3.attn_q.weight"), std::string::npos) << e.what();
  }
}

TEST(Gptq, MissingStatisticsNameTheTensor) {
  const Tensor w = HeavyMatrix(8, 32, 13);
  for (bool qmc : {false, true}) {
    QuantOptions o = Gptq(4, 16);
    if (qmc) o.quantizer = Quantizer::kQmc, o.gptq.enabled = true;
    try {
      QuantizeTensor(Spec(w), w, o);
      FAIL() << "no stats accepted";
    } catch (const InputError& e) {
      EXPECT_NE(std::string(e.what()).find("blk.0.ffn_down.weight"), std::string::npos) << e.what();
    }
    const InputStats narrow = CorrelatedInputs(16, 50, 14);
    EXPECT_THROW(QuantizeTensor(Spec(w), w, o, &narrow), InputError);
    // A non-shared embedding is only looked up: rounded to nearest.
    QuantOptions rtn = o;
    rtn.quantizer = qmc ? Quantizer::kQmc : Quantizer::kRtn;
    rtn.gptq.enabled = false;
    const TensorSpec embd{"token_embd.weight", w.rows, w.cols, true};
    EXPECT_EQ(QuantizeTensor(embd, w, o).data, QuantizeTensor(embd, w, rtn).data);
  }
}

}  // namespace
}  // namespace qmc::host
