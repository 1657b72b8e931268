// The batched forward pass (Engine::Forward over several tokens, MatMul)
// against the one-token engine: every family, dense and packed images, KV
// formats, windowed and shared KV caches, odd batch splits; and MatMul by
// every kernel against n reference MatVecs.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "common/engine.h"
#include "common/image_reader.h"
#include "common/matvec.h"
#include "host/pack.h"
#include "host/pack_presets.h"
#include "host/synthetic_checkpoint.h"
#include "tests/cli_runner.h"
#include "tests/small_configs.h"

namespace {

namespace fs = std::filesystem;
using qmc::Engine;
using qmc::KvFormat;

using qmc::testing::kSmallConfigs;

qmc::host::Checkpoint SmallModel(const char* family, const char* config) {
  const fs::path dir = qmc::testing::FreshTestDir(std::string("qmc_batch_") + family + "_");
  std::ofstream(dir / "config.json") << config;
  const qmc::host::ModelSpec spec = qmc::host::SyntheticModel(dir / "config.json");
  fs::remove_all(dir);
  qmc::host::Checkpoint checkpoint = qmc::host::SyntheticCheckpoint(spec, 7);
  checkpoint.tokenizer = qmc::host::LoadTokenizerFile(fs::path(QMC_SHARED_DIR) / "models/tok512.bin", 512);
  return checkpoint;
}

struct Runner {
  Runner(const qmc::image::ImageView& view, uint32_t positions, uint32_t batch, KvFormat format)
      : arena(Engine::ArenaBytes(view.model(), view.detail(), positions, batch)),
        kv(Engine::KvBytes(view.model(), view.detail(), positions, format, batch)) {
    EXPECT_TRUE(engine.Init(view, arena, kv, format, batch).ok());
  }
  std::vector<uint8_t> arena, kv;
  Engine engine;
};

// Logits of `tokens` one at a time, then in batches of the sizes `split`
// cycles through; the largest relative difference (to the row's max |logit|).
double BatchedDifference(const qmc::image::ImageView& view, const std::vector<uint32_t>& tokens,
                         const std::vector<uint32_t>& split, KvFormat format) {
  const uint32_t vocab = view.model().vocab_size;
  const auto positions = static_cast<uint32_t>(tokens.size());
  Runner single(view, positions, 1, format);
  std::vector<float> expected;
  for (uint32_t p = 0; p < positions; ++p) {
    const float* logits = single.engine.Forward(tokens[p], p);
    EXPECT_NE(logits, nullptr);
    if (logits == nullptr) return INFINITY;
    expected.insert(expected.end(), logits, logits + vocab);
  }
  const uint32_t widest = *std::max_element(split.begin(), split.end());
  Runner batched(view, positions, widest, format);
  double worst = 0.0;
  for (uint32_t p = 0, k = 0; p < positions; ++k) {
    const uint32_t n = std::min(split[k % split.size()], positions - p);
    const float* logits = batched.engine.Forward(tokens.data() + p, n, p);
    EXPECT_NE(logits, nullptr);
    if (logits == nullptr) return INFINITY;
    for (uint32_t t = 0; t < n; ++t) {
      const float* want = expected.data() + static_cast<size_t>(p + t) * vocab;
      double scale = 0.0, diff = 0.0;
      for (uint32_t i = 0; i < vocab; ++i) {
        scale = std::max(scale, std::fabs(static_cast<double>(want[i])));
        diff = std::max(diff, std::fabs(static_cast<double>(want[i]) - logits[static_cast<size_t>(t) * vocab + i]));
      }
      worst = std::max(worst, diff / scale);
    }
    p += n;
  }
  return worst;
}

std::vector<uint32_t> RandomTokens(uint32_t count, uint32_t vocab, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<uint32_t> tokens(count);
  for (uint32_t& t : tokens) t = rng() % vocab;
  return tokens;
}

TEST(EngineBatch, EveryFamilyMatchesTheOneTokenEngine) {
  for (const auto& [family, config] : kSmallConfigs) {
    const qmc::host::Checkpoint checkpoint = SmallModel(family, config);
    for (const char* preset : {"f32", "paper-3mlc", "exact-outliers"}) {
      qmc::host::QuantOptions options;
      if (std::string(preset) == "f32") {
        options.quantizer = qmc::image::Quantizer::kF32;
      } else {
        options = qmc::host::FindPreset(preset)->options;
      }
      const std::vector<uint8_t> image = qmc::host::PackModel(checkpoint, options).image;
      const qmc::image::ImageView view = qmc::image::ImageView::OpenFile(image).value();
      // 40 positions pass Hymba's 16-position window twice over.
      const std::vector<uint32_t> tokens = RandomTokens(40, view.model().vocab_size, 3);
      for (KvFormat format : {KvFormat::kF32, KvFormat::kInt8}) {
        const double worst = BatchedDifference(view, tokens, {8, 3, 1, 7}, format);
        EXPECT_LT(worst, 1e-4) << family << " " << preset << " kv " << static_cast<int>(format);
      }
    }
  }
}

// With the reference kernel (MatMul is n MatVecs) everything but the
// attention's loop order is the one-token engine's, and the batched attention
// does each token's operations in the same order: the logits are equal, bit
// for bit, whatever the family, window, shared cache, KV format or split.
TEST(EngineBatch, BatchedAttentionIsTheOneTokenAttentionExactly) {
  const qmc::MatVecKernel active = qmc::ActiveMatVecKernel();
  ASSERT_TRUE(qmc::UseMatVecKernel(qmc::MatVecKernel::kReference).ok());
  for (const auto& [family, config] : kSmallConfigs) {
    qmc::host::QuantOptions options;
    options.quantizer = qmc::image::Quantizer::kF32;
    const std::vector<uint8_t> image = qmc::host::PackModel(SmallModel(family, config), options).image;
    const qmc::image::ImageView view = qmc::image::ImageView::OpenFile(image).value();
    const std::vector<uint32_t> tokens = RandomTokens(40, view.model().vocab_size, 5);
    for (KvFormat format : {KvFormat::kF32, KvFormat::kFp16, KvFormat::kInt8}) {
      for (const std::vector<uint32_t>& split : {std::vector<uint32_t>{8, 3, 1, 7}, std::vector<uint32_t>{40}}) {
        EXPECT_EQ(BatchedDifference(view, tokens, split, format), 0.0)
            << family << " kv " << static_cast<int>(format) << " first batch " << split[0];
      }
    }
  }
  ASSERT_TRUE(qmc::UseMatVecKernel(active).ok());
}

TEST(EngineBatch, RefusesMoreTokensThanTheBatchOrContext) {
  const qmc::host::Checkpoint checkpoint = SmallModel("llama", kSmallConfigs[0][1]);
  qmc::host::QuantOptions options;
  options.quantizer = qmc::image::Quantizer::kF32;
  const std::vector<uint8_t> image = qmc::host::PackModel(checkpoint, options).image;
  const qmc::image::ImageView view = qmc::image::ImageView::OpenFile(image).value();
  Runner runner(view, 10, 4, KvFormat::kF32);
  const std::vector<uint32_t> tokens = RandomTokens(5, view.model().vocab_size, 1);
  EXPECT_EQ(runner.engine.Forward(tokens.data(), 5, 0), nullptr);  // past the batch
  EXPECT_EQ(runner.engine.Forward(tokens.data(), 0, 0), nullptr);
  EXPECT_NE(runner.engine.Forward(tokens.data(), 4, 0), nullptr);
  EXPECT_NE(runner.engine.Forward(tokens.data(), 4, 4), nullptr);
  EXPECT_EQ(runner.engine.Forward(tokens.data(), 3, 8), nullptr);  // past the context
  EXPECT_NE(runner.engine.Forward(tokens.data(), 2, 8), nullptr);
  const uint32_t bad[2] = {1, view.model().vocab_size};
  EXPECT_EQ(runner.engine.Forward(bad, 2, 0), nullptr);
}

// The observer sees every matrix product's input rows, once per product.
TEST(EngineBatch, ObserverSeesEveryMatrixInput) {
  const qmc::host::Checkpoint checkpoint = SmallModel("llama", kSmallConfigs[0][1]);
  qmc::host::QuantOptions options;
  options.quantizer = qmc::image::Quantizer::kF32;
  const std::vector<uint8_t> image = qmc::host::PackModel(checkpoint, options).image;
  const qmc::image::ImageView view = qmc::image::ImageView::OpenFile(image).value();
  Runner runner(view, 8, 8, KvFormat::kF32);
  struct Seen {
    const qmc::image::ImageView* view;
    std::vector<uint32_t> calls;  // per tensor
    bool well_formed = true;
  } seen{&view, std::vector<uint32_t>(view.tensor_count(), 0)};
  runner.engine.Observe(
      [](void* context, uint32_t tensor, const float* in, size_t stride, uint32_t count) {
        auto* s = static_cast<Seen*>(context);
        ++s->calls[tensor];
        const qmc::image::TensorEntry t = s->view->tensor(tensor);
        if (count != 6 || stride < t.cols) s->well_formed = false;
        for (uint32_t i = 0; i < count; ++i) {
          for (uint32_t c = 0; c < t.cols; ++c) s->well_formed &= std::isfinite(in[i * stride + c]);
        }
      },
      &seen);
  const std::vector<uint32_t> tokens = RandomTokens(6, view.model().vocab_size, 2);
  ASSERT_NE(runner.engine.Forward(tokens.data(), 6, 0), nullptr);
  EXPECT_TRUE(seen.well_formed);
  for (uint32_t i = 0; i < view.tensor_count(); ++i) {
    const std::string name = view.tensor(i).name;
    // Every layer matrix once; the shared embedding once, as the classifier.
    const bool matrix = name.find("norm") == std::string::npos;
    EXPECT_EQ(seen.calls[i], matrix ? 1u : 0u) << name;
  }
}

// MatMul by each available kernel against n reference MatVecs, every scheme.
TEST(EngineBatch, MatMulKernelsMatchReferenceMatVecs) {
  const qmc::host::Checkpoint checkpoint = SmallModel("llama", kSmallConfigs[0][1]);
  std::vector<qmc::host::QuantOptions> schemes;
  for (auto q : {qmc::image::Quantizer::kF32, qmc::image::Quantizer::kFp16, qmc::image::Quantizer::kRtn,
                 qmc::image::Quantizer::kMxInt4}) {
    qmc::host::QuantOptions o;
    o.quantizer = q;
    schemes.push_back(o);
  }
  schemes.push_back(qmc::host::FindPreset("paper-2mlc")->options);
  schemes.push_back(qmc::host::FindPreset("exact-outliers")->options);
  for (const qmc::host::QuantOptions& options : schemes) {
    const std::vector<uint8_t> image = qmc::host::PackModel(checkpoint, options).image;
    const qmc::image::ImageView view = qmc::image::ImageView::OpenFile(image).value();
    for (uint32_t index = 0; index < view.tensor_count(); ++index) {
      const qmc::image::TensorEntry t = view.tensor(index);
      if (t.rows == 1) continue;
      constexpr uint32_t kInputs = 7;
      const size_t stride = t.cols + 3;  // rows apart by more than their width
      std::vector<float> x(kInputs * stride), row(t.cols);
      std::mt19937 rng(index);
      std::normal_distribution<float> normal;
      for (float& v : x) v = normal(rng);
      std::vector<float> want(static_cast<size_t>(kInputs) * t.rows);
      for (uint32_t i = 0; i < kInputs; ++i) {
        qmc::MatVec(view, t, x.data() + i * stride, want.data() + static_cast<size_t>(i) * t.rows, row.data(),
                    qmc::MatVecKernel::kReference);
      }
      for (auto kernel : {qmc::MatVecKernel::kReference, qmc::MatVecKernel::kScalar, qmc::MatVecKernel::kAvx2}) {
        if (!qmc::MatVecKernelAvailable(kernel)) continue;
        std::vector<float> got(static_cast<size_t>(kInputs) * (t.rows + 1), NAN);
        qmc::MatMul(view, t, x.data(), stride, got.data(), t.rows + 1, kInputs, row.data(), kernel);
        for (uint32_t i = 0; i < kInputs; ++i) {
          for (uint32_t r = 0; r < t.rows; ++r) {
            const float w = want[static_cast<size_t>(i) * t.rows + r];
            const float g = got[static_cast<size_t>(i) * (t.rows + 1) + r];
            if (kernel == qmc::MatVecKernel::kReference) {
              ASSERT_EQ(g, w) << t.name;
            } else {
              ASSERT_NEAR(g, w, 1e-4f * (1.0f + std::fabs(w))) << t.name << " kernel " << static_cast<int>(kernel);
            }
          }
        }
      }
    }
  }
}

}  // namespace
