// Debugging the M55 firmware under QEMU, as the README walks through it:
// `toolchain/qemu-m55.sh --gdb PORT` halts the board at reset with QEMU's
// GDB stub listening; gdb-multiarch (batch mode here) connects, breaks in
// the forward pass, reads its arguments, continues to the next token,
// prints the backtrace down through the generator, and lets the firmware
// finish its answer. Skipped where gdb-multiarch is not installed
// (toolchain/install-deps.sh installs it).
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <regex>
#include <string>

#include "tests/cli_runner.h"

namespace {

namespace fs = std::filesystem;
using qmc::testing::CliRun;
using qmc::testing::Qmc;
using qmc::testing::Slurp;

const fs::path kShared = QMC_SHARED_DIR;

// A TCP port nothing listens on now (the kernel's pick).
int FreePort() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t size = sizeof address;
  const bool ok = bind(fd, reinterpret_cast<sockaddr*>(&address), size) == 0 &&
                  getsockname(fd, reinterpret_cast<sockaddr*>(&address), &size) == 0;
  close(fd);
  return ok ? ntohs(address.sin_port) : 0;
}

TEST(QemuGdbM55, BreaksInTheForwardPassAndShowsTheBacktrace) {
  if (std::system("command -v gdb-multiarch >/dev/null 2>&1") != 0) {
    GTEST_SKIP() << "gdb-multiarch is missing (toolchain/install-deps.sh installs it)";
  }
  if (!fs::exists(kShared / "models/stories260K.bin")) GTEST_SKIP() << "../shared/models is missing";
  ASSERT_TRUE(fs::exists(QMC_M55_ELF)) << QMC_M55_ELF << " is missing: the m55_common_freestanding fixture builds it";
  const fs::path dir = qmc::testing::FreshTestDir("qmc_gdb_m55_"), image = dir / "b3.qmc";
  const CliRun packed = Qmc("pack " + qmc::testing::Stories260K() + " -q --scheme qmc --bits 3 -o " + image.string(), dir);
  ASSERT_EQ(packed.exit_code, 0) << packed.err;
  const int port = FreePort();
  ASSERT_NE(port, 0);

  // The board, halted until gdb lets it run; `timeout` ends it should gdb never come.
  const fs::path board_out = dir / "board_out.txt", board_err = dir / "board_err.txt", board_rc = dir / "board_rc.txt";
  const std::string board = "(QMC=" QMC_CLI " QMC_M55_ELF=" QMC_M55_ELF " timeout 300 " QMC_QEMU_M55 " --gdb " +
                            std::to_string(port) + " " + image.string() + " 'steps=4 temp=0 Once upon a time' >" +
                            board_out.string() + " 2>" + board_err.string() + "; echo $? >" + board_rc.string() + ".new; mv " +
                            board_rc.string() + ".new " + board_rc.string() + ") &";
  ASSERT_EQ(std::system(board.c_str()), 0);

  // gdb retries the connection while QEMU starts. The second stop is the
  // second token's pass (pos 1); the last continue runs the firmware to its
  // stats line, where qemu-m55.sh stops QEMU.
  const fs::path gdb_out = dir / "gdb_out.txt";
  const std::string gdb = "timeout 300 gdb-multiarch -nx -batch -ex 'set tcp connect-timeout 120' -ex 'target remote localhost:" +
                          std::to_string(port) +
                          "' -ex 'info registers pc' -ex 'break qmc::Engine::ForwardLlama' -ex continue "
                          "-ex 'print pos' -ex 'print n' -ex continue -ex 'print pos' -ex backtrace -ex delete "
                          "-ex continue " QMC_M55_ELF " >" +
                          gdb_out.string() + " 2>&1";
  std::system(gdb.c_str());
  const std::string out = Slurp(gdb_out);

  // Halted at reset: the first instruction of the reset handler.
  EXPECT_TRUE(std::regex_search(out, std::regex(R"(pc +0x[0-9a-f]+ +0x[0-9a-f]+ <Reset_Handler(\(\))?>)"))) << out;
  EXPECT_NE(out.find("Breakpoint 1, qmc::Engine::ForwardLlama"), std::string::npos) << out;
  // The first pass is position 0 with one token, the next position 1.
  EXPECT_TRUE(std::regex_search(out, std::regex(R"(\$1 = 0\n\$2 = 1\n)"))) << out;
  EXPECT_NE(out.find("$3 = 1\n"), std::string::npos) << out;
  // The backtrace runs from the forward pass through the generator to main.
  const std::regex frames(R"(#0 [^\n]*qmc::Engine::ForwardLlama[\s\S]*qmc::firmware::Generator::Run[\s\S]*\bmain \()");
  EXPECT_TRUE(std::regex_search(out, frames)) << out;

  // Let go, the firmware finished its answer.
  for (int i = 0; i < 600 && !fs::exists(board_rc); ++i) usleep(100000);
  EXPECT_EQ(Slurp(board_rc), "0\n") << Slurp(board_err);
  EXPECT_NE(Slurp(board_out).find("qmc-fw: stats positions=4 "), std::string::npos) << Slurp(board_out);
  fs::remove_all(dir);
}

}  // namespace
