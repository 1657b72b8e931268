#include "common/crc32.h"

#include <gtest/gtest.h>
#include <zlib.h>

#include <random>
#include <vector>

namespace qmc {
namespace {

TEST(Crc32, KnownVector) {
  EXPECT_EQ(Crc32("123456789", 9), 0xCBF43926u);
  EXPECT_EQ(Crc32("", 0), 0u);
}

TEST(Crc32, MatchesZlibAndChains) {
  std::mt19937 rng(7);
  std::vector<uint8_t> data(10007);
  for (auto& b : data) b = static_cast<uint8_t>(rng());
  const uint32_t expected = static_cast<uint32_t>(crc32(0L, data.data(), static_cast<uInt>(data.size())));
  EXPECT_EQ(Crc32(data.data(), data.size()), expected);
  const uint32_t first = Crc32(data.data(), 4000);
  EXPECT_EQ(Crc32(data.data() + 4000, data.size() - 4000, first), expected);
}

// Eight bytes at a time, then the rest: every length and start alignment
// around the 8-byte steps equals zlib.
TEST(Crc32, EveryLengthAndAlignmentMatchesZlib) {
  std::mt19937 rng(11);
  std::vector<uint8_t> data(300);
  for (auto& b : data) b = static_cast<uint8_t>(rng());
  for (size_t start = 0; start < 9; ++start) {
    for (size_t size = 0; start + size <= data.size(); ++size) {
      const uint32_t expected = static_cast<uint32_t>(crc32(0L, data.data() + start, static_cast<uInt>(size)));
      ASSERT_EQ(Crc32(data.data() + start, size), expected) << start << " " << size;
    }
  }
}

}  // namespace
}  // namespace qmc
