// An image as a device's memories would read it back: the device profile's
// errors applied to a copy of the image bytes, for host-side evaluation under
// noise (paper_bench). The ranges are those an inference reads in place from
// non-volatile memory, as the emulated board declares them
// (common/read_ranges.h); ReRAM ranges get level errors by their cell mode,
// MRAM ranges bit errors, drawn exactly as `qmc-fw-emu --noise program
// --noise-seed SEED` draws them for the image in slot 0 (MRAM through SECDED
// when the profile says so, `counts` adding up what it did). Section CRCs no
// longer hold in the result: open it with ImageView::OpenFile, not Validate.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "hal/emu/device_profile.h"
#include "hal/emu/secded.h"

namespace qmc::host {

std::vector<uint8_t> ApplyDeviceNoise(std::span<const uint8_t> image, const hal::emu::DeviceProfile& profile,
                                      uint64_t seed, hal::emu::SecdedCounts* counts = nullptr);

}  // namespace qmc::host
