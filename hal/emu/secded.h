// SECDED over MRAM words, as an MRAM macro with ECC has it: an extended
// Hamming(72,64) code, 8 check bits beside every aligned 64-bit word of the
// window. A read corrects any single bit error in the 72 bits and detects
// any double one (docs/device-model.md, "MRAM ECC"). Three or more errors in
// a word may be miscorrected or pass unseen; the emulator, which knows the
// stored bits, counts those too.
//
// The code: the 72 bits are Hamming positions 1..71 plus an overall parity
// bit. Check bit j (j = 0..6) sits at position 2^j and covers every position
// with bit j set; the 64 data bits fill the other positions in order (data
// bit 0 at position 3, bit 1 at 5, ...). The check byte holds check bits
// 0..6 in its bits 0..6 and the overall parity of data and checks in bit 7.
#pragma once

#include <cstdint>
#include <span>

namespace qmc::hal::emu {

// The check byte of a stored 64-bit word (data bit i is bit i of the
// little-endian word).
uint8_t SecdedCheck(uint64_t data);

enum class SecdedOutcome {
  kClean,          // syndrome zero: taken as no error
  kCorrected,      // one error: corrected (in the data, or it was a check bit)
  kUncorrectable,  // two (or more) errors detected: the data is returned as read
};

// Decodes a word as read (`data` and `check`, errors included) in place.
SecdedOutcome SecdedDecode(uint64_t& data, uint8_t check);

// What the ECC did over the words it decoded.
struct SecdedCounts {
  uint64_t words = 0;          // decoded (every word a read pass touched)
  uint64_t corrected = 0;      // kCorrected
  uint64_t uncorrectable = 0;  // kUncorrectable: detected, data left with its errors
  uint64_t silent = 0;         // kClean or kCorrected, yet the data differs from what is stored
};

// MRAM read errors on one read pass: `read` holds a copy of `stored`, the
// bytes at window offset `offset`; each bit flips with probability `ber`,
// drawn exactly as ApplyBitFlips(read, ber, seed) draws them, so a run with
// and one without ECC see the same data errors. With `secded`, the check
// bits of every aligned 64-bit word the range touches also flip with `ber`
// (from a stream of their own), and each word is decoded; `counts` adds up
// the outcomes. Bytes of a touched word outside the range are structure the
// model keeps exact; the code is linear, so they do not change a decision.
void ApplyMramBitErrors(std::span<const uint8_t> stored, std::span<uint8_t> read, uint64_t offset, double ber,
                        bool secded, uint64_t seed, SecdedCounts& counts);

}  // namespace qmc::hal::emu
