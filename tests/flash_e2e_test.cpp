// qmc flash, read and devices end to end on the emulated board, flashed
// through exec:qmc-fw-emu exactly as a board is flashed over a UART: the
// flashed board boots and generates what `qmc run` generates, read-back is
// byte-identical, re-flashing sends only what changed, a damaged link still
// ends in the verified image, and a power cut or a killed board never
// leaves a wrong or unbootable image.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "host/atomic_file.h"
#include "host/flash/exec_port.h"
#include "host/flash/flasher.h"
#include "host/flash/image_readback.h"
#include "tests/board_console.h"
#include "tests/cli_runner.h"
#include "tests/faulty_port.h"
#include "tests/perturbed_checkpoint.h"

namespace {

namespace fs = std::filesystem;
using namespace qmc::host::flash;
using qmc::testing::CliRun;
using qmc::testing::Qmc;
using qmc::testing::Slurp;

const fs::path kShared = QMC_SHARED_DIR;
const std::string kPrompt = "Once upon a time";
constexpr int kSteps = 40;

// Images shared by every test: A and B are stories260K (qmc, 3 bits) with
// one tensor different; C is the same model packed otherwise (rtn, 4 bits),
// different in nearly every byte.
struct Images {
  fs::path dir, a, b, c;
  std::map<fs::path, std::string> text;  // what `qmc run` generates greedily from each
};
Images* g_images = nullptr;

class FlashE2e : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!fs::exists(kShared / "models/stories260K.bin")) return;
    g_images = new Images;
    Images& im = *g_images;
    im.dir = fs::path(::testing::TempDir()) / ("qmc_flash_images_" + std::to_string(::getpid()));
    fs::create_directories(im.dir);
    const fs::path perturbed = im.dir / "perturbed.bin";
    qmc::testing::WritePerturbedCheckpoint(kShared / "models/stories260K.bin", perturbed);
    const std::string tokenizer = " --tokenizer " + (kShared / "models/tok512.bin").string() + " ";
    im.a = im.dir / "a.qmc", im.b = im.dir / "b.qmc", im.c = im.dir / "c.qmc";
    auto pack = [&](const fs::path& checkpoint, const std::string& options, const fs::path& out) {
      im.text[out] = qmc::testing::PackAndGenerate(checkpoint.string() + tokenizer + options, out, kPrompt, kSteps, im.dir);
    };
    pack(kShared / "models/stories260K.bin", "--scheme qmc --bits 3", im.a);
    pack(perturbed, "--scheme qmc --bits 3", im.b);
    pack(kShared / "models/stories260K.bin", "--scheme rtn --bits 4", im.c);
  }
  static void TearDownTestSuite() {
    if (g_images != nullptr) fs::remove_all(g_images->dir);
    delete g_images;
    g_images = nullptr;
  }

  void SetUp() override {
    if (g_images == nullptr) GTEST_SKIP() << "../shared/models is missing";
    dir_ = qmc::testing::FreshTestDir("qmc_flash_e2e_");
  }
  void TearDown() override {
    if (!dir_.empty()) fs::remove_all(dir_);
  }

  CliRun Flash(const fs::path& image, const fs::path& nvm, const std::string& options = "") {
    return Qmc("flash " + image.string() + " --port '" + qmc::testing::EmuPort(nvm) + "' --json " + options, dir_);
  }
  nlohmann::json FlashOk(const fs::path& image, const fs::path& nvm, const std::string& options = "") {
    const CliRun r = Flash(image, nvm, options);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return r.exit_code == 0 ? nlohmann::json::parse(r.out) : nlohmann::json();
  }

  // The image the board boots, read back with `qmc read`; empty if none.
  std::string ReadBack(const fs::path& nvm) {
    const fs::path out = dir_ / "readback.qmc";
    fs::remove(out);
    const CliRun r = Qmc("read --port '" + qmc::testing::EmuPort(nvm) + "' -o " + out.string(), dir_);
    return r.exit_code == 0 ? Slurp(out) : std::string();
  }

  // What the board generates for kPrompt, greedily, as `qmc run` prints it.
  std::string Generate(const fs::path& nvm) {
    const fs::path in = dir_ / "prompt.txt", out = dir_ / "fw_out.txt";
    std::ofstream(in) << "steps=" << kSteps << " " << kPrompt << "\n";
    const std::string command =
        "timeout 60 " + qmc::testing::EmuCommand(nvm) + " <" + in.string() + " >" + out.string() + " 2>/dev/null";
    if (std::system(command.c_str()) != 0) return "(the board did not run)";
    return qmc::testing::GeneratedText(Slurp(out));
  }

  // A board with `image` committed (slot 0), kept pristine to copy from.
  fs::path BoardWith(const fs::path& image, const std::string& name) {
    const fs::path nvm = dir_ / name;
    fs::create_directories(nvm);
    FlashOk(image, nvm);
    return nvm;
  }
  // A copy of a board's window files (sparse, so 136 MiB of mostly holes copy fast).
  fs::path CopyBoard(const fs::path& from, const std::string& name) {
    const fs::path to = dir_ / name;
    fs::remove_all(to);
    EXPECT_EQ(std::system(("cp -r --sparse=always " + from.string() + " " + to.string()).c_str()), 0);
    return to;
  }

  fs::path dir_;
};

TEST_F(FlashE2e, AFlashedBoardBootsTheImageAndReadsItBack) {
  const Images& im = *g_images;
  const fs::path nvm = dir_ / "nvm";
  fs::create_directories(nvm);
  const nlohmann::json first = FlashOk(im.a, nvm);
  EXPECT_EQ(first["slot"], 0);
  EXPECT_EQ(first["commit_sequence"], 1);
  EXPECT_EQ(first["sent_bytes"].get<uint64_t>() + first["skipped_bytes"].get<uint64_t>(), first["image_bytes"]);
  EXPECT_LT(first["sent_deflated_bytes"].get<uint64_t>(), first["sent_bytes"].get<uint64_t>());  // it compresses
  EXPECT_EQ(Generate(nvm), im.text.at(im.a));
  EXPECT_TRUE(ReadBack(nvm) == Slurp(im.a)) << "read-back differs from " << im.a;

  // A different image goes to the other slot and replaces it.
  const nlohmann::json second = FlashOk(im.c, nvm);
  EXPECT_EQ(second["slot"], 1);
  EXPECT_EQ(second["commit_sequence"], 2);
  EXPECT_EQ(Generate(nvm), im.text.at(im.c));
  EXPECT_TRUE(ReadBack(nvm) == Slurp(im.c)) << "read-back differs from " << im.c;
}

TEST_F(FlashE2e, ReflashingTheSameImageSendsNearlyNothing) {
  const Images& im = *g_images;
  const fs::path nvm = BoardWith(im.a, "nvm");
  const nlohmann::json again = FlashOk(im.a, nvm);
  const auto image_bytes = again["image_bytes"].get<double>();
  std::printf("re-flash of an unchanged %.0f-byte image: %llu wire bytes out\n", image_bytes,
              static_cast<unsigned long long>(again["wire_bytes_sent"].get<uint64_t>()));
  EXPECT_EQ(again["sent_bytes"], 0);
  EXPECT_EQ(again["copied_bytes"], again["image_bytes"]);  // from the active slot, on the board
  EXPECT_LT(again["wire_bytes_sent"].get<double>(), 0.02 * image_bytes);
  EXPECT_EQ(again["slot"], 1);
  EXPECT_EQ(Generate(nvm), im.text.at(im.a));

  // The slot written before still holds the image: the next flash finds it in place.
  const nlohmann::json third = FlashOk(im.a, nvm);
  EXPECT_EQ(third["slot"], 0);
  EXPECT_EQ(third["skipped_bytes"], third["image_bytes"]);
  EXPECT_EQ(third["copied_bytes"], 0);
}

// The blocks of `b` (4 KiB, on each section's grid in its slot, and the boot
// record's) that differ from `a` at the same place: what a delta flash must send.
uint64_t ChangedBlockBytes(const std::string& a, const std::string& b) {
  auto boot_record = [](const std::string& file) {
    qmc::image::Header header;
    std::memcpy(&header, file.data(), sizeof header);
    return header;
  };
  const qmc::image::Header ha = boot_record(a), hb = boot_record(b);
  EXPECT_EQ(ha.section_count, hb.section_count);
  auto section = [](const std::string& file, uint32_t i) {
    qmc::image::SectionEntry s;
    std::memcpy(&s, file.data() + sizeof(qmc::image::Header) + i * sizeof s, sizeof s);
    return s;
  };
  auto changed = [](std::string_view old_bytes, std::string_view new_bytes) {
    uint64_t bytes = 0;
    for (size_t at = 0; at < new_bytes.size(); at += 4096) {
      const std::string_view block = new_bytes.substr(at, 4096);
      if (old_bytes.substr(std::min(at, old_bytes.size()), block.size()) != block) bytes += block.size();
    }
    return bytes;
  };
  uint64_t total = 0;
  for (uint32_t i = 0; i < hb.section_count; ++i) {
    const qmc::image::SectionEntry sa = section(a, i), sb = section(b, i);
    EXPECT_EQ(sa.window_offset, sb.window_offset);
    total += changed(std::string_view(a).substr(sa.file_offset, sa.length),
                     std::string_view(b).substr(sb.file_offset, sb.length));
  }
  const size_t record = qmc::image::BootRecordSize(hb.section_count);
  return total + changed(std::string_view(a).substr(0, record), std::string_view(b).substr(0, record));
}

TEST_F(FlashE2e, AOneTensorChangeSendsTheBlocksThatChanged) {
  const Images& im = *g_images;
  const fs::path nvm = BoardWith(im.a, "nvm");
  const nlohmann::json delta = FlashOk(im.b, nvm);
  const uint64_t expected = ChangedBlockBytes(Slurp(im.a), Slurp(im.b));
  std::printf("one-tensor delta flash: %llu of %llu image bytes sent, %llu wire bytes out\n",
              static_cast<unsigned long long>(delta["sent_bytes"].get<uint64_t>()),
              static_cast<unsigned long long>(delta["image_bytes"].get<uint64_t>()),
              static_cast<unsigned long long>(delta["wire_bytes_sent"].get<uint64_t>()));
  EXPECT_GT(expected, 0u);
  EXPECT_EQ(delta["sent_bytes"], expected);
  EXPECT_EQ(delta["copied_bytes"].get<uint64_t>() + expected, delta["image_bytes"].get<uint64_t>());
  EXPECT_LT(expected, delta["image_bytes"].get<uint64_t>() / 4);  // a tensor, not the model
  EXPECT_EQ(Generate(nvm), im.text.at(im.b));
  EXPECT_NE(im.text.at(im.b), im.text.at(im.a));  // the change is real
  EXPECT_TRUE(ReadBack(nvm) == Slurp(im.b)) << "read-back differs from " << im.b;
}

TEST_F(FlashE2e, AnInterruptedFlashResumesWhereItStopped) {
  const Images& im = *g_images;
  const fs::path nvm = BoardWith(im.a, "nvm");
  const uint64_t image_bytes = Slurp(im.c).size();
  const std::string cut_port = qmc::testing::EmuPort(nvm, "--power-cut-after " + std::to_string(image_bytes / 2));
  const CliRun cut = Qmc("flash " + im.c.string() + " --port '" + cut_port + "'", dir_);
  EXPECT_EQ(cut.exit_code, 4);
  EXPECT_NE(cut.err.find("closed the link (exited with status 137)"), std::string::npos) << cut.err;
  EXPECT_EQ(std::count(cut.err.begin(), cut.err.end(), '\n'), 1) << cut.err;
  EXPECT_EQ(Generate(nvm), im.text.at(im.a));

  const nlohmann::json resumed = FlashOk(im.c, nvm);
  std::printf("resumed after a cut at %llu bytes: %llu bytes already in place\n",
              static_cast<unsigned long long>(image_bytes / 2),
              static_cast<unsigned long long>(resumed["skipped_bytes"].get<uint64_t>()));
  // Whole 4 KiB blocks before the cut are in place; the one it tore is not.
  EXPECT_GE(resumed["skipped_bytes"].get<uint64_t>() + 2 * 4096, image_bytes / 2);
  EXPECT_EQ(Generate(nvm), im.text.at(im.c));
}

TEST_F(FlashE2e, ADryRunWritesNothing) {
  const Images& im = *g_images;
  const fs::path nvm = BoardWith(im.a, "nvm");
  const std::string mram = Slurp(nvm / "mram.bin"), reram = Slurp(nvm / "reram.bin");
  const nlohmann::json plan = FlashOk(im.c, nvm, "--dry-run");
  EXPECT_EQ(plan["dry_run"], true);
  EXPECT_GT(plan["sent_bytes"].get<uint64_t>(), 0u);
  EXPECT_TRUE(Slurp(nvm / "mram.bin") == mram) << "MRAM changed";
  EXPECT_TRUE(Slurp(nvm / "reram.bin") == reram) << "ReRAM changed";
  EXPECT_TRUE(ReadBack(nvm) == Slurp(im.a)) << "read-back differs from " << im.a;
}

TEST_F(FlashE2e, NoVerifyStillFlashesAGoodImage) {
  const Images& im = *g_images;
  const fs::path nvm = BoardWith(im.a, "nvm");
  const CliRun r = Qmc("flash " + im.c.string() + " --no-verify --no-compress --port '" + qmc::testing::EmuPort(nvm) + "'", dir_);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("committed (sequence 2), blocks not verified"), std::string::npos) << r.out;
  EXPECT_TRUE(ReadBack(nvm) == Slurp(im.c)) << "read-back differs from " << im.c;
  EXPECT_EQ(Generate(nvm), im.text.at(im.c));
}

TEST_F(FlashE2e, BadPortsAndBadImagesFailClearly) {
  const Images& im = *g_images;
  CliRun r = Qmc("flash " + im.a.string() + " --port /nonexistent/ttyQMC0", dir_);
  EXPECT_EQ(r.exit_code, 4);
  EXPECT_EQ(r.err, "qmc flash: error: /nonexistent/ttyQMC0: cannot open: No such file or directory\n");

  // A program that is no board: no flash server answers.
  r = Qmc("flash " + im.a.string() + " --retries 1 --port 'exec:cat >/dev/null'", dir_);
  EXPECT_EQ(r.exit_code, 4);
  EXPECT_NE(r.err.find("no flash server answers"), std::string::npos) << r.err;

  r = Qmc("flash " + im.a.string() + " --port ftdi://nope", dir_);
  EXPECT_EQ(r.exit_code, 1) << r.err;

  // An invalid image is refused before the port is touched: the port's program never runs.
  const fs::path broken = dir_ / "broken.qmc", marker = dir_ / "port_opened";
  std::string bytes = Slurp(im.a);
  bytes[bytes.size() - 10] ^= 0x55;  // inside the last section
  std::ofstream(broken, std::ios::binary) << bytes;
  r = Qmc("flash " + broken.string() + " --port 'exec:touch " + marker.string() + "'", dir_);
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_NE(r.err.find("section CRC mismatch"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(marker));

  // A blank board has nothing to read back.
  const fs::path blank = dir_ / "blank";
  fs::create_directories(blank);
  r = Qmc("read --port '" + qmc::testing::EmuPort(blank) + "' -o " + (dir_ / "none.qmc").string(), dir_);
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_EQ(r.err, "qmc read: the board has no committed image\n");
  EXPECT_FALSE(fs::exists(dir_ / "none.qmc"));
}

TEST_F(FlashE2e, DevicesListsFtdiDevicesOrSaysThereAreNone) {
  const CliRun r = Qmc("devices", dir_);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  const bool none = r.out.starts_with("no FTDI devices found");
  const bool listed = r.out.starts_with("ftdi://");
  EXPECT_TRUE(none || listed) << r.out;
}

// Flashes `image` in-process through `port`; true when FlashImage reported success.
bool FlashThrough(Port& port, const std::string& image) {
  const std::span<const uint8_t> bytes(reinterpret_cast<const uint8_t*>(image.data()), image.size());
  const qmc::Result<qmc::image::ImageView> view = qmc::image::ImageView::OpenFile(bytes);
  EXPECT_TRUE(view.ok());
  try {
    ProtocolClient client(port, 6);
    const FlashSummary s = FlashImage(client, bytes, view.value(), FlashOptions{});
    std::printf("flashed in %.1f s: %llu requests, %llu resends, %llu wire bytes out\n", s.seconds,
                static_cast<unsigned long long>(s.link.requests), static_cast<unsigned long long>(s.link.resends),
                static_cast<unsigned long long>(s.link.bytes_sent));
    return true;
  } catch (const qmc::host::IoError& e) {  // PortError, DeviceError: a clear failure
    std::printf("flash failed: %s\n", e.what());
    return false;
  }
}

// The committed image read back in-process through `port`; empty when the read failed.
std::string ReadThrough(Port& port) {
  try {
    ProtocolClient client(port, 6);
    const std::vector<uint8_t> image = ReadBackImage(client);
    std::printf("read back: %llu requests, %llu resends\n", static_cast<unsigned long long>(client.stats().requests),
                static_cast<unsigned long long>(client.stats().resends));
    return std::string(image.begin(), image.end());
  } catch (const std::exception& e) {  // PortError, DeviceError, NoImageError
    std::printf("read failed: %s\n", e.what());
    return std::string();
  }
}

// Each fault kind at up to 1e-3 per byte, both ways (3e-3 damaged bytes
// per byte: a 4 KiB frame almost never gets through whole): the flasher
// and the reader shrink their frames until they do; the flash still ends
// in the verified image, and reads back through the same damage (at the
// two lower rates, where a 4 KiB READ reply is already mostly lost: each
// lost frame whose end byte went missing costs a 500 ms timeout, and the
// reads at 1e-3 would double the test's time).
TEST_F(FlashE2e, ADamagedLinkStillEndsInTheVerifiedImage) {
  const Images& im = *g_images;
  const std::string a = Slurp(im.a), c = Slurp(im.c);
  const fs::path pristine = BoardWith(im.a, "pristine");
  const auto start = std::chrono::steady_clock::now();
  for (const double rate : {1e-4, 3e-4, 1e-3}) {
    for (const uint64_t seed : {1, 2}) {
      SCOPED_TRACE("rate " + std::to_string(rate) + " seed " + std::to_string(seed));
      const fs::path nvm = CopyBoard(pristine, "nvm");
      bool ok = false;
      {
        ExecPort inner(qmc::testing::EmuCommand(nvm));
        qmc::testing::FaultyPort port(inner, {rate, rate, rate}, seed);
        ok = FlashThrough(port, c);
        EXPECT_GT(port.damaged_bytes(), 0u);
      }
      EXPECT_TRUE(ok);
      const std::string booted = ReadBack(nvm);
      // Never a wrong image reported as good; a failure leaves one of the two.
      EXPECT_TRUE(booted == c || (!ok && booted == a)) << "the board boots another image than reported";
      EXPECT_EQ(Generate(nvm), booted == c ? im.text.at(im.c) : im.text.at(im.a));
      if (rate < 1e-3) {
        ExecPort inner(qmc::testing::EmuCommand(nvm));
        qmc::testing::FaultyPort port(inner, {rate, rate, rate}, seed + 100);
        EXPECT_TRUE(ReadThrough(port) == booted) << "the damaged link read back another image";
      }
    }
  }
  std::printf("damaged link: 6 flashes and 4 read-backs in %.1f s\n",
              std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
}

TEST_F(FlashE2e, APowerCutOrAKilledBoardKeepsABootableImage) {
  const Images& im = *g_images;
  const std::string a = Slurp(im.a), c = Slurp(im.c);
  const fs::path pristine = BoardWith(im.a, "pristine");

  // An uncut flash of C over A: the bytes it writes (sections, boot record,
  // the 32-byte commit record) and how long it takes.
  const fs::path probe = CopyBoard(pristine, "probe");
  const auto start = std::chrono::steady_clock::now();
  const nlohmann::json full = FlashOk(im.c, probe);
  const auto duration = std::chrono::steady_clock::now() - start;
  const uint64_t writes = full["sent_bytes"].get<uint64_t>() + full["copied_bytes"].get<uint64_t>() + 32;

  std::mt19937_64 rng(20240601);
  constexpr int kCutTrials = 30, kKillTrials = 10;
  int booted_old = 0, booted_new = 0;
  for (int trial = 0; trial < kCutTrials + kKillTrials; ++trial) {
    const fs::path nvm = CopyBoard(pristine, "nvm");
    const bool cut = trial < kCutTrials;
    // A quarter of the cuts land in the last bytes: the boot record and the commit record.
    const uint64_t budget = trial % 4 == 0 ? writes - 64 + rng() % 72 : rng() % (writes + 1);
    SCOPED_TRACE(cut ? "power cut after " + std::to_string(budget) + " of " + std::to_string(writes) + " bytes"
                     : "SIGKILL trial " + std::to_string(trial));
    bool ok = false;
    {
      ExecPort port(qmc::testing::EmuCommand(nvm, cut ? "--power-cut-after " + std::to_string(budget) : ""));
      std::thread killer;
      if (!cut) {
        const auto delay = std::chrono::duration_cast<std::chrono::microseconds>(duration) * (rng() % 1000) / 1000;
        killer = std::thread([&port, delay] {
          std::this_thread::sleep_for(delay);
          kill(-port.pid(), SIGKILL);
        });
      }
      ok = FlashThrough(port, c);
      if (killer.joinable()) killer.join();
    }
    const std::string booted = ReadBack(nvm);
    ASSERT_TRUE(booted == a || booted == c) << "the board boots no image it was given";
    if (ok) EXPECT_TRUE(booted == c) << "a reported success with another image";
    // Without a reported success the new image may boot only if COMMIT's record was whole.
    if (!ok && cut && budget < writes - 32) EXPECT_TRUE(booted == a) << "the new image boots without a whole commit";
    (booted == c ? booted_new : booted_old) += 1;
    EXPECT_EQ(Generate(nvm), booted == c ? im.text.at(im.c) : im.text.at(im.a));
  }
  std::printf("power cuts: %d trials (%d cut at a byte budget, %d killed): %d boot the old image, %d the new\n",
              kCutTrials + kKillTrials, kCutTrials, kKillTrials, booted_old, booted_new);
  EXPECT_GT(booted_old, 0);
}

}  // namespace
