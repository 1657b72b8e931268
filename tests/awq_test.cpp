// AWQ (host/awq.h): folding the scales keeps the f32 model's function (run
// by the engine), the α search finds what a brute-force loop here finds, the
// clip search never loses to no clip, and AWQ beats RTN when a few input
// channels are loud.
#include "host/awq.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <memory>
#include <random>
#include <span>

#include "common/engine.h"
#include "common/image_reader.h"
#include "common/quant_layout.h"
#include "host/pack.h"
#include "tests/random_checkpoint.h"

namespace qmc::host {
namespace {

using image::Quantizer;

// Inputs whose channels `loud` are `gain` times the others.
InputStats Inputs(uint32_t width, uint32_t tokens, uint32_t seed, const std::vector<uint32_t>& loud, double gain) {
  std::mt19937 rng(seed);
  std::normal_distribution<double> normal(0.0, 1.0);
  InputStats s{width, tokens, std::vector<double>(static_cast<size_t>(width) * width, 0.0), std::vector<double>(width, 0.0)};
  std::vector<double> x(width);
  for (uint32_t t = 0; t < tokens; ++t) {
    for (uint32_t i = 0; i < width; ++i) x[i] = normal(rng) + 0.3 * (i > 0 ? x[i - 1] : 0.0);
    for (uint32_t i : loud) x[i % width] *= gain;
    for (uint32_t i = 0; i < width; ++i) {
      s.mean_abs[i] += std::fabs(x[i]) / tokens;
      for (uint32_t j = 0; j < width; ++j) s.xtx[static_cast<size_t>(i) * width + j] += x[i] * x[j];
    }
  }
  return s;
}

Tensor Matrix(uint32_t rows, uint32_t cols, uint32_t seed) {
  std::mt19937 rng(seed);
  std::student_t_distribution<float> heavy(4.0f);
  Tensor t{rows, cols, std::vector<float>(static_cast<size_t>(rows) * cols)};
  for (float& w : t.data) w = 0.05f * heavy(rng);
  return t;
}

// tr((W − Ŵ) H (W − Ŵ)ᵀ) over columns [first, first + n), plainly.
double OutputError(const Tensor& w, const std::vector<float>& w_hat, const InputStats& s, uint32_t first = 0,
                   uint32_t n = 0, uint32_t only_row = UINT32_MAX) {
  if (n == 0) n = w.cols;
  double total = 0.0;
  for (uint32_t r = 0; r < w.rows; ++r) {
    if (only_row != UINT32_MAX && r != only_row) continue;
    for (uint32_t i = first; i < first + n; ++i) {
      for (uint32_t j = first; j < first + n; ++j) {
        total += (static_cast<double>(w.data[r * w.cols + i]) - w_hat[r * w.cols + i]) * s.xtx[i * w.cols + j] *
                 (static_cast<double>(w.data[r * w.cols + j]) - w_hat[r * w.cols + j]);
      }
    }
  }
  return total;
}

// A Phi (parallel block, LayerNorm with bias, biased projections) random model.
Checkpoint RandomPhi(uint32_t seed) {
  Checkpoint c;
  c.format = "synthetic";
  c.config = {static_cast<uint32_t>(image::Arch::kPhi), 32, 48, 2, 2, 2, 8, 8, 8, 10000.0f, 1e-5f, 0};
  c.detail = image::DefaultDetail(c.config);
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 0.05f);
  for (const TensorSpec& spec : RequiredTensors(c.config, c.detail)) {
    Tensor t{spec.rows, spec.cols, std::vector<float>(static_cast<size_t>(spec.rows) * spec.cols)};
    for (float& w : t.data) w = spec.is_matrix ? 4.0f * normal(rng) : 1.0f + normal(rng);
    c.tensors[spec.name] = std::move(t);
  }
  c.tokenizer = testing::TinyTokenizer(c.config.vocab_size);
  return c;
}

// The f32 image's logits for `tokens`, run by the engine.
std::vector<float> Logits(const Checkpoint& model, const std::vector<uint32_t>& tokens) {
  QuantOptions o;
  o.quantizer = Quantizer::kF32;
  const PackedModel packed = PackModel(model, o);
  const image::ImageView view = image::ImageView::OpenFile(packed.image).value();
  const auto positions = static_cast<uint32_t>(tokens.size());
  std::vector<uint8_t> arena(Engine::ArenaBytes(view.model(), view.detail(), positions));
  std::vector<uint8_t> kv(Engine::KvBytes(view.model(), view.detail(), positions));
  Engine engine;
  EXPECT_TRUE(engine.Init(view, arena, kv).ok());
  std::vector<float> out;
  for (uint32_t pos = 0; pos < positions; ++pos) {
    const float* logits = engine.Forward(tokens[pos], pos);
    out.insert(out.end(), logits, logits + view.model().vocab_size);
  }
  return out;
}

void ExpectSameFunction(const Checkpoint& a, const Checkpoint& b, const char* what) {
  const std::vector<uint32_t> tokens = {1, 5, 2, 7, 3, 3, 0, 6};
  const std::vector<float> la = Logits(a, tokens), lb = Logits(b, tokens);
  float scale = 0.0f;
  for (float v : la) scale = std::max(scale, std::fabs(v));
  for (size_t i = 0; i < la.size(); ++i) ASSERT_NEAR(la[i], lb[i], 1e-4f * scale + 1e-5f) << what << " logit " << i;
}

// Stats for every matrix, one shared object per group of matrices that read
// the same activation, channels 3 and 11 loud so α > 0 pays.
Calibration CalibrationFor(const Checkpoint& model, uint32_t seed) {
  const std::vector<TensorSpec> specs = RequiredTensors(model.config, model.detail);
  Calibration calibration;
  calibration.inputs.resize(specs.size());
  std::map<std::string, std::shared_ptr<const InputStats>> by_name;
  for (const ScaleGroup& group : ScaleGroups(model.config, model.detail)) {
    const uint32_t width = model.tensors.at(group.matrices[0]).cols;
    const auto stats = std::make_shared<const InputStats>(Inputs(width, 400, seed++, {3, 11}, 30.0));
    for (const std::string& name : group.matrices) by_name[name] = stats;
  }
  for (size_t i = 0; i < specs.size(); ++i) {
    if (!specs[i].is_matrix) continue;
    auto it = by_name.find(specs[i].name);
    calibration.inputs[i] = it != by_name.end() ? it->second
                                                : std::make_shared<const InputStats>(Inputs(specs[i].cols, 400, seed++, {1}, 10.0));
  }
  return calibration;
}

TEST(Awq, FoldingKeepsTheF32ModelsFunction) {
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> log_scale(-1.5f, 1.5f);
  for (const Checkpoint& model : {testing::RandomCheckpoint(32, 48, 2), RandomPhi(3)}) {
    const std::vector<ScaleGroup> groups = ScaleGroups(model.config, model.detail);
    ASSERT_GE(groups.size(), 2u * model.config.n_layers);
    for (const ScaleGroup& group : groups) {
      Checkpoint folded = model;
      std::vector<float> s(model.tensors.at(group.matrices[0]).cols);
      for (float& v : s) v = std::exp(log_scale(rng));
      FoldScales(folded, group, s);
      EXPECT_NE(folded.tensors.at(group.matrices[0]).data, model.tensors.at(group.matrices[0]).data);
      ExpectSameFunction(model, folded, group.matrices[0].c_str());
    }
    // The whole search and fold, every group at once.
    Checkpoint awq = model;
    Calibration calibration = CalibrationFor(model, 10);
    const Calibration before = calibration;
    QuantOptions o;
    o.quantizer = Quantizer::kAwq;
    o.bits = 3;
    o.group_size = 16;
    ApplyAwq(awq, calibration, o);
    size_t changed = 0;
    for (size_t i = 0; i < before.inputs.size(); ++i) changed += before.inputs[i] != calibration.inputs[i] ? 1u : 0u;
    EXPECT_GT(changed, 0u) << "no group took a scale";
    ExpectSameFunction(model, awq, "ApplyAwq");
  }
}

TEST(Awq, AlphaSearchFindsTheBruteForceMinimum) {
  const Tensor a = Matrix(16, 96, 4), b = Matrix(24, 96, 5);
  const InputStats s = Inputs(96, 300, 6, {5, 40, 41}, 25.0);
  QuantOptions o;
  o.bits = 3;
  o.group_size = 32;
  const uint32_t max_code = 7;
  double best = INFINITY;
  float best_alpha = -1.0f;
  for (int step = 0; step < 20; ++step) {
    const float alpha = 0.05f * static_cast<float>(step);
    std::vector<float> scale(96);
    for (uint32_t i = 0; i < 96; ++i) scale[i] = std::max(std::pow(static_cast<float>(s.mean_abs[i]), alpha), 1e-4f);
    const float lo = *std::min_element(scale.begin(), scale.end()), hi = *std::max_element(scale.begin(), scale.end());
    for (float& v : scale) v /= std::sqrt(lo * hi);
    double error = 0.0;
    for (const Tensor* w : {&a, &b}) {
      std::vector<float> w_hat(w->data.size()), group(32);
      for (uint32_t r = 0; r < w->rows; ++r) {
        for (uint32_t g = 0; g < 3; ++g) {
          for (uint32_t i = 0; i < 32; ++i) group[i] = w->data[r * 96 + g * 32 + i] * scale[g * 32 + i];
          const AffineFit fit = FitAffine(group.data(), 32, max_code, kGroupGrid, 0.0);
          for (uint32_t i = 0; i < 32; ++i) {
            const float q = quant::DequantGroupAffine(AffineCode(group[i], fit, max_code), fit.scale, fit.zero);
            w_hat[r * 96 + g * 32 + i] = q / scale[g * 32 + i];
          }
        }
      }
      error += OutputError(*w, w_hat, s);
    }
    if (error < best) best = error, best_alpha = alpha;
  }
  EXPECT_GT(best_alpha, 0.0f);  // the loud channels make scaling pay
  EXPECT_NEAR(SearchAlpha({&a, &b}, s, o), best_alpha, 1e-6f);
}

TEST(Awq, ClipSearchNeverLosesToNoClip) {
  const Tensor w = Matrix(32, 128, 7);
  const InputStats s = Inputs(128, 300, 8, {9}, 8.0);
  for (uint32_t bits = 3; bits <= 4; ++bits) {
    QuantOptions o;
    o.quantizer = Quantizer::kAwq;
    o.bits = bits;
    o.group_size = 32;
    const TensorSpec spec{"blk.0.ffn_down.weight", w.rows, w.cols, true};
    const std::vector<float> clipped = QuantizeTensor(spec, w, o, &s).reconstruction;
    // No clip: the min/max range holding 0, rounded to nearest.
    const float max_code = static_cast<float>((1u << bits) - 1u);
    std::vector<float> minmax(w.data.size());
    for (uint32_t r = 0; r < w.rows; ++r) {
      for (uint32_t g = 0; g < 4; ++g) {
        const float* x = &w.data[r * 128 + g * 32];
        const float lo = std::min(0.0f, *std::min_element(x, x + 32)), hi = std::max(0.0f, *std::max_element(x, x + 32));
        const float scale = RoundToHalf((hi - lo) / max_code), zero = std::clamp(std::nearbyint(-lo / scale), 0.0f, max_code);
        for (uint32_t i = 0; i < 32; ++i) minmax[r * 128 + g * 32 + i] = (std::clamp(std::nearbyint(x[i] / scale + zero), 0.0f, max_code) - zero) * scale;
      }
    }
    double total_clipped = 0, total_minmax = 0;
    for (uint32_t r = 0; r < w.rows; ++r) {
      for (uint32_t g = 0; g < 4; ++g) {
        const double c = OutputError(w, clipped, s, g * 32, 32, r), m = OutputError(w, minmax, s, g * 32, 32, r);
        EXPECT_LE(c, m * (1 + 1e-9) + 1e-15) << "row " << r << " group " << g;
        total_clipped += c, total_minmax += m;
      }
    }
    EXPECT_LT(total_clipped, total_minmax) << bits;  // and some group gains
  }
}

TEST(Awq, BeatsRtnWhenAFewInputChannelsAreLoud) {
  const Tensor w = Matrix(64, 256, 9);
  const InputStats s = Inputs(256, 600, 10, {7, 100, 101, 200}, 40.0);
  for (uint32_t bits = 3; bits <= 4; ++bits) {
    QuantOptions o;
    o.quantizer = Quantizer::kAwq;
    o.bits = bits;
    o.group_size = 128;
    const TensorSpec spec{"blk.0.ffn_down.weight", w.rows, w.cols, true};
    const std::vector<float> scale = AwqScales(s.mean_abs, SearchAlpha({&w}, s, o));
    Tensor scaled = w;
    for (size_t i = 0; i < scaled.data.size(); ++i) scaled.data[i] *= scale[i % w.cols];
    const InputStats scaled_input = ScaledStats(s, scale);
    std::vector<float> awq = QuantizeTensor(spec, scaled, o, &scaled_input).reconstruction;
    for (size_t i = 0; i < awq.size(); ++i) awq[i] /= scale[i % w.cols];
    QuantOptions rtn = o;
    rtn.quantizer = Quantizer::kRtn;
    const double e_awq = OutputError(w, awq, s), e_rtn = OutputError(w, QuantizeTensor(spec, w, rtn).reconstruction, s);
    EXPECT_LT(e_awq, 0.8 * e_rtn) << bits;
  }
}

}  // namespace
}  // namespace qmc::host
