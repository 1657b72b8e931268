// The engine's memory contract and its refusals (its numbers are held to a
// reference in engine_reference_test.cpp).
#include "common/engine.h"

#include <gtest/gtest.h>

#include "common/model_tensors.h"

#include <cstring>
#include <vector>

#include "host/pack.h"
#include "tests/tiny_model.h"

namespace qmc {
namespace {

std::vector<uint8_t> TinyImage() { return host::PackModel(testing::TinyCheckpoint(), {}).image; }

image::ImageView View(const std::vector<uint8_t>& bytes) {
  const Result<image::ImageView> view = image::ImageView::OpenFile(bytes);
  EXPECT_TRUE(view.ok());
  return view.value();
}

// The arena size published from the header is enough however the caller's
// span is aligned, and is what the engine uses.
TEST(Engine, ArenaBytesSufficeAtEveryAlignment) {
  const std::vector<uint8_t> bytes = TinyImage();
  const image::ImageView view = View(bytes);
  const size_t need = Engine::ArenaBytes(view.model(), view.detail(), view.model().seq_len);
  std::vector<uint8_t> arena(need + 16), kv(Engine::KvBytes(view.model(), view.detail(), 4));
  for (size_t skew = 0; skew < 16; ++skew) {
    Engine engine;
    ASSERT_TRUE(engine.Init(view, std::span(arena).subspan(skew, need), kv).ok()) << skew;
    EXPECT_NE(engine.Forward(1, 0), nullptr);
    EXPECT_LE(engine.arena().high_water(), need);
    EXPECT_GT(engine.arena().high_water() + Arena::kAlignment * 12, need);  // and barely more than it uses
  }
}

TEST(Engine, ContextIsWhatTheKvCacheHolds) {
  const std::vector<uint8_t> bytes = TinyImage();
  const image::ImageView view = View(bytes);
  const image::ModelConfig& c = view.model();
  EXPECT_EQ(Engine::KvBytes(c, image::DefaultDetail(c), 3), 2u * c.n_layers * 3 * c.n_kv_heads * c.head_dim * sizeof(float));
  std::vector<uint8_t> arena(Engine::ArenaBytes(c, image::DefaultDetail(c), c.seq_len)), kv(Engine::KvBytes(c, image::DefaultDetail(c), 3) + 5);
  Engine engine;
  ASSERT_TRUE(engine.Init(view, arena, kv).ok());
  EXPECT_EQ(engine.context(), 3u);
  for (uint32_t pos = 0; pos < 3; ++pos) EXPECT_NE(engine.Forward(2, pos), nullptr);
  EXPECT_EQ(engine.Forward(2, 3), nullptr);
  EXPECT_EQ(engine.Forward(c.vocab_size, 0), nullptr);

  // More cache than the model's seq_len is not used.
  std::vector<uint8_t> big(Engine::KvBytes(c, image::DefaultDetail(c), c.seq_len + 10));
  ASSERT_TRUE(engine.Init(view, arena, big).ok());
  EXPECT_EQ(engine.context(), c.seq_len);
}

TEST(Engine, SameTokensSameLogits) {
  const std::vector<uint8_t> bytes = TinyImage();
  const image::ImageView view = View(bytes);
  const image::ModelConfig& c = view.model();
  std::vector<uint8_t> arena(Engine::ArenaBytes(c, image::DefaultDetail(c), c.seq_len)), kv(Engine::KvBytes(c, image::DefaultDetail(c), c.seq_len));
  std::vector<std::vector<float>> runs[2];
  for (auto& run : runs) {
    Engine engine;
    ASSERT_TRUE(engine.Init(view, arena, kv).ok());
    for (uint32_t pos = 0; pos < c.seq_len; ++pos) {
      const float* logits = engine.Forward((pos * 7 + 1) % c.vocab_size, pos);
      run.emplace_back(logits, logits + c.vocab_size);
    }
  }
  EXPECT_EQ(runs[0], runs[1]);
  EXPECT_NE(runs[0][0], runs[0][1]);
}

TEST(Engine, RefusesTooLittleMemoryAndAMisorderedDirectory) {
  std::vector<uint8_t> bytes = TinyImage();
  const image::ImageView view = View(bytes);
  const image::ModelConfig& c = view.model();
  std::vector<uint8_t> arena(Engine::ArenaBytes(c, view.detail(), 1)), kv(Engine::KvBytes(c, view.detail(), 1));
  Engine engine;
  ASSERT_TRUE(engine.Init(view, arena, kv).ok());
  // A failed Init leaves an engine that refuses to run.
  EXPECT_EQ(engine.Init(view, std::span(arena).first(arena.size() - 1), kv).code, StatusCode::kTooLarge);
  EXPECT_EQ(engine.Forward(1, 0), nullptr);
  EXPECT_EQ(engine.Init(view, arena, std::span(kv).first(kv.size() - 1)).code, StatusCode::kTooLarge);
  EXPECT_EQ(engine.Forward(1, 0), nullptr);

  // Rename blk.0.attn_q.weight in place (the directory CRC is not Init's business).
  const uint32_t directory = 0;
  ASSERT_EQ(view.section(directory).kind, static_cast<uint8_t>(image::SectionKind::kTensorDirectory));
  uint8_t* entry = bytes.data() + view.section(directory).file_offset + 2 * sizeof(image::TensorEntry);
  ASSERT_EQ(std::strcmp(reinterpret_cast<char*>(entry), "blk.0.attn_q.weight"), 0);
  entry[6] = 'X';
  const Status status = engine.Init(view, arena, kv);
  EXPECT_EQ(status.code, StatusCode::kMissing);
  EXPECT_EQ(status.index, 2u);
  EXPECT_EQ(engine.Forward(1, 0), nullptr);
}

}  // namespace
}  // namespace qmc
