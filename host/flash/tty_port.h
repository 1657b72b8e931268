// A POSIX serial device (/dev/ttyUSB0, /dev/ttyACM0, a pty): raw 8N1, no
// flow control, at a standard baud rate; DTR and RTS through TIOCMSET for
// reset sequences (a pty has no modem lines: that is a PortError).
#pragma once

#include <string>

#include "host/flash/port.h"

namespace qmc::host::flash {

class TtyPort final : public Port {
 public:
  // Throws InputError for a baud rate termios has no constant for,
  // PortError when the device cannot be opened or configured.
  TtyPort(const std::string& path, uint32_t baud);
  ~TtyPort() override;
  TtyPort(const TtyPort&) = delete;
  TtyPort& operator=(const TtyPort&) = delete;

  void Write(std::span<const uint8_t> data) override;
  size_t Read(std::span<uint8_t> out, std::chrono::milliseconds timeout) override;
  void Purge() override;
  // 8N1: ten bits on the wire per byte.
  uint32_t bytes_per_second() const override { return baud_ / 10; }
  std::string Describe() const override { return path_ + " at " + std::to_string(baud_) + " baud"; }
  bool has_modem_lines() const override { return true; }
  void SetModemLines(bool dtr, bool rts) override;
  void SetBaud(uint32_t baud) override;

 private:
  std::string path_;
  uint32_t baud_;
  int fd_ = -1;
};

// Whether termios has a constant for `baud` (9600 ... 4000000).
bool TtyBaudSupported(uint32_t baud);

}  // namespace qmc::host::flash
