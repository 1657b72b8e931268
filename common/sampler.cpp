#include "common/sampler.h"

#include <algorithm>

#include "common/arena.h"
#include "common/softmax.h"

namespace qmc {

size_t Sampler::WorkspaceBytes(uint32_t vocab_size) {
  return Arena::kStartPadding + Arena::Footprint<float>(vocab_size) + Arena::Footprint<ProbIndex>(vocab_size);
}

Status Sampler::Init(uint32_t vocab_size, float temperature, float topp, uint64_t seed, std::span<uint8_t> workspace) {
  if (vocab_size == 0) return Error(StatusCode::kInvalidValue, "sampler vocabulary is empty");
  if (!(temperature >= 0.0f)) return Error(StatusCode::kInvalidValue, "temperature is negative or not a number");
  if (topp != topp) return Error(StatusCode::kInvalidValue, "top-p is not a number");
  if (seed == 0) return Error(StatusCode::kInvalidValue, "sampler seed is zero");
  if (workspace.size() < WorkspaceBytes(vocab_size)) return Error(StatusCode::kTooLarge, "sampler workspace too small");
  Arena arena(workspace);
  probs_ = arena.Allocate<float>(vocab_size);
  candidates_ = arena.Allocate<ProbIndex>(vocab_size);
  vocab_size_ = vocab_size;
  temperature_ = temperature;
  topp_ = topp;
  state_ = seed;
  return Status::Ok();
}

uint32_t Sampler::RandomU32(uint64_t& state) {
  state ^= state >> 12;
  state ^= state << 25;
  state ^= state >> 27;
  return static_cast<uint32_t>((state * 0x2545F4914F6CDD1Dull) >> 32);
}

float Sampler::RandomF32(uint64_t& state) { return static_cast<float>(RandomU32(state) >> 8) / 16777216.0f; }

uint32_t Sampler::Sample(const float* logits) {
  if (temperature_ == 0.0f) return Argmax(logits);
  for (uint32_t i = 0; i < vocab_size_; ++i) probs_[i] = logits[i] / temperature_;
  Softmax(probs_, vocab_size_);
  const float coin = RandomF32(state_);
  if (topp_ <= 0.0f || topp_ >= 1.0f) return SampleMultinomial(coin);
  return SampleTopP(coin);
}

// The first of equal maxima.
uint32_t Sampler::Argmax(const float* values) const {
  uint32_t best = 0;
  for (uint32_t i = 1; i < vocab_size_; ++i) {
    if (values[i] > values[best]) best = i;
  }
  return best;
}

uint32_t Sampler::SampleMultinomial(float coin) const {
  float cdf = 0.0f;
  for (uint32_t i = 0; i < vocab_size_; ++i) {
    cdf += probs_[i];
    if (coin < cdf) return i;
  }
  return vocab_size_ - 1;  // rounding left the sum short of the coin
}

// Samples from the smallest set of most likely tokens whose probability
// exceeds topp. Tokens below (1 - topp) / (n - 1) can never be in that set,
// so they are dropped before sorting (run.c's shortcut).
uint32_t Sampler::SampleTopP(float coin) {
  auto gather = [this](float cutoff) {
    uint32_t n = 0;
    for (uint32_t i = 0; i < vocab_size_; ++i) {
      if (probs_[i] >= cutoff) candidates_[n++] = {probs_[i], i};
    }
    return n;
  };
  uint32_t n = gather((1.0f - topp_) / static_cast<float>(vocab_size_ - 1));
  // The shortcut can drop every token when vocab_size * topp < 1 (run.c then
  // reads before its buffer); the nucleus is taken from all tokens instead.
  if (n == 0) n = gather(0.0f);
  // Descending probability; equal ones in index order, so runs are reproducible.
  std::sort(candidates_, candidates_ + n, [](const ProbIndex& a, const ProbIndex& b) {
    return a.prob > b.prob || (a.prob == b.prob && a.index < b.index);
  });
  float cumulative = 0.0f;
  uint32_t last = n - 1;
  for (uint32_t i = 0; i < n; ++i) {
    cumulative += candidates_[i].prob;
    if (cumulative > topp_) {
      last = i;
      break;
    }
  }
  const float r = coin * cumulative;
  float cdf = 0.0f;
  for (uint32_t i = 0; i <= last; ++i) {
    cdf += candidates_[i].prob;
    if (r < cdf) return candidates_[i].index;
  }
  return candidates_[last].index;
}

}  // namespace qmc
