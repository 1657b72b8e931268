#include "hal/emu/code_errors.h"

#include <numeric>
#include <stdexcept>
#include <vector>

namespace qmc::hal::emu {
namespace {

struct Sums {
  double p_error = 0.0;
  double mean_square = 0.0;
  double p_not_unit = 0.0;
};

uint32_t Bits(uint32_t level, CellMapping mapping) {
  return mapping == CellMapping::kGray ? level ^ (level >> 1) : level;
}

// The code at stream bits [phase, phase + code_bits) of cells `levels`.
int64_t CodeOf(const std::vector<uint32_t>& levels, uint32_t phase, uint32_t code_bits, uint32_t cell_bits,
               CellMapping mapping) {
  uint64_t stream = 0;
  for (size_t j = 0; j < levels.size(); ++j) stream |= static_cast<uint64_t>(Bits(levels[j], mapping)) << (j * cell_bits);
  return static_cast<int64_t>((stream >> phase) & ((uint64_t{1} << code_bits) - 1u));
}

// Adds, for one content of the cells, every combination of the cells' read
// outcomes (stay, one down, one up) weighted by its probability.
void AddOutcomes(const LevelErrors& cell, const std::vector<uint32_t>& stored, uint32_t phase, uint32_t code_bits,
                 uint32_t cell_bits, CellMapping mapping, double weight, Sums& sums) {
  const uint32_t top = (1u << cell_bits) - 1u;
  const int64_t code = CodeOf(stored, phase, code_bits, cell_bits, mapping);
  std::vector<uint32_t> read = stored;
  // Depth-first over the cells: each moves -1, 0 or +1 with its probability.
  auto visit = [&](auto& self, size_t j, double p) -> void {
    if (p == 0.0) return;
    if (j == stored.size()) {
      const int64_t d = CodeOf(read, phase, code_bits, cell_bits, mapping) - code;
      if (d == 0) return;
      sums.p_error += weight * p;
      sums.mean_square += weight * p * static_cast<double>(d * d);
      if (d > 1 || d < -1) sums.p_not_unit += weight * p;
      return;
    }
    const double down = stored[j] > 0 ? cell.p_down : 0.0;
    const double up = stored[j] < top ? cell.p_up : 0.0;
    self(self, j + 1, p * (1.0 - down - up));
    if (down > 0.0) {
      read[j] = stored[j] - 1;
      self(self, j + 1, p * down);
    }
    if (up > 0.0) {
      read[j] = stored[j] + 1;
      self(self, j + 1, p * up);
    }
    read[j] = stored[j];
  };
  visit(visit, 0, 1.0);
}

}  // namespace

CodeErrorStats CodeErrors(const LevelErrors& cell, uint32_t code_bits, uint32_t cell_bits) {
  return CodeErrors(cell, code_bits, cell_bits, CellMapping::kBinary);
}

CodeErrorStats CodeErrors(const LevelErrors& cell, uint32_t code_bits, uint32_t cell_bits, CellMapping mapping) {
  if (code_bits < 1 || code_bits > 8) throw std::invalid_argument("CodeErrors: code_bits must be 1 to 8");
  if (cell_bits < 1 || cell_bits > 3) throw std::invalid_argument("CodeErrors: cell_bits must be 1 to 3");
  // A long stream puts code k's first bit at k·b mod c: the multiples of
  // gcd(b, c) below c, equally often.
  const uint32_t step = std::gcd(code_bits, cell_bits);
  const uint32_t phases = cell_bits / step;
  Sums sums;
  for (uint32_t phase = 0; phase < cell_bits; phase += step) {
    const uint32_t cells = (phase + code_bits + cell_bits - 1) / cell_bits;
    const uint64_t contents = uint64_t{1} << (cells * cell_bits);
    const double weight = 1.0 / (static_cast<double>(phases) * static_cast<double>(contents));
    std::vector<uint32_t> levels(cells);
    for (uint64_t content = 0; content < contents; ++content) {
      for (uint32_t j = 0; j < cells; ++j) levels[j] = static_cast<uint32_t>(content >> (j * cell_bits)) & ((1u << cell_bits) - 1u);
      AddOutcomes(cell, levels, phase, code_bits, cell_bits, mapping, weight, sums);
    }
  }
  return {sums.p_error, sums.mean_square, sums.p_error > 0.0 ? sums.p_not_unit / sums.p_error : 0.0};
}

}  // namespace qmc::hal::emu
