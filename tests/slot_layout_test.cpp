// Slot geometry (common/slot_layout.h): slots never overlap each other or
// MRAM's commit area, stay inside their window, are aligned, and the emu
// board's windows split as docs/protocol.md says.
#include "common/slot_layout.h"

#include <gtest/gtest.h>

#include <vector>

namespace qmc::nvm {
namespace {

using image::Window;

TEST(SlotLayout, EmuBoardWindows) {
  const SlotGeometry mram = SlotsOf(Window::kMram, 8u << 20);
  EXPECT_EQ(mram.offset[0], 4096u);
  EXPECT_EQ(mram.size, 4190208u);  // (8 MiB - 4 KiB) / 2 = 4192256, down to a 4 KiB multiple
  EXPECT_EQ(mram.offset[1], 4096u + 4190208u);
  const SlotGeometry reram = SlotsOf(Window::kReram, 64u << 20);
  EXPECT_EQ(reram.offset[0], 0u);
  EXPECT_EQ(reram.offset[1], 32u << 20);
  EXPECT_EQ(reram.size, 32u << 20);
  EXPECT_EQ(SlotsOf(Window::kDram, 64u << 20).offset[1], 32u << 20);
  EXPECT_FALSE(SlotsOf(Window::kSram, 2u << 20).has_slots());
}

TEST(SlotLayout, InvariantsOverManySizes) {
  for (Window w : {Window::kMram, Window::kReram, Window::kDram}) {
    for (uint64_t size : {4096ull, 8191ull, 12288ull, 65536ull + 17, 1ull << 20, (3ull << 20) + 5, 8ull << 20,
                          64ull << 20, 256ull << 20}) {
      const SlotGeometry g = SlotsOf(w, size);
      if (!g.has_slots()) {
        EXPECT_LT(size, (w == Window::kMram ? kCommitAreaBytes : 0) + 2 * kSlotAlignment) << size;
        continue;
      }
      EXPECT_EQ(g.size % kSlotAlignment, 0u);
      EXPECT_EQ(g.offset[0] % kSlotAlignment, 0u);
      EXPECT_EQ(g.offset[1], g.offset[0] + g.size);
      EXPECT_LE(uint64_t{g.offset[1]} + g.size, size);
      EXPECT_FALSE(Overlaps(g.offset[0], g.size, g.offset[1], g.size));
      if (w == Window::kMram) {
        EXPECT_FALSE(Overlaps(0, kCommitAreaBytes, g.offset[0], g.size));
        EXPECT_LE(kCommitCopyOffsets[1] + 32u, kCommitAreaBytes);
      }
    }
  }
}

TEST(SlotLayout, TooSmallWindowsHaveNoSlots) {
  EXPECT_FALSE(SlotsOf(Window::kMram, 4096).has_slots());
  EXPECT_FALSE(SlotsOf(Window::kMram, 4096 + 8191).has_slots());
  EXPECT_TRUE(SlotsOf(Window::kMram, 4096 + 8192).has_slots());
}

TEST(SlotLayout, OverlapsAndSlotBytes) {
  EXPECT_TRUE(Overlaps(0, 10, 9, 1));
  EXPECT_FALSE(Overlaps(0, 10, 10, 1));
  EXPECT_FALSE(Overlaps(5, 0, 0, 10));  // empty ranges overlap nothing
  std::vector<uint8_t> window(64 << 10);
  const std::span<uint8_t> s1 = SlotBytes(std::span(window), Window::kMram, 1);
  EXPECT_EQ(s1.data(), window.data() + 4096 + (28 << 10));  // (64 - 4) / 2 = 30 KiB, down to 28
  EXPECT_EQ(s1.size(), 28u << 10);
  EXPECT_TRUE(SlotBytes(std::span(window), Window::kSram, 0).empty());
}

}  // namespace
}  // namespace qmc::nvm
