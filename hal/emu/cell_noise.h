// Read errors of the emulated memories, drawn reproducibly from a seed
// (docs/device-model.md is the model as a whole).
//
// ReRAM (MLC): a c-bit cell stores one of 2^c levels. A read senses the
// level below the stored one with p_down, the level above with p_up (the
// device profile's numbers for c-bit cells, hal/emu/device_profile.h), else
// the stored level. The lowest level has no level below and the highest
// none above: such a move reads the level itself, so a cell at the lowest
// level changes with p_up only, one at the highest with p_down only. Moves
// of two levels or more are not modelled.
//
// Where p_down and p_up come from a Gaussian σ/Δ model (--reram-sigma): the
// levels are Δ apart, a read adds N(0, σ) and senses the nearest level, so
// with s = σ/Δ a cell reads one level off with
//
//     p = P(|N(0, σ)| > Δ/2) = erfc(Δ / (2√2 σ)) = erfc(1 / (2√2 s)),
//
// half of it down and half up (s = 0.25 gives p = 4.55 %, s = 0.5 31.7 %).
//
// MRAM (single-bit STT cells): each bit flips with the bit-error rate.
//
// Draws: the errors of a range come from one stream of random numbers,
// seeded by PassSeed from the board's seed, the window and where the range
// starts, so they do not depend on the order in which ranges are read; the
// host (host/device_noise.h) draws the same errors for the same ranges.
#pragma once

#include <cstdint>
#include <span>

#include "hal/emu/device_profile.h"

namespace qmc::hal::emu {

// p above; 0 for s = 0.
double LevelErrorProbability(double sigma_over_delta);

// The errors of the symmetric Gaussian model: {p/2, p/2}.
LevelErrors SymmetricLevelErrors(double sigma_over_delta);

// Applies level errors to each `cell_bits`-bit cell of `words` (32-bit
// little-endian words as docs/image-format.md packs them: 32/c cells per
// word, the top 2 bits of a 3-bit-cell word unused). words.size() is a
// multiple of 4 when cell_bits is 3.
void ApplyLevelNoise(std::span<uint8_t> words, uint8_t cell_bits, const LevelErrors& errors, uint64_t seed);

// Flips each bit of `bytes` with probability `p`.
void ApplyBitFlips(std::span<uint8_t> bytes, double p, uint64_t seed);

// The seed of the n-th draw of errors from the board's seed: draw 0 is the
// seed itself (programming errors, and what host/device_noise.h applies),
// read errors take draws 1, 2, ...
uint64_t DrawSeed(uint64_t seed, uint64_t draw);

// A seed for one range: a draw's seed mixed with where the range is, so a
// range's errors do not depend on the order of the passes.
uint64_t PassSeed(uint64_t seed, uint32_t window, uint64_t offset);

}  // namespace qmc::hal::emu
