#include "common/arena.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

namespace qmc {
namespace {

TEST(Arena, AllocationsAreAlignedAndDisjoint) {
  alignas(16) uint8_t memory[256];
  for (size_t skew = 0; skew < 16; ++skew) {  // whatever the span's alignment
    Arena arena(std::span<uint8_t>(memory + skew, 200));
    auto* a = arena.Allocate<uint8_t>(3);
    auto* b = arena.Allocate<float>(5);
    auto* c = arena.Allocate<double>(1);
    ASSERT_NE(a, nullptr);
    ASSERT_NE(b, nullptr);
    ASSERT_NE(c, nullptr);
    for (const void* p : {static_cast<const void*>(a), static_cast<const void*>(b), static_cast<const void*>(c)}) {
      EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % Arena::kAlignment, 0u);
    }
    EXPECT_GE(reinterpret_cast<uint8_t*>(b), a + 3);
    EXPECT_GE(reinterpret_cast<uint8_t*>(c), reinterpret_cast<uint8_t*>(b + 5));
    EXPECT_LE(reinterpret_cast<uint8_t*>(c + 1), memory + skew + 200);
  }
}

// The published bound (start padding + footprints) suffices at every alignment.
TEST(Arena, FootprintBoundIsEnough) {
  const size_t need = Arena::kStartPadding + Arena::Footprint<uint8_t>(7) + Arena::Footprint<float>(9) +
                      Arena::Footprint<uint64_t>(3);
  std::vector<uint8_t> memory(need + 16);
  for (size_t skew = 0; skew < 16; ++skew) {
    Arena arena(std::span<uint8_t>(memory.data() + skew, need));
    EXPECT_NE(arena.Allocate<uint8_t>(7), nullptr);
    EXPECT_NE(arena.Allocate<float>(9), nullptr);
    EXPECT_NE(arena.Allocate<uint64_t>(3), nullptr) << skew;
    EXPECT_LE(arena.used(), need);
  }
}

TEST(Arena, ReturnsNullWhenFullAndStaysUsable) {
  alignas(16) uint8_t memory[64];
  Arena arena(memory);
  ASSERT_NE(arena.Allocate<uint32_t>(8), nullptr);  // 32 bytes
  EXPECT_EQ(arena.Allocate<uint32_t>(9), nullptr);  // 36 more do not fit
  EXPECT_EQ(arena.used(), 32u);
  EXPECT_EQ(arena.Allocate<uint64_t>(SIZE_MAX / 4), nullptr);  // n * sizeof overflows
  EXPECT_NE(arena.Allocate<uint32_t>(8), nullptr);  // exactly fills it
  EXPECT_EQ(arena.used(), 64u);
  EXPECT_EQ(arena.Allocate<uint8_t>(1), nullptr);
  EXPECT_EQ(arena.capacity(), 64u);
}

TEST(Arena, ReleaseReusesMemoryAndHighWaterRemembersThePeak) {
  alignas(16) uint8_t memory[128];
  Arena arena(memory);
  arena.Allocate<uint8_t>(16);
  const size_t mark = arena.Mark();
  uint8_t* scratch = arena.Allocate<uint8_t>(80);
  EXPECT_EQ(arena.used(), 96u);
  arena.Release(mark);
  EXPECT_EQ(arena.used(), 16u);
  EXPECT_EQ(arena.high_water(), 96u);
  EXPECT_EQ(arena.Allocate<uint8_t>(10), scratch);
  EXPECT_EQ(arena.high_water(), 96u);
}

}  // namespace
}  // namespace qmc
