#include "hal/mps3_an547/an547_board.h"

#include <cstring>

#include "hal/mps3_an547/stack_usage.h"
#include "hal/window_sizes.h"

// Defined by linker/mps3_an547.ld: a symbol's address is the value.
extern "C" uint8_t __qmc_sram_base[], __qmc_sram_size[], __qmc_mram_base[], __qmc_mram_size[];
extern "C" uint8_t __qmc_reram_base[], __qmc_reram_size[], __qmc_dram_base[], __qmc_dram_size[];

namespace qmc::hal::an547 {
namespace {

size_t SymbolValue(const uint8_t* symbol) { return reinterpret_cast<uintptr_t>(symbol); }

}  // namespace

void An547Window::DoRead(uint32_t offset, std::span<uint8_t> out) { std::memcpy(out.data(), memory_ + offset, out.size()); }

void An547Window::DoWrite(uint32_t offset, std::span<const uint8_t> data) {
  std::memcpy(memory_ + offset, data.data(), data.size());
}

An547Board::An547Board()
    : sram_({WindowKind::kSram, SymbolValue(__qmc_sram_size), 1, false}, __qmc_sram_base, true),
      mram_({WindowKind::kMram, SymbolValue(__qmc_mram_size), 1, false}, __qmc_mram_base, false),
      reram_({WindowKind::kReram, SymbolValue(__qmc_reram_size), kReramWriteBytes, false}, __qmc_reram_base, false),
      dram_({WindowKind::kDram, SymbolValue(__qmc_dram_size), 1, false}, __qmc_dram_base, true) {
  info_.name = "mps3-an547";
  for (An547Window* window : {&sram_, &mram_, &reram_, &dram_}) {
    info_.windows[static_cast<uint32_t>(window->kind())] = window;
  }
  info_.stack_high_water = StackHighWaterBytes;
}

}  // namespace qmc::hal::an547
