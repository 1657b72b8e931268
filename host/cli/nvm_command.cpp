// `qmc nvm write`: put an image into an emulated board's NVM directory, the
// files qmc-fw-emu boots from.
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "host/atomic_file.h"
#include "host/checkpoint.h"
#include "host/cli/commands.h"
#include "host/image_summary.h"
#include "host/nvm_image.h"

namespace qmc::cli {
namespace {

struct NvmWriteArgs {
  std::string image;
  std::string dir;
  std::string board;
};

void RunNvmWrite(const NvmWriteArgs& args) {
  const std::vector<uint8_t> bytes = host::ReadWholeFile(args.image);
  const Result<image::ImageView> opened = image::ImageView::OpenFile(bytes);
  const Status status = opened.ok() ? opened.value().Validate() : opened.status();
  if (!status.ok()) {
    std::fprintf(stderr, "qmc nvm write: %s: %s\n", args.image.c_str(), host::DescribeStatus(status).c_str());
    throw CommandFailed{kExitBadImage};
  }
  hal::emu::WindowSizes sizes;
  if (!args.board.empty()) {
    try {
      sizes = hal::emu::LoadWindowSizes(args.board);
    } catch (const hal::emu::EmuError& e) {
      throw host::InputError(e.what());
    }
  }
  host::WriteImageToNvm(opened.value(), bytes, args.dir, sizes);
  const image::ImageView& view = opened.value();
  std::printf("qmc nvm write: %s -> %s: slot 0: MRAM %u bytes, ReRAM %u, DRAM %u; commit record written last\n",
              args.image.c_str(), args.dir.c_str(), view.WindowBytes(image::Window::kMram),
              view.WindowBytes(image::Window::kReram), view.WindowBytes(image::Window::kDram));
}

}  // namespace

void AddNvmCommand(CLI::App& app) {
  CLI::App* nvm = app.add_subcommand("nvm", "The emulated board's non-volatile memory: window files in a directory "
                                            "that qmc-fw-emu --nvm DIR boots from.");
  nvm->require_subcommand(1);
  auto args = std::make_shared<NvmWriteArgs>();
  CLI::App* write = nvm->add_subcommand(
      "write", "Pre-flash a validated image into DIR in the flasher's slot layout (docs/protocol.md): each section "
               "in slot 0 of its window, read back and checked, the boot record, then the commit record last.");
  write->add_option("image", args->image, "the QMC image file")->required();
  write->add_option("dir", args->dir, "the NVM directory (created with blank window files if absent)")->required();
  write->add_option("--board", args->board,
                    "a board profile JSON (hal/profiles/boards/) whose emu_window_mib gives the window sizes; pass "
                    "the same to qmc-fw-emu --board");
  write->footer("Window sizes are the emu board's: MRAM 8 MiB, ReRAM 64 MiB, DRAM 64 MiB unless --board gives others "
                "(sparse files), each split into two slots (MRAM after a 4 KiB commit area). Exits 3 for an invalid "
                "image, 1 when it does not fit a slot, 4 when the files cannot be written.");
  write->callback([args] { RunNvmWrite(*args); });
}

}  // namespace qmc::cli
