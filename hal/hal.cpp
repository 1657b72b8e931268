#include "hal/hal.h"

namespace qmc::hal {

const char* WindowName(WindowKind kind) {
  switch (kind) {
    case WindowKind::kSram: return "SRAM";
    case WindowKind::kMram: return "MRAM";
    case WindowKind::kReram: return "ReRAM";
    case WindowKind::kDram: return "DRAM";
  }
  return "?";
}

Status MemoryWindow::Read(uint32_t offset, std::span<uint8_t> out) {
  if (!InBounds(offset, out.size())) return Error(StatusCode::kOutOfBounds, "read past the end of the window");
  DoRead(offset, out);
  counters_.bytes_read += out.size();
  return Status::Ok();
}

Status MemoryWindow::Write(uint32_t offset, std::span<const uint8_t> data) {
  if (!InBounds(offset, data.size())) return Error(StatusCode::kOutOfBounds, "write past the end of the window");
  if (offset % write_granularity_ != 0 || data.size() % write_granularity_ != 0) {
    return Error(StatusCode::kInvalidValue, "write is not aligned to the window's write granularity");
  }
  DoWrite(offset, data);
  counters_.bytes_written += data.size();
  return Status::Ok();
}

Status MemoryWindow::BeginReadPass(uint32_t offset, uint32_t length, uint8_t cell_bits) {
  if (!InBounds(offset, length)) return Error(StatusCode::kOutOfBounds, "read pass past the end of the window");
  if (cell_bits < 1 || cell_bits > 3) return Error(StatusCode::kInvalidValue, "cells hold 1 to 3 bits");
  // Cells of 3 bits are packed ten to a 32-bit word, so a pass covers whole words.
  if (cell_bits == 3 && (offset % 4 != 0 || length % 4 != 0)) {
    return Error(StatusCode::kInvalidValue, "a read pass of 3-bit cells covers whole 32-bit words");
  }
  DoBeginReadPass(offset, length, cell_bits);
  return Status::Ok();
}

}  // namespace qmc::hal
