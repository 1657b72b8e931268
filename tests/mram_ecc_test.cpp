// MRAM SECDED (hal/emu/secded.h): the code against a parity-check matrix
// written here, every single error corrected and every double one detected;
// MRAM read errors through it against the errors drawn without it; an image
// read at a rate that makes single errors only gives exactly the clean
// image's logits with SECDED and other logits without; the emulated board
// reads MRAM through it and counts what it corrected.
#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <random>
#include <regex>
#include <string>
#include <vector>

#include "hal/emu/cell_noise.h"
#include "hal/emu/device_profile.h"
#include "hal/emu/secded.h"
#include "host/checkpoint.h"
#include "host/device_noise.h"
#include "host/eval.h"
#include "host/pack.h"
#include "host/pack_presets.h"
#include "tests/board_console.h"
#include "tests/cli_runner.h"

namespace {

namespace fs = std::filesystem;
using namespace qmc::hal::emu;

const fs::path kShared = QMC_SHARED_DIR;

// The 72 code bits by Hamming position: index 0 the overall parity bit,
// 1..71 the positions, check bit j at 2^j and the data bits elsewhere in order.
std::vector<int> CodeBits(uint64_t data, uint8_t check) {
  std::vector<int> bits(72, 0);
  bits[0] = check >> 7 & 1;
  int d = 0;
  for (int p = 1; p <= 71; ++p) {
    bits[p] = std::has_single_bit(static_cast<unsigned>(p)) ? check >> std::countr_zero(static_cast<unsigned>(p)) & 1
                                                            : static_cast<int>(data >> d++ & 1);
  }
  return bits;
}

std::vector<uint64_t> Words() {
  std::mt19937_64 rng(5);
  std::vector<uint64_t> words = {0, ~uint64_t{0}, 1, uint64_t{1} << 63, 0x0123456789ABCDEFull};
  for (int i = 0; i < 200; ++i) words.push_back(rng());
  return words;
}

TEST(Secded, CheckBitsSatisfyTheParityChecks) {
  for (const uint64_t data : Words()) {
    const std::vector<int> bits = CodeBits(data, SecdedCheck(data));
    for (int j = 0; j < 7; ++j) {
      int parity = 0;
      for (int p = 1; p <= 71; ++p) parity ^= (p >> j & 1) ? bits[p] : 0;
      EXPECT_EQ(parity, 0) << "check " << j << " of " << data;
    }
    int all = 0;
    for (int b : bits) all ^= b;
    EXPECT_EQ(all, 0) << data;
  }
}

TEST(Secded, EverySingleErrorIsCorrectedAndEveryDoubleDetected) {
  // Bits 0..63 of the 72 are the data's, 64..71 the check byte's.
  auto flip = [](uint64_t& data, uint8_t& check, int bit) {
    if (bit < 64) data ^= uint64_t{1} << bit;
    else check = static_cast<uint8_t>(check ^ (1u << (bit - 64)));
  };
  const std::vector<uint64_t> words = Words();
  for (size_t w = 0; w < 8; ++w) {
    const uint64_t data = words[w];
    const uint8_t check = SecdedCheck(data);
    uint64_t clean = data;
    EXPECT_EQ(SecdedDecode(clean, check), SecdedOutcome::kClean);
    EXPECT_EQ(clean, data);
    for (int a = 0; a < 72; ++a) {
      uint64_t read = data;
      uint8_t read_check = check;
      flip(read, read_check, a);
      EXPECT_EQ(SecdedDecode(read, read_check), SecdedOutcome::kCorrected) << a;
      EXPECT_EQ(read, data) << a;
      for (int b = a + 1; b < 72; ++b) {
        uint64_t twice = data;
        uint8_t twice_check = check;
        flip(twice, twice_check, a);
        flip(twice, twice_check, b);
        const uint64_t as_read = twice;
        ASSERT_EQ(SecdedDecode(twice, twice_check), SecdedOutcome::kUncorrectable) << a << ", " << b;
        EXPECT_EQ(twice, as_read);  // left as read
      }
    }
  }
}

TEST(Secded, MramReadErrorsThroughTheCode) {
  std::mt19937_64 rng(9);
  std::vector<uint8_t> stored(64 << 10);
  for (uint8_t& b : stored) b = static_cast<uint8_t>(rng());
  constexpr uint64_t kOffset = 4096 + 3;  // not on the 8-byte grid: partial words at both ends
  constexpr double kBer = 2e-3;
  constexpr uint64_t kSeed = 77;

  // Without the code: exactly ApplyBitFlips' errors.
  std::vector<uint8_t> flipped = stored, plain = stored;
  ApplyBitFlips(flipped, kBer, kSeed);
  SecdedCounts none;
  ApplyMramBitErrors(stored, plain, kOffset, kBer, false, kSeed, none);
  EXPECT_TRUE(plain == flipped);
  EXPECT_EQ(none.words, 0u);

  SecdedCounts c;
  std::vector<uint8_t> read = stored;
  ApplyMramBitErrors(stored, read, kOffset, kBer, true, kSeed, c);
  const uint64_t words = (kOffset + stored.size() + 7) / 8 - kOffset / 8;
  EXPECT_EQ(c.words, words);
  // Per word: how many data bits the draw flipped, and whether the word reads back right.
  uint64_t one_error = 0, one_error_fixed = 0, wrong = 0;
  for (uint64_t w = kOffset / 8; w < (kOffset + stored.size() + 7) / 8; ++w) {
    const uint64_t lo = std::max(w * 8, kOffset) - kOffset, hi = std::min(w * 8 + 8, kOffset + stored.size()) - kOffset;
    int errors = 0;
    for (uint64_t i = lo; i < hi; ++i) errors += std::popcount(static_cast<unsigned>(stored[i] ^ flipped[i]));
    const bool right = std::equal(read.begin() + lo, read.begin() + hi, stored.begin() + lo);
    one_error += errors == 1;
    one_error_fixed += errors == 1 && right;
    wrong += !right;
  }
  // A single data error is corrected unless a check bit of its word failed too (p ~ 8 * kBer).
  EXPECT_GT(one_error, 500u);
  EXPECT_GE(one_error_fixed, one_error * 95 / 100);
  EXPECT_GE(c.corrected, one_error_fixed);
  // Every word read wrong is one the decoder flagged, or a miscorrection it counted as silent.
  EXPECT_LE(wrong, c.uncorrectable + c.silent);
  // Two errors among 72 bits: about words * C(72, 2) p^2 (1-p)^70.
  const double doubles = static_cast<double>(words) * 2556 * kBer * kBer * std::pow(1 - kBer, 70);
  EXPECT_NEAR(static_cast<double>(c.uncorrectable), doubles, 6 * std::sqrt(doubles));
}

TEST(Secded, TheProfileSaysWhetherMramHasIt) {
  const std::string reram = R"("reram": {"1": {"p_down": 0, "p_up": 0}, "2": {"p_down": 0, "p_up": 0},
                                  "3": {"p_down": 0, "p_up": 0}})";
  auto parse = [&](const std::string& mram) {
    return ParseDeviceProfile(R"({"name": "m", )" + reram + ", " + mram + "}", "m.json");
  };
  EXPECT_FALSE(parse(R"("mram": {"bit_error_rate": 1e-5})").mram_secded);
  EXPECT_FALSE(parse(R"("mram": {"bit_error_rate": 1e-5, "ecc": "none"})").mram_secded);
  EXPECT_TRUE(parse(R"("mram": {"bit_error_rate": 1e-5, "ecc": "secded"})").mram_secded);
  try {
    parse(R"("mram": {"bit_error_rate": 1e-5, "ecc": "parity"})");
    ADD_FAILURE() << "accepted";
  } catch (const ProfileError& e) {
    EXPECT_STREQ(e.what(), "m.json: mram.ecc: \"parity\" is not none or secded");
  }
  EXPECT_FALSE(DefaultDeviceProfile().mram_secded);
}

class SecdedImage : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!fs::exists(kShared / "models/stories260K.bin")) return;
    qmc::host::Checkpoint checkpoint = qmc::host::LoadCheckpoint(kShared / "models/stories260K.bin");
    checkpoint.tokenizer = qmc::host::LoadTokenizerFile(kShared / "models/tok512.bin", checkpoint.config.vocab_size);
    image_ = new std::vector<uint8_t>(
        qmc::host::PackModel(checkpoint, qmc::host::FindPreset("paper-3mlc")->options).image);
  }
  static void TearDownTestSuite() {
    delete image_;
    image_ = nullptr;
  }
  void SetUp() override {
    if (image_ == nullptr) GTEST_SKIP() << "../shared/models is missing";
  }
  static std::vector<uint8_t>* image_;
};
std::vector<uint8_t>* SecdedImage::image_ = nullptr;

TEST_F(SecdedImage, SingleErrorsGiveTheCleanLogitsOnlyThroughTheCode) {
  const qmc::image::ImageView clean = qmc::image::ImageView::OpenFile(*image_).value();
  const std::string text = "Once upon a time, there was a little girl named Lily. She loved to play outside. "
                           "One day, she saw a big red ball in the park and ran to get it.";
  const std::vector<uint32_t> tokens = qmc::host::EncodeText(clean, text);
  auto eval = [&](const std::vector<uint8_t>& bytes) {
    return qmc::host::Evaluate(qmc::image::ImageView::OpenFile(bytes).value(), &clean, tokens);
  };
  const qmc::host::EvalResult reference = eval(*image_);

  DeviceProfile profile;
  profile.name = "mram only";
  profile.mram_ber = 1e-4;  // about one word in 140 has an error; two in one word almost never
  constexpr uint64_t kSeed = 3;
  profile.mram_secded = true;
  SecdedCounts counts;
  const std::vector<uint8_t> corrected = qmc::host::ApplyDeviceNoise(*image_, profile, kSeed, &counts);
  std::printf("SECDED at %g: %llu words, %llu corrected, %llu uncorrectable\n", profile.mram_ber,
              static_cast<unsigned long long>(counts.words), static_cast<unsigned long long>(counts.corrected),
              static_cast<unsigned long long>(counts.uncorrectable));
  EXPECT_GT(counts.corrected, 5u);
  ASSERT_EQ(counts.uncorrectable, 0u);
  ASSERT_EQ(counts.silent, 0u);
  EXPECT_TRUE(corrected == *image_);
  const qmc::host::EvalResult with_code = eval(corrected);
  EXPECT_EQ(with_code.nll, reference.nll);
  EXPECT_EQ(*with_code.kl, 0.0);
  EXPECT_EQ(*with_code.top1, 1.0);

  profile.mram_secded = false;
  const std::vector<uint8_t> raw = qmc::host::ApplyDeviceNoise(*image_, profile, kSeed);
  EXPECT_FALSE(raw == *image_);
  const qmc::host::EvalResult without = eval(raw);
  EXPECT_NE(without.nll, reference.nll);
  EXPECT_GT(*without.kl, 0.0);
}

TEST_F(SecdedImage, TheEmulatedBoardReadsMramThroughTheCode) {
  const fs::path dir = qmc::testing::FreshTestDir("qmc_mram_ecc_");
  const fs::path image = dir / "paper3.qmc", nvm = dir / "nvm";
  fs::create_directories(nvm);
  std::ofstream(image, std::ios::binary).write(reinterpret_cast<const char*>(image_->data()), image_->size());
  ASSERT_EQ(qmc::testing::Qmc("nvm write " + image.string() + " " + nvm.string(), dir).exit_code, 0);
  std::ofstream(dir / "prompt.txt") << "steps=30 Once upon a time\n";
  struct Run {
    int status;
    std::string text, err;
  };
  auto board = [&](const std::string& options) {
    const std::string command = qmc::testing::EmuCommand(nvm, options) + " <" +
                                (dir / "prompt.txt").string() + " >" + (dir / "out.txt").string() + " 2>" +
                                (dir / "err.txt").string();
    Run r{std::system(command.c_str()), "", qmc::testing::Slurp(dir / "err.txt")};
    r.text = qmc::testing::GeneratedText(qmc::testing::Slurp(dir / "out.txt"));
    return r;
  };
  const Run clean = board("");
  ASSERT_EQ(clean.status, 0);
  ASSERT_NE(clean.text, "");
  // ReRAM exact (sigma 0): only MRAM errs.
  const Run ecc = board("--noise program --reram-sigma 0 --mram-ber 1e-4 --mram-ecc secded --noise-seed 3");
  EXPECT_EQ(ecc.status, 0);
  EXPECT_NE(ecc.err.find(", through SECDED (72,64)"), std::string::npos) << ecc.err;
  std::smatch m;
  ASSERT_TRUE(std::regex_search(ecc.err, m, std::regex("MRAM SECDED: (\\d+) words decoded, (\\d+) corrected, (\\d+) "
                                                       "uncorrectable \\(detected\\), (\\d+) silently wrong")))
      << ecc.err;
  EXPECT_GT(std::stoull(m[2]), 5u);
  EXPECT_EQ(std::stoull(m[3]), 0u);
  EXPECT_EQ(ecc.text, clean.text);
  EXPECT_NE(board("--noise program --reram-sigma 0 --mram-ber 1e-4 --noise-seed 3").text, clean.text);
  // With noise off there is nothing for the code to do: the option is refused.
  const Run refused = board("--mram-ecc secded");
  EXPECT_NE(refused.err.find("--mram-ecc needs --noise read or --noise program"), std::string::npos) << refused.err;
  fs::remove_all(dir);
}

}  // namespace
