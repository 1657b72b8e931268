#include "host/device_noise.h"

#include "common/image_reader.h"
#include "common/read_ranges.h"
#include "common/slot_layout.h"
#include "hal/emu/cell_noise.h"
#include "host/checkpoint.h"

namespace qmc::host {

std::vector<uint8_t> ApplyDeviceNoise(std::span<const uint8_t> image, const hal::emu::DeviceProfile& profile,
                                      uint64_t seed, hal::emu::SecdedCounts* counts) {
  std::vector<uint8_t> out(image.begin(), image.end());
  hal::emu::SecdedCounts ignored;
  const Result<image::ImageView> view = image::ImageView::OpenFile(out);
  if (!view.ok()) throw InputError("cannot apply device noise to an invalid image");
  image::ForEachReadRange(view.value(), [&](image::Window window, uint32_t window_offset, uint32_t length,
                                            uint8_t cell_bits) {
    // The file holds each section at file_offset; ranges come in window offsets.
    for (uint32_t i = 0; i < view.value().section_count(); ++i) {
      const image::SectionEntry& s = view.value().section(i);
      if (s.window != static_cast<uint8_t>(window) || window_offset < s.window_offset ||
          window_offset - s.window_offset >= s.length) {
        continue;
      }
      const size_t at = s.file_offset + (window_offset - s.window_offset);
      const std::span<uint8_t> bytes(out.data() + at, length);
      // Seeded as the emulated board draws programming errors (draw 0) for
      // an image in slot 0, so host and board see the same errors.
      const uint32_t slot_base = window == image::Window::kMram ? nvm::kCommitAreaBytes : 0u;  // slot 0 (slot_layout.h)
      const uint64_t pass_seed = hal::emu::PassSeed(hal::emu::DrawSeed(seed, 0), static_cast<uint32_t>(window),
                                                    uint64_t{slot_base} + window_offset);
      if (window == image::Window::kReram) {
        hal::emu::ApplyLevelNoise(bytes, cell_bits, profile.Mode(cell_bits), pass_seed);
      } else if (window == image::Window::kMram) {
        hal::emu::ApplyMramBitErrors(image.subspan(at, length), bytes, uint64_t{slot_base} + window_offset,
                                     profile.mram_ber, profile.mram_secded, pass_seed, counts ? *counts : ignored);
      }
      return;
    }
  });
  return out;
}

}  // namespace qmc::host
