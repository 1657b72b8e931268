#include "hal/emu/retention.h"

#include <cmath>

#include "common/read_ranges.h"
#include "hal/emu/cell_noise.h"

namespace qmc::hal::emu {
namespace {

// Drift's own stream of draws: not a window number, so no read or programming error shares it.
constexpr uint32_t kDriftStream = 0xD1;

}  // namespace

LevelErrors DriftAfter(const LevelErrors& per_hour, double hours) {
  const double rate = per_hour.p_down + per_hour.p_up;
  if (!(rate > 0.0) || !(hours > 0.0)) return {};
  const double moved = -std::expm1(-rate * hours);
  return {moved * per_hour.p_down / rate, moved * per_hour.p_up / rate};
}

uint64_t AgeImageCells(EmuWindow& reram, uint32_t slot_offset, const image::ImageView& view,
                       const DeviceProfile& device, double hours, uint64_t seed) {
  uint64_t changed = 0;
  image::ForEachReadRange(view, [&](image::Window window, uint32_t offset, uint32_t length, uint8_t cell_bits) {
    if (window != image::Window::kReram) return;
    const LevelErrors moved = DriftAfter(device.drift_per_hour[cell_bits - 1], hours);
    const uint32_t at = slot_offset + offset;
    changed += reram.DriftCells(at, length, cell_bits, moved, PassSeed(seed, kDriftStream, at));
  });
  return changed;
}

}  // namespace qmc::hal::emu
