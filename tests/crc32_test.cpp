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

}  // namespace
}  // namespace qmc
