#include <cstdio>
#include <memory>
#include <string>

#include "common/image_reader.h"
#include "host/atomic_file.h"
#include "host/cli/commands.h"
#include "host/image_summary.h"

namespace qmc::cli {
namespace {

struct InspectArgs {
  std::string image;
  bool json = false;
};

void RunInspect(const InspectArgs& args) {
  const std::vector<uint8_t> bytes = host::ReadWholeFile(args.image);
  const Result<image::ImageView> view = image::ImageView::OpenFile(bytes);
  if (!view.ok()) {
    std::fprintf(stderr, "qmc inspect: %s: %s\n", args.image.c_str(), host::DescribeStatus(view.status()).c_str());
    throw CommandFailed{kExitBadImage};
  }
  const nlohmann::json summary = host::SummarizeImage(view.value());
  const std::string text = args.json ? summary.dump(2) + "\n" : host::FormatSummary(summary);
  std::fwrite(text.data(), 1, text.size(), stdout);
  if (const Status status = view.value().Validate(); !status.ok()) {
    std::fprintf(stderr, "qmc inspect: %s: %s\n", args.image.c_str(), host::DescribeStatus(status).c_str());
    throw CommandFailed{kExitBadImage};
  }
}

}  // namespace

void AddInspectCommand(CLI::App& app) {
  auto args = std::make_shared<InspectArgs>();
  CLI::App* cmd = app.add_subcommand("inspect", "Show what an image holds and where: header, sections (with CRC "
                                                "check), tensors, bytes per memory window, bits per weight.");
  cmd->add_option("image", args->image, "the QMC image file")->required();
  cmd->add_flag("--json", args->json,
                "print JSON, schema 1 (docs/inspect-json.md: schema, bits_per_weight, "
                "bytes_by_window{sram,mram,reram,dram}, outlier_fraction, tensors, sections, model, crc_ok, ...)");
  cmd->footer("Exits 3 when any check fails (the summary is still printed when the header is readable).");
  cmd->callback([args] { RunInspect(*args); });
}

}  // namespace qmc::cli
