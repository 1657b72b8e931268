// The emu backend of the HAL: window files that persist, counters, the
// read-noise model (hal/emu/cell_noise.h) as the firmware sees it through
// in-place reads, and the injected power cut.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <random>
#include <vector>

#include "tests/cli_runner.h"
#include "hal/emu/cell_noise.h"
#include "hal/emu/device_profile.h"
#include "hal/emu/emu_board.h"

namespace qmc::hal::emu {
namespace {

namespace fs = std::filesystem;

class HalEmu : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = qmc::testing::FreshTestDir("qmc_hal_emu_");
  }
  void TearDown() override { fs::remove_all(dir_); }

  fs::path dir_;
};

// The Gaussian σ/Δ model as programming errors (fixed per cell).
ReadNoise Gaussian(double sigma, double mram_ber, uint64_t seed) {
  return {NoiseKind::kProgram, SymmetricProfile(sigma, mram_ber), seed};
}

std::vector<uint8_t> RandomBytes(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<uint8_t> bytes(n);
  for (uint8_t& b : bytes) b = static_cast<uint8_t>(rng());
  return bytes;
}

// Words of 3-bit cells leave their top two bits zero.
std::vector<uint8_t> CellWords(size_t n, uint8_t cell_bits, uint32_t seed) {
  std::vector<uint8_t> bytes = RandomBytes(n, seed);
  if (cell_bits == 3) {
    for (size_t i = 3; i < n; i += 4) bytes[i] &= 0x3F;
  }
  return bytes;
}

std::vector<uint8_t> InPlace(const MemoryWindow& window, uint32_t offset, size_t n) {
  const auto view = window.bytes().subspan(offset, n);
  return {view.begin(), view.end()};
}

std::vector<uint8_t> Stored(MemoryWindow& window, uint32_t offset, size_t n) {
  std::vector<uint8_t> out(n);
  EXPECT_TRUE(window.Read(offset, out).ok());
  return out;
}

// A child process writes across the budget: it dies with status 137 in the
// crossing write, which stored exactly the bytes up to the budget; SRAM
// writes do not count, and nothing after the cut is stored.
TEST_F(HalEmu, PowerCutStopsInTheWriteThatCrossesTheBudget) {
  const std::vector<uint8_t> data = RandomBytes(1000, 5);
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    EmuBoard board(dir_, {});
    board.CutPowerAfter(1500);
    (void)board.window(WindowKind::kSram).Write(0, data);     // not counted
    (void)board.window(WindowKind::kMram).Write(0, data);     // 1000 of 1500
    (void)board.window(WindowKind::kReram).Write(4096, data);  // crosses at 500
    (void)board.window(WindowKind::kDram).Write(0, data);     // never happens
    ::_exit(0);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), kPowerCutExitCode);
  EmuBoard board(dir_, {});
  EXPECT_EQ(Stored(board.window(WindowKind::kMram), 0, 1000), data);
  const std::vector<uint8_t> reram = Stored(board.window(WindowKind::kReram), 4096, 1000);
  EXPECT_TRUE(std::equal(data.begin(), data.begin() + 500, reram.begin()));
  EXPECT_TRUE(std::all_of(reram.begin() + 500, reram.end(), [](uint8_t b) { return b == 0; }));
  const std::vector<uint8_t> dram = Stored(board.window(WindowKind::kDram), 0, 1000);
  EXPECT_TRUE(std::all_of(dram.begin(), dram.end(), [](uint8_t b) { return b == 0; }));
}

TEST_F(HalEmu, WindowFilesPersistAcrossReopenAndSramDoesNot) {
  const std::vector<uint8_t> data = RandomBytes(4096, 1);
  {
    EmuBoard board(dir_, {});
    EXPECT_STREQ(board.info().name, "emu");
    ASSERT_TRUE(board.window(WindowKind::kMram).Write(100, data).ok());
    ASSERT_TRUE(board.window(WindowKind::kReram).Write(8192, data).ok());
    ASSERT_TRUE(board.window(WindowKind::kDram).Write(kDramBytes - data.size(), data).ok());
    ASSERT_TRUE(board.window(WindowKind::kSram).Write(0, data).ok());
  }
  EXPECT_EQ(fs::file_size(dir_ / "mram.bin"), kMramBytes);
  EXPECT_EQ(fs::file_size(dir_ / "reram.bin"), kReramBytes);
  EXPECT_EQ(fs::file_size(dir_ / "dram.bin"), kDramBytes);

  EmuBoard board(dir_, {});
  EXPECT_EQ(InPlace(board.window(WindowKind::kMram), 100, data.size()), data);
  EXPECT_EQ(Stored(board.window(WindowKind::kReram), 8192, data.size()), data);
  EXPECT_EQ(InPlace(board.window(WindowKind::kDram), kDramBytes - data.size(), data.size()), data);
  EXPECT_EQ(InPlace(board.window(WindowKind::kSram), 0, data.size()), std::vector<uint8_t>(data.size(), 0));
}

TEST_F(HalEmu, WindowsDescribeThemselves) {
  EmuBoard board(dir_, {});
  const BoardInfo& info = board.info();
  for (uint32_t w = 0; w < kWindowCount; ++w) EXPECT_EQ(info.windows[w]->kind(), static_cast<WindowKind>(w));
  EXPECT_EQ(info.window(WindowKind::kSram).size(), kSramBytes);
  EXPECT_EQ(info.window(WindowKind::kReram).write_granularity(), 4u);
  EXPECT_FALSE(info.window(WindowKind::kMram).needs_erase());
  // Only the volatile windows are writable in place.
  EXPECT_EQ(info.window(WindowKind::kSram).scratch().size(), kSramBytes);
  EXPECT_EQ(info.window(WindowKind::kDram).scratch().size(), kDramBytes);
  EXPECT_TRUE(info.window(WindowKind::kMram).scratch().empty());
  EXPECT_TRUE(info.window(WindowKind::kReram).scratch().empty());
}

TEST_F(HalEmu, RefusesAWindowFileOfAnotherBoardAndAMissingDirectory) {
  { EmuBoard board(dir_, {}); }
  fs::resize_file(dir_ / "reram.bin", 4096);
  EXPECT_THROW(EmuBoard(dir_, {}), EmuError);
  EXPECT_THROW(EmuBoard(dir_ / "absent", {}), EmuError);
}

TEST_F(HalEmu, CountersCountHalAccessAndAttributedInPlaceAccess) {
  EmuBoard board(dir_, {});
  MemoryWindow& mram = board.window(WindowKind::kMram);
  std::vector<uint8_t> buffer(10);
  ASSERT_TRUE(mram.Write(3, buffer).ok());
  ASSERT_TRUE(mram.Read(0, std::span(buffer).first(7)).ok());
  mram.CountInPlace(100, 5);
  EXPECT_EQ(mram.counters().bytes_read, 107u);
  EXPECT_EQ(mram.counters().bytes_written, 15u);

  // Refused accesses touch nothing and count nothing.
  EXPECT_FALSE(mram.Read(kMramBytes - 5, buffer).ok());
  EXPECT_FALSE(mram.Write(kMramBytes - 5, buffer).ok());
  MemoryWindow& reram = board.window(WindowKind::kReram);
  EXPECT_FALSE(reram.Write(2, std::span(buffer).first(8)).ok());  // not word-aligned
  EXPECT_FALSE(reram.Write(0, std::span(buffer).first(6)).ok());  // not whole words
  EXPECT_EQ(mram.counters().bytes_read, 107u);
  EXPECT_EQ(mram.counters().bytes_written, 15u);
  EXPECT_EQ(reram.counters().bytes_written, 0u);
  EXPECT_EQ(board.window(WindowKind::kDram).counters().bytes_read, 0u);
}

TEST(CellNoise, ErrorProbabilityIsTheGaussianTail) {
  EXPECT_EQ(LevelErrorProbability(0.0), 0.0);
  EXPECT_NEAR(LevelErrorProbability(0.5), 0.3173105, 1e-6);   // P(|Z| > 1)
  EXPECT_NEAR(LevelErrorProbability(0.25), 0.0455003, 1e-6);  // P(|Z| > 2)
  EXPECT_NEAR(LevelErrorProbability(1.0 / 6.0), 0.0026998, 1e-6);  // P(|Z| > 3)
}

TEST_F(HalEmu, ZeroSigmaReadsExactly) {
  EmuBoard board(dir_, Gaussian(0.0, 0.0, 7));
  MemoryWindow& reram = board.window(WindowKind::kReram);
  const std::vector<uint8_t> words = CellWords(1 << 16, 3, 2);
  ASSERT_TRUE(reram.Write(0, words).ok());
  for (uint8_t c = 1; c <= 3; ++c) {
    ASSERT_TRUE(reram.BeginReadPass(0, static_cast<uint32_t>(words.size()), c).ok());
    EXPECT_EQ(InPlace(reram, 0, words.size()), words) << int(c);
  }
}

// A board whose ReRAM holds `words` at offset 0, read with `noise`.
std::vector<uint8_t> NoisyRead(const fs::path& dir, const ReadNoise& noise, const std::vector<uint8_t>& words,
                               uint8_t cell_bits) {
  EmuBoard board(dir, noise);
  MemoryWindow& reram = board.window(WindowKind::kReram);
  EXPECT_TRUE(reram.Write(0, words).ok());
  EXPECT_TRUE(reram.BeginReadPass(0, static_cast<uint32_t>(words.size()), cell_bits).ok());
  return InPlace(reram, 0, words.size());
}

TEST_F(HalEmu, NoiseIsReproducibleBySeedAndLeavesTheStoredBitsAlone) {
  const std::vector<uint8_t> words = CellWords(1 << 14, 2, 3);
  const std::vector<uint8_t> a = NoisyRead(dir_, Gaussian(0.3, 0.0, 1), words, 2);
  const std::vector<uint8_t> b = NoisyRead(dir_, Gaussian(0.3, 0.0, 1), words, 2);
  const std::vector<uint8_t> c = NoisyRead(dir_, Gaussian(0.3, 0.0, 2), words, 2);
  EXPECT_NE(a, words);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);

  EmuBoard board(dir_, Gaussian(0.3, 0.0, 1));
  MemoryWindow& reram = board.window(WindowKind::kReram);
  EXPECT_EQ(InPlace(reram, 0, words.size()), words);  // no pass yet: the file as stored
  ASSERT_TRUE(reram.BeginReadPass(0, static_cast<uint32_t>(words.size()), 2).ok());
  EXPECT_EQ(InPlace(reram, 0, words.size()), a);
  EXPECT_EQ(Stored(reram, 0, words.size()), words);
  // A second pass draws afresh from the stored bits, not on top of the first.
  ASSERT_TRUE(reram.BeginReadPass(0, static_cast<uint32_t>(words.size()), 2).ok());
  EXPECT_EQ(InPlace(reram, 0, words.size()), a);
  // A write shows in place as written until the next pass.
  ASSERT_TRUE(reram.Write(0, words).ok());
  EXPECT_EQ(InPlace(reram, 0, words.size()), words);
  // Ending the passes shows the stored bits again, as after a reset.
  ASSERT_TRUE(reram.BeginReadPass(0, static_cast<uint32_t>(words.size()), 2).ok());
  ASSERT_EQ(InPlace(reram, 0, words.size()), a);
  reram.EndReadPasses();
  EXPECT_EQ(InPlace(reram, 0, words.size()), words);
}

// Changed cells move exactly one level, and they are as many as the model
// says: p per interior cell, p/2 per cell at the lowest or highest level.
TEST_F(HalEmu, FlippedCellFractionMatchesTheFormula) {
  const double sigma = 0.3;
  const double p = LevelErrorProbability(sigma);
  for (uint8_t c = 1; c <= 3; ++c) {
    SCOPED_TRACE(int(c));
    const std::vector<uint8_t> words = CellWords(1 << 18, c, 10 + c);
    const std::vector<uint8_t> noisy = NoisyRead(dir_, Gaussian(sigma, 0.0, 5), words, c);
    const uint32_t top = (1u << c) - 1u, per_word = 32u / c;
    double expected = 0.0, variance = 0.0;
    uint64_t changed = 0;
    for (size_t i = 0; i < words.size(); i += 4) {
      uint32_t before, after;
      std::memcpy(&before, &words[i], 4);
      std::memcpy(&after, &noisy[i], 4);
      if (c == 3) ASSERT_EQ(after >> 30, 0u) << "unused word bits changed";
      for (uint32_t k = 0; k < per_word; ++k) {
        const uint32_t x = (before >> (k * c)) & top, y = (after >> (k * c)) & top;
        const double q = (x == 0 || x == top) ? p / 2 : p;
        expected += q;
        variance += q * (1 - q);
        if (x != y) {
          ASSERT_EQ(x > y ? x - y : y - x, 1u);
          ++changed;
        }
      }
    }
    EXPECT_NEAR(static_cast<double>(changed), expected, 5 * std::sqrt(variance));
  }
}

TEST_F(HalEmu, ReramNoiseNeverTouchesMramOrDram) {
  EmuBoard board(dir_, Gaussian(1.0, 0.0, 3));
  const std::vector<uint8_t> data = RandomBytes(1 << 14, 4);
  for (WindowKind kind : {WindowKind::kMram, WindowKind::kDram}) {
    MemoryWindow& window = board.window(kind);
    ASSERT_TRUE(window.Write(0, data).ok());
    for (uint8_t c = 1; c <= 3; ++c) ASSERT_TRUE(window.BeginReadPass(0, static_cast<uint32_t>(data.size()), c).ok());
    EXPECT_EQ(InPlace(window, 0, data.size()), data) << WindowName(kind);
  }
}

TEST_F(HalEmu, MramBitErrorsFlipBitsAtTheirRate) {
  const double ber = 0.01;
  EmuBoard board(dir_, Gaussian(0.0, ber, 9));
  const std::vector<uint8_t> data = RandomBytes(1 << 16, 5);
  MemoryWindow& mram = board.window(WindowKind::kMram);
  MemoryWindow& reram = board.window(WindowKind::kReram);
  ASSERT_TRUE(mram.Write(0, data).ok());
  ASSERT_TRUE(reram.Write(0, data).ok());
  ASSERT_TRUE(mram.BeginReadPass(0, static_cast<uint32_t>(data.size()), 1).ok());
  ASSERT_TRUE(reram.BeginReadPass(0, static_cast<uint32_t>(data.size()), 1).ok());
  EXPECT_EQ(InPlace(reram, 0, data.size()), data);  // sigma 0: exact
  const std::vector<uint8_t> noisy = InPlace(mram, 0, data.size());
  uint64_t flipped = 0;
  for (size_t i = 0; i < data.size(); ++i) flipped += std::popcount(static_cast<unsigned>(data[i] ^ noisy[i]));
  const double bits = data.size() * 8.0;
  EXPECT_NEAR(static_cast<double>(flipped), bits * ber, 5 * std::sqrt(bits * ber * (1 - ber)));
  EXPECT_EQ(Stored(mram, 0, data.size()), data);
}

// A profile whose modes differ and whose errors lean one way or the other,
// so a mode or direction mixed up shows.
DeviceProfile Lopsided() {
  DeviceProfile d;
  d.name = "lopsided";
  d.reram[0] = {0.010, 0.030};
  d.reram[1] = {0.040, 0.005};
  d.reram[2] = {0.015, 0.060};
  d.mram_ber = 0.02;
  return d;
}

// In every cell mode, cells move down and up as often as the profile says:
// p_down per cell that has a level below, p_up per cell that has one above,
// never by more than one level, never in the unused bits of a word.
TEST_F(HalEmu, LevelErrorsFollowTheProfilePerModeAndDirection) {
  const DeviceProfile profile = Lopsided();
  for (NoiseKind kind : {NoiseKind::kRead, NoiseKind::kProgram}) {
    for (uint8_t c = 1; c <= 3; ++c) {
      SCOPED_TRACE(::testing::Message() << "cell_bits " << int(c) << (kind == NoiseKind::kRead ? " read" : " program"));
      const std::vector<uint8_t> words = CellWords(1 << 18, c, 20 + c);
      const std::vector<uint8_t> noisy = NoisyRead(dir_, {kind, profile, 11}, words, c);
      const uint32_t top = (1u << c) - 1u, per_word = 32u / c;
      uint64_t can_go_down = 0, can_go_up = 0, down = 0, up = 0;
      for (size_t i = 0; i < words.size(); i += 4) {
        uint32_t before, after;
        std::memcpy(&before, &words[i], 4);
        std::memcpy(&after, &noisy[i], 4);
        if (c == 3) ASSERT_EQ(after >> 30, 0u) << "unused word bits changed";
        for (uint32_t k = 0; k < per_word; ++k) {
          const uint32_t x = (before >> (k * c)) & top, y = (after >> (k * c)) & top;
          can_go_down += x > 0;
          can_go_up += x < top;
          if (y + 1 == x) ++down;
          if (y == x + 1) ++up;
          ASSERT_TRUE(y + 1 >= x && y <= x + 1) << x << " read as " << y;
        }
      }
      const LevelErrors& e = profile.Mode(c);
      auto expect = [](uint64_t seen, uint64_t trials, double p) {
        const double n = static_cast<double>(trials);
        EXPECT_NEAR(static_cast<double>(seen), n * p, 5 * std::sqrt(n * p * (1 - p))) << seen << " of " << trials;
      };
      expect(down, can_go_down, e.p_down);
      expect(up, can_go_up, e.p_up);
    }
  }
}

// The profile reaches MRAM too, at its bit-error rate.
TEST_F(HalEmu, MramBitErrorsFollowTheProfile) {
  const DeviceProfile profile = Lopsided();
  EmuBoard board(dir_, {NoiseKind::kRead, profile, 4});
  const std::vector<uint8_t> data = RandomBytes(1 << 16, 6);
  MemoryWindow& mram = board.window(WindowKind::kMram);
  ASSERT_TRUE(mram.Write(0, data).ok());
  ASSERT_TRUE(mram.BeginReadPass(0, static_cast<uint32_t>(data.size()), 1).ok());
  const std::vector<uint8_t> noisy = InPlace(mram, 0, data.size());
  uint64_t flipped = 0;
  for (size_t i = 0; i < data.size(); ++i) flipped += std::popcount(static_cast<unsigned>(data[i] ^ noisy[i]));
  const double bits = data.size() * 8.0, p = profile.mram_ber;
  EXPECT_NEAR(static_cast<double>(flipped), bits * p, 5 * std::sqrt(bits * p * (1 - p)));
}

// The in-place bytes of [0, n) in ReRAM and MRAM after one read (a pass
// over both, then EndReadPasses), on a board opened on `dir`.
struct Reads {
  std::vector<std::vector<uint8_t>> reram, mram;
};
Reads ReadTimes(const fs::path& dir, const ReadNoise& noise, const std::vector<uint8_t>& data, int times) {
  EmuBoard board(dir, noise);
  MemoryWindow& reram = board.window(WindowKind::kReram);
  MemoryWindow& mram = board.window(WindowKind::kMram);
  EXPECT_TRUE(reram.Write(0, data).ok());
  EXPECT_TRUE(mram.Write(0, data).ok());
  Reads reads;
  for (int i = 0; i < times; ++i) {
    EXPECT_TRUE(reram.BeginReadPass(0, static_cast<uint32_t>(data.size()), 2).ok());
    EXPECT_TRUE(mram.BeginReadPass(0, static_cast<uint32_t>(data.size()), 1).ok());
    reads.reram.push_back(InPlace(reram, 0, data.size()));
    reads.mram.push_back(InPlace(mram, 0, data.size()));
    for (MemoryWindow* window : board.info().windows) window->EndReadPasses();
  }
  return reads;
}

// Programming errors are the cells' own: every read and every boot sees the
// same ones. Read errors are drawn anew for every read, and the n-th read of
// a boot is the same in every boot with the seed.
TEST_F(HalEmu, ProgramErrorsStayAndReadErrorsChangeFromReadToRead) {
  const std::vector<uint8_t> data = CellWords(1 << 14, 2, 8);
  const Reads program = ReadTimes(dir_, {NoiseKind::kProgram, Lopsided(), 3}, data, 3);
  EXPECT_NE(program.reram[0], data);
  EXPECT_NE(program.mram[0], data);
  EXPECT_EQ(program.reram[1], program.reram[0]);
  EXPECT_EQ(program.reram[2], program.reram[0]);
  EXPECT_EQ(program.mram[1], program.mram[0]);
  const Reads reboot = ReadTimes(dir_, {NoiseKind::kProgram, Lopsided(), 3}, data, 1);
  EXPECT_EQ(reboot.reram[0], program.reram[0]);
  EXPECT_EQ(reboot.mram[0], program.mram[0]);

  const Reads read = ReadTimes(dir_, {NoiseKind::kRead, Lopsided(), 3}, data, 3);
  EXPECT_NE(read.reram[0], data);
  EXPECT_NE(read.reram[1], read.reram[0]);
  EXPECT_NE(read.reram[2], read.reram[1]);
  EXPECT_NE(read.mram[1], read.mram[0]);
  const Reads again = ReadTimes(dir_, {NoiseKind::kRead, Lopsided(), 3}, data, 2);
  EXPECT_EQ(again.reram[0], read.reram[0]);
  EXPECT_EQ(again.reram[1], read.reram[1]);
  EXPECT_EQ(again.mram[1], read.mram[1]);

  // Off reads exactly whatever the profile says.
  const Reads off = ReadTimes(dir_, {NoiseKind::kOff, Lopsided(), 3}, data, 1);
  EXPECT_EQ(off.reram[0], data);
  EXPECT_EQ(off.mram[0], data);
}

TEST_F(HalEmu, ReadPassesCheckTheirRange) {
  EmuBoard board(dir_, {});
  MemoryWindow& reram = board.window(WindowKind::kReram);
  EXPECT_FALSE(reram.BeginReadPass(static_cast<uint32_t>(kReramBytes - 4), 8, 2).ok());
  EXPECT_FALSE(reram.BeginReadPass(0, 8, 0).ok());
  EXPECT_FALSE(reram.BeginReadPass(0, 8, 4).ok());
  EXPECT_FALSE(reram.BeginReadPass(2, 8, 3).ok());  // 3-bit cells come in whole words
  EXPECT_TRUE(reram.BeginReadPass(2, 7, 2).ok());
}

}  // namespace
}  // namespace qmc::hal::emu
