// The options every command that talks to a board shares (--port, --baud,
// --retries) and their help.
#pragma once

#include <CLI/CLI.hpp>
#include <optional>
#include <string>

namespace qmc::cli {

struct PortArgs {
  std::string port;
  std::optional<uint32_t> baud;  // unset: 115200 on serial links, unpaced on exec:
  int attempts = 6;
};

inline constexpr const char* kPortHelp =
    "Ports:\n"
    "  exec:COMMAND             a program whose stdin/stdout is the board's link, e.g. the emulated\n"
    "                           board: exec:\"qmc-fw-emu --nvm out/nvm\"\n"
    "  ftdi://VID:PID[/SERIAL]  an FTDI USB-UART by hex ids (and serial number when several are\n"
    "                           plugged in), through libftdi1; `qmc devices` lists them\n"
    "  PATH                     a serial device, e.g. /dev/ttyUSB0 or /dev/ttyACM0\n";

inline void AddPortOptions(CLI::App* cmd, PortArgs& args) {
  cmd->add_option("--port", args.port, "the board's link: exec:COMMAND, ftdi://VID:PID[/SERIAL] or a tty path")
      ->required();
  cmd->add_option("--baud", args.baud,
                  "baud rate of a serial link (tty, FTDI; default 115200); on an exec: link, the rate the "
                  "program's link carries (e.g. an emulated UART), so timeouts allow for it")
      ->check(CLI::Range(300u, 12000000u));
  cmd->add_option("--retries", args.attempts,
                  "times one request is sent before the link counts as failed (timeouts scale with the "
                  "request's size and the baud rate)")
      ->default_val(6)
      ->check(CLI::Range(1, 100));
}

}  // namespace qmc::cli
