// The qmc subcommands. Each registers itself on the app; its callback throws
// on failure and main() maps the exception to an exit code.
#pragma once

#include <CLI/CLI.hpp>
#include <map>
#include <string>

#include "common/engine.h"

namespace qmc::cli {

// Exit codes that mean something to a build pipeline.
enum ExitCode : int {
  kExitOk = 0,
  kExitBadInput = 1,     // unreadable/invalid checkpoint, tokenizer or option values
  kExitUsage = 2,        // command line does not parse
  kExitBadImage = 3,     // an image fails validation
  kExitIoError = 4,      // cannot read or write a file; a board's port, link or the board failed
};

// Thrown by a command that has already reported its failure and wants `code`.
struct CommandFailed {
  int code;
};

void AddPackCommand(CLI::App& app);
void AddInspectCommand(CLI::App& app);
void AddRunCommand(CLI::App& app);
void AddNvmCommand(CLI::App& app);
void AddEvalCommand(CLI::App& app);
void AddFlashCommand(CLI::App& app);
void AddReadCommand(CLI::App& app);
void AddDevicesCommand(CLI::App& app);
void AddInfoCommand(CLI::App& app);
void AddConsoleCommand(CLI::App& app);
void AddRollbackCommand(CLI::App& app);
void AddMemsimCommand(CLI::App& app);
void AddTokenizeCommand(CLI::App& app);
void AddConvertTaskCommand(CLI::App& app);

// --kv, the KV cache format, as `run` and `eval` take it: a name, which
// KvFormatNamed turns into the format.
inline CLI::Option* AddKvFormatOption(CLI::App* cmd, std::string& name) {
  return cmd
      ->add_option("--kv", name,
                   "KV cache format: f32; fp16; int8 (per position and KV head, symmetric codes with one f32 "
                   "scale: about a quarter of f32's bytes)")
      ->check(CLI::IsMember({"f32", "fp16", "int8"}))
      ->default_val("f32");
}

inline KvFormat KvFormatNamed(const std::string& name) {
  static const std::map<std::string, KvFormat> kFormats = {
      {"f32", KvFormat::kF32}, {"fp16", KvFormat::kFp16}, {"int8", KvFormat::kInt8}};
  return kFormats.at(name);
}

}  // namespace qmc::cli
