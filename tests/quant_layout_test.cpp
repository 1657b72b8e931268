#include "common/quant_layout.h"

#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <vector>

#include "host/quantize.h"

namespace qmc {
namespace {

TEST(QuantLayout, WordsPerRowCountsCellsNotBits) {
  EXPECT_EQ(quant::CellsPerWord(1), 32u);
  EXPECT_EQ(quant::CellsPerWord(2), 16u);
  EXPECT_EQ(quant::CellsPerWord(3), 10u);
  EXPECT_EQ(quant::WordsPerRow(10, 3, 3), 1u);   // ten 3-bit cells fill a word
  EXPECT_EQ(quant::WordsPerRow(11, 3, 3), 2u);
  EXPECT_EQ(quant::WordsPerRow(172, 4, 3), 23u); // 688 bits / 30 per word
  EXPECT_EQ(quant::WordsPerRow(64, 2, 2), 4u);
  EXPECT_EQ(quant::GroupsPerRow(172, 64), 3u);
}

// Byte-exact: 4-bit codes in 3-bit cells straddle cells and words; the two
// top bits of each word are unused.
TEST(QuantLayout, FourBitCodesInThreeBitCellsPinned) {
  const std::vector<uint8_t> codes(8, 0xF);
  const std::vector<uint8_t> bytes = host::PackCodes(codes, 1, 8, 4, 3);
  const std::vector<uint8_t> expected = {0xFF, 0xFF, 0xFF, 0x3F, 0x03, 0x00, 0x00, 0x00};
  EXPECT_EQ(bytes, expected);

  const std::vector<uint8_t> two = {0xA, 0x5};
  const std::vector<uint8_t> packed = host::PackCodes(two, 1, 2, 4, 3);
  EXPECT_EQ(packed, (std::vector<uint8_t>{0x5A, 0, 0, 0}));  // cells 2, 3, 1
}

TEST(QuantLayout, TwoBitCodesInOneBitCellsPinned) {
  const std::vector<uint8_t> codes = {1, 2, 3, 0};
  EXPECT_EQ(host::PackCodes(codes, 1, 4, 2, 1), (std::vector<uint8_t>{0x39, 0, 0, 0}));  // 0b00111001
}

TEST(QuantLayout, RowsStartOnWordBoundaries) {
  const std::vector<uint8_t> codes = {7, 7, 7, 1, 1, 1};  // 2 rows x 3 cols, 3-bit codes
  EXPECT_EQ(host::PackCodes(codes, 2, 3, 3, 3), (std::vector<uint8_t>{0xFF, 0x01, 0, 0, 0x49, 0, 0, 0}));
}

TEST(QuantLayout, EveryBitsCellPairRoundTrips) {
  std::mt19937 rng(1);
  for (uint32_t bits = 2; bits <= 4; ++bits) {
    for (uint32_t cell = 1; cell <= 3; ++cell) {
      const uint32_t rows = 3, cols = 97;
      std::vector<uint8_t> codes(rows * cols);
      for (auto& c : codes) c = static_cast<uint8_t>(rng() & ((1u << bits) - 1u));
      const std::vector<uint8_t> bytes = host::PackCodes(codes, rows, cols, bits, cell);
      ASSERT_EQ(bytes.size(), rows * quant::WordsPerRow(cols, bits, cell) * 4u);
      std::vector<uint32_t> words(bytes.size() / 4);
      std::memcpy(words.data(), bytes.data(), bytes.size());
      for (uint32_t r = 0; r < rows; ++r) {
        const uint32_t* row = words.data() + r * quant::WordsPerRow(cols, bits, cell);
        for (uint32_t c = 0; c < cols; ++c) {
          ASSERT_EQ(quant::ReadCode(row, c, bits, cell), codes[r * cols + c]) << bits << "/" << cell << " r" << r << " c" << c;
        }
      }
      // No cell is placed in a word's unused top bits.
      if (cell == 3) {
        for (uint32_t w : words) EXPECT_EQ(w >> 30, 0u);
      }
    }
  }
}

TEST(QuantLayout, GroupAffineZeroPointDecodesToExactZero) {
  for (uint32_t zero = 0; zero < 16; ++zero) {
    EXPECT_EQ(quant::DequantGroupAffine(zero, FloatToHalf(0.0123f), FloatToHalf(static_cast<float>(zero))), 0.0f);
  }
  EXPECT_EQ(quant::DequantGroupAffine(5, FloatToHalf(0.5f), FloatToHalf(2.0f)), 1.5f);
}

TEST(QuantLayout, MxInt4DecodesTwosComplementTimesPowerOfTwo) {
  EXPECT_EQ(quant::DequantMxInt4(0x7, 127), 7.0f);
  EXPECT_EQ(quant::DequantMxInt4(0x8, 127), -8.0f);
  EXPECT_EQ(quant::DequantMxInt4(0xF, 125), -0.25f);
  EXPECT_EQ(quant::E8M0ToFloat(0), std::ldexp(1.0f, -127));
  EXPECT_EQ(quant::E8M0ToFloat(254), std::ldexp(1.0f, 127));
}

}  // namespace
}  // namespace qmc
