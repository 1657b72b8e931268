// The qmc subcommands. Each registers itself on the app; its callback throws
// on failure and main() maps the exception to an exit code.
#pragma once

#include <CLI/CLI.hpp>

namespace qmc::cli {

// Exit codes that mean something to a build pipeline.
enum ExitCode : int {
  kExitOk = 0,
  kExitBadInput = 1,     // unreadable/invalid checkpoint, tokenizer or option values
  kExitUsage = 2,        // command line does not parse
  kExitBadImage = 3,     // an image fails validation
  kExitIoError = 4,      // cannot read or write a file
};

// Thrown by a command that has already reported its failure and wants `code`.
struct CommandFailed {
  int code;
};

void AddPackCommand(CLI::App& app);
void AddInspectCommand(CLI::App& app);
void AddRunCommand(CLI::App& app);

}  // namespace qmc::cli
