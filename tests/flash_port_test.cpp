// The flasher's ports: a program on a socket pair (exec:), a tty (on a pty
// pair here, there being no serial hardware), and port URL parsing.
#include <gtest/gtest.h>

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <numeric>
#include <vector>

#include "host/checkpoint.h"
#include "host/flash/exec_port.h"
#include "host/flash/port_url.h"
#include "host/flash/tty_port.h"
#include "host/flash/write_all.h"

namespace {

using namespace qmc::host::flash;
using namespace std::chrono_literals;

// Reads exactly `n` bytes, each read waiting up to 2 s.
std::vector<uint8_t> ReadExactly(Port& port, size_t n) {
  std::vector<uint8_t> got(n);
  size_t have = 0;
  while (have < n) {
    const size_t chunk = port.Read(std::span(got).subspan(have), 2s);
    if (chunk == 0) break;
    have += chunk;
  }
  got.resize(have);
  return got;
}

std::vector<uint8_t> EveryByteValue(size_t repeats) {
  std::vector<uint8_t> bytes(256 * repeats);
  for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<uint8_t>(i * 7 + i / 256);
  return bytes;
}

TEST(ExecPort, CatEchoesEveryByteValue) {
  ExecPort port("cat");
  // More than a socket buffer holds, so writing relies on cat draining it.
  const std::vector<uint8_t> sent = EveryByteValue(1024);
  std::vector<uint8_t> got;
  for (size_t pos = 0; pos < sent.size(); pos += 4096) {
    const auto chunk = std::span(sent).subspan(pos, 4096);
    port.Write(chunk);
    const std::vector<uint8_t> echoed = ReadExactly(port, chunk.size());
    got.insert(got.end(), echoed.begin(), echoed.end());
  }
  EXPECT_EQ(got, sent);
  const int status = port.Close(2s);  // end of input ends cat
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

TEST(ExecPort, AReadWithNothingToReadTimesOut) {
  ExecPort port("cat");
  uint8_t byte;
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(port.Read(std::span(&byte, 1), 150ms), 0u);
  EXPECT_GE(std::chrono::steady_clock::now() - start, 150ms);
  EXPECT_EQ(port.Read(std::span(&byte, 1), 0ms), 0u);
}

TEST(ExecPort, AProgramThatExitsIsAClosedLink) {
  ExecPort port("echo hi; exit 3");
  EXPECT_EQ(ReadExactly(port, 3), std::vector<uint8_t>({'h', 'i', '\n'}));
  uint8_t byte;
  try {
    port.Read(std::span(&byte, 1), 2s);
    FAIL() << "read from an exited program";
  } catch (const PortError& e) {
    EXPECT_NE(std::string(e.what()).find("closed the link (exited with status 3)"), std::string::npos) << e.what();
  }
  const std::vector<uint8_t> data(1 << 20, 'x');
  EXPECT_THROW(port.Write(data), PortError);
}

TEST(ExecPort, CloseKillsAProgramThatIgnoresEndOfInput) {
  ExecPort port("trap '' TERM; sleep 30");
  const auto start = std::chrono::steady_clock::now();
  const int status = port.Close(100ms);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 10s);
  ASSERT_TRUE(WIFSIGNALED(status));
  EXPECT_EQ(WTERMSIG(status), SIGKILL);
}

TEST(ExecPort, PurgeDropsWhatArrivedUnread) {
  ExecPort port("echo banner; cat");
  EXPECT_EQ(ReadExactly(port, 1), std::vector<uint8_t>({'b'}));
  std::this_thread::sleep_for(200ms);  // the rest of the banner is in
  port.Purge();
  port.Write(std::vector<uint8_t>{'z'});
  EXPECT_EQ(ReadExactly(port, 1), std::vector<uint8_t>({'z'}));
}

// The write loop FtdiPort runs: partial writes continue, a driver error
// names the port, and a device that takes nothing gives up instead of spinning.
TEST(WriteAll, PartialWritesFinishAndAStalledDeviceGivesUp) {
  const std::vector<uint8_t> data = EveryByteValue(1);
  std::vector<uint8_t> taken;
  qmc::host::flash::WriteAll(
      data, "fake", 1000ms,
      [&taken](std::span<const uint8_t> rest) {
        const size_t n = std::min<size_t>(rest.size(), 7);
        taken.insert(taken.end(), rest.begin(), rest.begin() + static_cast<ptrdiff_t>(n));
        return static_cast<int>(n);
      },
      [] { return std::string("none"); });
  EXPECT_EQ(taken, data);

  int calls = 0;
  try {
    qmc::host::flash::WriteAll(
        data, "fake", 50ms, [&calls](std::span<const uint8_t>) { return ++calls == 1 ? 3 : 0; },
        [] { return std::string("none"); });
    ADD_FAILURE() << "a device that takes nothing was written to for ever";
  } catch (const qmc::host::flash::PortError& e) {
    EXPECT_NE(std::string(e.what()).find("fake: write stalled"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("253 bytes unsent"), std::string::npos) << e.what();
  }
  EXPECT_GT(calls, 2);  // it kept trying until the stall time passed

  try {
    qmc::host::flash::WriteAll(data, "fake", 50ms, [](std::span<const uint8_t>) { return -1; },
                               [] { return std::string("usb gone"); });
    ADD_FAILURE() << "a driver error was ignored";
  } catch (const qmc::host::flash::PortError& e) {
    EXPECT_NE(std::string(e.what()).find("fake: write failed: usb gone"), std::string::npos) << e.what();
  }
}

class TtyPortOnPty : public ::testing::Test {
 protected:
  // A minimal container may have no pseudo-terminals (no devpts, no
  // /dev/ptmx): the tty tests then skip, saying why, rather than fail.
  void SetUp() override {
    master_ = posix_openpt(O_RDWR | O_NOCTTY);
    if (master_ < 0) GTEST_SKIP() << "no pseudo-terminals on this machine: posix_openpt: " << std::strerror(errno);
    if (grantpt(master_) != 0 || unlockpt(master_) != 0 || ptsname(master_) == nullptr) {
      GTEST_SKIP() << "pseudo-terminal pair unusable: " << std::strerror(errno);
    }
    slave_ = ptsname(master_);
  }
  void TearDown() override {
    if (master_ >= 0) close(master_);
  }
  std::vector<uint8_t> ReadMaster(size_t n) {
    std::vector<uint8_t> got(n);
    size_t have = 0;
    while (have < n) {
      const ssize_t chunk = read(master_, got.data() + have, n - have);
      if (chunk <= 0) break;
      have += static_cast<size_t>(chunk);
    }
    got.resize(have);
    return got;
  }
  int master_ = -1;
  std::string slave_;
};

TEST_F(TtyPortOnPty, RawBytesPassBothWays) {
  TtyPort port(slave_, 115200);
  EXPECT_EQ(port.bytes_per_second(), 11520u);
  // Raw mode: no CR/LF translation, no echo, no signal characters, 0xC0 intact.
  const std::vector<uint8_t> sent = EveryByteValue(2);
  port.Write(sent);
  EXPECT_EQ(ReadMaster(sent.size()), sent);
  ASSERT_EQ(write(master_, sent.data(), sent.size()), static_cast<ssize_t>(sent.size()));
  EXPECT_EQ(ReadExactly(port, sent.size()), sent);
  uint8_t byte;
  EXPECT_EQ(port.Read(std::span(&byte, 1), 50ms), 0u);  // and no echo came back
}

TEST_F(TtyPortOnPty, PurgeDropsPendingInput) {
  TtyPort port(slave_, 9600);
  ASSERT_EQ(write(master_, "stale", 5), 5);
  std::this_thread::sleep_for(50ms);
  port.Purge();
  ASSERT_EQ(write(master_, "!", 1), 1);
  EXPECT_EQ(ReadExactly(port, 1), std::vector<uint8_t>({'!'}));
}

TEST_F(TtyPortOnPty, AHangUpIsAClosedLink) {
  TtyPort port(slave_, 115200);
  close(master_);
  master_ = -1;
  uint8_t byte;
  EXPECT_THROW(port.Read(std::span(&byte, 1), 1s), PortError);
}

TEST_F(TtyPortOnPty, AnUnsupportedBaudRateIsBadInput) {
  EXPECT_THROW(TtyPort(slave_, 12345), qmc::host::InputError);
}

TEST(TtyPort, AMissingDeviceDoesNotOpen) {
  try {
    TtyPort port("/nonexistent/ttyQMC0", 115200);
    FAIL();
  } catch (const PortError& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/ttyQMC0: cannot open"), std::string::npos) << e.what();
  }
  EXPECT_THROW(TtyPort("/dev/null", 115200), PortError);  // not a serial port
}

TEST(PortUrl, ParsesEveryKind) {
  PortUrl url = ParsePortUrl("exec:qmc-fw-emu --nvm out/nvm");
  EXPECT_EQ(url.kind, PortUrl::Kind::kExec);
  EXPECT_EQ(url.command, "qmc-fw-emu --nvm out/nvm");

  url = ParsePortUrl("ftdi://0403:6001");
  EXPECT_EQ(url.kind, PortUrl::Kind::kFtdi);
  EXPECT_EQ(url.vendor, 0x0403);
  EXPECT_EQ(url.product, 0x6001);
  EXPECT_EQ(url.serial, "");

  url = ParsePortUrl("ftdi://403:6014/FT4ABC12");
  EXPECT_EQ(url.vendor, 0x0403);
  EXPECT_EQ(url.product, 0x6014);
  EXPECT_EQ(url.serial, "FT4ABC12");

  url = ParsePortUrl("/dev/ttyUSB0");
  EXPECT_EQ(url.kind, PortUrl::Kind::kTty);
  EXPECT_EQ(url.path, "/dev/ttyUSB0");
}

TEST(PortUrl, RejectsMalformedUrls) {
  for (const char* bad : {"", "exec:", "exec:  ", "ftdi://", "ftdi://0403", "ftdi://0403:", "ftdi://:6001",
                          "ftdi://0403:60011", "ftdi://04g3:6001", "ftdi://0403:6001/", "usb://0403:6001"}) {
    EXPECT_THROW(ParsePortUrl(bad), qmc::host::InputError) << bad;
  }
}

TEST(FtdiPort, AnAbsentDeviceDoesNotOpen) {
  // No FTDI hardware on a build machine; with one plugged in, this id is still absent.
  EXPECT_THROW(OpenPort(ParsePortUrl("ftdi://0403:0001/NO-SUCH-SERIAL"), 115200), PortError);
}

}  // namespace
