// `qmc flash`: put an image on a board over its link and make it the one
// that boots (host/flash/flasher.h); with --then-console, stay on the link
// as `qmc console` once the board runs it.
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "host/atomic_file.h"
#include "host/checkpoint.h"
#include "host/cli/commands.h"
#include "host/cli/port_options.h"
#include "host/cli/progress_bar.h"
#include "host/flash/console_session.h"
#include "host/flash/flasher.h"
#include "host/image_summary.h"

namespace qmc::cli {
namespace {

struct FlashArgs {
  std::string image;
  PortArgs port;
  bool no_verify = false;
  bool no_compress = false;
  bool dry_run = false;
  bool json = false;
  bool then_console = false;
  double linger_seconds = 3;
};

void PrintSummary(const FlashArgs& args, const host::flash::FlashSummary& s) {
  const double kib_per_s = s.seconds > 0 ? static_cast<double>(s.image_bytes) / 1024.0 / s.seconds : 0;
  if (args.json) {
    const nlohmann::json out = {{"image", args.image},       {"port", args.port.port},
                                {"dry_run", args.dry_run},    {"slot", s.slot},
                                {"commit_sequence", s.commit_sequence},
                                {"image_bytes", s.image_bytes}, {"skipped_bytes", s.skipped},
                                {"copied_bytes", s.copied},   {"sent_bytes", s.sent},
                                {"sent_deflated_bytes", s.sent_deflated},
                                {"resent_blocks", s.resent_blocks},
                                {"wire_bytes_sent", s.link.bytes_sent},
                                {"wire_bytes_received", s.link.bytes_received},
                                {"requests", s.link.requests}, {"resends", s.link.resends},
                                {"seconds", s.seconds}};
    std::printf("%s\n", out.dump(2).c_str());
    return;
  }
  if (args.dry_run) {
    std::printf("qmc flash: dry run: %s -> slot %u: would send %llu bytes, copy %llu on the board, skip %llu "
                "already in place; nothing written\n",
                args.image.c_str(), s.slot, static_cast<unsigned long long>(s.sent),
                static_cast<unsigned long long>(s.copied), static_cast<unsigned long long>(s.skipped));
    return;
  }
  std::printf("qmc flash: %s -> slot %u, committed (sequence %u)%s\n", args.image.c_str(), s.slot,
              s.commit_sequence, args.no_verify ? ", blocks not verified (the board validated the image)" : ", verified");
  std::printf("qmc flash: %llu image bytes: %llu sent (as %llu DATA bytes), %llu copied on the board, %llu already "
              "in place; wire %llu bytes out, %llu in, %llu resends; %.2f s, %.1f KiB/s\n",
              static_cast<unsigned long long>(s.image_bytes), static_cast<unsigned long long>(s.sent),
              static_cast<unsigned long long>(s.sent_deflated), static_cast<unsigned long long>(s.copied),
              static_cast<unsigned long long>(s.skipped), static_cast<unsigned long long>(s.link.bytes_sent),
              static_cast<unsigned long long>(s.link.bytes_received),
              static_cast<unsigned long long>(s.link.resends), s.seconds, kib_per_s);
}

void RunFlash(const FlashArgs& args) {
  // Everything that can be checked without the board is, before the port opens.
  const std::vector<uint8_t> bytes = host::ReadWholeFile(args.image);
  const Result<image::ImageView> opened = image::ImageView::OpenFile(bytes);
  const Status status = opened.ok() ? opened.value().Validate() : opened.status();
  if (!status.ok()) {
    std::fprintf(stderr, "qmc flash: %s: %s\n", args.image.c_str(), host::DescribeStatus(status).c_str());
    throw CommandFailed{kExitBadImage};
  }
  if (args.then_console && args.port.after != "no_reset") {
    throw host::InputError("--then-console hands the running board to the console: no --after " + args.port.after);
  }
  try {
    Board board(args.port);
    host::flash::FlashOptions options;
    options.verify = !args.no_verify;
    options.compress = !args.no_compress;
    options.dry_run = args.dry_run;
    options.run = args.then_console;
    host::flash::FlashSummary summary;
    {
      ProgressBar bar(args.dry_run ? "checking" : "flashing");
      summary = host::flash::FlashImage(board.client(), bytes, opened.value(), options,
                                        [&](uint64_t done, uint64_t total, const host::flash::LinkStats&) {
                                          bar.Update(done, total);
                                        });
    }
    // A dry run leaves the flash server as `read` does: back to the console.
    if (args.dry_run) board.LeaveToConsole();
    if (!board.client().baud_note().empty()) {
      std::fprintf(stderr, "qmc flash: %s\n", board.client().baud_note().c_str());
    }
    PrintSummary(args, summary);
    board.Finish();
    if (args.then_console && !args.dry_run) {
      std::fflush(stdout);
      host::flash::ConsoleOptions console;
      console.linger = std::chrono::milliseconds(static_cast<int64_t>(args.linger_seconds * 1000));
      host::flash::RunConsole(board.port(), board.client().TakeUnread(), console);
    }
  } catch (const host::IoError& e) {  // the port, the link or the board
    std::fprintf(stderr, "qmc flash: error: %s\n", e.what());
    throw CommandFailed{kExitIoError};
  }
}

}  // namespace

void AddFlashCommand(CLI::App& app) {
  auto args = std::make_shared<FlashArgs>();
  CLI::App* cmd = app.add_subcommand(
      "flash", "Flash an image to a board over its link and make it the image that boots. The board keeps "
               "booting its previous image until the new one is written, verified and committed: a dropped "
               "link or a power cut at any point leaves it bootable.");
  cmd->add_option("image", args->image, "the QMC image file (validated before the port is opened)")->required();
  AddPortOptions(cmd, args->port);
  cmd->add_flag("--no-verify", args->no_verify,
                "skip re-reading every written block's CRC from the board (the board still validates the whole "
                "image before it commits it)");
  cmd->add_flag("--no-compress", args->no_compress, "send every block raw instead of deflated where smaller");
  cmd->add_flag("--dry-run", args->dry_run,
                "ask the board what it holds and print what a flash would send, copy and skip; write nothing");
  cmd->add_flag("--json", args->json, "print the summary as JSON");
  CLI::Option* then_console = cmd->add_flag(
      "--then-console", args->then_console,
      "after committing, RUN the image instead of resetting, and stay on the link as `qmc console` does");
  cmd->add_option("--linger", args->linger_seconds,
                  "with --then-console: seconds of board silence after stdin ends before qmc exits")
      ->default_val(3)
      ->check(CLI::Range(0.0, 3600.0))
      ->needs(then_console);
  cmd->footer(std::string(kPortHelp) +
              "\nHow: the image goes into the board's inactive slot in 4 KiB blocks. Blocks the board already "
              "holds\nthere are skipped (an interrupted flash resumes), blocks its active image has at the same "
              "place are\ncopied on the board (a changed image sends only what changed), the rest are sent, "
              "deflated where\nsmaller. Then the boot record, COMMIT (the board validates the whole image) and a "
              "reset into it.\nA progress bar shows on a terminal; the summary line always.\n"
              "\nExit codes: 0 flashed and committed (or dry run done), 1 bad option values (an interface letter the "
              "FTDI\ndevice lacks, a --before/--after reset on an exec: port, a --baud-fast a tty cannot run at) or "
              "an image\nthat does not fit the board, 3 invalid image file (the port is not touched), 4 the port, "
              "the link or\nthe board failed, including no answer after a --baud-fast switch and the fallback (one "
              "line on stderr\nsays which; the previous image still boots).\n"
              "\nExamples:\n"
              "  qmc flash model.qmc --port /dev/ttyUSB0 --baud 921600\n"
              "  qmc flash model.qmc --port ftdi://0403:6010:B --baud-fast 3000000\n"
              "  qmc flash model.qmc --port /dev/ttyUSB0 --before hard_reset --then-console\n"
              "  qmc flash model.qmc --port \"exec:qmc-fw-emu --nvm out/nvm\"\n");
  cmd->callback([args] { RunFlash(*args); });
}

}  // namespace qmc::cli
