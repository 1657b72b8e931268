// `qmc console`: a terminal on a board's console: stdin's lines are prompts
// to the board, its banners, streamed text and stats lines go to stdout.
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>

#include "host/cli/commands.h"
#include "host/cli/port_options.h"
#include "host/flash/console_session.h"

namespace qmc::cli {
namespace {

struct ConsoleArgs {
  PortArgs port;
  double linger_seconds = 3;
};

void RunConsoleCommand(const ConsoleArgs& args) {
  try {
    // The console needs no flash server: no HELLO, so no --baud-fast switch either.
    Board board(args.port);
    host::flash::ConsoleOptions options;
    options.linger = std::chrono::milliseconds(static_cast<int64_t>(args.linger_seconds * 1000));
    host::flash::RunConsole(board.port(), {}, options);
    board.Finish();
  } catch (const host::IoError& e) {
    std::fprintf(stderr, "qmc console: error: %s\n", e.what());
    throw CommandFailed{kExitIoError};
  }
}

}  // namespace

void AddConsoleCommand(CLI::App& app) {
  auto args = std::make_shared<ConsoleArgs>();
  CLI::App* cmd = app.add_subcommand(
      "console", "A terminal on a board's console: each line on stdin is a prompt (see the firmware's console "
                 "syntax, e.g. \"steps=40 Once upon a time\"); what the board prints comes out on stdout.");
  AddPortOptions(cmd, args->port);
  cmd->add_option("--linger", args->linger_seconds,
                  "seconds of board silence after stdin ends before qmc exits (the last answer may still stream)")
      ->default_val(3)
      ->check(CLI::Range(0.0, 3600.0));
  cmd->footer(std::string(kPortHelp) +
              "\nEnds when stdin ends (Ctrl-D) and the board has been quiet for --linger seconds, or when the link "
              "closes.\nBytes 0xC0 on stdin are dropped: on the link that byte hands the console to the flash "
              "server.\n--baud-fast does not apply (it needs the flash server).\n"
              "\nExit codes: 0 done, 1 bad option values, 4 the port or the link failed.\n"
              "\nExamples:\n  qmc console --port /dev/ttyUSB0 --baud 921600\n"
              "  echo 'steps=40 Once upon a time' | qmc console --port \"exec:qmc-fw-emu --nvm out/nvm\"\n");
  cmd->callback([args] { RunConsoleCommand(*args); });
}

}  // namespace qmc::cli
