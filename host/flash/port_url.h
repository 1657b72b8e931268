// Port URLs, as `qmc flash --port` takes them:
//   exec:COMMAND            a program on pipes (/bin/sh -c COMMAND): its
//                           stdin/stdout is the link, e.g. the emulated board
//   ftdi://VID:PID[/SERIAL][:IF]
//                           an FTDI USB-UART by hex vendor:product id, when
//                           several are plugged in serial number, and on a
//                           multi-port chip (FT2232H: A, B; FT4232H: A-D)
//                           the interface letter (A when not given)
//   PATH                    a POSIX serial device, e.g. /dev/ttyUSB0
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "host/flash/port.h"

namespace qmc::host::flash {

struct PortUrl {
  enum class Kind { kExec, kFtdi, kTty };
  Kind kind = Kind::kTty;
  std::string command;  // kExec
  uint16_t vendor = 0;  // kFtdi
  uint16_t product = 0;
  std::string serial;   // kFtdi, empty for "the first one"
  char interface = 0;   // kFtdi: 'A'..'D', 0 when not given (A)
  std::string path;     // kTty
};

// Throws InputError naming what is wrong with `url`.
PortUrl ParsePortUrl(std::string_view url);

// Opens the port `url` names. `baud` sets serial links (tty, FTDI; 115200
// when not given) and, when given, the pace timeouts assume on an exec:
// link (8N1: baud / 10 bytes/s). Throws PortError when it cannot be opened.
std::unique_ptr<Port> OpenPort(const PortUrl& url, std::optional<uint32_t> baud);

}  // namespace qmc::host::flash
