// Bytes read and written in each memory window, as the engine counts them at
// every place it reads a weight or touches the KV cache (common/engine.cpp;
// what one tensor access reads is common/tensor_traffic.h). Freestanding: a
// few integers, no heap.
//
// The firmware forwards these counts to the HAL's window counters
// (hal::MemoryWindow::CountInPlace): in-place reads bypass the HAL, so the
// engine is the one that knows what it read.
#pragma once

#include <cstdint>

#include "common/image_format.h"

namespace qmc {

struct ReadCounter {
  uint64_t read[image::kWindowCount] = {};
  uint64_t written[image::kWindowCount] = {};

  void Read(image::Window window, uint64_t bytes) { read[static_cast<uint32_t>(window)] += bytes; }
  void Write(image::Window window, uint64_t bytes) { written[static_cast<uint32_t>(window)] += bytes; }

  uint64_t read_bytes(image::Window window) const { return read[static_cast<uint32_t>(window)]; }
  uint64_t written_bytes(image::Window window) const { return written[static_cast<uint32_t>(window)]; }
};

}  // namespace qmc
