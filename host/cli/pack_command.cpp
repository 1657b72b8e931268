#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/image_reader.h"
#include "host/atomic_file.h"
#include "host/awq.h"
#include "host/calibration.h"
#include "host/checkpoint.h"
#include "host/cli/commands.h"
#include "host/image_summary.h"
#include "host/pack.h"
#include "host/synthetic_checkpoint.h"
#include "host/cli/scheme_options.h"

namespace qmc::cli {
namespace {

struct PackArgs {
  std::string checkpoint;
  std::string synthetic;  // a config.json whose model gets seeded random weights
  uint64_t seed = 1;
  uint32_t synthetic_layers = 0;  // 0: the config's
  std::string output;
  SchemeArgs scheme;
  std::string tokenizer;
  std::string calib;        // calibration text
  size_t calib_tokens = 0;  // 0: 128 windows, or what the text holds
  bool json = false;
  bool quiet = false;
  std::string depfile;  // Make/Ninja depfile naming every file read
};

uint64_t CheckpointBytes(const std::filesystem::path& path) {
  if (!std::filesystem::is_directory(path)) return std::filesystem::file_size(path);
  uint64_t total = 0;
  for (const auto& entry : std::filesystem::directory_iterator(path)) {
    if (entry.is_regular_file()) total += entry.file_size();
  }
  return total;
}

// What `qmc pack` reads: a checkpoint, or a config with synthetic weights.
struct Input {
  host::ModelSource source;
  std::string format;
  double megabytes = 0;  // read (a checkpoint's files) or generated (synthetic f32 weights)
};

// Runs the checkpoint over the calibration text and, for awq, folds its
// channel scales into the checkpoint.
std::shared_ptr<const host::Calibration> Calibrate(const PackArgs& args, const host::QuantOptions& options,
                                                   host::Checkpoint& checkpoint) {
  const std::vector<uint8_t> text = host::ReadWholeFile(args.calib);
  host::CalibrationOptions calibration_options;
  calibration_options.tokens = args.calib_tokens;
  if (!args.quiet && isatty(STDERR_FILENO) != 0) {
    calibration_options.progress = [](size_t done, size_t total) {
      std::fprintf(stderr, "\rqmc pack: calibrating %zu/%zu tokens", done, total);
      if (done == total) std::fputc('\n', stderr);
    };
  }
  auto calibration = std::make_shared<host::Calibration>(host::CollectCalibration(
      checkpoint, std::string_view(reinterpret_cast<const char*>(text.data()), text.size()), calibration_options));
  if (options.quantizer == image::Quantizer::kAwq) host::ApplyAwq(checkpoint, *calibration, options);
  return calibration;
}

Input LoadInput(const PackArgs& args, const host::QuantOptions& options) {
  if (!args.synthetic.empty()) {
    const host::ModelSpec model = host::SyntheticModel(args.synthetic, args.synthetic_layers);
    const std::filesystem::path config = args.synthetic;
    const std::filesystem::path directory = std::filesystem::is_directory(config)     ? config
                                            : config.has_parent_path() ? config.parent_path()
                                                                       : std::filesystem::path(".");
    std::vector<uint8_t> tokenizer =
        host::CheckpointTokenizer(directory, args.tokenizer, model.config.vocab_size, {});
    double weights = 0;
    for (const host::TensorSpec& spec : host::RequiredTensors(model.config, model.detail)) {
      weights += static_cast<double>(spec.rows) * spec.cols;
    }
    return {host::SyntheticSource(model, args.seed, std::move(tokenizer)), "synthetic", weights * 4 / 1e6};
  }
  host::Checkpoint checkpoint = host::LoadCheckpoint(args.checkpoint);
  checkpoint.tokenizer = host::CheckpointTokenizer(args.checkpoint, args.tokenizer, checkpoint.config.vocab_size,
                                                   std::move(checkpoint.tokenizer));
  std::string format = checkpoint.format;
  std::shared_ptr<const host::Calibration> calibration;
  if (host::NeedsCalibration(options)) calibration = Calibrate(args, options, checkpoint);
  host::ModelSource source = host::SourceOf(std::move(checkpoint));
  source.calibration = std::move(calibration);
  return {std::move(source), std::move(format), static_cast<double>(CheckpointBytes(args.checkpoint)) / 1e6};
}

// The files pack reads for `args`, absolute, each once: what the readers
// open, restated here for the depfile. A HuggingFace directory gives its
// config.json and weights (model.safetensors, or the index and the shards
// it names); the tokenizer is --tokenizer or the directory's tokenizer.json,
// and a tokenizer.json brings the tokenizer_config.json beside it. The
// built-in profiles are part of qmc itself, which a build depends on anyway.
std::vector<std::filesystem::path> InputFiles(const PackArgs& args) {
  namespace fs = std::filesystem;
  std::vector<fs::path> files;
  const auto add = [&](const fs::path& path) {
    std::error_code ec;
    if (!fs::is_regular_file(path, ec)) return;
    const fs::path absolute = fs::absolute(path).lexically_normal();
    if (std::find(files.begin(), files.end(), absolute) == files.end()) files.push_back(absolute);
  };
  const auto add_tokenizer = [&](const fs::path& path) {
    add(path);
    if (path.extension() == ".json") add(path.parent_path() / "tokenizer_config.json");
  };
  fs::path directory;  // where the tokenizer defaults from
  if (!args.synthetic.empty()) {
    const fs::path config = args.synthetic;
    const bool is_directory = fs::is_directory(config);
    directory = is_directory ? config : config.has_parent_path() ? config.parent_path() : fs::path(".");
    add(is_directory ? config / "config.json" : config);
    add(directory / "config.json");  // its special tokens, for a BPE tokenizer
  } else if (fs::is_directory(args.checkpoint)) {
    directory = args.checkpoint;
    add(directory / "config.json");
    if (fs::exists(directory / "model.safetensors")) {
      add(directory / "model.safetensors");
    } else {
      const fs::path index = directory / "model.safetensors.index.json";
      add(index);
      const std::vector<uint8_t> text = host::ReadWholeFile(index);
      const nlohmann::json listing = nlohmann::json::parse(text.begin(), text.end());
      for (const auto& [tensor, shard] : listing.at("weight_map").items()) {
        add(directory / shard.get<std::string>());
      }
    }
  } else {
    add(args.checkpoint);
  }
  if (!args.tokenizer.empty()) {
    add_tokenizer(args.tokenizer);
  } else if (!directory.empty()) {
    add_tokenizer(directory / "tokenizer.json");
  }
  if (!args.calib.empty()) add(args.calib);
  if (!args.scheme.device.empty()) add(args.scheme.device);
  return files;
}

// A path as Make and Ninja read it in a depfile.
std::string DepfileWord(const std::string& path) {
  if (path.find('\n') != std::string::npos) throw host::InputError("--depfile: a path holds a newline: " + path);
  std::string word;
  for (const char c : path) {
    if (c == ' ' || c == '#') word += '\\';
    if (c == '$') word += '$';
    word += c;
  }
  return word;
}

// "image: input input ...", one input per continued line.
void WriteDepfile(const PackArgs& args) {
  std::string text = DepfileWord(std::filesystem::absolute(args.output).lexically_normal().string()) + ":";
  for (const std::filesystem::path& file : InputFiles(args)) text += " \\\n  " + DepfileWord(file.string());
  text += "\n";
  host::WriteFileAtomically(args.depfile, std::vector<uint8_t>(text.begin(), text.end()));
}

void RunPack(PackArgs& args) {
  const auto start = std::chrono::steady_clock::now();
  if (args.checkpoint.empty() == args.synthetic.empty()) {
    throw CLI::ValidationError("pass a checkpoint or --synthetic CONFIG, not both or neither");
  }
  const host::QuantOptions options = ResolveOptions(args.scheme);
  if (host::NeedsCalibration(options) == args.calib.empty()) {
    throw CLI::ValidationError(args.calib.empty()
                                   ? "--scheme " + DescribeScheme(options) + " needs calibration text: --calib FILE"
                                   : std::string("--calib applies to --scheme gptq, awq and qmc --gptq"));
  }
  if (!args.calib.empty() && !args.synthetic.empty()) throw CLI::ValidationError("--calib needs a checkpoint, not --synthetic");
  const Input input = LoadInput(args, options);
  const std::string& model = args.synthetic.empty() ? args.checkpoint : args.synthetic;
  const bool tty = isatty(STDERR_FILENO) != 0;
  const host::PackProgress progress = [&](size_t index, size_t count, const host::TensorSpec& spec) {
    if (args.quiet || !tty) return;
    std::fprintf(stderr, "\rqmc pack: [%3zu/%3zu] %-32s", index + 1, count, spec.name.c_str());
    if (index + 1 == count) std::fputc('\n', stderr);
  };
  const std::vector<uint8_t> image = host::PackImage(input.source, options, progress);

  // The packer's output must pass the same reader the device uses.
  const Result<image::ImageView> view = image::ImageView::OpenFile(image);
  if (!view.ok() || !view.value().Validate().ok()) {
    throw std::runtime_error("packed image failed validation: " +
                             host::DescribeStatus(view.ok() ? view.value().Validate() : view.status()));
  }
  host::WriteFileAtomically(args.output, image);
  if (!args.depfile.empty()) WriteDepfile(args);

  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  nlohmann::json summary = host::SummarizeImage(view.value());
  if (args.json) {
    summary["checkpoint"] = model;
    summary["checkpoint_format"] = input.format;
    summary["output"] = args.output;
    summary["seconds"] = seconds;
    std::printf("%s\n", summary.dump(2).c_str());
  } else {
    const auto& w = summary["bytes_by_window"];
    const std::string scheme =
        args.scheme.preset.empty() ? summary["quantizer"].get<std::string>() : args.scheme.preset;
    std::printf(
        "%s: %s image of %s (%s), %u bytes: mram %llu, reram %llu, dram %llu; %.4f bits/weight all-in, "
        "%.4f value bits, outlier fraction %.5f\n",
        args.output.c_str(), scheme.c_str(), model.c_str(), input.format.c_str(), view.value().header().image_size,
        w["mram"].get<unsigned long long>(), w["reram"].get<unsigned long long>(), w["dram"].get<unsigned long long>(),
        summary["bits_per_weight"].get<double>(), summary["value_bits_per_weight"].get<double>(),
        summary["outlier_fraction"].get<double>());
  }
  if (!args.quiet) {
    std::fprintf(stderr, "qmc pack: %.1f MB %s in %.2f s (%.1f MB/s)\n", input.megabytes,
                 args.synthetic.empty() ? "checkpoint" : "of synthetic f32 weights", seconds,
                 input.megabytes / seconds);
  }
}

}  // namespace

void AddPackCommand(CLI::App& app) {
  auto args = std::make_shared<PackArgs>();
  CLI::App* cmd = app.add_subcommand(
      "pack", "Quantize a checkpoint (or a config's synthetic weights) and write a QMC image (deterministic: same "
              "input and flags, same bytes).");
  CLI::Option* checkpoint =
      cmd->add_option("checkpoint", args->checkpoint,
                      "llama2.c .bin (v0 fp32 or v2 ak42 int8), a HuggingFace directory (config.json + "
                      "model.safetensors or a sharded index), or a GGUF file (F32/F16/BF16)");
  CLI::Option* synthetic =
      cmd->add_option("--synthetic", args->synthetic,
                      "instead of a checkpoint: a HuggingFace config.json (llama, qwen2, phi, hymba), or its "
                      "directory, whose model gets seeded random weights (docs/synthetic-weights.md: heavy-tailed, "
                      "with outlier input channels); the tokenizer is --tokenizer or the tokenizer.json beside it")
          ->type_name("CONFIG")
          ->excludes(checkpoint);
  cmd->add_option("--seed", args->seed, "--synthetic: the weights' seed (same seed, same weights and image bytes)")
      ->default_val(1)
      ->needs(synthetic);
  cmd->add_option("--synthetic-layers", args->synthetic_layers,
                  "--synthetic: keep only the first N layers, every other dimension as the config gives it (a "
                  "full-width sample of a large model; the layers kept are those of the full model)")
      ->check(CLI::PositiveNumber)
      ->type_name("N")
      ->needs(synthetic);
  cmd->add_option("-o,--output", args->output, "image file to write (atomically: a failed pack leaves no file)")
      ->required();
  AddSchemeOptions(cmd, args->scheme);
  cmd->add_option("--tokenizer", args->tokenizer,
                  "tokenizer to embed: llama2.c tokenizer.bin or HuggingFace tokenizer.json (default: the "
                  "HuggingFace directory's tokenizer.json, or the one a GGUF carries)");
  cmd->add_option("--calib", args->calib,
                  "calibration text (UTF-8) for gptq, awq and qmc --gptq: the unquantized model runs over it, cut "
                  "into windows of its context as qmc eval cuts a text, and every matrix's input statistics (X^T X, "
                  "mean |x|) are gathered. Never calibrate on the text you evaluate on")
      ->type_name("FILE");
  cmd->add_option("--calib-tokens", args->calib_tokens,
                  "calibrate on the text's first N tokens, whole windows only [default: 128 windows, or what the "
                  "text holds]")
      ->check(CLI::PositiveNumber)
      ->type_name("N");
  cmd->add_option("--depfile", args->depfile,
                  "also write a Make/Ninja depfile: the image depends on every file pack read (checkpoint files, "
                  "tokenizer, calibration text, device profile), as absolute paths; CMake's qmc_add_image uses it")
      ->type_name("FILE");
  cmd->add_flag("--json", args->json, "print the image summary as JSON (the `qmc inspect --json` keys)");
  cmd->add_flag("-q,--quiet", args->quiet, "no progress or timing on stderr");
  cmd->footer("Examples: qmc pack ../shared/models/kjv6M.bin --tokenizer ../shared/models/kjv_tok2048.bin \\\n"
              "            -o kjv.qmc --preset paper-3mlc\n"
              "          qmc pack ../shared/models/stories260K.bin --tokenizer ../shared/models/tok512.bin \\\n"
              "            -o stories.qmc --scheme qmc --bits 3 --outlier-ratio 0.005\n"
              "          qmc pack ../shared/models/kjv6M.bin --tokenizer ../shared/models/kjv_tok2048.bin \\\n"
              "            -o kjv-gptq.qmc --scheme gptq --bits 4 --calib train.txt\n"
              "          qmc pack --synthetic ../shared/models/paper/qwen2.5-1.5b-instruct/config.json --seed 7 \\\n"
              "            -o qwen-synthetic.qmc --preset paper-3mlc");
  cmd->callback([args] { RunPack(*args); });
}

}  // namespace qmc::cli
