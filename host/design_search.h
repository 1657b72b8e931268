// The QMC paper's power-constrained design search (Eq. 4): sweep the MRAM
// channels and ReRAM arrays a board's profile allows, keep the
// configurations whose peak read power
//   BW_MRAM (E_read,MRAM + E_net) + BW_ReRAM (E_read,ReRAM + E_net)
// stays within the budget, and pick the one with the lowest latency per
// token (all-in accounting; ties: the lower power).
#pragma once

#include <cstdint>
#include <string>

#include "host/board_profile.h"
#include "host/memsim.h"

namespace qmc::host {

struct SearchChoice {
  std::string scheme;
  std::string board;
  std::string mram_memory, reram_memory;
  uint32_t mram_channels = 0, reram_arrays = 0;
  double power_w = 0;
  double budget_w = 0;
  double latency_s = 0;
  uint64_t evaluated = 0;
  uint64_t within_budget = 0;
  bool found = false;
};

// The peak read power of `board`'s MRAM- and ReRAM-window memories with
// those unit counts, for a layout's cell mode.
double SearchPower(const BoardProfile& board, const ModelLayout& layout, uint32_t mram_units, uint32_t reram_units);

// Throws InputError when the board has no design_search parameters.
SearchChoice SearchDesign(const ModelLayout& layout, const BoardProfile& board, const Workload& workload);

// `board` with the choice's unit counts.
BoardProfile WithChoice(const BoardProfile& board, const SearchChoice& choice);

}  // namespace qmc::host
