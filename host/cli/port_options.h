// The options every command that talks to a board shares (--port, --baud,
// --baud-fast, --before, --after, --retries), their help, and opening the
// board they name.
#pragma once

#include <CLI/CLI.hpp>
#include <memory>
#include <optional>
#include <string>

#include "host/flash/port.h"
#include "host/flash/protocol_client.h"

namespace qmc::cli {

struct PortArgs {
  std::string port;
  std::optional<uint32_t> baud;       // unset: 115200 on serial links, unpaced on exec:
  std::optional<uint32_t> baud_fast;  // the rate to switch to after HELLO
  std::string before = "no_reset";
  std::string after = "no_reset";
  int attempts = 6;
};

inline constexpr const char* kPortHelp =
    "Ports:\n"
    "  exec:COMMAND             a program whose stdin/stdout is the board's link, e.g. the emulated\n"
    "                           board: exec:\"qmc-fw-emu --nvm out/nvm\"\n"
    "  ftdi://VID:PID[/SERIAL][:IF]\n"
    "                           an FTDI USB-UART by hex ids (and serial number when several are\n"
    "                           plugged in; IF: the interface, A-D, on FT2232H/FT4232H), through\n"
    "                           libftdi1; `qmc devices` lists them\n"
    "  PATH                     a serial device, e.g. /dev/ttyUSB0 or /dev/ttyACM0\n"
    "Reset lines (tty and ftdi:// ports; RTS on the reset pin, DTR on a boot pin, as esptool wires them):\n"
    "  --before no_reset|hard_reset|default_reset   --after no_reset|hard_reset\n"
    "  hard_reset pulses RTS for 100 ms; default_reset is esptool's: DTR held while RTS pulses.\n";

void AddPortOptions(CLI::App* cmd, PortArgs& args);

// The board a command talks to: its port, opened, with --before run, and a
// protocol client that switches to --baud-fast on connecting.
class Board {
 public:
  // Throws InputError for option values the port cannot honour (a reset
  // sequence on a port without DTR/RTS, a --baud-fast a tty cannot run at):
  // nothing has been sent then. PortError when the port cannot be opened.
  explicit Board(const PortArgs& args);
  ~Board();

  host::flash::Port& port() { return *port_; }
  host::flash::ProtocolClient& client() { return *client_; }
  // Runs --after. Throws PortError when the lines cannot be set.
  void Finish();
  // Sends RUN: the board boots its committed image back into its console
  // (where `read` and `info` leave it). A board without one stays in its
  // flash server.
  void LeaveToConsole();

 private:
  PortArgs args_;
  std::unique_ptr<host::flash::Port> port_;
  std::unique_ptr<host::flash::ProtocolClient> client_;
};

}  // namespace qmc::cli
