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
#include "host/pack_presets.h"
#include "hal/emu/code_errors.h"
#include "hal/emu/device_profile.h"

namespace qmc::cli {
namespace {

const std::map<std::string, image::Quantizer> kSchemes = {{"qmc", image::Quantizer::kQmc},
                                                         {"rtn", image::Quantizer::kRtn},
                                                         {"mxint4", image::Quantizer::kMxInt4},
                                                         {"fp16", image::Quantizer::kFp16},
                                                         {"f32", image::Quantizer::kF32}};

struct PackArgs {
  std::string checkpoint;
  std::string output;
  std::string preset;
  // Unset: the preset's value, or the default.
  std::optional<std::string> scheme;
  std::optional<uint32_t> bits;
  std::optional<std::string> group;
  std::optional<double> outlier_ratio;
  std::optional<std::string> outlier_bits;
  std::optional<std::string> balance;
  std::optional<uint32_t> cell_bits;
  std::optional<std::string> noise_aware;
  std::string device;
  std::string embedding = "quant";
  std::string tokenizer;
  bool json = false;
  bool quiet = false;
};

std::optional<uint32_t> ParseOutlierBits(const std::optional<std::string>& text) {
  if (!text) return std::nullopt;
  return *text == "fp16" ? 0u : static_cast<uint32_t>(std::stoul(*text));
}

// The options a command line means: the preset's (or the defaults), then
// every explicit flag. Throws CLI::ValidationError (usage, exit 2) for a
// flag that contradicts the preset, and InputError for a bad device profile.
host::QuantOptions ResolveOptions(const PackArgs& args) {
  const host::Preset* preset = args.preset.empty() ? nullptr : host::FindPreset(args.preset);
  host::QuantOptions o = preset != nullptr ? preset->options : host::QuantOptions{};
  bool noise_aware = preset != nullptr && preset->noise_aware;
  const std::optional<uint32_t> outlier_bits = ParseOutlierBits(args.outlier_bits);
  if (preset != nullptr) {
    const std::optional<std::string> clash = host::ContradictingFlag(*preset, {args.scheme, args.cell_bits, outlier_bits});
    if (clash) throw CLI::ValidationError("--preset " + args.preset + " contradicts " + *clash);
  }
  if (args.scheme) o.quantizer = kSchemes.at(*args.scheme);
  if (args.bits) o.bits = *args.bits;
  if (args.group) o.group_size = *args.group == "channel" ? host::kPerChannel : static_cast<uint32_t>(std::stoul(*args.group));
  if (args.outlier_ratio) o.outlier_ratio = *args.outlier_ratio;
  if (outlier_bits) o.outlier_bits = *outlier_bits;
  if (args.balance) o.balance = *args.balance == "row" ? host::OutlierBalance::kRow : host::OutlierBalance::kTensor;
  if (o.quantizer == image::Quantizer::kMxInt4) o.bits = 4;
  // MLC cells default to the code width when a cell can hold it.
  if (args.cell_bits) {
    o.cell_bits = *args.cell_bits;
  } else if (preset == nullptr) {
    o.cell_bits = o.bits <= 3 ? o.bits : 2;
  }
  o.embedding = args.embedding == "fp16" ? host::EmbeddingMode::kFp16 : host::EmbeddingMode::kQuantize;
  if (args.noise_aware) noise_aware = *args.noise_aware == "on";
  if (noise_aware) {
    if (o.quantizer != image::Quantizer::kQmc && o.quantizer != image::Quantizer::kRtn) {
      throw CLI::ValidationError("--noise-aware on applies to --scheme qmc and rtn, not " + args.scheme.value_or("?"));
    }
    try {
      const hal::emu::DeviceProfile profile =
          args.device.empty() ? hal::emu::DefaultDeviceProfile() : hal::emu::LoadDeviceProfile(args.device);
      o.inlier_noise = hal::emu::CodeErrors(profile.Mode(o.cell_bits), o.bits, o.cell_bits).mean_square_levels;
    } catch (const hal::emu::ProfileError& e) {
      throw host::InputError(e.what());
    }
  }
  return o;
}

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
  const host::QuantOptions options = ResolveOptions(args);

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
    const std::string scheme = args.preset.empty() ? summary["quantizer"].get<std::string>() : args.preset;
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
  std::string preset_help = "a named set of the options below (explicit flags override it, except those that "
                            "contradict it):";
  for (const host::Preset& p : host::Presets()) preset_help += std::string("\n  ") + p.name + ": " + p.summary;
  std::vector<std::string> preset_names;
  for (const host::Preset& p : host::Presets()) preset_names.emplace_back(p.name);
  cmd->add_option("--preset", args->preset, preset_help)->check(CLI::IsMember(preset_names));
  cmd->add_option("--scheme", args->scheme,
                  "qmc: top-rho outliers in MRAM + inliers in ReRAM; rtn: the same group quantizer without "
                  "outliers; mxint4: OCP MX INT4 (blocks of 32, E8M0 scale); fp16, f32: unquantized weights in DRAM "
                  "[default: qmc]")
      ->check(CLI::IsMember({"qmc", "rtn", "mxint4", "fp16", "f32"}));
  cmd->add_option("--bits", args->bits, "inlier code bits for qmc/rtn [default: 3]")->check(CLI::IsMember({2u, 3u, 4u}));
  cmd->add_option("--group", args->group,
                  "weights per scale/zero along a row (the last group may be partial), or 'channel': one per row. "
                  "With --outlier-bits N: inliers per scale, counted over a row's inliers [default: 64]")
      ->check(CLI::IsMember({"channel"}) | CLI::Range(1, 4096));
  cmd->add_option("--outlier-ratio", args->outlier_ratio,
                  "qmc: fraction rho of each matrix's weights (largest |w|) made outliers [default: 0.005]")
      ->check(CLI::Range(0.0, 0.9));
  cmd->add_option("--outlier-bits", args->outlier_bits,
                  "qmc: fp16 keeps outliers exact (a CSR in MRAM); 4..8 quantizes them per row with an MSE-searched "
                  "scale and stores their positions as a bitmap (the paper's split layout, docs/image-format.md) "
                  "[default: fp16]")
      ->check(CLI::IsMember({"fp16", "4", "5", "6", "7", "8"}));
  cmd->add_option("--outlier-balance", args->balance,
                  "tensor: top rho of the whole matrix; row: the same count spread evenly over rows [default: tensor]")
      ->check(CLI::IsMember({"tensor", "row"}));
  cmd->add_option("--cell-bits", args->cell_bits,
                  "bits per MLC ReRAM cell (default: the code bits if <= 3, else 2)")
      ->check(CLI::IsMember({1u, 2u, 3u}));
  cmd->add_option("--noise-aware", args->noise_aware,
                  "on: choose each inlier scale by the paper's noise-aware loss ||W - Q(W)||^2 + n*E[d^2]*step^2, "
                  "E[d^2] the expected squared code error of one stored code under the device profile's error rates "
                  "for the cell mode; off: plain MSE. The search grid is in docs/image-format.md "
                  "[default: on for the paper presets, else off]")
      ->check(CLI::IsMember({"on", "off"}));
  cmd->add_option("--device", args->device,
                  "device profile JSON (docs/device-model.md) whose ReRAM error rates --noise-aware uses "
                  "[default: the built-in hal/profiles/devices/default.json]")
      ->check(CLI::ExistingFile);
  cmd->add_option("--embedding", args->embedding,
                  "token embedding / classifier: quant (like the other matrices) or fp16 (kept in DRAM)")
      ->check(CLI::IsMember({"quant", "fp16"}))
      ->capture_default_str();
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
