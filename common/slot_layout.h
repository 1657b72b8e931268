// Where the two image slots (A/B) and the commit records lie in each window
// (docs/protocol.md, "Slots and the commit record"). One pure function used
// by the firmware, `qmc nvm write` and the tests; the host flasher takes the
// geometry from INFO and never recomputes it.
//
// MRAM: a 4 KiB commit area first (two commit-record copies), then the two
// slots, each (size - 4 KiB) / 2 rounded down to 4 KiB. ReRAM and DRAM:
// slot 0 at 0 and slot 1 right after it, each size / 2 rounded down to
// 4 KiB. SRAM holds no image and has no slots.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "common/image_format.h"

namespace qmc::nvm {

inline constexpr uint32_t kSlotCount = 2;
inline constexpr uint32_t kSlotAlignment = 4096;  // a multiple of every window's write granularity
inline constexpr uint32_t kCommitAreaBytes = 4096;
// The two commit-record copies, at these MRAM offsets.
inline constexpr uint32_t kCommitCopyOffsets[2] = {0, 2048};

struct SlotGeometry {
  uint32_t offset[kSlotCount] = {0, 0};
  uint32_t size = 0;  // 0: the window has no slots

  constexpr bool has_slots() const { return size != 0; }
};

constexpr SlotGeometry SlotsOf(image::Window window, uint64_t window_size) {
  const uint64_t start = window == image::Window::kMram ? kCommitAreaBytes : 0;
  if (window == image::Window::kSram || window_size <= start) return {};
  const uint64_t slot = (window_size - start) / kSlotCount / kSlotAlignment * kSlotAlignment;
  // Every offset in either slot is a 32-bit window offset.
  if (slot == 0 || start + kSlotCount * slot > 0xFFFFFFFFu) return {};
  return {{static_cast<uint32_t>(start), static_cast<uint32_t>(start + slot)}, static_cast<uint32_t>(slot)};
}

// Whether [a, a + a_len) and [b, b + b_len) share a byte.
constexpr bool Overlaps(uint64_t a, uint64_t a_len, uint64_t b, uint64_t b_len) {
  return a_len != 0 && b_len != 0 && a < b + b_len && b < a + a_len;
}

// Slot `slot` of a window's bytes (a window without slots is empty).
template <typename Byte>
constexpr std::span<Byte> SlotBytes(std::span<Byte> window, image::Window kind, uint32_t slot) {
  const SlotGeometry g = SlotsOf(kind, window.size());
  return g.has_slots() ? window.subspan(g.offset[slot], g.size) : std::span<Byte>();
}

static_assert(SlotsOf(image::Window::kMram, 8u << 20).offset[0] == 4096);
static_assert(SlotsOf(image::Window::kMram, 8u << 20).size == (4u << 20) - 4096);
static_assert(SlotsOf(image::Window::kReram, 64u << 20).offset[1] == 32u << 20);
static_assert(!SlotsOf(image::Window::kSram, 2u << 20).has_slots());
// The largest emulated windows (4095 MiB) have 2 GiB slots; a 4 GiB window would not be 32-bit.
static_assert(SlotsOf(image::Window::kReram, uint64_t{4095} << 20).size == uint64_t{4095} << 19);
static_assert(!SlotsOf(image::Window::kReram, uint64_t{4096} << 20).has_slots());

}  // namespace qmc::nvm
