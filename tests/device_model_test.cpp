// The device model (docs/device-model.md): device profiles and their
// errors, where a cell error lands in a code (hal/emu/code_errors.h), and
// which of an image's bytes the firmware exposes to read errors.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "common/image_reader.h"
#include "common/quant_layout.h"
#include "common/slot_layout.h"
#include "common/split_layout.h"
#include "firmware/boot.h"
#include "hal/emu/cell_noise.h"
#include "hal/emu/code_errors.h"
#include "hal/emu/device_profile.h"
#include "hal/emu/emu_board.h"
#include "host/atomic_file.h"
#include "host/nvm_image.h"
#include "tests/cli_runner.h"

namespace qmc::hal::emu {
namespace {

namespace fs = std::filesystem;

const fs::path kProfiles = fs::path(QMC_SOURCE_DIR) / "hal/profiles/devices";

class DeviceProfileTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = qmc::testing::FreshTestDir("qmc_device_profile_"); }
  void TearDown() override { fs::remove_all(dir_); }

  fs::path Write(const std::string& text) {
    const fs::path file = dir_ / "profile.json";
    std::ofstream(file, std::ios::binary) << text;
    return file;
  }

  fs::path dir_;
};

const char* const kGood = R"({
  "name": "test device",
  "source": "made up for a test",
  "reram": {
    "1": {"p_down": 0, "p_up": 1e-9},
    "2": {"p_down": 0.001, "p_up": 0.002},
    "3": {"p_down": 0.25, "p_up": 0.5}
  },
  "mram": {"bit_error_rate": 1e-12}
})";

TEST_F(DeviceProfileTest, AGoodFileGivesItsNumbers) {
  const DeviceProfile d = LoadDeviceProfile(Write(kGood));
  EXPECT_EQ(d.name, "test device");
  EXPECT_EQ(d.Mode(1).p_down, 0.0);
  EXPECT_EQ(d.Mode(1).p_up, 1e-9);
  EXPECT_EQ(d.Mode(2).p_down, 0.001);
  EXPECT_EQ(d.Mode(2).p_up, 0.002);
  EXPECT_EQ(d.Mode(3).p_down, 0.25);
  EXPECT_EQ(d.Mode(3).p_up, 0.5);
  EXPECT_EQ(d.mram_ber, 1e-12);
}

// The built-in default is the shipped file, and every shipped profile loads;
// the 2-bit mode reads far more reliably than the 3-bit one.
TEST_F(DeviceProfileTest, TheBuiltInDefaultIsTheShippedFile) {
  const DeviceProfile file = LoadDeviceProfile(kProfiles / "default.json");
  const DeviceProfile built_in = DefaultDeviceProfile();
  EXPECT_EQ(built_in.name, file.name);
  for (uint32_t c = 1; c <= 3; ++c) {
    EXPECT_EQ(built_in.Mode(c).p_down, file.Mode(c).p_down) << c;
    EXPECT_EQ(built_in.Mode(c).p_up, file.Mode(c).p_up) << c;
  }
  EXPECT_EQ(built_in.mram_ber, file.mram_ber);
  int shipped = 0;
  for (const fs::directory_entry& entry : fs::directory_iterator(kProfiles)) {
    SCOPED_TRACE(entry.path().string());
    const DeviceProfile d = LoadDeviceProfile(entry.path());
    const double two = d.Mode(2).p_down + d.Mode(2).p_up, three = d.Mode(3).p_down + d.Mode(3).p_up;
    EXPECT_GT(three, 0.0);
    EXPECT_LT(two, three / 1000);
    ++shipped;
  }
  EXPECT_GE(shipped, 2);
}

TEST_F(DeviceProfileTest, SymmetricProfileIsTheGaussianModel) {
  const DeviceProfile d = SymmetricProfile(0.25, 1e-6);
  for (uint32_t c = 1; c <= 3; ++c) {
    EXPECT_NEAR(d.Mode(c).p_down, 0.0455003 / 2, 1e-6);
    EXPECT_EQ(d.Mode(c).p_up, d.Mode(c).p_down);
  }
  EXPECT_EQ(d.mram_ber, 1e-6);
}

// Each bad input names its key in a one-line message that names the file.
TEST_F(DeviceProfileTest, BadInputIsOneLineNamingTheKey) {
  const std::string mram = R"("mram": {"bit_error_rate": 0})";
  const std::string modes = R"("1": {"p_down": 0, "p_up": 0}, "2": {"p_down": 0, "p_up": 0})";
  struct Case {
    std::string text;
    std::string key;  // what the message must contain
  };
  const std::vector<Case> cases = {
      {R"({"name": "x", "reram": {)" + modes + "}, " + mram + "}", "reram.3: missing"},
      {R"({"name": "x", "reram": {)" + modes + R"(, "3": {"p_down": 0, "p_up": 1.5}}, )" + mram + "}",
       "reram.3.p_up: 1.5 is outside [0, 1]"},
      {R"({"name": "x", "reram": {)" + modes + R"(, "3": {"p_down": -0.1, "p_up": 0}}, )" + mram + "}",
       "reram.3.p_down: -0.1 is outside [0, 1]"},
      {R"({"name": "x", "reram": {)" + modes + R"(, "3": {"p_down": 0.6, "p_up": 0.5}}, )" + mram + "}",
       "reram.3: p_down + p_up = 1.1 exceeds 1"},
      {R"({"name": "x", "reram": {)" + modes + R"(, "3": {"p_down": 0, "p_up": 0}, "4": {}}, )" + mram + "}",
       "reram.4: unknown key"},
      {R"({"name": "x", "reram": {)" + modes + R"(, "3": {"p_down": 0, "p_up": 0, "p_sideways": 0}}, )" + mram + "}",
       "reram.3.p_sideways: unknown key"},
      {R"({"name": "x", "colour": "red", "reram": {}, )" + mram + "}", "colour: unknown key"},
      {R"({"name": "x", "reram": {)" + modes + R"(, "3": {"p_down": "0.1", "p_up": 0}}, )" + mram + "}",
       "reram.3.p_down: expected a number, got string"},
      {R"({"name": "x", "reram": {)" + modes + R"(, "3": [0.1, 0.2]}, )" + mram + "}",
       "reram.3: expected an object, got array"},
      {R"({"name": 7, "reram": {}, )" + mram + "}", "name: expected a string, got number"},
      {R"({"reram": {}, )" + mram + "}", "name: missing"},
      {R"({"name": "x", "reram": {)" + modes + R"(, "3": {"p_down": 0, "p_up": 0}}})", "mram: missing"},
      {R"({"name": "x", "reram": {)" + modes + R"(, "3": {"p_down": 0, "p_up": 0}}, "mram": {"bit_error_rate": true}})",
       "mram.bit_error_rate: expected a number, got boolean"},
      {"{\"name\": \"x\",\n  \"reram\": {\n", "not valid JSON"},
      {"[1, 2]", "expected an object, got array"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.text);
    const fs::path file = Write(c.text);
    try {
      LoadDeviceProfile(file);
      ADD_FAILURE() << "accepted";
    } catch (const ProfileError& e) {
      const std::string message = e.what();
      EXPECT_NE(message.find(c.key), std::string::npos) << message;
      EXPECT_EQ(message.find('\n'), std::string::npos) << message;
      EXPECT_EQ(message.rfind(file.string() + ": ", 0), 0u) << message;
    }
  }
  try {
    LoadDeviceProfile(dir_ / "absent.json");
    ADD_FAILURE() << "accepted a missing file";
  } catch (const ProfileError& e) {
    EXPECT_NE(std::string(e.what()).find("absent.json: cannot open"), std::string::npos) << e.what();
  }
}

// b == c: one cell per code, and a cell error is a ±1 code error, except
// that the lowest level cannot go down and the highest cannot go up.
TEST(CodeErrors, OneCodePerCellIsTheProfileLessTheEdges) {
  const LevelErrors e{0.03, 0.07};
  for (uint32_t c = 1; c <= 3; ++c) {
    const CodeErrorStats s = CodeErrors(e, c, c);
    const double interior = 1.0 - 1.0 / static_cast<double>(1u << c);  // share of levels with a neighbour each way
    EXPECT_NEAR(s.mean_square_levels, interior * (e.p_down + e.p_up), 1e-15) << c;
    EXPECT_NEAR(s.p_error, s.mean_square_levels, 1e-15) << c;
    EXPECT_EQ(s.p_not_unit, 0.0) << c;
  }
  const CodeErrorStats none = CodeErrors({0.0, 0.0}, 3, 2);
  EXPECT_EQ(none.p_error, 0.0);
  EXPECT_EQ(none.mean_square_levels, 0.0);
  EXPECT_EQ(none.p_not_unit, 0.0);
  EXPECT_THROW(CodeErrors(e, 0, 2), std::invalid_argument);
  EXPECT_THROW(CodeErrors(e, 3, 4), std::invalid_argument);
}

// A 2-bit code in two 1-bit cells, by hand: each cell flips with p_up at 0
// and p_down at 1; the low cell is worth 1, the high cell 2, both cells at
// once can cancel to ±1.
TEST(CodeErrors, TwoBitCodesInOneBitCellsByHand) {
  const double pd = 0.1, pu = 0.3;
  const double q = (pd + pu) / 2;  // one cell's error probability, its level uniform
  const double drift = (pu - pd) / 2;  // E[the cell's signed move]
  const CodeErrorStats s = CodeErrors({pd, pu}, 2, 1);
  EXPECT_NEAR(s.p_error, 1 - (1 - q) * (1 - q), 1e-12);
  EXPECT_NEAR(s.mean_square_levels, q * 1 + q * 4 + 2 * 1 * 2 * drift * drift, 1e-12);
  // |d| = 1: the low cell alone, or both moving opposite ways (+1 - 2, -1 + 2).
  const double unit = q * (1 - q) + 2 * (pu / 2) * (pd / 2);
  EXPECT_NEAR(s.p_not_unit, (s.p_error - unit) / s.p_error, 1e-12);
}

// Monte Carlo through the image format's own packing (common/quant_layout.h):
// random codes written into cells, each cell read with the profile's errors,
// codes read back. The statistics must agree with CodeErrors within 5σ.
struct Observed {
  double p_error, p_error_sigma, mean_square, mean_square_sigma, p_big, p_big_sigma;
};

Observed MonteCarlo(const LevelErrors& e, uint32_t b, uint32_t c, CellMapping mapping, uint32_t seed) {
  constexpr uint64_t kCodes = 150000;
  std::mt19937_64 rng(seed);
  std::vector<uint32_t> words(quant::StreamWords(kCodes, b, c) + 1, 0);
  std::vector<uint32_t> codes(kCodes);
  for (uint64_t k = 0; k < kCodes; ++k) {
    codes[k] = static_cast<uint32_t>(rng() & ((1u << b) - 1u));
    quant::WriteCode(words.data(), k, codes[k], b, c);
  }
  // Each cell of the stream: its bits as a level (binary, or Gray's inverse), one read.
  const uint32_t top = (1u << c) - 1u, per_word = quant::CellsPerWord(c);
  std::uniform_real_distribution<double> uniform(0.0, 1.0);
  const uint64_t cells = (kCodes * b + c - 1) / c;
  for (uint64_t j = 0; j < cells; ++j) {
    const uint32_t bits = quant::ReadCell(words.data(), j, c);
    uint32_t level = bits;
    if (mapping == CellMapping::kGray) {
      for (uint32_t l = 0; l <= top; ++l) {
        if ((l ^ (l >> 1)) == bits) level = l;
      }
    }
    const double u = uniform(rng);
    if (u < e.p_down) {
      if (level > 0) --level;
    } else if (u < e.p_down + e.p_up) {
      if (level < top) ++level;
    }
    const uint32_t read = mapping == CellMapping::kGray ? level ^ (level >> 1) : level;
    const uint32_t shift = static_cast<uint32_t>(j % per_word) * c;
    words[j / per_word] = (words[j / per_word] & ~(top << shift)) | (read << shift);
  }
  double errors = 0, sum_sq = 0, sum_sq2 = 0, big = 0;
  for (uint64_t k = 0; k < kCodes; ++k) {
    const double d = static_cast<double>(quant::ReadCode(words.data(), k, b, c)) - codes[k];
    errors += d != 0;
    sum_sq += d * d;
    sum_sq2 += d * d * d * d;
    big += std::abs(d) > 1;
  }
  const double n = kCodes;
  const double p = errors / n, m = sum_sq / n, pb = big / n;
  // Codes share cells, so neighbours are correlated: widen the binomial σ by the cells a code touches.
  const double spread = std::sqrt(static_cast<double>((b + c - 1) / c + 1));
  return {p,  spread * std::sqrt(p * (1 - p) / n), m, spread * std::sqrt((sum_sq2 / n - m * m) / n),
          pb, spread * std::sqrt(pb * (1 - pb) / n)};
}

TEST(CodeErrors, AgreeWithMonteCarloThroughThePacking) {
  const LevelErrors e{0.02, 0.05};
  for (CellMapping mapping : {CellMapping::kBinary, CellMapping::kGray}) {
    for (uint32_t b = 2; b <= 4; ++b) {
      for (uint32_t c = 1; c <= 3; ++c) {
        SCOPED_TRACE(::testing::Message() << "b " << b << " c " << c << (mapping == CellMapping::kGray ? " gray" : ""));
        const CodeErrorStats s = CodeErrors(e, b, c, mapping);
        const Observed o = MonteCarlo(e, b, c, mapping, 100 * b + c);
        EXPECT_NEAR(s.p_error, o.p_error, 5 * o.p_error_sigma);
        EXPECT_NEAR(s.mean_square_levels, o.mean_square, 5 * o.mean_square_sigma + 1e-12);
        EXPECT_NEAR(s.p_not_unit * s.p_error, o.p_big, 5 * o.p_big_sigma + 1e-12);
      }
    }
  }
}

// The emulator's cells and CodeErrors tell one story: codes packed as the
// image packs them, read through ApplyLevelNoise, err as CodeErrors says.
TEST(CodeErrors, AgreeWithTheEmulatorsCells) {
  const LevelErrors e{0.03, 0.01};
  for (uint32_t c = 1; c <= 3; ++c) {
    SCOPED_TRACE(c);
    constexpr uint32_t b = 3;
    constexpr uint64_t kCodes = 200000;
    std::mt19937 rng(c);
    std::vector<uint32_t> words(quant::StreamWords(kCodes, b, c), 0);
    std::vector<uint32_t> codes(kCodes);
    for (uint64_t k = 0; k < kCodes; ++k) {
      codes[k] = rng() & 7u;
      quant::WriteCode(words.data(), k, codes[k], b, c);
    }
    ApplyLevelNoise({reinterpret_cast<uint8_t*>(words.data()), words.size() * 4}, static_cast<uint8_t>(c), e, 99);
    double errors = 0, sum_sq = 0;
    for (uint64_t k = 0; k < kCodes; ++k) {
      const double d = static_cast<double>(quant::ReadCode(words.data(), k, b, c)) - codes[k];
      errors += d != 0;
      sum_sq += d * d;
    }
    const CodeErrorStats s = CodeErrors(e, b, c);
    const double n = kCodes, spread = 2.0;
    EXPECT_NEAR(errors / n, s.p_error, 5 * spread * std::sqrt(s.p_error / n));
    EXPECT_NEAR(sum_sq / n, s.mean_square_levels, 5 * spread * std::sqrt(s.mean_square_levels * 64 / n));
  }
}

// Which bytes of an image the firmware exposes to read errors: a split
// image on a board whose MRAM flips bits. The outliers' bitmaps and codes
// are read with errors, their row-start index never; scales likewise.
class ReadRangesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fs::exists(fs::path(QMC_SHARED_DIR) / "models/stories260K.bin")) GTEST_SKIP() << "../shared/models is missing";
    dir_ = qmc::testing::FreshTestDir("qmc_read_ranges_");
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

TEST_F(ReadRangesTest, MramErrorsReachOutlierBitmapsAndCodesButNotTheirIndex) {
  const fs::path image_file = dir_ / "split.qmc";
  const qmc::testing::CliRun r = qmc::testing::Qmc("pack " + qmc::testing::Stories260K() + " -q --scheme qmc --outlier-bits 5 "
                                                   "--outlier-ratio 0.05 -o " + image_file.string(), dir_);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const fs::path nvm = dir_ / "nvm";
  fs::create_directories(nvm);
  const std::vector<uint8_t> file = host::ReadWholeFile(image_file);
  host::WriteImageToNvm(image::ImageView::OpenFile(file).value(), file, nvm);

  DeviceProfile profile;
  profile.name = "mram only";
  profile.mram_ber = 0.01;
  EmuBoard board(nvm, {NoiseKind::kProgram, profile, 5});
  image::ImageView view;
  const firmware::BootResult boot = firmware::BootImage(board.info(), view);
  ASSERT_EQ(boot.state, firmware::BootState::kReady);
  // Before the passes, in place is as stored.
  MemoryWindow& mram = board.window(WindowKind::kMram);
  const uint32_t slot = boot.slots.active_slot;
  ASSERT_TRUE(firmware::StartReadPasses(view, board.info(), slot).ok());

  // In-place bytes vs stored bytes of [from, from + length) of a blob.
  auto changed = [&](const image::BlobRef& ref, uint64_t from, uint64_t length) {
    const image::SectionEntry& s = view.section(ref.section);
    EXPECT_EQ(s.window, static_cast<uint8_t>(image::Window::kMram));
    const uint32_t at = nvm::SlotsOf(mram.kind(), mram.size()).offset[slot] + s.window_offset + ref.offset +
                        static_cast<uint32_t>(from);
    std::vector<uint8_t> stored(length);
    EXPECT_TRUE(mram.Read(at, stored).ok());
    return std::memcmp(stored.data(), mram.bytes().data() + at, length) != 0;
  };
  int split = 0, index_changed = 0, data_changed = 0, scales_changed = 0;
  for (uint32_t i = 0; i < view.tensor_count(); ++i) {
    const image::TensorEntry t = view.tensor(i);
    if (t.scheme != static_cast<uint8_t>(image::Scheme::kSplit) || t.outliers.section == image::kNoSection) continue;
    ++split;
    const uint64_t index = quant::SplitBitmapOffset(t.rows);
    index_changed += changed(t.outliers, 0, index);
    data_changed += changed(t.outliers, index, t.outliers.length - index);
    scales_changed += changed(t.scales, 0, t.scales.length);
  }
  ASSERT_GT(split, 0);
  EXPECT_EQ(index_changed, 0);
  EXPECT_EQ(data_changed, split);  // 1 % of the bits of every tensor's bitmap and codes: some always flip
  EXPECT_EQ(scales_changed, split);
}

}  // namespace
}  // namespace qmc::hal::emu
