// NVM faults against the board's boot (docs/protocol.md §5, docs/device-model.md):
// a corrupted section in each window of the newest slot in turn (ReRAM,
// MRAM, DRAM, and the boot record) makes the board fall back to the other
// slot and generate its text; with both slots bad it says so on one line,
// runs nothing, and its flash server still takes an image that then boots;
// ReRAM retention drift (qmc-fw-emu --age) moves stored cells as the model
// says, the CRC check catches it, and re-flashing rewrites the drifted blocks.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <regex>
#include <string>
#include <vector>

#include "common/image_reader.h"
#include "common/read_ranges.h"
#include "common/slot_layout.h"
#include "hal/emu/retention.h"
#include "tests/board_console.h"
#include "tests/cli_runner.h"

namespace {

namespace fs = std::filesystem;
using qmc::image::Window;
using qmc::testing::CliRun;
using qmc::testing::Qmc;
using qmc::testing::Slurp;

const fs::path kShared = QMC_SHARED_DIR;
const std::string kPrompt = "Once upon a time";
constexpr int kSteps = 24;

const char* FileOf(Window w) {
  return w == Window::kMram ? "mram.bin" : w == Window::kReram ? "reram.bin" : "dram.bin";
}

// Q: stories260K packed qmc 3-bit (codes in ReRAM, scales in MRAM); D: fp16
// (dense weights in DRAM). What `qmc run` generates greedily from each.
struct Images {
  fs::path dir, q, d;
  std::map<fs::path, std::string> text;
};
Images* g_images = nullptr;

class NvmFault : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!fs::exists(kShared / "models/stories260K.bin")) return;
    g_images = new Images;
    Images& im = *g_images;
    im.dir = fs::path(::testing::TempDir()) / ("qmc_nvm_fault_images_" + std::to_string(::getpid()));
    fs::create_directories(im.dir);
    im.q = im.dir / "q.qmc", im.d = im.dir / "d.qmc";
    for (const auto& [out, scheme] : {std::pair(im.q, "--scheme qmc --bits 3"), std::pair(im.d, "--scheme fp16")}) {
      im.text[out] =
          qmc::testing::PackAndGenerate(qmc::testing::Stories260K() + " " + scheme, out, kPrompt, kSteps, im.dir);
    }
    ASSERT_NE(im.text[im.q], im.text[im.d]);
  }
  static void TearDownTestSuite() {
    if (g_images != nullptr) fs::remove_all(g_images->dir);
    delete g_images;
    g_images = nullptr;
  }
  void SetUp() override {
    if (g_images == nullptr) GTEST_SKIP() << "../shared/models is missing";
    dir_ = qmc::testing::FreshTestDir("qmc_nvm_fault_");
  }
  void TearDown() override {
    if (!dir_.empty()) fs::remove_all(dir_);
  }

  std::string Port(const fs::path& nvm) { return "'" + qmc::testing::EmuPort(nvm) + "'"; }

  // A board with `slot0` pre-flashed (commit 1) and `slot1` flashed over the link (commit 2).
  fs::path Board(const fs::path& slot0, const fs::path& slot1, const std::string& name) {
    const fs::path nvm = dir_ / name;
    fs::create_directories(nvm);
    EXPECT_EQ(Qmc("nvm write " + slot0.string() + " " + nvm.string(), dir_).exit_code, 0);
    const CliRun r = Qmc("flash " + slot1.string() + " --port " + Port(nvm) + " --json", dir_);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(nlohmann::json::parse(r.out)["slot"], 1);
    return nvm;
  }

  // Where `image`'s largest section in `window` lies in the window file of a board holding it in `slot`.
  static std::pair<uint64_t, uint32_t> SectionAt(const fs::path& image, Window window, uint32_t slot,
                                                 const fs::path& nvm) {
    const std::string bytes = Slurp(image);
    const auto view = qmc::image::ImageView::OpenFile(
                          {reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()})
                          .value();
    uint64_t at = 0;
    uint32_t length = 0;
    for (uint32_t i = 0; i < view.section_count(); ++i) {
      const qmc::image::SectionEntry& s = view.section(i);
      if (s.window == static_cast<uint8_t>(window) && s.length > length) at = s.window_offset, length = s.length;
    }
    EXPECT_GT(length, 0u) << image << " has no section in that window";
    return {qmc::nvm::SlotsOf(window, fs::file_size(nvm / FileOf(window))).offset[slot] + at, length};
  }

  static void Flip(const fs::path& file, uint64_t offset) {
    std::fstream f(file, std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(static_cast<std::streamoff>(offset));
    const char byte = static_cast<char>(f.get());
    f.seekp(static_cast<std::streamoff>(offset));
    f.put(static_cast<char>(byte ^ 0x5A));
  }
  void FlipSection(const fs::path& nvm, const fs::path& image, Window window, uint32_t slot) {
    const auto [at, length] = SectionAt(image, window, slot, nvm);
    Flip(nvm / FileOf(window), at + length / 2);
  }

  struct Console {
    int exit_code;
    std::string out, err, text;  // text: what it generated, as `qmc run` prints it
  };
  Console Firmware(const fs::path& nvm, const std::string& options = "") {
    const fs::path in = dir_ / "prompt.txt", out = dir_ / "fw_out.txt", err = dir_ / "fw_err.txt";
    std::ofstream(in) << "steps=" << kSteps << " " << kPrompt << "\n";
    const int status = std::system(("timeout 60 " + qmc::testing::EmuCommand(nvm, options) + " <" + in.string() +
                                    " >" + out.string() + " 2>" + err.string())
                                       .c_str());
    const std::string console = Slurp(out);
    return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, console, Slurp(err), qmc::testing::GeneratedText(console)};
  }

  void ExpectFallback(const Console& c, const fs::path& older, const std::string& why) {
    EXPECT_EQ(c.exit_code, 0) << c.out << c.err;
    EXPECT_NE(c.out.find("qmc-fw: newest commit rejected: "), std::string::npos) << c.out;
    EXPECT_NE(c.out.find(why + "; booting commit 1\n"), std::string::npos) << c.out;
    EXPECT_NE(c.out.find("qmc-fw: image in slot 0, commit 1\n"), std::string::npos) << c.out;
    EXPECT_EQ(c.text, g_images->text.at(older));
  }

  fs::path dir_;
};

TEST_F(NvmFault, ACorruptWindowInTheNewestSlotBootsTheOtherSlot) {
  const Images& im = *g_images;
  struct Case {
    Window window;
    fs::path slot0, slot1;  // slot 1 holds the image with a section in `window`
  };
  for (const Case& c : {Case{Window::kReram, im.d, im.q}, Case{Window::kMram, im.d, im.q},
                        Case{Window::kDram, im.q, im.d}}) {
    SCOPED_TRACE(FileOf(c.window));
    const fs::path nvm = Board(c.slot0, c.slot1, FileOf(c.window));
    EXPECT_EQ(Firmware(nvm).text, im.text.at(c.slot1));  // intact, the newest boots
    FlipSection(nvm, c.slot1, c.window, 1);
    ExpectFallback(Firmware(nvm), c.slot0, "section CRC mismatch");
  }
  // The boot record itself (slot 1's header, in MRAM).
  const fs::path nvm = Board(im.d, im.q, "boot_record");
  Flip(nvm / "mram.bin", qmc::nvm::SlotsOf(Window::kMram, fs::file_size(nvm / "mram.bin")).offset[1] + 40);
  ExpectFallback(Firmware(nvm), im.d, "header CRC mismatch");
}

TEST_F(NvmFault, WithNoValidSlotTheBoardSaysSoAndStillTakesAFlash) {
  const Images& im = *g_images;
  const fs::path nvm = Board(im.d, im.q, "nvm");
  FlipSection(nvm, im.q, Window::kReram, 1);
  FlipSection(nvm, im.d, Window::kDram, 0);
  const Console c = Firmware(nvm);
  EXPECT_EQ(c.exit_code, 3) << c.err;
  const std::regex rejected("qmc-fw: image rejected: [^\n]*section CRC mismatch; waiting for a flash\n");
  EXPECT_EQ(std::distance(std::sregex_iterator(c.out.begin(), c.out.end(), rejected), std::sregex_iterator()), 1)
      << c.out;
  EXPECT_NE(c.out.find("qmc-fw: no image to run; waiting for a flash\n"), std::string::npos) << c.out;
  EXPECT_EQ(c.out.find("qmc-fw: stats"), std::string::npos) << c.out;

  // The flash server still works: the new image lands and boots.
  const CliRun flash = Qmc("flash " + im.q.string() + " --port " + Port(nvm) + " --json", dir_);
  ASSERT_EQ(flash.exit_code, 0) << flash.err;
  const Console after = Firmware(nvm);
  EXPECT_EQ(after.exit_code, 0);
  EXPECT_EQ(after.text, im.text.at(im.q));
}

TEST(Retention, TheProfileGivesEachModeItsDriftRates) {
  auto parse = [](const std::string& three) {
    return qmc::hal::emu::ParseDeviceProfile(
        R"({"name": "d", "reram": {"1": {"p_down": 0, "p_up": 0}, "2": {"p_down": 0, "p_up": 0}, "3": )" + three +
            R"(}, "mram": {"bit_error_rate": 0}})",
        "d.json");
  };
  const qmc::hal::emu::DeviceProfile d =
      parse(R"({"p_down": 0.01, "p_up": 0, "drift_per_hour": {"p_down": 3e-7, "p_up": 1e-7}})");
  EXPECT_EQ(d.drift_per_hour[2].p_down, 3e-7);
  EXPECT_EQ(d.drift_per_hour[2].p_up, 1e-7);
  EXPECT_EQ(d.drift_per_hour[1].p_down, 0.0);  // absent: no drift
  EXPECT_EQ(d.Mode(3).p_down, 0.01);
  for (const auto& [three, message] :
       {std::pair(R"({"p_down": 0, "p_up": 0, "drift_per_hour": {"p_down": 2, "p_up": 0}})",
                  "d.json: reram.3.drift_per_hour.p_down: 2 is outside [0, 1]"),
        std::pair(R"({"p_down": 0, "p_up": 0, "drift_per_hour": {"p_down": 0}})",
                  "d.json: reram.3.drift_per_hour.p_up: missing (\"p_up\" in \"reram.3.drift_per_hour\")"),
        std::pair(R"({"p_down": 0, "p_up": 0, "drift_per_hour": {"p_down": 0, "p_up": 0, "p_left": 0}})",
                  "d.json: reram.3.drift_per_hour.p_left: unknown key (expected p_down, p_up)")}) {
    try {
      parse(three);
      ADD_FAILURE() << "accepted " << three;
    } catch (const qmc::hal::emu::ProfileError& e) {
      EXPECT_STREQ(e.what(), message);
    }
  }
}

TEST(Retention, DriftAfterIsTheModel) {
  const qmc::hal::emu::LevelErrors rate{2e-4, 1e-4};
  for (const double hours : {0.0, 1.0, 1000.0, 1e6}) {
    const qmc::hal::emu::LevelErrors p = qmc::hal::emu::DriftAfter(rate, hours);
    const double moved = 1.0 - std::exp(-3e-4 * hours);
    EXPECT_NEAR(p.p_down, moved * 2 / 3, 1e-12) << hours;
    EXPECT_NEAR(p.p_up, moved / 3, 1e-12) << hours;
  }
  EXPECT_EQ(qmc::hal::emu::DriftAfter({0.0, 0.0}, 1e6).p_down, 0.0);
}

TEST_F(NvmFault, RetentionDriftMovesCellsTheBootCatchesItAndAReflashRewritesThem) {
  const Images& im = *g_images;
  const fs::path nvm = Board(im.d, im.q, "nvm");
  const std::string before = Slurp(nvm / "reram.bin");

  // No drift term (the shipped profiles): nothing moves.
  Console c = Firmware(nvm, "--age 1e6");
  EXPECT_NE(c.err.find("slot 1: 0 cells moved;"), std::string::npos) << c.err;
  EXPECT_TRUE(Slurp(nvm / "reram.bin") == before);
  EXPECT_EQ(c.text, im.text.at(im.q));

  constexpr double kDown = 2e-6, kUp = 1e-6, kHours = 50;
  std::ofstream(dir_ / "drift.json") << R"({"name": "drifting", "reram": {
    "1": {"p_down": 0, "p_up": 0, "drift_per_hour": {"p_down": 2e-6, "p_up": 1e-6}},
    "2": {"p_down": 0, "p_up": 0, "drift_per_hour": {"p_down": 2e-6, "p_up": 1e-6}},
    "3": {"p_down": 0, "p_up": 0, "drift_per_hour": {"p_down": 2e-6, "p_up": 1e-6}}},
    "mram": {"bit_error_rate": 0}})";
  c = Firmware(nvm, "--age 50 --device " + (dir_ / "drift.json").string() + " --noise-seed 4");
  std::smatch m;
  ASSERT_TRUE(std::regex_search(c.err, m, std::regex("retention: 50 hours on device \"drifting\": slot 0: 0 cells moved; slot 1: (\\d+) cells "
                                                     "moved;\n")))
      << c.err;
  const uint64_t moved = std::stoull(m[1]);
  ExpectFallback(c, im.d, "section CRC mismatch");

  // The cells that changed, by comparing the file, and how many the model expects from their levels.
  const std::string after = Slurp(nvm / "reram.bin"), q = Slurp(im.q);
  const auto view = qmc::image::ImageView::OpenFile({reinterpret_cast<const uint8_t*>(q.data()), q.size()}).value();
  const uint64_t slot = qmc::nvm::SlotsOf(Window::kReram, after.size()).offset[1];
  const double p = 1.0 - std::exp(-(kDown + kUp) * kHours), p_down = p * kDown / (kDown + kUp), p_up = p - p_down;
  uint64_t changed = 0, cells = 0;
  double expected = 0.0;
  qmc::image::ForEachReadRange(view, [&](Window w, uint32_t offset, uint32_t length, uint8_t cell_bits) {
    if (w != Window::kReram) return;
    const uint32_t top = (1u << cell_bits) - 1, unit = cell_bits == 3 ? 4 : 1;
    for (uint32_t at = 0; at + unit <= length; at += unit) {
      uint32_t was = 0, is = 0;
      std::memcpy(&was, before.data() + slot + offset + at, unit);
      std::memcpy(&is, after.data() + slot + offset + at, unit);
      for (uint32_t shift = 0; shift + cell_bits <= unit * 8; shift += cell_bits) {
        const uint32_t level = was >> shift & top, now = is >> shift & top;
        changed += level != now;
        EXPECT_LE(std::abs(static_cast<int>(level) - static_cast<int>(now)), 1);
        expected += (level > 0 ? p_down : 0.0) + (level < top ? p_up : 0.0);
        ++cells;
      }
    }
  });
  std::printf("drift: %llu of %llu cells moved, %.1f expected\n", static_cast<unsigned long long>(changed),
              static_cast<unsigned long long>(cells), expected);
  EXPECT_EQ(changed, moved);
  EXPECT_GT(moved, 0u);
  EXPECT_NEAR(static_cast<double>(moved), expected, 6 * std::sqrt(expected) + 1);
  // Nothing outside the image's codes changed (a 3-bit cell may straddle two bytes).
  uint64_t bytes_changed = 0;
  for (size_t i = 0; i < before.size(); ++i) bytes_changed += before[i] != after[i];
  EXPECT_LE(bytes_changed, 2 * moved);

  // Re-flashing the image rewrites only the drifted blocks; it boots again.
  const CliRun flash = Qmc("flash " + im.q.string() + " --port " + Port(nvm) + " --json", dir_);
  ASSERT_EQ(flash.exit_code, 0) << flash.err;
  const nlohmann::json j = nlohmann::json::parse(flash.out);
  EXPECT_EQ(j["slot"], 1);
  EXPECT_GT(j["sent_bytes"].get<uint64_t>(), 0u);
  EXPECT_LE(j["sent_bytes"].get<uint64_t>(), moved * 4096);
  EXPECT_TRUE(Slurp(nvm / "reram.bin") == before);
  const Console again = Firmware(nvm);
  EXPECT_EQ(again.text, im.text.at(im.q));
  EXPECT_NE(again.out.find("qmc-fw: image in slot 1, commit 3\n"), std::string::npos) << again.out;
}

}  // namespace
