// The flasher's ports: a program on a socket pair (exec:), a tty (on a pty
// pair here, there being no serial hardware), port URL parsing (FTDI
// interfaces too), the DTR/RTS reset sequences (through a recording port: a
// pty has no modem lines), and the serial device list from a fake sysfs.
#include <gtest/gtest.h>

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <thread>
#include <vector>

#include "host/checkpoint.h"
#include "host/flash/exec_port.h"
#include "host/flash/ftdi_port.h"
#include "host/flash/port_url.h"
#include "host/flash/reset_sequence.h"
#include "host/flash/serial_devices.h"
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

TEST(PortUrl, FtdiInterfaceLetters) {
  PortUrl url = ParsePortUrl("ftdi://0403:6010:B");
  EXPECT_EQ(url.vendor, 0x0403);
  EXPECT_EQ(url.product, 0x6010);
  EXPECT_EQ(url.serial, "");
  EXPECT_EQ(url.interface, 'B');

  url = ParsePortUrl("ftdi://0403:6011/FT4ABC12:D");
  EXPECT_EQ(url.product, 0x6011);
  EXPECT_EQ(url.serial, "FT4ABC12");
  EXPECT_EQ(url.interface, 'D');

  url = ParsePortUrl("ftdi://0403:6010/FT1");
  EXPECT_EQ(url.interface, 0);  // not given: A

  url = ParsePortUrl("ftdi://0403:a");  // product id 0x000a, not an interface
  EXPECT_EQ(url.product, 0x000a);
  EXPECT_EQ(url.interface, 0);

  for (const char* bad : {"ftdi://0403:6010:", "ftdi://0403:6010:E", "ftdi://0403:6010:b", "ftdi://0403:6010:AB",
                          "ftdi://0403:6010/SER:", "ftdi://0403:6010/:A", "ftdi://0403:6010:B/SER"}) {
    EXPECT_THROW(ParsePortUrl(bad), qmc::host::InputError) << bad;
  }
}

TEST(FtdiPort, AnInterfaceTheDeviceLacksIsOneLineOfBadInput) {
  EXPECT_NO_THROW(CheckFtdiInterface("ftdi://0403:6010:B", 'B', 2));
  EXPECT_NO_THROW(CheckFtdiInterface("ftdi://0403:6001", 0, 1));
  EXPECT_NO_THROW(CheckFtdiInterface("ftdi://0403:6011:D", 'D', 4));
  try {
    CheckFtdiInterface("ftdi://0403:6010:C", 'C', 2);
    FAIL() << "interface C accepted on a two-interface chip";
  } catch (const qmc::host::InputError& e) {
    EXPECT_EQ(std::string(e.what()), "ftdi://0403:6010:C: the device has no interface C (it has 2: AB)");
  }
  EXPECT_THROW(CheckFtdiInterface("ftdi://0403:6001:B", 'B', 1), qmc::host::InputError);
  // With no such device plugged in, the interface cannot be checked: the open fails instead.
  EXPECT_THROW(OpenPort(ParsePortUrl("ftdi://0403:0001/NO-SUCH-SERIAL:B"), 115200), PortError);
}

// Records every DTR/RTS change and when it came.
class LinePort final : public Port {
 public:
  struct Change {
    bool dtr, rts;
    std::chrono::steady_clock::time_point at;
  };
  void Write(std::span<const uint8_t>) override {}
  size_t Read(std::span<uint8_t>, std::chrono::milliseconds) override { return 0; }
  void Purge() override {}
  uint32_t bytes_per_second() const override { return 11520; }
  std::string Describe() const override { return "lines"; }
  bool has_modem_lines() const override { return true; }
  void SetModemLines(bool dtr, bool rts) override { changes.push_back({dtr, rts, std::chrono::steady_clock::now()}); }
  std::vector<Change> changes;
};

TEST(ResetSequence, TheLinesGoThroughEsptoolsSequences) {
  struct Expected {
    bool dtr, rts;
    int hold_ms;
  };
  // esptool: hard reset = RTS asserted 100 ms; classic (default_reset) =
  // RTS 100 ms, then DTR (boot pin) 50 ms while RTS is released, then both off.
  const std::pair<std::vector<LineStep>, std::vector<Expected>> cases[] = {
      {BeforeResetSteps("hard_reset"), {{false, true, 100}, {false, false, 0}}},
      {AfterResetSteps("hard_reset"), {{false, true, 100}, {false, false, 0}}},
      {BeforeResetSteps("default_reset"), {{false, true, 100}, {true, false, 50}, {false, false, 0}}},
  };
  for (const auto& [steps, expected] : cases) {
    LinePort port;
    const auto start = std::chrono::steady_clock::now();
    RunResetSteps(port, steps);
    ASSERT_EQ(port.changes.size(), expected.size());
    auto due = start;
    for (size_t i = 0; i < expected.size(); ++i) {
      EXPECT_EQ(port.changes[i].dtr, expected[i].dtr) << i;
      EXPECT_EQ(port.changes[i].rts, expected[i].rts) << i;
      EXPECT_GE(port.changes[i].at, due) << i;  // the previous state was held long enough
      due = port.changes[i].at + std::chrono::milliseconds(expected[i].hold_ms);
    }
  }
  EXPECT_TRUE(BeforeResetSteps("no_reset").empty());
  EXPECT_TRUE(AfterResetSteps("no_reset").empty());
  EXPECT_THROW(AfterResetSteps("default_reset"), qmc::host::InputError);
  EXPECT_THROW(BeforeResetSteps("usb_reset"), qmc::host::InputError);
}

TEST(ResetSequence, APortWithoutModemLinesRefusesAResetBeforeSendingAnything) {
  ExecPort port("cat");
  EXPECT_NO_THROW(CheckCanReset(port, BeforeResetSteps("no_reset"), "--before no_reset"));
  try {
    CheckCanReset(port, BeforeResetSteps("hard_reset"), "--before hard_reset");
    FAIL() << "a reset sequence on exec: was accepted";
  } catch (const qmc::host::InputError& e) {
    EXPECT_EQ(std::string(e.what()),
              "exec:cat: --before hard_reset needs DTR/RTS, which this port cannot drive (only tty and ftdi:// "
              "ports can)");
  }
}

TEST_F(TtyPortOnPty, ModemLinesAreSetOrRefusedClearly) {
  TtyPort port(slave_, 115200);
  EXPECT_TRUE(port.has_modem_lines());
  // Linux ptys have no modem lines (TIOCMSET fails); where a pty has them, they must read back.
  try {
    port.SetModemLines(true, false);
    const int fd = open(slave_.c_str(), O_RDWR | O_NOCTTY);
    ASSERT_GE(fd, 0);
    int lines = 0;
    ASSERT_EQ(ioctl(fd, TIOCMGET, &lines), 0);
    close(fd);
    EXPECT_NE(lines & TIOCM_DTR, 0);
    EXPECT_EQ(lines & TIOCM_RTS, 0);
  } catch (const PortError& e) {
    EXPECT_NE(std::string(e.what()).find(slave_ + " at 115200 baud: cannot drive DTR/RTS: "), std::string::npos)
        << e.what();
  }
}

TEST_F(TtyPortOnPty, SetBaudChangesTheRateAndRefusesOddOnes) {
  TtyPort port(slave_, 115200);
  port.SetBaud(921600);
  EXPECT_EQ(port.bytes_per_second(), 92160u);
  EXPECT_EQ(port.Describe(), slave_ + " at 921600 baud");
  const int fd = open(slave_.c_str(), O_RDWR | O_NOCTTY);
  ASSERT_GE(fd, 0);
  termios tio{};
  ASSERT_EQ(tcgetattr(fd, &tio), 0);
  close(fd);
  EXPECT_EQ(cfgetospeed(&tio), static_cast<speed_t>(B921600));
  EXPECT_THROW(port.SetBaud(12345), qmc::host::InputError);
  EXPECT_EQ(port.bytes_per_second(), 92160u);  // unchanged
  // Bytes still pass after the switch.
  port.Write(std::vector<uint8_t>{'o', 'k'});
  EXPECT_EQ(ReadMaster(2), std::vector<uint8_t>({'o', 'k'}));
  EXPECT_TRUE(TtyBaudSupported(3000000));
  EXPECT_FALSE(TtyBaudSupported(12345));
}

// A sysfs tree as Linux lays it out for an FT2232H's second UART (ttyUSB1,
// through usb-serial) and a CDC-ACM board (ttyACM0), plus a non-USB tty.
TEST(SerialDevices, ReadFromAFakeSysfs) {
  namespace fs = std::filesystem;
  const fs::path root = fs::path(::testing::TempDir()) / ("qmc_sysfs_" + std::to_string(getpid()));
  fs::remove_all(root);
  auto write = [](const fs::path& file, const std::string& text) {
    fs::create_directories(file.parent_path());
    std::ofstream(file) << text;
  };
  const fs::path ftdi = root / "devices/pci0000:00/0000:00:14.0/usb1/1-2";
  write(ftdi / "idVendor", "0403\n");
  write(ftdi / "idProduct", "6010\n");
  write(ftdi / "serial", "FT4ABC12\n");
  write(ftdi / "manufacturer", "FTDI\n");
  write(ftdi / "product", "Dual RS232-HS\n");
  write(ftdi / "1-2:1.1/bInterfaceNumber", "01\n");
  fs::create_directories(ftdi / "1-2:1.1/ttyUSB1/tty/ttyUSB1");
  fs::create_directory_symlink("../../../ttyUSB1", ftdi / "1-2:1.1/ttyUSB1/tty/ttyUSB1/device");

  const fs::path acm = root / "devices/pci0000:00/0000:00:14.0/usb1/1-3";
  write(acm / "idVendor", "2e8a\n");
  write(acm / "idProduct", "000a\n");
  write(acm / "1-3:1.0/bInterfaceNumber", "00\n");
  fs::create_directories(acm / "1-3:1.0/tty/ttyACM0");
  fs::create_directory_symlink("../../../1-3:1.0", acm / "1-3:1.0/tty/ttyACM0/device");

  fs::create_directories(root / "devices/platform/serial8250/tty/ttyS0");
  fs::create_directories(root / "class/tty");
  fs::create_directory_symlink("../../devices/pci0000:00/0000:00:14.0/usb1/1-2/1-2:1.1/ttyUSB1/tty/ttyUSB1",
                               root / "class/tty/ttyUSB1");
  fs::create_directory_symlink("../../devices/pci0000:00/0000:00:14.0/usb1/1-3/1-3:1.0/tty/ttyACM0",
                               root / "class/tty/ttyACM0");
  fs::create_directory_symlink("../../devices/platform/serial8250/tty/ttyS0", root / "class/tty/ttyS0");
  fs::create_directories(root / "class/tty/ttyUSB7");  // no device link: listed without ids

  const std::vector<SerialDevice> devices = ListSerialDevices(root);
  ASSERT_EQ(devices.size(), 3u);  // ttyS0 is not a USB serial device
  EXPECT_EQ(devices[0].path, "/dev/ttyACM0");
  EXPECT_TRUE(devices[0].usb);
  EXPECT_EQ(devices[0].vendor, 0x2e8a);
  EXPECT_EQ(devices[0].product, 0x000a);
  EXPECT_EQ(devices[0].serial, "");
  EXPECT_EQ(devices[0].interface, 0);
  EXPECT_EQ(devices[1].path, "/dev/ttyUSB1");
  EXPECT_TRUE(devices[1].usb);
  EXPECT_EQ(devices[1].vendor, 0x0403);
  EXPECT_EQ(devices[1].product, 0x6010);
  EXPECT_EQ(devices[1].serial, "FT4ABC12");
  EXPECT_EQ(devices[1].manufacturer, "FTDI");
  EXPECT_EQ(devices[1].description, "Dual RS232-HS");
  EXPECT_EQ(devices[1].interface, 1);
  EXPECT_EQ(devices[2].path, "/dev/ttyUSB7");
  EXPECT_FALSE(devices[2].usb);
  EXPECT_TRUE(ListSerialDevices(root / "nonexistent").empty());
  fs::remove_all(root);
}

}  // namespace
