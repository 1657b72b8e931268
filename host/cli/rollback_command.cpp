// `qmc rollback`: make the board boot the image in its other slot (the one
// committed before the current one), if that slot still holds one that
// validates (host/flash/board_slots.h).
#include <cstdio>
#include <memory>
#include <string>

#include "host/cli/commands.h"
#include "host/cli/port_options.h"
#include "host/flash/board_slots.h"

namespace qmc::cli {
namespace {

void RunRollback(const PortArgs& args) {
  try {
    Board board(args);
    const host::flash::RollbackResult r = host::flash::Rollback(board.client());
    board.Finish();
    std::printf("qmc rollback: slot %u -> slot %u, committed (sequence %u): image header_crc 0x%08x, %u bytes\n",
                r.from, r.to, r.commit_sequence, r.record.header.header_crc, r.record.header.image_size);
  } catch (const host::flash::RollbackRefused& e) {
    std::fprintf(stderr, "qmc rollback: refused: %s\n", e.what());
    throw CommandFailed{kExitBadImage};
  } catch (const host::IoError& e) {
    std::fprintf(stderr, "qmc rollback: error: %s\n", e.what());
    throw CommandFailed{kExitIoError};
  }
}

}  // namespace

void AddRollbackCommand(CLI::App& app) {
  auto args = std::make_shared<PortArgs>();
  CLI::App* cmd = app.add_subcommand(
      "rollback", "Boot the image in the board's other slot: the one committed before the current one. The board "
                  "validates it completely first and refuses when it does not; then it commits it (a newer commit "
                  "record naming that slot) and resets into it. Rolling back again returns to the first.");
  AddPortOptions(cmd, *args);
  cmd->footer(std::string(kPortHelp) +
              "\nExit codes: 0 rolled back, 1 bad option values, 3 refused: nothing committed, or the other slot "
              "holds\nno image that validates (nothing changed), 4 the port, the link or the board failed (the "
              "committed\nimage still boots).\n"
              "\nExample:\n  qmc rollback --port /dev/ttyUSB0\n");
  cmd->callback([args] { RunRollback(*args); });
}

}  // namespace qmc::cli
