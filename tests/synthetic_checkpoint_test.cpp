// Synthetic weights (host/synthetic_checkpoint.h, `qmc pack --synthetic`):
// a seed gives the same weights whatever the thread count, the values have
// the shape docs/synthetic-weights.md gives, a streamed pack writes the
// bytes the whole-checkpoint pack writes, and bad input is one line.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/image_reader.h"
#include "host/model_layout.h"
#include "host/pack.h"
#include "host/pack_presets.h"
#include "host/synthetic_checkpoint.h"
#include "tests/cli_runner.h"
#include "tests/small_configs.h"

namespace {

namespace fs = std::filesystem;
using qmc::host::ModelSpec;
using qmc::host::Tensor;
using qmc::image::Role;
using qmc::image::TensorRequirement;
using qmc::testing::CliRun;
using qmc::testing::Qmc;

const fs::path kShared = QMC_SHARED_DIR;

class SyntheticWeights : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = qmc::testing::FreshTestDir("qmc_synthetic_"); }
  void TearDown() override { fs::remove_all(dir_); }

  fs::path Config(const std::string& family) {
    for (const auto& [name, text] : qmc::testing::kSmallConfigs) {
      if (family != name) continue;
      fs::create_directories(dir_ / family);
      std::ofstream(dir_ / family / "config.json") << text;
      return dir_ / family / "config.json";
    }
    ADD_FAILURE() << "no config " << family;
    return {};
  }

  fs::path dir_;
};

TensorRequirement Requirement(Role role, uint32_t rows, uint32_t cols, bool is_matrix, const char* name) {
  TensorRequirement r{};
  std::snprintf(r.name, sizeof r.name, "%s", name);
  r.rows = rows;
  r.cols = cols;
  r.is_matrix = is_matrix;
  r.layer = 0;
  r.role = role;
  return r;
}

double Mean(const std::vector<float>& v) {
  double sum = 0;
  for (float x : v) sum += x;
  return sum / static_cast<double>(v.size());
}

TEST_F(SyntheticWeights, ASeedGivesTheSameWeightsWhateverTheThreadCount) {
  const TensorRequirement r = Requirement(Role::kUp, 300, 700, true, "blk.0.ffn_up.weight");
  const Tensor one = qmc::host::SyntheticTensor(r, 7, 1);
  EXPECT_EQ(qmc::host::SyntheticTensor(r, 7, 3).data, one.data);
  EXPECT_NE(qmc::host::SyntheticTensor(r, 8, 1).data, one.data);
  TensorRequirement other = r;
  std::snprintf(other.name, sizeof other.name, "blk.1.ffn_up.weight");
  EXPECT_NE(qmc::host::SyntheticTensor(other, 7, 1).data, one.data);  // every tensor its own draw
}

// A t(5) body of std 1/sqrt(cols), and a few input channels holding a large
// share of the largest weights.
TEST_F(SyntheticWeights, MatricesAreHeavyTailedWithOutlierInputChannels) {
  constexpr uint32_t kRows = 2048, kCols = 1536;
  const Tensor t = qmc::host::SyntheticTensor(Requirement(Role::kQ, kRows, kCols, true, "blk.0.attn_q.weight"), 1, 2);
  std::vector<double> column_mean(kCols, 0.0);
  for (size_t i = 0; i < t.data.size(); ++i) column_mean[i % kCols] += std::fabs(t.data[i]) / kRows;
  std::vector<double> sorted = column_mean;
  std::sort(sorted.begin(), sorted.end());
  const double median = sorted[kCols / 2];
  std::vector<bool> hot(kCols);
  uint32_t hot_count = 0;
  for (uint32_t c = 0; c < kCols; ++c) hot_count += (hot[c] = column_mean[c] > 3 * median);
  EXPECT_EQ(hot_count, 4u);  // round(0.25% of 1536)

  double m2 = 0, m4 = 0;
  size_t body = 0;
  for (size_t i = 0; i < t.data.size(); ++i) {
    if (hot[i % kCols]) continue;
    const double w = t.data[i];
    m2 += w * w;
    m4 += w * w * w * w;
    ++body;
  }
  m2 /= static_cast<double>(body);
  m4 /= static_cast<double>(body);
  EXPECT_NEAR(std::sqrt(m2), 1.0 / std::sqrt(kCols), 0.03 / std::sqrt(kCols));
  EXPECT_GT(m4 / (m2 * m2) - 3.0, 2.0);  // excess kurtosis: a normal's is 0, t(5)'s 6

  // The largest 0.5% of |w|: 0.26% of the columns hold a fifth or more of them.
  std::vector<float> magnitude(t.data.size());
  for (size_t i = 0; i < t.data.size(); ++i) magnitude[i] = std::fabs(t.data[i]);
  const size_t top = t.data.size() / 200;
  std::vector<float> order = magnitude;
  std::nth_element(order.begin(), order.end() - top, order.end());
  const float threshold = *(order.end() - top);
  size_t in_hot = 0, large = 0;
  for (size_t i = 0; i < t.data.size(); ++i) {
    if (magnitude[i] < threshold) continue;
    ++large;
    in_hot += hot[i % kCols];
  }
  EXPECT_GT(static_cast<double>(in_hot) / static_cast<double>(large), 0.2);
}

TEST_F(SyntheticWeights, VectorsFollowTheirInitialisation) {
  const Tensor norm =
      qmc::host::SyntheticTensor(Requirement(Role::kAttnNorm, 1, 4096, false, "blk.0.attn_norm.weight"), 1);
  EXPECT_NEAR(Mean(norm.data), 1.0, 0.01);
  const Tensor bias = qmc::host::SyntheticTensor(Requirement(Role::kQBias, 1, 4096, false, "blk.0.attn_q.bias"), 1);
  EXPECT_NEAR(Mean(bias.data), 0.0, 0.002);
  EXPECT_LT(*std::max_element(bias.data.begin(), bias.data.end()), 0.2f);

  const Tensor a_log = qmc::host::SyntheticTensor(Requirement(Role::kALog, 3, 16, false, "blk.0.ssm_a_log"), 1);
  for (uint32_t r = 0; r < 3; ++r) {
    for (uint32_t n = 0; n < 16; ++n) EXPECT_FLOAT_EQ(a_log.data[r * 16 + n], std::log(n + 1.0f));
  }
  const Tensor d = qmc::host::SyntheticTensor(Requirement(Role::kD, 1, 64, false, "blk.0.ssm_d"), 1);
  EXPECT_TRUE(std::all_of(d.data.begin(), d.data.end(), [](float x) { return x == 1.0f; }));

  // softplus(dt_bias) is Mamba's dt, log-uniform in [1e-3, 1e-1].
  const Tensor dt = qmc::host::SyntheticTensor(Requirement(Role::kDtBias, 1, 4096, false, "blk.0.ssm_dt.bias"), 1);
  std::vector<double> step;
  for (float b : dt.data) step.push_back(std::log1p(std::exp(static_cast<double>(b))));
  EXPECT_GT(*std::min_element(step.begin(), step.end()), 0.999e-3);
  EXPECT_LT(*std::max_element(step.begin(), step.end()), 1.001e-1);
  EXPECT_LT(*std::min_element(step.begin(), step.end()), 1.2e-3);
  EXPECT_GT(*std::max_element(step.begin(), step.end()), 0.08);

  const Tensor conv = qmc::host::SyntheticTensor(Requirement(Role::kConv, 128, 4, false, "blk.0.ssm_conv1d.weight"), 1);
  EXPECT_LE(*std::max_element(conv.data.begin(), conv.data.end()), 0.5f);
  EXPECT_GE(*std::min_element(conv.data.begin(), conv.data.end()), -0.5f);
}

// --synthetic-layers: every dimension but the layer count kept, and the
// layers kept are the full model's first ones.
TEST_F(SyntheticWeights, FewerLayersKeepTheFirstLayers) {
  const fs::path config = Config("hymba");
  const ModelSpec full = qmc::host::SyntheticModel(config);
  const ModelSpec cut = qmc::host::SyntheticModel(config, 1);
  EXPECT_EQ(cut.config.n_layers, 1u);
  qmc::image::ModelConfig widths = cut.config;
  widths.n_layers = full.config.n_layers;
  EXPECT_EQ(std::memcmp(&widths, &full.config, sizeof widths), 0);
  const qmc::host::Checkpoint a = qmc::host::SyntheticCheckpoint(full, 3);
  const qmc::host::Checkpoint b = qmc::host::SyntheticCheckpoint(cut, 3);
  for (const auto& [name, tensor] : b.tensors) {
    EXPECT_EQ(tensor.data, a.tensors.at(name).data) << name;
  }
  EXPECT_THROW(qmc::host::SyntheticModel(config, 4), qmc::host::InputError);
}

// PackImage streams (tensors quantized on worker threads, f32 dropped) and
// writes the bytes PackModel writes from the whole checkpoint, for every
// family, whatever the thread count.
TEST_F(SyntheticWeights, StreamedPackEqualsTheWholeCheckpointPack) {
  if (!fs::exists(kShared / "models/tok512.bin")) GTEST_SKIP() << "../shared/models is missing";
  const std::vector<uint8_t> tokenizer = qmc::host::LoadTokenizerFile(kShared / "models/tok512.bin", 512);
  for (const auto& [family, text] : qmc::testing::kSmallConfigs) {
    SCOPED_TRACE(family);
    const ModelSpec model = qmc::host::SyntheticModel(Config(family));
    qmc::host::Checkpoint checkpoint = qmc::host::SyntheticCheckpoint(model, 11);
    checkpoint.tokenizer = tokenizer;
    for (const char* preset : {"", "paper-3mlc"}) {
      const qmc::host::QuantOptions options =
          *preset == '\0' ? qmc::host::QuantOptions{} : qmc::host::FindPreset(preset)->options;
      const std::vector<uint8_t> whole = qmc::host::PackModel(checkpoint, options).image;
      const qmc::host::ModelSource source = qmc::host::SyntheticSource(model, 11, tokenizer);
      EXPECT_EQ(qmc::host::PackImage(source, options, {}, 1), whole);
      EXPECT_EQ(qmc::host::PackImage(source, options, {}, 3), whole);
    }
  }
}

// host/model_shapes.h lists every family's tensors as the packer writes
// them: a layout from the config alone has the packed image's bytes per window.
TEST_F(SyntheticWeights, ModelShapesLayOutEveryFamilyAsPackWrites) {
  if (!fs::exists(kShared / "models/tok512.bin")) GTEST_SKIP() << "../shared/models is missing";
  const std::vector<uint8_t> tokenizer = qmc::host::LoadTokenizerFile(kShared / "models/tok512.bin", 512);
  for (const auto& [family, text] : qmc::testing::kSmallConfigs) {
    SCOPED_TRACE(family);
    const ModelSpec model = qmc::host::SyntheticModel(Config(family));
    for (const char* preset : {"paper-3mlc", "exact-outliers"}) {
      const qmc::host::QuantOptions options = qmc::host::FindPreset(preset)->options;
      const std::vector<uint8_t> image = qmc::host::PackImage(qmc::host::SyntheticSource(model, 2, tokenizer), options);
      const qmc::Result<qmc::image::ImageView> view = qmc::image::ImageView::OpenFile(image);
      ASSERT_TRUE(view.ok());
      qmc::host::ModelShape shape = qmc::host::ShapeOfConfig(model.config, model.detail);
      EXPECT_EQ(shape.family, family);
      shape.tokenizer = tokenizer;
      const qmc::host::ModelLayout laid = qmc::host::LayOutModel(shape, options, preset);
      const qmc::host::ModelLayout packed = qmc::host::LayOutImage(view.value());
      EXPECT_EQ(laid.window_bytes, packed.window_bytes);
      EXPECT_EQ(laid.matrix_bytes, packed.matrix_bytes);
      EXPECT_EQ(laid.value_bits, packed.value_bits);
    }
  }
}

TEST_F(SyntheticWeights, QmcPackSynthetic) {
  if (!fs::exists(kShared / "models/tok512.bin")) GTEST_SKIP() << "../shared/models is missing";
  const std::string config = Config("qwen2").string();
  const std::string tokenizer = " --tokenizer " + (kShared / "models/tok512.bin").string();
  auto pack = [&](const std::string& flags, const std::string& out) {
    const CliRun r =
        Qmc("pack -q --synthetic " + config + tokenizer + " " + flags + " -o " + (dir_ / out).string(), dir_);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return qmc::testing::Slurp(dir_ / out);
  };
  const std::string a = pack("--seed 5", "a.qmc");
  EXPECT_EQ(pack("--seed 5", "b.qmc"), a);
  EXPECT_NE(pack("--seed 6", "c.qmc"), a);
  pack("--seed 5 --synthetic-layers 1 --preset paper-3mlc", "d.qmc");
  CliRun r = Qmc("inspect --json " + (dir_ / "d.qmc").string(), dir_);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const nlohmann::json summary = nlohmann::json::parse(r.out);
  EXPECT_EQ(summary["model"]["n_layers"].get<int>(), 1);
  EXPECT_EQ(summary["model"]["dim"].get<int>(), 64);
  r = Qmc("run " + (dir_ / "d.qmc").string() + " -p Once -n 4 -t 0", dir_);
  EXPECT_EQ(r.exit_code, 0) << r.err;
}

// A config the packer cannot build, or an image past 4 GiB: one line, exit
// 1, no file; the size is refused before any weight is drawn.
TEST_F(SyntheticWeights, BadInputIsOneLineAndLeavesNoImage) {
  auto expect_bad = [&](const std::string& args, const std::string& word) {
    const CliRun r = Qmc("pack " + args + " -o " + (dir_ / "out.qmc").string(), dir_);
    EXPECT_EQ(r.exit_code, 1) << r.err;
    EXPECT_NE(r.err.find(word), std::string::npos) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    EXPECT_FALSE(fs::exists(dir_ / "out.qmc"));
  };
  std::ofstream(dir_ / "gpt2.json") << R"({"model_type": "gpt2", "hidden_size": 64})";
  expect_bad("--synthetic " + (dir_ / "gpt2.json").string(), "unsupported model_type 'gpt2'");
  expect_bad("--synthetic " + Config("llama").string(), "tokenizer");  // none given, none beside the config
  expect_bad("--synthetic " + Config("hymba").string() + " --synthetic-layers 9", "exceeds the model's 3 layers");
  const fs::path llama = kShared / "models/paper/llama-3.2-3b/config.json";
  if (fs::exists(llama)) expect_bad("--synthetic " + llama.string() + " --scheme f32", "pack it quantized");

  const CliRun both = Qmc("pack " + (kShared / "models/stories260K.bin").string() + " --synthetic " +
                              Config("llama").string() + " -o " + (dir_ / "out.qmc").string(), dir_);
  EXPECT_EQ(both.exit_code, 2) << both.err;
  const CliRun seed_alone = Qmc("pack " + (kShared / "models/stories260K.bin").string() + " --seed 3 -o " +
                                    (dir_ / "out.qmc").string(), dir_);
  EXPECT_EQ(seed_alone.exit_code, 2) << seed_alone.err;
}

}  // namespace
