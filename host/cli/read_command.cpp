// `qmc read`: read a board's committed image back into the image file it
// was flashed from; the board then goes back to its console.
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "host/atomic_file.h"
#include "host/cli/commands.h"
#include "host/cli/port_options.h"
#include "host/cli/progress_bar.h"
#include "host/flash/image_readback.h"

namespace qmc::cli {
namespace {

struct ReadArgs {
  PortArgs port;
  std::string output;
};

void RunRead(const ReadArgs& args) {
  std::vector<uint8_t> image;
  try {
    Board board(args.port);
    {
      ProgressBar bar("reading");
      image = host::flash::ReadBackImage(board.client(), [&](uint64_t done, uint64_t total) { bar.Update(done, total); });
    }
    board.LeaveToConsole();
    board.Finish();
  } catch (const host::flash::NoImageError& e) {
    std::fprintf(stderr, "qmc read: %s\n", e.what());
    throw CommandFailed{kExitBadImage};
  } catch (const host::IoError& e) {
    std::fprintf(stderr, "qmc read: error: %s\n", e.what());
    throw CommandFailed{kExitIoError};
  }
  host::WriteFileAtomically(args.output, image);
  std::printf("qmc read: %zu bytes -> %s (validated)\n", image.size(), args.output.c_str());
}

}  // namespace

void AddReadCommand(CLI::App& app) {
  auto args = std::make_shared<ReadArgs>();
  CLI::App* cmd = app.add_subcommand(
      "read", "Read the image a board boots (its committed slot) back into an image file, byte-identical to the "
              "file that was flashed.");
  AddPortOptions(cmd, args->port);
  cmd->add_option("-o,--output", args->output, "the image file to write (whole or not at all)")->required();
  cmd->footer(std::string(kPortHelp) +
              "\nExit codes: 0 read and validated, 1 bad option values, 3 the board has no committed image or it "
              "does\nnot validate, 4 the port, the link or the board failed, or the file cannot be written.\n"
              "\nExample:\n  qmc read --port /dev/ttyUSB0 -o board.qmc\n");
  cmd->callback([args] { RunRead(*args); });
}

}  // namespace qmc::cli
