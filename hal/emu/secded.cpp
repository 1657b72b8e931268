#include "hal/emu/secded.h"

#include <algorithm>
#include <bit>
#include <vector>

#include "hal/emu/cell_noise.h"

namespace qmc::hal::emu {
namespace {

struct Code {
  int8_t data_bit_at[128];  // Hamming position -> data bit, -1 for check positions and past 71
  uint64_t covers[7];       // data bits check bit j covers
};

constexpr Code MakeCode() {
  Code code{};
  for (int8_t& d : code.data_bit_at) d = -1;
  int bit = 0;
  for (int position = 1; position <= 71; ++position) {
    if ((position & (position - 1)) == 0) continue;  // 1, 2, 4, ..., 64: check bits
    code.data_bit_at[position] = static_cast<int8_t>(bit);
    for (int j = 0; j < 7; ++j) {
      if ((position >> j) & 1) code.covers[j] |= uint64_t{1} << bit;
    }
    ++bit;
  }
  return code;
}

constexpr Code kCode = MakeCode();

uint32_t Parity(uint64_t x) { return static_cast<uint32_t>(std::popcount(x)) & 1u; }

// The check bits' own error stream: not a window number, so no range's data stream shares it.
constexpr uint32_t kCheckBitStream = 0xEC;

}  // namespace

uint8_t SecdedCheck(uint64_t data) {
  uint32_t check = 0;
  for (int j = 0; j < 7; ++j) check |= Parity(data & kCode.covers[j]) << j;
  check |= (Parity(data) ^ Parity(check)) << 7;
  return static_cast<uint8_t>(check);
}

SecdedOutcome SecdedDecode(uint64_t& data, uint8_t check) {
  const uint32_t syndrome = (SecdedCheck(data) ^ check) & 0x7Fu;
  const bool odd = (Parity(data) ^ Parity(check)) != 0;  // an odd number of the 72 bits flipped
  if (!odd) return syndrome == 0 ? SecdedOutcome::kClean : SecdedOutcome::kUncorrectable;
  if ((syndrome & (syndrome - 1)) == 0) return SecdedOutcome::kCorrected;  // the parity bit or a check bit
  const int bit = kCode.data_bit_at[syndrome];
  if (bit < 0) return SecdedOutcome::kUncorrectable;  // no such position: three or more errors
  data ^= uint64_t{1} << bit;
  return SecdedOutcome::kCorrected;
}

void ApplyMramBitErrors(std::span<const uint8_t> stored, std::span<uint8_t> read, uint64_t offset, double ber,
                        bool secded, uint64_t seed, SecdedCounts& counts) {
  ApplyBitFlips(read, ber, seed);
  if (!secded || read.empty()) return;
  const uint64_t first = offset / 8, end = (offset + read.size() + 7) / 8;
  std::vector<uint8_t> check_errors(end - first, 0);
  ApplyBitFlips(check_errors, ber, PassSeed(seed, kCheckBitStream, offset));
  counts.words += end - first;
  for (uint64_t w = first; w < end; ++w) {
    // The word's bytes inside the range, as indexes into it.
    const uint64_t lo = std::max(w * 8, offset) - offset, hi = std::min(w * 8 + 8, offset + read.size()) - offset;
    const uint8_t check_error = check_errors[w - first];
    if (check_error == 0 && std::equal(read.begin() + lo, read.begin() + hi, stored.begin() + lo)) continue;
    // Bytes outside the range count as zero in both the stored and the read word.
    uint64_t stored_word = 0, read_word = 0, in_range = 0;
    for (uint64_t i = lo; i < hi; ++i) {
      const uint32_t shift = static_cast<uint32_t>((offset + i) % 8) * 8;
      stored_word |= uint64_t{stored[i]} << shift;
      read_word |= uint64_t{read[i]} << shift;
      in_range |= uint64_t{0xFF} << shift;
    }
    const SecdedOutcome outcome = SecdedDecode(read_word, SecdedCheck(stored_word) ^ check_error);
    for (uint64_t i = lo; i < hi; ++i) read[i] = static_cast<uint8_t>(read_word >> ((offset + i) % 8 * 8));
    if (outcome == SecdedOutcome::kCorrected) ++counts.corrected;
    if (outcome == SecdedOutcome::kUncorrectable) ++counts.uncorrectable;
    if (outcome != SecdedOutcome::kUncorrectable && ((read_word ^ stored_word) & in_range) != 0) ++counts.silent;
  }
}

}  // namespace qmc::hal::emu
