// A byte port to a board's link: the flash protocol runs over any of them
// (an FTDI USB-UART via libftdi1, a POSIX tty, or a program on pipes — how
// tests and the demo flash the emulated board exactly as a board is flashed).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

#include "host/atomic_file.h"

namespace qmc::host::flash {

// The link failed: the device vanished, the program exited, a system call
// failed. An IoError, so qmc maps it to exit 4.
class PortError : public IoError {
 public:
  using IoError::IoError;
};

class Port {
 public:
  virtual ~Port() = default;

  // Sends every byte, or throws PortError.
  virtual void Write(std::span<const uint8_t> data) = 0;
  // Waits up to `timeout` for input, then returns what arrived (at most
  // out.size() bytes); 0 means nothing came in time. Throws PortError when
  // the link has closed.
  virtual size_t Read(std::span<uint8_t> out, std::chrono::milliseconds timeout) = 0;
  // Drops input received but not yet read (console chatter, stale replies).
  virtual void Purge() = 0;
  // The link's speed in bytes per second, or 0 when it has none worth
  // waiting for (pipes): what reply timeouts scale with.
  virtual uint32_t bytes_per_second() const = 0;
  // What the port is, for messages ("/dev/ttyUSB0 at 115200 baud").
  virtual std::string Describe() const = 0;

  // Whether SetModemLines can drive DTR and RTS (the lines reset circuits
  // hang off): serial links can, a program on pipes cannot.
  virtual bool has_modem_lines() const { return false; }
  // Sets DTR and RTS (true: asserted, the pin low). Throws PortError when
  // the device refuses; only called when has_modem_lines().
  virtual void SetModemLines(bool /*dtr*/, bool /*rts*/) {}
  // Changes the link's baud rate. Throws InputError for a rate the port
  // cannot run at, PortError when the device refuses. A link without a baud
  // rate (pipes) ignores it.
  virtual void SetBaud(uint32_t /*baud*/) {}
};

}  // namespace qmc::host::flash
