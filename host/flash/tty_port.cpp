#include "host/flash/tty_port.h"

#include <fcntl.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "host/checkpoint.h"
#include "host/flash/fd_io.h"

namespace qmc::host::flash {
namespace {

// A device that takes no bytes for this long (flow control stuck, cable
// pulled) has failed.
constexpr std::chrono::seconds kWriteStall{10};

constexpr std::pair<uint32_t, speed_t> kRates[] = {
    {9600, B9600},       {19200, B19200},     {38400, B38400},     {57600, B57600},     {115200, B115200},
    {230400, B230400},   {460800, B460800},   {500000, B500000},   {576000, B576000},   {921600, B921600},
    {1000000, B1000000}, {1152000, B1152000}, {1500000, B1500000}, {2000000, B2000000}, {3000000, B3000000},
    {4000000, B4000000}};

speed_t BaudConstant(uint32_t baud) {
  for (const auto& [rate, constant] : kRates) {
    if (rate == baud) return constant;
  }
  throw InputError("baud rate " + std::to_string(baud) + " is not one a tty supports (9600 ... 4000000)");
}

}  // namespace

bool TtyBaudSupported(uint32_t baud) {
  for (const auto& rate : kRates) {
    if (rate.first == baud) return true;
  }
  return false;
}

TtyPort::TtyPort(const std::string& path, uint32_t baud) : path_(path), baud_(baud) {
  const speed_t speed = BaudConstant(baud);
  fd_ = open(path.c_str(), O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
  if (fd_ < 0) throw PortError(path + ": cannot open: " + std::strerror(errno));
  termios tio{};
  if (tcgetattr(fd_, &tio) != 0) {
    const int error = errno;
    close(fd_);
    throw PortError(path + ": not a serial port: " + std::strerror(error));
  }
  cfmakeraw(&tio);
  tio.c_cflag &= ~static_cast<tcflag_t>(CSTOPB | PARENB | CRTSCTS);
  tio.c_cflag |= CLOCAL | CREAD;
  tio.c_iflag &= ~static_cast<tcflag_t>(IXON | IXOFF | IXANY);
  // VMIN 1: with O_NONBLOCK an empty read is EAGAIN, so a 0 can only mean hang-up.
  tio.c_cc[VMIN] = 1;
  tio.c_cc[VTIME] = 0;
  cfsetispeed(&tio, speed);
  cfsetospeed(&tio, speed);
  if (tcsetattr(fd_, TCSANOW, &tio) != 0) {
    const int error = errno;
    close(fd_);
    throw PortError(path + ": cannot configure: " + std::strerror(error));
  }
  tcflush(fd_, TCIOFLUSH);
}

TtyPort::~TtyPort() { close(fd_); }

void TtyPort::Write(std::span<const uint8_t> data) {
  switch (WriteFd(fd_, data, kWriteStall, /*is_socket=*/false)) {
    case WriteEnd::kDone:
      return;
    case WriteEnd::kClosed:
      throw PortError(Describe() + ": the device hung up");
    case WriteEnd::kStalled:
      throw PortError(Describe() + ": the device takes no data");
  }
}

size_t TtyPort::Read(std::span<uint8_t> out, std::chrono::milliseconds timeout) {
  const std::optional<size_t> n = ReadFd(fd_, out, timeout);
  if (!n) throw PortError(Describe() + ": the device hung up");
  return *n;
}

void TtyPort::Purge() { tcflush(fd_, TCIFLUSH); }

void TtyPort::SetModemLines(bool dtr, bool rts) {
  int lines = 0;
  if (ioctl(fd_, TIOCMGET, &lines) != 0) {
    throw PortError(Describe() + ": cannot drive DTR/RTS: " + std::strerror(errno));
  }
  lines = (lines & ~(TIOCM_DTR | TIOCM_RTS)) | (dtr ? TIOCM_DTR : 0) | (rts ? TIOCM_RTS : 0);
  if (ioctl(fd_, TIOCMSET, &lines) != 0) {
    throw PortError(Describe() + ": cannot drive DTR/RTS: " + std::strerror(errno));
  }
}

void TtyPort::SetBaud(uint32_t baud) {
  const speed_t speed = BaudConstant(baud);
  // Whatever is still queued goes out at the old rate first.
  tcdrain(fd_);
  termios tio{};
  if (tcgetattr(fd_, &tio) != 0 || cfsetispeed(&tio, speed) != 0 || cfsetospeed(&tio, speed) != 0 ||
      tcsetattr(fd_, TCSANOW, &tio) != 0) {
    throw PortError(Describe() + ": cannot set " + std::to_string(baud) + " baud: " + std::strerror(errno));
  }
  baud_ = baud;
}

}  // namespace qmc::host::flash
