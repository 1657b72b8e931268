#include "common/sampler.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

namespace qmc {
namespace {

// llama2.c run.c's sampling, transcribed plainly (qsort's order for equal
// probabilities is unspecified; a stable sort keeps index order).
struct ReferenceSampler {
  float temperature;
  float topp;
  unsigned long long rng_state;

  static unsigned int random_u32(unsigned long long* state) {
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    return (*state * 0x2545F4914F6CDD1Dull) >> 32;
  }
  static float random_f32(unsigned long long* state) { return (random_u32(state) >> 8) / 16777216.0f; }

  static void softmax(float* x, int size) {
    float max_val = x[0];
    for (int i = 1; i < size; i++) {
      if (x[i] > max_val) max_val = x[i];
    }
    float sum = 0.0f;
    for (int i = 0; i < size; i++) {
      x[i] = expf(x[i] - max_val);
      sum += x[i];
    }
    for (int i = 0; i < size; i++) x[i] /= sum;
  }

  static int sample_argmax(const float* probabilities, int n) {
    int max_i = 0;
    float max_p = probabilities[0];
    for (int i = 1; i < n; i++) {
      if (probabilities[i] > max_p) {
        max_i = i;
        max_p = probabilities[i];
      }
    }
    return max_i;
  }

  static int sample_mult(const float* probabilities, int n, float coin) {
    float cdf = 0.0f;
    for (int i = 0; i < n; i++) {
      cdf += probabilities[i];
      if (coin < cdf) return i;
    }
    return n - 1;
  }

  static int sample_topp(const float* probabilities, int n, float topp, float coin) {
    struct ProbIndex {
      float prob;
      int index;
    };
    std::vector<ProbIndex> probindex;
    const float cutoff = (1.0f - topp) / (n - 1);
    for (int i = 0; i < n; i++) {
      if (probabilities[i] >= cutoff) probindex.push_back({probabilities[i], i});
    }
    std::stable_sort(probindex.begin(), probindex.end(), [](const ProbIndex& a, const ProbIndex& b) { return a.prob > b.prob; });
    const int n0 = static_cast<int>(probindex.size());
    float cumulative_prob = 0.0f;
    int last_idx = n0 - 1;
    for (int i = 0; i < n0; i++) {
      cumulative_prob += probindex[i].prob;
      if (cumulative_prob > topp) {
        last_idx = i;
        break;
      }
    }
    float r = coin * cumulative_prob;
    float cdf = 0.0f;
    for (int i = 0; i <= last_idx; i++) {
      cdf += probindex[i].prob;
      if (r < cdf) return probindex[i].index;
    }
    return probindex[last_idx].index;
  }

  int sample(std::vector<float> logits) {
    const int n = static_cast<int>(logits.size());
    if (temperature == 0.0f) return sample_argmax(logits.data(), n);
    for (int q = 0; q < n; q++) logits[q] /= temperature;
    softmax(logits.data(), n);
    float coin = random_f32(&rng_state);
    if (topp <= 0 || topp >= 1) return sample_mult(logits.data(), n, coin);
    return sample_topp(logits.data(), n, topp, coin);
  }
};

struct OwnedSampler {
  OwnedSampler(uint32_t vocab, float temperature, float topp, uint64_t seed)
      : workspace(Sampler::WorkspaceBytes(vocab)) {
    const Status status = sampler.Init(vocab, temperature, topp, seed, workspace);
    EXPECT_TRUE(status.ok()) << status.what;
  }
  std::vector<uint8_t> workspace;
  Sampler sampler;
};

TEST(Sampler, GeneratorIsRunCs) {
  uint64_t state = 1234567;
  unsigned long long reference = 1234567;
  for (int i = 0; i < 10000; ++i) {
    ASSERT_EQ(Sampler::RandomU32(state), ReferenceSampler::random_u32(&reference));
    ASSERT_EQ(Sampler::RandomF32(state), ReferenceSampler::random_f32(&reference));
  }
  // xorshift64* of state 1: the first output, computed by hand.
  uint64_t one = 1;
  EXPECT_EQ(Sampler::RandomU32(one), static_cast<uint32_t>((0x2000001ull ^ (0x2000001ull >> 27)) * 0x2545F4914F6CDD1Dull >> 32));
}

TEST(Sampler, GreedyTakesTheFirstMaximum) {
  OwnedSampler s(5, 0.0f, 0.9f, 1);
  const float logits[] = {1.0f, 3.0f, -2.0f, 3.0f, 2.9f};
  EXPECT_EQ(s.sampler.Sample(logits), 1u);
  const float negative[] = {-5.0f, -4.0f, -4.0f, -9.0f, -4.5f};
  EXPECT_EQ(s.sampler.Sample(negative), 1u);
}

// Token by token the same draws as run.c, for temperatures and top-p values
// covering every path, on peaked and flat logits.
TEST(Sampler, DrawsExactlyWhatRunCDraws) {
  std::mt19937 rng(3);
  for (const uint32_t vocab : {32u, 512u, 2048u}) {
    for (const float temperature : {0.0f, 0.5f, 1.0f, 1.7f}) {
      for (const float topp : {0.0f, 0.1f, 0.5f, 0.9f, 0.99f, 1.0f}) {
        for (const float spread : {0.3f, 3.0f}) {
          const uint64_t seed = rng() | 1u;
          OwnedSampler s(vocab, temperature, topp, seed);
          ReferenceSampler reference{temperature, topp, seed};
          std::normal_distribution<float> normal(0.0f, spread);
          for (int step = 0; step < 200; ++step) {
            std::vector<float> logits(vocab);
            for (float& l : logits) l = normal(rng);
            ASSERT_EQ(s.sampler.Sample(logits.data()), static_cast<uint32_t>(reference.sample(logits)))
                << "vocab " << vocab << " temperature " << temperature << " topp " << topp << " step " << step;
          }
        }
      }
    }
  }
}

TEST(Sampler, MultinomialFollowsTheDistribution) {
  const std::vector<float> probs = {0.5f, 0.25f, 0.125f, 0.125f};
  std::vector<float> logits;
  for (float p : probs) logits.push_back(std::log(p));
  OwnedSampler s(4, 1.0f, 1.0f, 99);
  std::vector<int> counts(4, 0);
  const int draws = 40000;
  for (int i = 0; i < draws; ++i) ++counts[s.sampler.Sample(logits.data())];
  for (size_t i = 0; i < probs.size(); ++i) EXPECT_NEAR(counts[i] / static_cast<double>(draws), probs[i], 0.01) << i;
}

TEST(Sampler, TopPKeepsOnlyTheNucleus) {
  // Probabilities 0.6, 0.3, 0.1: top-p 0.5 keeps the first, 0.8 the first two.
  const float logits[] = {std::log(0.3f), std::log(0.1f), std::log(0.6f)};
  for (const auto& [topp, allowed] : {std::pair<float, std::vector<uint32_t>>{0.5f, {2}}, {0.8f, {2, 0}}}) {
    OwnedSampler s(3, 1.0f, topp, 7);
    std::vector<int> counts(3, 0);
    for (int i = 0; i < 3000; ++i) ++counts[s.sampler.Sample(logits)];
    for (uint32_t t = 0; t < 3; ++t) {
      const bool in = std::find(allowed.begin(), allowed.end(), t) != allowed.end();
      EXPECT_EQ(counts[t] > 0, in) << "topp " << topp << " token " << t;
    }
  }
}

// With vocab_size * topp < 1 run.c's cutoff drops every token; the sampler
// still draws from the nucleus.
TEST(Sampler, TopPSurvivesACutoffThatDropsEverything) {
  const float logits[] = {0.0f, 0.0f};
  OwnedSampler s(2, 1.0f, 0.1f, 5);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(s.sampler.Sample(logits), 0u);
}

TEST(Sampler, SeedReproducesAndRejectsBadSettings) {
  std::vector<float> logits(64);
  for (size_t i = 0; i < logits.size(); ++i) logits[i] = std::sin(static_cast<float>(i));
  OwnedSampler a(64, 1.0f, 0.9f, 42), b(64, 1.0f, 0.9f, 42), c(64, 1.0f, 0.9f, 43);
  std::vector<uint32_t> ta, tb, tc;
  for (int i = 0; i < 50; ++i) {
    ta.push_back(a.sampler.Sample(logits.data()));
    tb.push_back(b.sampler.Sample(logits.data()));
    tc.push_back(c.sampler.Sample(logits.data()));
  }
  EXPECT_EQ(ta, tb);
  EXPECT_NE(ta, tc);

  std::vector<uint8_t> workspace(Sampler::WorkspaceBytes(64));
  Sampler s;
  EXPECT_EQ(s.Init(64, 1.0f, 0.9f, 0, workspace).code, StatusCode::kInvalidValue);
  EXPECT_EQ(s.Init(64, -1.0f, 0.9f, 1, workspace).code, StatusCode::kInvalidValue);
  EXPECT_EQ(s.Init(64, 1.0f, 0.9f, 1, std::span(workspace).first(workspace.size() - 1)).code, StatusCode::kTooLarge);
}

}  // namespace
}  // namespace qmc
