#include "hal/emu/cell_noise.h"

#include <cmath>
#include <cstring>

namespace qmc::hal::emu {
namespace {

uint64_t SplitMix64(uint64_t& state) {
  uint64_t z = (state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// Visits the failing ones among `cells` Bernoulli(p) trials in order, by
// drawing the geometric gap to the next failure: cost proportional to the
// number of errors, not of cells. visit(cell, u) also gets a uniform u in
// [0, 1) for the error's direction.
template <typename Visit>
void ForEachError(uint64_t cells, double p, uint64_t seed, Visit&& visit) {
  if (!(p > 0.0)) return;
  uint64_t state = seed;
  const double log_keep = p < 1.0 ? std::log1p(-p) : 0.0;
  auto gap = [&]() -> uint64_t {
    if (p >= 1.0) return 0;
    const double u = static_cast<double>((SplitMix64(state) >> 11) + 1) * 0x1p-53;  // (0, 1]
    const double k = std::floor(std::log(u) / log_keep);
    return k < static_cast<double>(cells) ? static_cast<uint64_t>(k) : cells;
  };
  for (uint64_t cell = gap(); cell < cells; cell += 1 + gap()) {
    visit(cell, static_cast<double>(SplitMix64(state) >> 11) * 0x1p-53);
  }
}

uint32_t Step(uint32_t level, bool up, uint32_t top) {
  if (up) return level < top ? level + 1 : level;
  return level > 0 ? level - 1 : level;
}

}  // namespace

double LevelErrorProbability(double sigma_over_delta) {
  if (!(sigma_over_delta > 0.0)) return 0.0;
  return std::erfc(1.0 / (2.0 * std::sqrt(2.0) * sigma_over_delta));
}

LevelErrors SymmetricLevelErrors(double sigma_over_delta) {
  const double p = LevelErrorProbability(sigma_over_delta);
  return {p / 2, p / 2};
}

void ApplyLevelNoise(std::span<uint8_t> words, uint8_t cell_bits, const LevelErrors& errors, uint64_t seed) {
  // An error moves the cell up with probability p_up / (p_down + p_up), else down.
  const double p = errors.p_down + errors.p_up;
  const double up_share = p > 0.0 ? errors.p_up / p : 0.0;
  const uint32_t top = (1u << cell_bits) - 1u;
  if (cell_bits == 3) {  // ten cells per word, straddling bytes
    ForEachError(words.size() / 4 * 10, p, seed, [&](uint64_t cell, double u) {
      uint8_t* at = words.data() + cell / 10 * 4;
      const uint32_t shift = static_cast<uint32_t>(cell % 10) * 3;
      uint32_t word;
      std::memcpy(&word, at, 4);
      const uint32_t level = (word >> shift) & top;
      word = (word & ~(top << shift)) | (Step(level, u < up_share, top) << shift);
      std::memcpy(at, &word, 4);
    });
    return;
  }
  // 1- and 2-bit cells never straddle a byte, and little-endian words hold
  // them in byte order.
  const uint32_t per_byte = 8u / cell_bits;
  ForEachError(words.size() * per_byte, p, seed, [&](uint64_t cell, double u) {
    uint8_t& byte = words[cell / per_byte];
    const uint32_t shift = static_cast<uint32_t>(cell % per_byte) * cell_bits;
    const uint32_t level = (byte >> shift) & top;
    byte = static_cast<uint8_t>((byte & ~(top << shift)) | (Step(level, u < up_share, top) << shift));
  });
}

void ApplyBitFlips(std::span<uint8_t> bytes, double p, uint64_t seed) {
  ForEachError(bytes.size() * 8, p, seed,
               [&](uint64_t bit, double) { bytes[bit / 8] ^= static_cast<uint8_t>(1u << (bit % 8)); });
}

uint64_t DrawSeed(uint64_t seed, uint64_t draw) {
  if (draw == 0) return seed;
  uint64_t state = seed ^ (draw * 0xD1B54A32D192ED03ull);
  return SplitMix64(state);
}

uint64_t PassSeed(uint64_t seed, uint32_t window, uint64_t offset) {
  uint64_t state = seed;
  state = SplitMix64(state) ^ (static_cast<uint64_t>(window) << 56) ^ offset;  // offsets are < 2^56
  return SplitMix64(state);
}

}  // namespace qmc::hal::emu
