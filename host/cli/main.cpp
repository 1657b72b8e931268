#include <cstdio>
#include <exception>

#include "host/atomic_file.h"
#include "host/checkpoint.h"
#include "host/cli/commands.h"

int main(int argc, char** argv) {
  using namespace qmc::cli;
  CLI::App app{"qmc: pack small language models into QMC memory images for edge SoCs\n"
               "(low-bit inliers in MLC ReRAM, exact outliers in MRAM, the KV cache in DRAM)."};
  app.require_subcommand(1);
  app.footer(
      "Exit codes: 0 ok, 1 bad input (checkpoint, tokenizer, option values), 2 usage,\n"
      "            3 invalid image, 4 I/O error (a file, or a board's port or link).");
  AddPackCommand(app);
  AddInspectCommand(app);
  AddRunCommand(app);
  AddNvmCommand(app);
  AddEvalCommand(app);
  AddFlashCommand(app);
  AddReadCommand(app);
  AddDevicesCommand(app);
  AddInfoCommand(app);
  AddConsoleCommand(app);
  AddRollbackCommand(app);
  AddMemsimCommand(app);
  AddTokenizeCommand(app);
  AddConvertTaskCommand(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return code == 0 ? kExitOk : kExitUsage;
  } catch (const CommandFailed& failed) {
    return failed.code;
  } catch (const qmc::host::InputError& e) {
    std::fprintf(stderr, "qmc: error: %s\n", e.what());
    return kExitBadInput;
  } catch (const qmc::host::IoError& e) {
    std::fprintf(stderr, "qmc: error: %s\n", e.what());
    return kExitIoError;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "qmc: internal error: %s\n", e.what());
    return kExitIoError;
  }
  return kExitOk;
}
