#include "host/design_search.h"

#include "host/checkpoint.h"

namespace qmc::host {
namespace {

using image::Window;

int MemoryOf(const BoardProfile& b, Window w) { return b.window_memory[static_cast<uint32_t>(w)]; }

}  // namespace

double SearchPower(const BoardProfile& board, const ModelLayout& layout, uint32_t mram_units, uint32_t reram_units) {
  const double e_net = board.search ? board.search->e_net_pj_per_bit : 0.0;
  double watts = 0;
  for (const auto& [w, units] : {std::pair{Window::kMram, mram_units}, std::pair{Window::kReram, reram_units}}) {
    const Memory& m = board.memories.at(MemoryOf(board, w));
    const uint32_t mode = m.Mode(layout.window_cell_bits[static_cast<uint32_t>(w)], board.name);
    watts += m.BytesPerSecond(mode, units) * 8.0 * (m.read_energy_pj_per_bit(mode) + e_net) * 1e-12;
  }
  return watts;
}

BoardProfile WithChoice(const BoardProfile& board, const SearchChoice& c) {
  BoardProfile b = board;
  b.memories.at(MemoryOf(board, Window::kMram)).units = c.mram_channels;
  b.memories.at(MemoryOf(board, Window::kReram)).units = c.reram_arrays;
  b.name = board.name + "+search";
  return b;
}

SearchChoice SearchDesign(const ModelLayout& layout, const BoardProfile& board, const Workload& workload) {
  if (!board.search) throw InputError("board " + board.name + " has no design_search parameters for --search");
  if (MemoryOf(board, Window::kMram) == MemoryOf(board, Window::kReram)) {
    throw InputError("board " + board.name + ": --search needs the MRAM and ReRAM windows in two memories");
  }
  const DesignSearch& d = *board.search;
  SearchChoice best;
  best.scheme = layout.scheme;
  best.board = board.name;
  best.mram_memory = board.memories.at(MemoryOf(board, Window::kMram)).name;
  best.reram_memory = board.memories.at(MemoryOf(board, Window::kReram)).name;
  best.budget_w = d.power_budget_w;
  BoardProfile trial = board;
  for (uint32_t c = d.mram_channels_min; c <= d.mram_channels_max; ++c) {
    for (uint32_t a = d.reram_arrays_min; a <= d.reram_arrays_max; ++a) {
      ++best.evaluated;
      const double power = SearchPower(board, layout, c, a);
      if (power > d.power_budget_w) continue;
      ++best.within_budget;
      trial.memories.at(MemoryOf(board, Window::kMram)).units = c;
      trial.memories.at(MemoryOf(board, Window::kReram)).units = a;
      const double latency = Simulate(layout, trial, workload).all_in.latency_s;
      const bool better = !best.found || latency < best.latency_s * (1 - 1e-9) ||
                          (latency <= best.latency_s * (1 + 1e-9) && power < best.power_w);
      if (better) {
        best.found = true;
        best.mram_channels = c;
        best.reram_arrays = a;
        best.power_w = power;
        best.latency_s = latency;
      }
    }
  }
  if (!best.found) throw InputError("board " + board.name + ": no configuration fits the " +
                                    std::to_string(d.power_budget_w) + " W budget");
  return best;
}

}  // namespace qmc::host
