#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "common/image_reader.h"
#include "host/atomic_file.h"
#include "host/checkpoint.h"
#include "host/cli/commands.h"
#include "host/image_summary.h"
#include "host/pack.h"
#include "host/cli/scheme_options.h"

namespace qmc::cli {
namespace {

struct PackArgs {
  std::string checkpoint;
  std::string output;
  SchemeArgs scheme;
  std::string tokenizer;
  bool json = false;
  bool quiet = false;
};

uint64_t CheckpointBytes(const std::filesystem::path& path) {
  if (!std::filesystem::is_directory(path)) return std::filesystem::file_size(path);
  uint64_t total = 0;
  for (const auto& entry : std::filesystem::directory_iterator(path)) {
    if (entry.is_regular_file()) total += entry.file_size();
  }
  return total;
}

void RunPack(PackArgs& args) {
  const auto start = std::chrono::steady_clock::now();
  const host::QuantOptions options = ResolveOptions(args.scheme);

  host::Checkpoint checkpoint = host::LoadCheckpoint(args.checkpoint);
  if (!args.tokenizer.empty()) {
    checkpoint.tokenizer = host::LoadTokenizerFile(args.tokenizer, checkpoint.config.vocab_size);
  }
  const bool tty = isatty(STDERR_FILENO) != 0;
  const host::PackProgress progress = [&](size_t index, size_t count, const host::TensorSpec& spec) {
    if (args.quiet || !tty) return;
    std::fprintf(stderr, "\rqmc pack: [%3zu/%3zu] %-32s", index + 1, count, spec.name.c_str());
    if (index + 1 == count) std::fputc('\n', stderr);
  };
  const host::PackedModel packed = host::PackModel(checkpoint, options, progress);

  // The packer's output must pass the same reader the device uses.
  const Result<image::ImageView> view = image::ImageView::OpenFile(packed.image);
  if (!view.ok() || !view.value().Validate().ok()) {
    throw std::runtime_error("packed image failed validation: " +
                             host::DescribeStatus(view.ok() ? view.value().Validate() : view.status()));
  }
  host::WriteFileAtomically(args.output, packed.image);

  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const double checkpoint_mb = static_cast<double>(CheckpointBytes(args.checkpoint)) / 1e6;
  nlohmann::json summary = host::SummarizeImage(view.value());
  if (args.json) {
    summary["checkpoint"] = args.checkpoint;
    summary["checkpoint_format"] = checkpoint.format;
    summary["output"] = args.output;
    summary["seconds"] = seconds;
    std::printf("%s\n", summary.dump(2).c_str());
  } else {
    const auto& w = summary["bytes_by_window"];
    const std::string scheme = args.scheme.preset.empty() ? summary["quantizer"].get<std::string>() : args.scheme.preset;
    std::printf("%s: %s image of %s (%s), %u bytes: mram %llu, reram %llu, dram %llu; %.4f bits/weight all-in, "
                "%.4f value bits, outlier fraction %.5f\n",
                args.output.c_str(), scheme.c_str(), args.checkpoint.c_str(), checkpoint.format.c_str(),
                view.value().header().image_size, w["mram"].get<unsigned long long>(), w["reram"].get<unsigned long long>(),
                w["dram"].get<unsigned long long>(), summary["bits_per_weight"].get<double>(),
                summary["value_bits_per_weight"].get<double>(), summary["outlier_fraction"].get<double>());
  }
  if (!args.quiet) {
    std::fprintf(stderr, "qmc pack: %.1f MB checkpoint in %.2f s (%.1f MB/s)\n", checkpoint_mb, seconds,
                 checkpoint_mb / seconds);
  }
}

}  // namespace

void AddPackCommand(CLI::App& app) {
  auto args = std::make_shared<PackArgs>();
  CLI::App* cmd = app.add_subcommand(
      "pack", "Quantize a checkpoint and write a QMC image (deterministic: same input and flags, same bytes).");
  cmd->add_option("checkpoint", args->checkpoint,
                  "llama2.c .bin (v0 fp32 or v2 ak42 int8), a HuggingFace directory (config.json + "
                  "model.safetensors or a sharded index), or a GGUF file (F32/F16/BF16)")
      ->required();
  cmd->add_option("-o,--output", args->output, "image file to write (atomically: a failed pack leaves no file)")
      ->required();
  AddSchemeOptions(cmd, args->scheme);
  cmd->add_option("--tokenizer", args->tokenizer,
                  "llama2.c tokenizer.bin to embed (needed unless the checkpoint carries one, as GGUF does)")
      ->check(CLI::ExistingFile);
  cmd->add_flag("--json", args->json, "print the image summary as JSON (the `qmc inspect --json` keys)");
  cmd->add_flag("-q,--quiet", args->quiet, "no progress or timing on stderr");
  cmd->footer("Examples: qmc pack ../shared/models/kjv6M.bin --tokenizer ../shared/models/kjv_tok2048.bin \\\n"
              "            -o kjv.qmc --preset paper-3mlc\n"
              "          qmc pack ../shared/models/stories260K.bin --tokenizer ../shared/models/tok512.bin \\\n"
              "            -o stories.qmc --scheme qmc --bits 3 --outlier-ratio 0.005");
  cmd->callback([args] { RunPack(*args); });
}

}  // namespace qmc::cli
