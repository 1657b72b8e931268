// The MPS3 AN547 board's memory: the four windows at the addresses and
// sizes linker/mps3_an547.ld gives them (sizes from hal/window_sizes.h, as
// the emu board's), plain memory the CPU reads in place.
//
// | window | where              | holds |
// |--------|--------------------|-------|
// | SRAM   | SSE-300 SRAM       | the arena: activations, tokenizer and sampler workspaces |
// | MRAM   | DDR 0x60000000     | boot record, directory, tokenizer, norms, scales, outliers |
// | ReRAM  | DDR 0x64000000     | packed inlier codes |
// | DRAM   | DDR 0x68000000     | dense weights (the f32/fp16 baselines), then the KV cache |
//
// The NVM windows hold what was loaded there (toolchain/qemu-m55.sh loads
// the files `qmc nvm write` makes); reads are exact, so BeginReadPass has
// nothing to model.
#pragma once

#include "hal/hal.h"

namespace qmc::hal::an547 {

class An547Window final : public MemoryWindow {
 public:
  using MemoryWindow::Geometry;

  // `memory` is the window's base address; volatile windows (SRAM, DRAM)
  // are the firmware's to write in place.
  An547Window(const Geometry& geometry, uint8_t* memory, bool writable_in_place)
      : MemoryWindow(geometry, memory, writable_in_place ? memory : nullptr), memory_(memory) {}

 private:
  void DoRead(uint32_t offset, std::span<uint8_t> out) override;
  void DoWrite(uint32_t offset, std::span<const uint8_t> data) override;
  void DoBeginReadPass(uint32_t, uint32_t, uint8_t) override {}

  uint8_t* memory_;
};

class An547Board {
 public:
  An547Board();
  An547Board(const An547Board&) = delete;
  An547Board& operator=(const An547Board&) = delete;

  const BoardInfo& info() const { return info_; }

 private:
  An547Window sram_;
  An547Window mram_;
  An547Window reram_;
  An547Window dram_;
  BoardInfo info_{};
};

}  // namespace qmc::hal::an547
