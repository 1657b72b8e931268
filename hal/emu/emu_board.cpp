#include "hal/emu/emu_board.h"

#include "hal/emu/cell_noise.h"

namespace qmc::hal::emu {

EmuBoard::EmuBoard(const std::filesystem::path& nvm_dir, const ReadNoise& noise) {
  std::error_code error;
  if (!std::filesystem::is_directory(nvm_dir, error)) throw EmuError(nvm_dir.string() + ": not a directory");
  using Model = EmuWindow::ErrorModel;
  const double reram_p = LevelErrorProbability(noise.reram_sigma);
  const EmuWindow::ReadErrors exact{};
  const EmuWindow::ReadErrors reram{reram_p > 0.0 ? Model::kLevelNoise : Model::kNone, reram_p, noise.seed};
  const EmuWindow::ReadErrors mram{noise.mram_ber > 0.0 ? Model::kBitFlips : Model::kNone, noise.mram_ber, noise.seed};
  windows_[0] = EmuWindow::Open({WindowKind::kSram, kSramBytes, 1, false}, {}, exact);
  windows_[1] = EmuWindow::Open({WindowKind::kMram, kMramBytes, 1, false}, nvm_dir / "mram.bin", mram);
  windows_[2] = EmuWindow::Open({WindowKind::kReram, kReramBytes, kReramWriteBytes, false}, nvm_dir / "reram.bin",
                                reram);
  windows_[3] = EmuWindow::Open({WindowKind::kDram, kDramBytes, 1, false}, nvm_dir / "dram.bin", exact);
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
