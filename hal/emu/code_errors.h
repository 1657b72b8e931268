// What a ReRAM cell error does to the codes stored across the cells.
//
// Codes of b bits are packed as one bit stream into c-bit cells
// (common/quant_layout.h, docs/image-format.md): code k at stream bits
// [k·b, k·b + b), cell j holding stream bits [j·c, j·c + c), least
// significant bit first. A cell error moves the cell's level by one
// (hal/emu/cell_noise.h: down with p_down, up with p_up, never past the
// lowest or highest level), which changes one or more of the cell's bits,
// and so one or more bits of the codes sharing the cell.
//
// CodeErrors computes exactly, by enumeration, what one stored code reads
// back as: averaged over the code's alignment phases against the cell grid
// (the k·b mod c a long stream takes, each equally often) and over all
// contents of the cells it touches (every stream bit uniform and
// independent), with every touching cell read independently — no first-order
// approximation: two cells of one code in error at once are counted with
// their probability. docs/device-model.md tabulates the results.
#pragma once

#include <cstdint>

#include "hal/emu/device_profile.h"

namespace qmc::hal::emu {

struct CodeErrorStats {
  double p_error;             // P(a stored code reads back different)
  double mean_square_levels;  // E[(read code - stored code)^2], in code levels
  double p_not_unit;          // P(|read - stored| > 1 | read != stored); 0 when p_error is 0
};

// How a cell's c stream bits map to its level: kBinary is the image format's
// (the bits are the level, as common/quant_layout.h packs them); kGray is a
// what-if, level l holding the bits l ^ (l >> 1), so neighbouring levels
// differ in one bit. Nothing packs kGray; it is measured for the docs.
enum class CellMapping { kBinary, kGray };

// code_bits 1..8, cell_bits 1..3; throws std::invalid_argument otherwise.
CodeErrorStats CodeErrors(const LevelErrors& cell, uint32_t code_bits, uint32_t cell_bits);
CodeErrorStats CodeErrors(const LevelErrors& cell, uint32_t code_bits, uint32_t cell_bits, CellMapping mapping);

}  // namespace qmc::hal::emu
