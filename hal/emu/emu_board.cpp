#include "hal/emu/emu_board.h"

namespace qmc::hal::emu {

EmuBoard::EmuBoard(const std::filesystem::path& nvm_dir, const ReadNoise& noise, const WindowSizes& sizes) {
  std::error_code error;
  if (!std::filesystem::is_directory(nvm_dir, error)) throw EmuError(nvm_dir.string() + ": not a directory");
  using Model = EmuWindow::ErrorModel;
  const EmuWindow::ReadErrors exact{};
  EmuWindow::ReadErrors reram, mram;
  if (noise.kind != NoiseKind::kOff) {
    const EmuWindow::Draw draw = noise.kind == NoiseKind::kRead ? EmuWindow::Draw::kRead : EmuWindow::Draw::kProgram;
    bool reram_errs = false;
    for (uint32_t c = 1; c <= 3; ++c) {
      reram.levels[c - 1] = noise.device.Mode(c);
      reram_errs = reram_errs || noise.device.Mode(c).p_down > 0.0 || noise.device.Mode(c).p_up > 0.0;
    }
    reram.model = reram_errs ? Model::kLevelNoise : Model::kNone;
    reram.draw = mram.draw = draw;
    reram.seed = mram.seed = noise.seed;
    mram.model = noise.device.mram_ber > 0.0 ? Model::kBitFlips : Model::kNone;
    mram.bit_error_rate = noise.device.mram_ber;
    mram.secded = noise.device.mram_secded;
  }
  windows_[0] = EmuWindow::Open({WindowKind::kSram, sizes.bytes[0], 1, false}, {}, exact);
  windows_[1] = EmuWindow::Open({WindowKind::kMram, sizes.bytes[1], 1, false}, nvm_dir / "mram.bin", mram);
  windows_[2] = EmuWindow::Open({WindowKind::kReram, sizes.bytes[2], kReramWriteBytes, false}, nvm_dir / "reram.bin",
                                reram);
  windows_[3] = EmuWindow::Open({WindowKind::kDram, sizes.bytes[3], 1, false}, nvm_dir / "dram.bin", exact);
  info_.name = "emu";
  for (uint32_t i = 0; i < kWindowCount; ++i) info_.windows[i] = windows_[i].get();
}

void EmuBoard::CutPowerAfter(uint64_t bytes) {
  power_cut_.bytes_left = bytes;
  for (WindowKind kind : {WindowKind::kMram, WindowKind::kReram, WindowKind::kDram}) window(kind).SetPowerCut(&power_cut_);
}

void EmuBoard::Sync() {
  for (WindowKind kind : {WindowKind::kMram, WindowKind::kReram, WindowKind::kDram}) window(kind).Sync();
}

}  // namespace qmc::hal::emu
