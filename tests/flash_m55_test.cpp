// qmc flash onto the Cortex-M55 firmware under QEMU (MPS3 AN547), over its
// UART, exactly as a board is flashed. `toolchain/qemu-m55.sh --nvm DIR`
// keeps the board's DDR (the MRAM, ReRAM and DRAM windows) in a file, so
// what the flash server writes is there at the next boot, as on real NVM.
// The flashed board must generate byte for byte what the emu board
// generates from the same image, give the image back with `qmc read`, and
// take a re-flash of it for next to nothing on the wire; `qmc rollback`
// switches between its two slots. The firmware image
// is built by the ctest fixture m55_common_freestanding (the m55 preset).
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <bitset>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "tests/board_console.h"
#include "tests/cli_runner.h"

namespace {

namespace fs = std::filesystem;
using qmc::testing::CliRun;
using qmc::testing::Qmc;
using qmc::testing::Slurp;

const fs::path kShared = QMC_SHARED_DIR;
const std::string kLine = "steps=48 temp=0 Once upon a time";

class FlashM55 : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fs::exists(kShared / "models/stories260K.bin")) GTEST_SKIP() << "../shared/models is missing";
    ASSERT_TRUE(fs::exists(QMC_M55_ELF)) << QMC_M55_ELF << " is missing: the m55_common_freestanding fixture builds it";
    dir_ = qmc::testing::FreshTestDir("qmc_flash_m55_");
    board_ = dir_ / "board";
    image_ = dir_ / "b3.qmc";
    const CliRun r = Qmc("pack " + qmc::testing::Stories260K() + " -q --scheme qmc --bits 3 -o " + image_.string(), dir_);
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
  void TearDown() override {
    if (!dir_.empty()) fs::remove_all(dir_);
  }

  // --baud: QEMU's UART carries about 20 KB/s; timeouts must allow for it on a loaded machine.
  std::string PortOptions() const {
    return "--port 'exec:QMC_M55_ELF=" QMC_M55_ELF " " QMC_QEMU_M55 " --nvm " + board_.string() +
           " --link' --baud 115200";
  }

  nlohmann::json FlashOk(const std::string& options = "") {
    const CliRun r = Qmc("flash " + image_.string() + " " + PortOptions() + " --json " + options, dir_);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return r.exit_code == 0 ? nlohmann::json::parse(r.out) : nlohmann::json();
  }

  // The committed image, read back through QEMU with `qmc read`.
  std::string ReadBack() {
    const fs::path out = dir_ / "readback.qmc";
    fs::remove(out);
    const CliRun r = Qmc("read " + PortOptions() + " -o " + out.string(), dir_);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return Slurp(out);
  }

  // The M55 board boots from its NVM file and answers kLine.
  CliRun OnQemu() {
    const fs::path out = dir_ / "qemu_out.txt", err = dir_ / "qemu_err.txt";
    const std::string command = "QMC_M55_ELF=" QMC_M55_ELF " QMC_QEMU_TIMEOUT=120 " QMC_QEMU_M55 " --nvm " +
                                board_.string() + " '" + kLine + "' >" + out.string() + " 2>" + err.string();
    const int status = std::system(command.c_str());
    return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, Slurp(out), Slurp(err)};
  }

  // The emu board with the same image written into its window files answers kLine.
  CliRun OnEmu() {
    const fs::path nvm = dir_ / "emu_nvm";
    const CliRun written = Qmc("nvm write " + image_.string() + " " + nvm.string(), dir_);
    EXPECT_EQ(written.exit_code, 0) << written.err;
    const fs::path in = dir_ / "emu_in.txt", out = dir_ / "emu_out.txt", err = dir_ / "emu_err.txt";
    std::ofstream(in) << kLine << "\n";
    const int status = std::system(("timeout 60 " QMC_FW_EMU " --nvm " + nvm.string() + " <" + in.string() + " >" +
                                    out.string() + " 2>" + err.string())
                                       .c_str());
    return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, Slurp(out), Slurp(err)};
  }

  fs::path dir_, board_, image_;
};

TEST_F(FlashM55, FlashedBoardBootsAndGeneratesAsTheEmu) {
  // A new board is blank: whatever it runs later came over the UART.
  const CliRun blank = OnQemu();
  EXPECT_EQ(blank.exit_code, 1);
  EXPECT_NE(blank.out.find("qmc-fw: no image"), std::string::npos) << blank.out << blank.err;

  const nlohmann::json flashed = FlashOk();
  ASSERT_FALSE(flashed.is_null());
  EXPECT_EQ(flashed["slot"], 0);
  EXPECT_EQ(flashed["commit_sequence"], 1);
  EXPECT_EQ(flashed["sent_bytes"], flashed["image_bytes"]);  // nothing was there to skip or copy

  const CliRun emu = OnEmu();
  ASSERT_EQ(emu.exit_code, 0) << emu.out << emu.err;
  const std::string expected = qmc::testing::GeneratedText(emu.out);
  ASSERT_GT(expected.size(), std::string("Once upon a time").size()) << emu.out;
  const CliRun qemu = OnQemu();
  ASSERT_EQ(qemu.exit_code, 0) << qemu.out << qemu.err;
  EXPECT_NE(qemu.out.find("qmc-fw: image in slot 0, commit 1"), std::string::npos) << qemu.out;
  EXPECT_EQ(qmc::testing::GeneratedText(qemu.out), expected);

  EXPECT_TRUE(ReadBack() == Slurp(image_)) << "qmc read through QEMU gave back a different image";

  // The same image again: the board copies its active slot into the other
  // one, so only requests and CRCs cross the wire.
  const nlohmann::json again = FlashOk();
  ASSERT_FALSE(again.is_null());
  EXPECT_EQ(again["slot"], 1);
  EXPECT_EQ(again["commit_sequence"], 2);
  EXPECT_EQ(again["sent_bytes"], 0);
  EXPECT_EQ(again["copied_bytes"], again["image_bytes"]);
  EXPECT_LT(again["wire_bytes_sent"].get<uint64_t>(), again["image_bytes"].get<uint64_t>() / 50);
  const CliRun copied = OnQemu();
  ASSERT_EQ(copied.exit_code, 0) << copied.out << copied.err;
  EXPECT_NE(copied.out.find("qmc-fw: image in slot 1, commit 2"), std::string::npos) << copied.out;
  EXPECT_EQ(qmc::testing::GeneratedText(copied.out), expected);
}

// qmc rollback over the UART: the board commits its other slot's image and
// boots it; rolling back again returns to the first.
TEST_F(FlashM55, RollbackBootsTheOtherSlotAndBack) {
  const std::string expected = qmc::testing::GeneratedText(OnEmu().out);  // image_'s text
  ASSERT_FALSE(expected.empty());
  ASSERT_FALSE(FlashOk().is_null());  // image_ in slot 0
  const fs::path other = dir_ / "rtn4.qmc";
  CliRun r = Qmc("pack " + qmc::testing::Stories260K() + " -q --scheme rtn --bits 4 -o " + other.string(), dir_);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = Qmc("flash " + other.string() + " " + PortOptions(), dir_);  // slot 1, commit 2
  ASSERT_EQ(r.exit_code, 0) << r.err;

  r = Qmc("rollback " + PortOptions(), dir_);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("slot 1 -> slot 0, committed (sequence 3)"), std::string::npos) << r.out;
  CliRun qemu = OnQemu();
  EXPECT_NE(qemu.out.find("qmc-fw: image in slot 0, commit 3"), std::string::npos) << qemu.out;
  EXPECT_EQ(qmc::testing::GeneratedText(qemu.out), expected);

  r = Qmc("rollback " + PortOptions(), dir_);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  qemu = OnQemu();
  EXPECT_NE(qemu.out.find("qmc-fw: image in slot 1, commit 4"), std::string::npos) << qemu.out;
}

TEST_F(FlashM55, EveryByteValueCrossesTheUartUnchanged) {
  // Sent raw, the image's own bytes go to the board and come back with
  // `qmc read`: every value, terminal controls (0x00, 0x0D, 0x11, 0x13) and
  // SLIP's 0xC0/0xDB included, must pass both ways untouched.
  const std::string bytes = Slurp(image_);
  std::bitset<256> seen;
  for (const char c : bytes) seen.set(static_cast<uint8_t>(c));
  ASSERT_TRUE(seen.all()) << "the image lacks some byte values; only " << seen.count() << " of 256";

  const nlohmann::json flashed = FlashOk("--no-compress");
  ASSERT_FALSE(flashed.is_null());
  EXPECT_EQ(flashed["sent_bytes"], flashed["image_bytes"]);
  EXPECT_EQ(flashed["sent_deflated_bytes"], flashed["image_bytes"]);  // every block went raw
  EXPECT_TRUE(ReadBack() == bytes) << "qmc read through QEMU gave back a different image";
}

}  // namespace
