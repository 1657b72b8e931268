// The hardware interface the firmware runs on: memory windows, a byte link
// to the host, a clock, and the board that names them. Freestanding like
// common/ (no heap, exceptions or stdio), so the same firmware sources build
// against every backend: hal/emu (a Linux process) and hal/mps3_an547 (the
// Cortex-M55 of the MPS3 AN547, under QEMU).
//
// Shaped after Pigweed's pw_kvs FlashMemory (a small abstract class whose
// base checks arguments and backends supply the access) and tflite-micro's
// per-platform layer (a board provides a handful of primitives, nothing
// more).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "common/image_format.h"
#include "common/status.h"

namespace qmc::hal {

// The windows are numbered as the image's sections name them.
using WindowKind = image::Window;
inline constexpr uint32_t kWindowCount = image::kWindowCount;

const char* WindowName(WindowKind kind);

struct WindowCounters {
  uint64_t bytes_read = 0;
  uint64_t bytes_written = 0;
};

// One memory window: its technology, where the CPU sees it, and how it is
// written. Counters add up what went through Read/Write and what the
// firmware attributes to in-place access (CountInPlace).
//
// Why in-place reads are attributed rather than trapped: the engine reads
// weights in place through spans (the design's "map, don't parse"), so no
// HAL call sits on that path, and adding one per weight would cost the
// kernels their speed. The engine instead counts what it reads at every
// weight and KV cache access (common/read_counter.h, common/tensor_traffic.h)
// and the firmware adds those bytes after every token (firmware/generator.cpp).
class MemoryWindow {
 public:
  MemoryWindow(const MemoryWindow&) = delete;
  MemoryWindow& operator=(const MemoryWindow&) = delete;

  WindowKind kind() const { return kind_; }
  size_t size() const { return size_; }
  // Write offsets and lengths must be multiples of this.
  uint32_t write_granularity() const { return write_granularity_; }
  // Whether a range must be erased before it is written (none of the emu's
  // windows: MRAM and ReRAM are byte/word-writable).
  bool needs_erase() const { return needs_erase_; }

  // The window as the CPU reads it in place, from its base address; every
  // span the engine holds points in here. For ReRAM this is what the MLC
  // macro returns, noise included (see BeginReadPass).
  std::span<const uint8_t> bytes() const { return {base_, size_}; }
  // Memory the firmware may write in place: the volatile windows (SRAM for
  // the arena, DRAM for the KV cache). Empty for MRAM and ReRAM, which are
  // written only through Write.
  std::span<uint8_t> scratch() const { return {scratch_, scratch_ == nullptr ? 0 : size_}; }

  // Exact (verify-mode) reads of the stored contents, and writes; both
  // bounds-checked and counted.
  Status Read(uint32_t offset, std::span<uint8_t> out);
  Status Write(uint32_t offset, std::span<const uint8_t> data);

  // Declares [offset, offset + length) as data read in place from now on
  // (packed inlier codes, scales, norms), with `cell_bits`-bit cells packed
  // into little-endian 32-bit words as docs/image-format.md lays them out
  // (1 for single-bit cells). A backend that models its technology applies
  // read errors to that range here, one draw per pass; exact memories do
  // nothing. Structural data (directories, indices) is never declared: a
  // real part protects it with ECC, and corrupting it models nothing useful.
  Status BeginReadPass(uint32_t offset, uint32_t length, uint8_t cell_bits);

  // Ends every read pass: in-place reads see the stored contents again, as
  // after a reset. The firmware calls it when the flash server takes over,
  // so COMMIT's validation and the next boot's check exact bits, not a
  // pass's draw of read errors.
  void EndReadPasses() { DoEndReadPasses(); }

  void CountInPlace(uint64_t bytes_read, uint64_t bytes_written) {
    counters_.bytes_read += bytes_read;
    counters_.bytes_written += bytes_written;
  }
  const WindowCounters& counters() const { return counters_; }

 protected:
  struct Geometry {
    WindowKind kind;
    size_t size;
    uint32_t write_granularity;
    bool needs_erase;
  };
  // `base` is the in-place read view; `scratch` the in-place writable view
  // (nullptr for non-volatile windows).
  MemoryWindow(const Geometry& geometry, const uint8_t* base, uint8_t* scratch)
      : kind_(geometry.kind),
        size_(geometry.size),
        write_granularity_(geometry.write_granularity),
        needs_erase_(geometry.needs_erase),
        base_(base),
        scratch_(scratch) {}
  ~MemoryWindow() = default;  // never deleted through the interface

  // Called with arguments already checked.
  virtual void DoRead(uint32_t offset, std::span<uint8_t> out) = 0;
  virtual void DoWrite(uint32_t offset, std::span<const uint8_t> data) = 0;
  virtual void DoBeginReadPass(uint32_t offset, uint32_t length, uint8_t cell_bits) = 0;
  // Exact memories have no pass to end.
  virtual void DoEndReadPasses() {}

 private:
  bool InBounds(uint64_t offset, uint64_t length) const { return offset <= size_ && length <= size_ - offset; }

  WindowKind kind_;
  size_t size_;
  uint32_t write_granularity_;
  bool needs_erase_;
  const uint8_t* base_;
  uint8_t* scratch_;
  WindowCounters counters_{};
};

// A byte stream to the host (a UART on a board, stdin/stdout on the emu).
class ByteLink {
 public:
  struct Transfer {
    size_t bytes = 0;
    bool closed = false;  // the peer is gone for good (the emu's EOF; a UART never closes)
  };

  // Waits up to `timeout_us` for at least one byte and returns what has
  // arrived, up to out.size() (0 bytes on a timeout).
  virtual Transfer Read(std::span<uint8_t> out, uint32_t timeout_us) = 0;
  // Writes all of `data` unless the link closes or `timeout_us` passes.
  virtual Transfer Write(std::span<const uint8_t> data, uint32_t timeout_us) = 0;
  // The link's baud rate, 0 when it has none (the emu's pipes).
  virtual uint32_t baud() const { return 0; }
  // Switches to `baud` once what was written has gone out (the flash
  // protocol's BAUD); false when the link cannot run at it.
  virtual bool SetBaud(uint32_t /*baud*/) { return false; }

 protected:
  ~ByteLink() = default;
};

class Clock {
 public:
  // Monotonic microseconds (the epoch is arbitrary).
  virtual uint64_t Micros() = 0;
  // The CPU's free-running cycle counter (DWT on the M55; the TSC on x86).
  virtual uint64_t Cycles() = 0;

 protected:
  ~Clock() = default;
};

// What the firmware boots on. Every board has all four windows.
struct BoardInfo {
  const char* name;
  MemoryWindow* windows[kWindowCount];
  // The most stack the firmware has used so far, in bytes, where the board
  // can tell (the AN547 paints its stack at reset); nullptr elsewhere.
  size_t (*stack_high_water)() = nullptr;

  MemoryWindow& window(WindowKind kind) const { return *windows[static_cast<uint32_t>(kind)]; }
};

}  // namespace qmc::hal
