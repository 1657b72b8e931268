// Read errors of the emulated memories, drawn reproducibly from a seed.
//
// ReRAM (MLC): a c-bit cell stores one of 2^c conductance levels spaced Δ
// apart; reading adds Gaussian noise N(0, σ) and senses the nearest level.
// The cell reads one level off when |noise| > Δ/2, so with s = σ/Δ
//
//     p = P(|N(0, σ)| > Δ/2) = erfc(Δ / (2√2 σ)) = erfc(1 / (2√2 s)),
//
// e.g. s = 0.25 gives p = 4.55 %, s = 0.5 gives 31.7 %. The level moves up
// or down with equal odds; the lowest and highest levels have a neighbour on
// one side only, so a move off the scale reads the level itself (clamped to
// [0, 2^c − 1]): an edge cell changes with probability p/2. Moves of two
// levels or more (noise beyond 3Δ/2) are not modelled.
//
// MRAM (single-bit STT cells): each bit flips with the bit-error rate.
#pragma once

#include <cstdint>
#include <span>

namespace qmc::hal::emu {

// p above; 0 for s = 0.
double LevelErrorProbability(double sigma_over_delta);

// Moves each `cell_bits`-bit cell of `words` (32-bit little-endian words as
// docs/image-format.md packs them: 32/c cells per word, the top 2 bits of a
// 3-bit-cell word unused) one level up or down with probability `p`.
// words.size() is a multiple of 4 when cell_bits is 3.
void ApplyLevelNoise(std::span<uint8_t> words, uint8_t cell_bits, double p, uint64_t seed);

// Flips each bit of `bytes` with probability `p`.
void ApplyBitFlips(std::span<uint8_t> bytes, double p, uint64_t seed);

// A seed for one read pass: the board's seed mixed with where the pass
// reads, so a range's noise does not depend on the order of the passes.
uint64_t PassSeed(uint64_t seed, uint32_t window, uint64_t offset);

}  // namespace qmc::hal::emu
