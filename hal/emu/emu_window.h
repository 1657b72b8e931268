// A window of the emulated board. Non-volatile windows are files in the NVM
// directory mapped MAP_SHARED, so what was written survives a restart as it
// would on the part; SRAM is anonymous memory, blank at every boot.
//
// Read errors are modelled per read pass (hal.h's BeginReadPass): the
// in-place view of a noisy window is a second, MAP_PRIVATE mapping of the
// same file, and each pass copies the stored bytes of its range into it and
// applies cell errors (hal/emu/cell_noise.h), while the file, Read and every
// range no pass declared stay exact. Which errors a pass applies depends on
// the kind of noise (docs/device-model.md):
//   kProgram  the same for every pass, boot and process with one seed: each
//             cell's error is fixed, as if it had been written wrong;
//   kRead     a new draw after every EndReadPasses (the passes declared
//             between two EndReadPasses are one read of the memory), the
//             n-th read the same in every process with one seed.
#pragma once

#include <filesystem>
#include <memory>
#include <stdexcept>

#include "hal/emu/device_profile.h"
#include "hal/emu/secded.h"
#include "hal/hal.h"

namespace qmc::hal::emu {

// Fault injection (qmc-fw-emu --power-cut-after): the bytes the file-backed
// windows may still store through Write before the power fails. The write
// that crosses the budget stores only the bytes up to it, and the process
// ends at once with _exit(kPowerCutExitCode), as a board loses power: what
// reached the MAP_SHARED file stays, nothing else runs.
struct PowerCut {
  uint64_t bytes_left;
};
inline constexpr int kPowerCutExitCode = 137;

// A window file that cannot be created, mapped or is the wrong size.
class EmuError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class EmuWindow final : public MemoryWindow {
 public:
  using MemoryWindow::Geometry;

  enum class ErrorModel { kNone, kLevelNoise, kBitFlips };
  enum class Draw { kProgram, kRead };
  struct ReadErrors {
    ErrorModel model = ErrorModel::kNone;
    LevelErrors levels[3];        // kLevelNoise: per read of a cell, index cell_bits - 1
    double bit_error_rate = 0.0;  // kBitFlips: per bit
    bool secded = false;          // kBitFlips: through Hamming(72,64) SECDED (hal/emu/secded.h)
    Draw draw = Draw::kProgram;
    uint64_t seed = 0;
  };

  // Maps `file`, creating it blank (zero) at geometry.size bytes if absent;
  // an existing file must have that size. An empty path maps anonymous
  // memory. Volatile windows (SRAM, DRAM) are writable in place.
  static std::unique_ptr<EmuWindow> Open(const Geometry& geometry, const std::filesystem::path& file,
                                         const ReadErrors& errors);
  ~EmuWindow();

  // Writes the mapping back to the file and waits for the disk.
  void Sync();

  // Counts this window's writes against `cut` (shared by the board's
  // windows), or stops counting with nullptr.
  void SetPowerCut(PowerCut* cut) { power_cut_ = cut; }

  // What SECDED did on this window's read passes so far.
  const SecdedCounts& secded_counts() const { return secded_counts_; }

  // Retention (hal/emu/retention.h): moves `cell_bits`-bit cells of the
  // stored contents in [offset, offset + length) one level, for good, with
  // `moved`'s probabilities (ApplyLevelNoise's model and clamping). Returns
  // the number of cells that changed. The file changes as the part would.
  uint64_t DriftCells(uint32_t offset, uint32_t length, uint8_t cell_bits, const LevelErrors& moved, uint64_t seed);

 private:
  EmuWindow(const Geometry& geometry, uint8_t* stored, uint8_t* as_read, uint8_t* scratch, const ReadErrors& errors);

  void DoRead(uint32_t offset, std::span<uint8_t> out) override;
  void DoWrite(uint32_t offset, std::span<const uint8_t> data) override;
  void DoBeginReadPass(uint32_t offset, uint32_t length, uint8_t cell_bits) override;
  void DoEndReadPasses() override;

  uint8_t* stored_;   // the NVM contents (MAP_SHARED), or the anonymous memory
  uint8_t* as_read_;  // what in-place reads see: stored_ unless errors are modelled
  ReadErrors errors_;
  uint64_t reads_ = 0;  // EndReadPasses calls so far: which draw kRead errors use
  PowerCut* power_cut_ = nullptr;
  SecdedCounts secded_counts_;
};

}  // namespace qmc::hal::emu
