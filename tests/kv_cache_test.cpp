// The KV cache formats: their sizes, and that fp16 and int8 caches keep the
// shared models' logits close to an f32 cache's and their greedy text equal.
#include <gtest/gtest.h>

#include "common/model_tensors.h"
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <ostream>
#include <string>
#include <vector>

#include "common/engine.h"
#include "host/atomic_file.h"
#include "host/checkpoint.h"
#include "host/eval.h"
#include "host/pack.h"
#include "tests/cli_runner.h"
#include "tests/tiny_model.h"

namespace qmc {
namespace {

namespace fs = std::filesystem;
const fs::path kShared = QMC_SHARED_DIR;

std::vector<uint8_t> PackF32(const fs::path& checkpoint_path, const fs::path& tokenizer) {
  host::Checkpoint checkpoint = host::LoadCheckpoint(checkpoint_path);
  checkpoint.tokenizer = host::LoadTokenizerFile(tokenizer, checkpoint.config.vocab_size);
  host::QuantOptions options;
  options.quantizer = image::Quantizer::kF32;
  return host::PackModel(checkpoint, options).image;
}

// An engine with its own memory for `positions` positions.
struct Session {
  Session(const image::ImageView& view, uint32_t positions, KvFormat format)
      : arena(Engine::ArenaBytes(view.model(), view.detail(), view.model().seq_len)), kv(Engine::KvBytes(view.model(), view.detail(), positions, format)) {
    const Status s = engine.Init(view, arena, kv, format);
    EXPECT_TRUE(s.ok()) << s.what;
  }
  std::vector<uint8_t> arena, kv;
  Engine engine;
};

TEST(KvCache, BytesPerFormatAndTheContextTheyHold) {
  const std::vector<uint8_t> bytes = host::PackModel(testing::TinyCheckpoint(), {}).image;
  const image::ImageView view = image::ImageView::OpenFile(bytes).value();
  const image::ModelConfig& c = view.model();
  const size_t vectors = 2u * c.n_layers * 5 * c.n_kv_heads;  // keys and values of 5 positions
  EXPECT_EQ(Engine::KvBytes(c, image::DefaultDetail(c), 5, KvFormat::kF32), vectors * c.head_dim * 4);
  EXPECT_EQ(Engine::KvBytes(c, image::DefaultDetail(c), 5, KvFormat::kFp16), vectors * c.head_dim * 2);
  EXPECT_EQ(Engine::KvBytes(c, image::DefaultDetail(c), 5, KvFormat::kInt8), vectors * (c.head_dim + 4));
  EXPECT_EQ(Engine::KvBytes(c, image::DefaultDetail(c), 5), Engine::KvBytes(c, image::DefaultDetail(c), 5, KvFormat::kF32));

  std::vector<uint8_t> arena(Engine::ArenaBytes(c, image::DefaultDetail(c), c.seq_len));
  for (const KvFormat format : {KvFormat::kF32, KvFormat::kFp16, KvFormat::kInt8}) {
    // Bytes short of a sixth position are not used.
    std::vector<uint8_t> kv(Engine::KvBytes(c, image::DefaultDetail(c), 6, format) - 1);
    Engine engine;
    ASSERT_TRUE(engine.Init(view, arena, kv, format).ok());
    EXPECT_EQ(engine.context(), 5u);
    EXPECT_EQ(engine.kv_format(), format);
    for (uint32_t pos = 0; pos < 5; ++pos) EXPECT_NE(engine.Forward(3, pos), nullptr);
    EXPECT_EQ(engine.Forward(3, 5), nullptr);
    EXPECT_EQ(engine.Init(view, arena, std::span(kv).first(Engine::KvBytes(c, image::DefaultDetail(c), 1, format) - 1), format).code,
              StatusCode::kTooLarge);
  }
  std::vector<uint8_t> kv(Engine::KvBytes(c, image::DefaultDetail(c), 5));
  Engine engine;
  EXPECT_EQ(engine.Init(view, arena, kv, static_cast<KvFormat>(3)).code, StatusCode::kInvalidValue);
}

// How far a cache format may move the logits from an f32 cache's, over a
// context of text: the largest and the mean |logit - f32 logit|.
struct Tolerance {
  float max;
  double mean;
};

// A shared model with text in its domain and its tolerances.
struct SharedModel {
  const char* name;
  fs::path checkpoint;
  fs::path tokenizer;
  fs::path text;       // empty: kStory
  const char* prompt;  // for greedy decoding
  Tolerance fp16;
  Tolerance int8;
};

const char kStory[] =
    "Once upon a time, there was a little girl named Lily. She loved to play outside in the park with her friends. "
    "One day, she saw a big, red ball under a tree. She wanted to play with it, but it was too high. Lily asked her "
    "mom for help. Her mom smiled and said, \"Let's get it together.\" They found a long stick and pushed the ball "
    "down. Lily was very happy. She said thank you to her mom and gave her a big hug. Then she ran to her friend Tom "
    "and said, \"Look, I have a ball! Do you want to play with me?\" Tom said yes, and they played all day until "
    "the sun went down. When it was time to go home, Lily was tired but happy. She went to bed and dreamed of the "
    "big, red ball.";

// Tolerances are about twice what was measured. stories260K, 261 positions,
// logits spanning up to 37: max 0.031 / mean 0.0027 for fp16, max 0.93 /
// mean 0.095 for int8 (its keys reach |k| = 26 against a mean |k| of 3.4, so
// an int8 step of max|k|/127 is coarse). kjv6M, 256 positions, logits
// spanning up to 26: fp16 max 0.0028 / mean 0.00014, int8 max 0.059 / mean 0.0032.
const SharedModel kStories = {"stories260K", kShared / "models/stories260K.bin", kShared / "models/tok512.bin", "",
                              "Once upon a time", {0.06f, 0.005}, {1.8f, 0.19}};
const SharedModel kKjv = {"kjv6M", kShared / "models/kjv6M.bin", kShared / "models/kjv_tok2048.bin",
                          kShared / "data/kjv-valid.txt", "And God said", {0.006f, 0.0003}, {0.12f, 0.0065}};

void PrintTo(const SharedModel& model, std::ostream* out) { *out << model.name; }

class KvCacheModels : public ::testing::TestWithParam<SharedModel> {
 protected:
  void SetUp() override {
    if (!fs::exists(GetParam().checkpoint)) GTEST_SKIP() << "../shared/models is missing";
    bytes_ = PackF32(GetParam().checkpoint, GetParam().tokenizer);
    view_ = image::ImageView::OpenFile(bytes_).value();
    ASSERT_TRUE(view_.Validate().ok());
  }
  std::vector<uint8_t> bytes_;
  image::ImageView view_;
};

// Up to a whole context of text, teacher-forced, through an f32, an fp16 and
// an int8 cache side by side.
TEST_P(KvCacheModels, LogitsStayCloseToF32) {
  const image::ModelConfig& c = view_.model();
  std::string text = kStory;
  if (!GetParam().text.empty()) {
    const std::vector<uint8_t> file = host::ReadWholeFile(GetParam().text);
    text.assign(file.begin(), file.begin() + 4000);
  }
  std::vector<uint32_t> tokens = host::EncodeText(view_, text);
  tokens.insert(tokens.begin(), 1);
  tokens.resize(std::min<size_t>(tokens.size(), c.seq_len));
  ASSERT_GE(tokens.size(), 200u);

  Session f32(view_, c.seq_len, KvFormat::kF32), fp16(view_, c.seq_len, KvFormat::kFp16),
      int8(view_, c.seq_len, KvFormat::kInt8);
  float max_fp16 = 0.0f, max_int8 = 0.0f;
  double sum_fp16 = 0.0, sum_int8 = 0.0;
  for (uint32_t pos = 0; pos < tokens.size(); ++pos) {
    const float* reference = f32.engine.Forward(tokens[pos], pos);
    const float* half = fp16.engine.Forward(tokens[pos], pos);
    const float* quarter = int8.engine.Forward(tokens[pos], pos);
    ASSERT_TRUE(reference != nullptr && half != nullptr && quarter != nullptr);
    for (uint32_t i = 0; i < c.vocab_size; ++i) {
      const float d16 = std::fabs(half[i] - reference[i]), d8 = std::fabs(quarter[i] - reference[i]);
      max_fp16 = std::max(max_fp16, d16);
      max_int8 = std::max(max_int8, d8);
      sum_fp16 += d16;
      sum_int8 += d8;
    }
  }
  const double logits = static_cast<double>(tokens.size()) * c.vocab_size;
  EXPECT_LE(max_fp16, GetParam().fp16.max);
  EXPECT_LE(sum_fp16 / logits, GetParam().fp16.mean);
  EXPECT_LE(max_int8, GetParam().int8.max);
  EXPECT_LE(sum_int8 / logits, GetParam().int8.mean);
  // The formats do round: a cache that silently stayed f32 would pass the bounds.
  EXPECT_GT(max_fp16, 0.0f);
  EXPECT_GT(max_int8, max_fp16);
}

// Greedy decoding of `count` tokens after `prompt`, each cache feeding back its own choices.
std::vector<uint32_t> Greedy(const image::ImageView& view, const std::string& prompt, KvFormat format,
                             uint32_t count) {
  std::vector<uint32_t> tokens = host::EncodeText(view, prompt);
  tokens.insert(tokens.begin(), 1);
  const uint32_t prompt_tokens = static_cast<uint32_t>(tokens.size());
  Session session(view, prompt_tokens + count, format);
  const uint32_t vocab = view.model().vocab_size;
  for (uint32_t pos = 0; pos + 1 < prompt_tokens + count; ++pos) {
    const float* logits = session.engine.Forward(tokens[pos], pos);
    if (pos + 1 >= prompt_tokens) {
      tokens.push_back(static_cast<uint32_t>(std::max_element(logits, logits + vocab) - logits));
    }
  }
  return std::vector<uint32_t>(tokens.begin() + prompt_tokens, tokens.end());
}

// Holds for 64 tokens in all four cases. Measured further (240 tokens):
// fp16 stays equal for both models and int8 for kjv6M, while stories260K
// with int8 first departs at generated token 114.
TEST_P(KvCacheModels, Greedy64TokensEqualF32) {
  const std::vector<uint32_t> f32 = Greedy(view_, GetParam().prompt, KvFormat::kF32, 64);
  ASSERT_EQ(f32.size(), 64u);
  EXPECT_EQ(Greedy(view_, GetParam().prompt, KvFormat::kFp16, 64), f32);
  EXPECT_EQ(Greedy(view_, GetParam().prompt, KvFormat::kInt8, 64), f32);
}

INSTANTIATE_TEST_SUITE_P(Shared, KvCacheModels, ::testing::Values(kStories, kKjv),
                         [](const auto& info) { return std::string(info.param.name); });

// `qmc run --kv` reaches the engine: int8 prints f32's greedy text from a
// cache of int8's size.
TEST(KvCacheCli, RunTakesTheFormat) {
  if (!fs::exists(kKjv.checkpoint)) GTEST_SKIP() << "../shared/models is missing";
  const fs::path dir = fs::path(::testing::TempDir()) / ("qmc_kv_cli_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const std::vector<uint8_t> bytes = PackF32(kKjv.checkpoint, kKjv.tokenizer);
  host::WriteFileAtomically(dir / "kjv.qmc", bytes);
  const image::ModelConfig config = image::ImageView::OpenFile(bytes).value().model();
  // --ctx sizes the cache: 40 positions, not the model's 256.
  const std::string args = "run " + (dir / "kjv.qmc").string() + " -p 'And God said' -n 0 --ctx 40 -t 0 --kv ";
  const testing::CliRun f32 = testing::Qmc(args + "f32", dir), int8 = testing::Qmc(args + "int8", dir);
  ASSERT_EQ(f32.exit_code, 0) << f32.err;
  ASSERT_EQ(int8.exit_code, 0) << int8.err;
  EXPECT_EQ(int8.out, f32.out);
  EXPECT_GT(f32.out.size(), 60u);
  const std::string int8_bytes = "KV cache " + std::to_string(Engine::KvBytes(config, image::DefaultDetail(config), 40,
                                                                              KvFormat::kInt8)) +
                                 " bytes (int8, 40 positions)";
  EXPECT_NE(int8.err.find(int8_bytes), std::string::npos) << int8.err;
  EXPECT_EQ(testing::Qmc(args + "int4", dir).exit_code, 2);
  const testing::CliRun too_long = testing::Qmc("run " + (dir / "kjv.qmc").string() + " --ctx 257 -t 0", dir);
  EXPECT_EQ(too_long.exit_code, 1);
  EXPECT_NE(too_long.err.find("--ctx 257 exceeds the model's context of 256 positions"), std::string::npos) << too_long.err;
  fs::remove_all(dir);
}

}  // namespace
}  // namespace qmc
