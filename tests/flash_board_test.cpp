// qmc info, console, rollback, flash --then-console, the reset options and
// --baud-fast on the emulated board (exec:qmc-fw-emu, the link a UART would
// be): rollback boots the other slot and back, and is refused without a
// valid image there; info reports what the image files say; the console
// shows what `qmc run` generates; a reset sequence on a port without
// DTR/RTS and a board lost after a baud switch fail cleanly, with nothing
// written. The baud fallback runs through a port that loses every byte at
// the wrong rate (the emu's link has no rate of its own).
#include <gtest/gtest.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "common/image_format.h"
#include "common/image_reader.h"
#include "host/atomic_file.h"
#include "host/flash/exec_port.h"
#include "host/flash/flasher.h"
#include "tests/board_console.h"
#include "tests/cli_runner.h"

namespace {

namespace fs = std::filesystem;
using namespace qmc::host::flash;
using qmc::testing::CliRun;
using qmc::testing::Qmc;
using qmc::testing::Slurp;

const fs::path kShared = QMC_SHARED_DIR;
const std::string kPrompt = "Once upon a time";
constexpr int kSteps = 30;
constexpr uint32_t kSlowBaud = 115200;

// A port whose peer runs at `link_baud`: while the host port is set to any
// other rate every byte is lost both ways, as on a UART at mismatched rates.
class RatePort final : public Port {
 public:
  RatePort(Port& inner, uint32_t link_baud) : inner_(inner), link_baud_(link_baud) {}
  void Write(std::span<const uint8_t> data) override {
    if (matched()) inner_.Write(data);
  }
  size_t Read(std::span<uint8_t> out, std::chrono::milliseconds timeout) override {
    if (matched()) return inner_.Read(out, timeout);
    std::this_thread::sleep_for(timeout);
    inner_.Purge();
    return 0;
  }
  void Purge() override { inner_.Purge(); }
  uint32_t bytes_per_second() const override { return 0; }
  std::string Describe() const override { return "rate port at " + std::to_string(baud_) + " baud"; }
  void SetBaud(uint32_t baud) override {
    baud_ = baud;
    switches.push_back(baud);
  }
  // After the first switch, the peer follows nothing: lost for good.
  bool peer_lost_after_switch = false;
  std::vector<uint32_t> switches;

 private:
  bool matched() const { return baud_ == link_baud_ && !(peer_lost_after_switch && !switches.empty()); }
  Port& inner_;
  uint32_t link_baud_;
  uint32_t baud_ = kSlowBaud;
};

struct Images {
  fs::path dir, a, b;
  std::map<fs::path, std::string> text;  // what `qmc run` generates greedily from each
};
Images* g_images = nullptr;

class FlashBoard : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!fs::exists(kShared / "models/stories260K.bin")) return;
    g_images = new Images;
    Images& im = *g_images;
    im.dir = fs::path(::testing::TempDir()) / ("qmc_flash_board_images_" + std::to_string(::getpid()));
    fs::create_directories(im.dir);
    im.a = im.dir / "a.qmc", im.b = im.dir / "b.qmc";
    auto pack = [&](const std::string& options, const fs::path& out) {
      im.text[out] = qmc::testing::PackAndGenerate(qmc::testing::Stories260K() + " " + options, out, kPrompt, kSteps, im.dir);
    };
    pack("--scheme qmc --bits 3", im.a);
    pack("--scheme rtn --bits 4", im.b);
    ASSERT_NE(im.text[im.a], im.text[im.b]);  // the tests tell the two apart by what they generate
  }
  static void TearDownTestSuite() {
    if (g_images != nullptr) fs::remove_all(g_images->dir);
    delete g_images;
    g_images = nullptr;
  }

  void SetUp() override {
    if (g_images == nullptr) GTEST_SKIP() << "../shared/models is missing";
    dir_ = qmc::testing::FreshTestDir("qmc_flash_board_");
    nvm_ = dir_ / "nvm";
    fs::create_directories(nvm_);
  }
  void TearDown() override {
    if (!dir_.empty()) fs::remove_all(dir_);
  }

  std::string Port() const { return "'" + qmc::testing::EmuPort(nvm_) + "'"; }
  CliRun Run(const std::string& args) { return Qmc(args, dir_); }
  void Flash(const fs::path& image) {
    const CliRun r = Run("flash " + image.string() + " --port " + Port());
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
  nlohmann::json Info() {
    const CliRun r = Run("info --json --port " + Port());
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return r.exit_code == 0 ? nlohmann::json::parse(r.out) : nlohmann::json();
  }
  // `qmc <command>` with the prompt line on stdin.
  CliRun WithPrompt(const std::string& command) {
    const fs::path in = dir_ / "prompt.txt";
    std::ofstream(in) << "steps=" << kSteps << " " << kPrompt << "\n";
    return Run(command + " <" + in.string());
  }
  // What the board generates for the prompt, through qmc console.
  std::string BoardGenerates() {
    const CliRun r = WithPrompt("console --linger 1 --port " + Port());
    EXPECT_EQ(r.exit_code, 0) << r.err;
    const std::string text = qmc::testing::GeneratedText(r.out);
    return text.empty() ? "(no generation in: " + r.out + ")" : text;
  }
  static uint32_t HeaderCrcOf(const fs::path& image) {
    const std::string bytes = Slurp(image);
    qmc::image::Header header;
    std::memcpy(&header, bytes.data(), sizeof header);
    return header.header_crc;
  }

  fs::path dir_, nvm_;
};

TEST_F(FlashBoard, RollbackBootsTheOtherSlotAndBack) {
  const Images& im = *g_images;
  Flash(im.a);  // slot 0
  Flash(im.b);  // slot 1
  EXPECT_EQ(BoardGenerates(), im.text.at(im.b));

  CliRun r = Run("rollback --port " + Port());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("slot 1 -> slot 0, committed (sequence 3)"), std::string::npos) << r.out;
  EXPECT_EQ(BoardGenerates(), im.text.at(im.a));
  nlohmann::json info = Info();
  EXPECT_EQ(info["active_slot"], 0);
  EXPECT_EQ(info["commit_sequence"], 3);

  r = Run("rollback --port " + Port());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("slot 0 -> slot 1, committed (sequence 4)"), std::string::npos) << r.out;
  EXPECT_EQ(BoardGenerates(), im.text.at(im.b));
}

TEST_F(FlashBoard, RollbackIsRefusedWithoutAValidImageInTheOtherSlot) {
  const Images& im = *g_images;
  CliRun r = Run("rollback --port " + Port());  // a blank board
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_EQ(r.err, "qmc rollback: refused: the board has no committed image to roll back from\n");

  Flash(im.a);
  r = Run("rollback --port " + Port());
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_EQ(r.err, "qmc rollback: refused: slot 1 holds no boot record: nothing to roll back to\n");
  EXPECT_EQ(Info()["commit_sequence"], 1);  // nothing changed

  // Slot 0's boot record intact but a section byte changed: the board's COMMIT refuses it.
  Flash(im.b);
  const nlohmann::json info = Info();
  const nlohmann::json& section = info["slots"][0]["image"]["sections"][0];
  ASSERT_EQ(section["window"], "MRAM");
  const uint64_t at = info["windows"][1]["slot0_offset"].get<uint64_t>() + section["window_offset"].get<uint64_t>();
  {
    std::fstream mram(nvm_ / "mram.bin", std::ios::in | std::ios::out | std::ios::binary);
    mram.seekg(static_cast<std::streamoff>(at));
    char byte = 0;
    mram.read(&byte, 1);
    byte = static_cast<char>(byte ^ 0x5A);
    mram.seekp(static_cast<std::streamoff>(at));
    mram.write(&byte, 1);
  }
  r = Run("rollback --port " + Port());
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_EQ(r.err, "qmc rollback: refused: slot 0's image does not validate on the board (image invalid): "
                   "nothing to roll back to\n");
  EXPECT_EQ(Info()["commit_sequence"], 2);
  EXPECT_EQ(BoardGenerates(), im.text.at(im.b));
}

TEST_F(FlashBoard, InfoReportsWindowsSlotsAndTheCommittedImage) {
  const Images& im = *g_images;
  nlohmann::json info = Info();
  EXPECT_TRUE(info["active_slot"].is_null());
  Flash(im.a);
  info = Info();
  EXPECT_EQ(info["protocol_version"], 1);
  EXPECT_EQ(info["max_payload"], 4112);
  EXPECT_EQ(info["active_slot"], 0);
  EXPECT_EQ(info["commit_sequence"], 1);
  ASSERT_EQ(info["windows"].size(), 4u);
  EXPECT_EQ(info["windows"][1]["kind"], "MRAM");
  EXPECT_EQ(info["windows"][1]["slot0_offset"], 0x1000);  // docs/protocol.md section 5, the emu board
  EXPECT_EQ(info["windows"][1]["slot1_offset"], 0x400000);
  EXPECT_EQ(info["windows"][2]["slot1_offset"], 32u << 20);
  ASSERT_EQ(info["slots"].size(), 2u);
  const nlohmann::json& slot0 = info["slots"][0];
  EXPECT_TRUE(slot0["active"].get<bool>());
  ASSERT_TRUE(slot0["boot_record_valid"].get<bool>());
  EXPECT_EQ(slot0["image"]["header_crc"].get<uint32_t>(), HeaderCrcOf(im.a));
  EXPECT_EQ(slot0["image"]["image_size"].get<uint64_t>(), fs::file_size(im.a));
  EXPECT_FALSE(info["slots"][1]["boot_record_valid"].get<bool>());
  EXPECT_EQ(info["slots"][1]["problem"], "no boot record");

  const CliRun text = Run("info --port " + Port());
  ASSERT_EQ(text.exit_code, 0) << text.err;
  EXPECT_NE(text.out.find("committed: slot 0 (commit sequence 1)"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("slot 1: no boot record"), std::string::npos) << text.out;
}

TEST_F(FlashBoard, ConsoleShowsWhatQmcRunGenerates) {
  const Images& im = *g_images;
  Flash(im.a);
  EXPECT_EQ(BoardGenerates(), im.text.at(im.a));
}

TEST_F(FlashBoard, FlashThenConsoleHandsOverToTheNewImage) {
  const Images& im = *g_images;
  Flash(im.a);
  const CliRun r = WithPrompt("flash " + im.b.string() + " --then-console --linger 1 --port " + Port());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const size_t summary = r.out.find("-> slot 1, committed (sequence 2)");
  ASSERT_NE(summary, std::string::npos) << r.out;
  EXPECT_EQ(qmc::testing::GeneratedText(r.out.substr(summary)), im.text.at(im.b));
}

TEST_F(FlashBoard, AResetOnAPortWithoutLinesIsOneLineAndWritesNothing) {
  const Images& im = *g_images;
  for (const std::string option : {"--before hard_reset", "--before default_reset", "--after hard_reset"}) {
    const CliRun r = Run("flash " + im.a.string() + " " + option + " --port " + Port());
    EXPECT_EQ(r.exit_code, 1) << option;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    EXPECT_NE(r.err.find(option + " needs DTR/RTS, which this port cannot drive"), std::string::npos) << r.err;
  }
  EXPECT_TRUE(Info()["active_slot"].is_null());  // nothing was flashed
  EXPECT_EQ(Run("rollback --before hard_reset --port " + Port()).exit_code, 1);
}

TEST_F(FlashBoard, BaudFastOnTheEmulatedLinkIsANoOpThatSucceeds) {
  const Images& im = *g_images;
  const CliRun r = Run("flash " + im.a.string() + " --baud-fast 921600 --port " + Port());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("qmc flash: switched to 921600 baud"), std::string::npos) << r.err;
  EXPECT_EQ(BoardGenerates(), im.text.at(im.a));
}

TEST_F(FlashBoard, ABaudSwitchTheLinkCannotCarryFallsBackAndFlashes) {
  const Images& im = *g_images;
  const std::vector<uint8_t> file = qmc::host::ReadWholeFile(im.a);
  const qmc::image::ImageView view = qmc::image::ImageView::OpenFile(file).value();
  {
    ExecPort board(QMC_FW_EMU " --nvm " + nvm_.string());
    RatePort port(board, kSlowBaud);
    ProtocolClient client(port, 6);
    client.RequestFastBaud(kSlowBaud, 921600);
    const FlashSummary summary = FlashImage(client, file, view, FlashOptions{});
    EXPECT_EQ(summary.slot, 0);
    EXPECT_EQ(port.switches, std::vector<uint32_t>({921600, kSlowBaud}));
    EXPECT_EQ(client.baud_note(), "no reply at 921600 baud; fell back to 115200 baud");
  }
  EXPECT_EQ(BoardGenerates(), im.text.at(im.a));
}

TEST_F(FlashBoard, ABoardLostAfterABaudSwitchFailsClearlyAndKeepsItsImage) {
  const Images& im = *g_images;
  Flash(im.a);
  const std::vector<uint8_t> file = qmc::host::ReadWholeFile(im.b);
  const qmc::image::ImageView view = qmc::image::ImageView::OpenFile(file).value();
  {
    ExecPort board(QMC_FW_EMU " --nvm " + nvm_.string());
    RatePort port(board, kSlowBaud);
    port.peer_lost_after_switch = true;
    ProtocolClient client(port, 2);
    client.RequestFastBaud(kSlowBaud, 921600);
    try {
      FlashImage(client, file, view, FlashOptions{});
      ADD_FAILURE() << "flashed through a board that stopped answering";
    } catch (const PortError& e) {
      EXPECT_EQ(std::string(e.what()), "rate port at 115200 baud: no reply at 921600 baud, and the board does not "
                                       "answer at 115200 baud either");
    }
    EXPECT_EQ(port.switches, std::vector<uint32_t>({921600, kSlowBaud}));
  }
  const nlohmann::json info = Info();
  EXPECT_EQ(info["active_slot"], 0);
  EXPECT_EQ(info["commit_sequence"], 1);
  EXPECT_EQ(BoardGenerates(), im.text.at(im.a));
}

}  // namespace
