// The emulated board's memory: four windows of fixed sizes, as a real part
// has (by default hal/window_sizes.h's, shared with the Cortex-M55 board; a
// board profile may give others), the non-volatile ones backed by files in
// an NVM directory.
//
// | window | file      | size   | holds |
// |--------|-----------|--------|-------|
// | SRAM   | (none)    | 2 MiB  | the arena: activations, tokenizer and sampler workspaces |
// | MRAM   | mram.bin  | 8 MiB  | boot record, directory, tokenizer, norms, scales, outliers |
// | ReRAM  | reram.bin | 64 MiB | packed inlier codes |
// | DRAM   | dram.bin  | 64 MiB | dense weights (the f32/fp16 baselines), then the KV cache |
//
// DRAM is volatile on a real board; here it is a file too because the dense
// baselines keep their weights there, as if a loader had filled it at boot.
// The KV cache lives past the image's DRAM sections and is scratch.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>

#include "hal/emu/device_profile.h"
#include "hal/emu/emu_window.h"
#include "hal/hal.h"
#include "hal/window_sizes.h"

namespace qmc::hal::emu {

// Which errors the board's NVM reads get (docs/device-model.md).
enum class NoiseKind {
  kOff,      // every read is exact
  kRead,     // read errors: a new draw on every read pass (EmuWindow::Draw::kRead)
  kProgram,  // programming errors: one draw per cell for good (EmuWindow::Draw::kProgram)
};

// The windows' sizes: the shared defaults (hal/window_sizes.h), or a board
// profile's "emu_window_mib" (docs/memory-model.md). The window files are
// sparse: a large window costs disk only where written.
struct WindowSizes {
  size_t bytes[kWindowCount] = {kSramBytes, kMramBytes, kReramBytes, kDramBytes};
};

// The largest window: its size (INFO's) and every offset in it must fit the
// 32-bit fields of the image format and the flash protocol
// (common/slot_layout.h). Room for the paper's 3 B models: a 2 GiB slot.
inline constexpr uint32_t kMaxWindowMib = 4095;

// The sizes a board profile (hal/profiles/boards/*.json) gives the emu
// board: its optional "emu_window_mib" {"sram", "mram", "reram", "dram"},
// each 1..kMaxWindowMib MiB; absent windows keep the defaults. Throws
// EmuError naming the file and the key.
WindowSizes LoadWindowSizes(const std::filesystem::path& board_profile);

struct ReadNoise {
  NoiseKind kind = NoiseKind::kOff;
  DeviceProfile device;  // the error rates: ReRAM per cell mode, MRAM per bit
  uint64_t seed = 1;
};

class EmuBoard {
 public:
  // Opens the window files in `nvm_dir`, creating blank ones where absent
  // (the directory must exist). Throws EmuError.
  EmuBoard(const std::filesystem::path& nvm_dir, const ReadNoise& noise, const WindowSizes& sizes = {});

  const BoardInfo& info() const { return info_; }
  EmuWindow& window(WindowKind kind) { return *windows_[static_cast<uint32_t>(kind)]; }

  // Flushes the window files to disk.
  void Sync();

  // From now on, a power cut after `bytes` more bytes written to the window
  // files (MRAM, ReRAM, DRAM) through Write; see PowerCut.
  void CutPowerAfter(uint64_t bytes);

 private:
  std::unique_ptr<EmuWindow> windows_[kWindowCount];
  BoardInfo info_{};
  PowerCut power_cut_{};
};

}  // namespace qmc::hal::emu
