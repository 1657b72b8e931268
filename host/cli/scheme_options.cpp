#include "host/cli/scheme_options.h"

#include <cstdio>
#include <map>

#include "hal/emu/code_errors.h"
#include "hal/emu/device_profile.h"
#include "host/atomic_file.h"
#include "host/pack_presets.h"

namespace qmc::cli {
namespace {

const std::map<std::string, image::Quantizer> kSchemes = {{"qmc", image::Quantizer::kQmc},
                                                         {"rtn", image::Quantizer::kRtn},
                                                         {"gptq", image::Quantizer::kGptq},
                                                         {"awq", image::Quantizer::kAwq},
                                                         {"mxint4", image::Quantizer::kMxInt4},
                                                         {"fp16", image::Quantizer::kFp16},
                                                         {"f32", image::Quantizer::kF32}};

std::optional<uint32_t> ParseOutlierBits(const std::optional<std::string>& text) {
  if (!text) return std::nullopt;
  return *text == "fp16" ? 0u : static_cast<uint32_t>(std::stoul(*text));
}

}  // namespace

bool SchemeArgs::AnyGiven() const {
  return !preset.empty() || scheme || bits || group || outlier_ratio || outlier_bits || balance || cell_bits ||
         noise_aware || !device.empty() || embedding || gptq || act_order || damp;
}

void AddSchemeOptions(CLI::App* cmd, SchemeArgs& args) {
  std::string preset_help = "a named set of the options below (explicit flags override it, except those that "
                            "contradict it):";
  for (const host::Preset& p : host::Presets()) preset_help += std::string("\n  ") + p.name + ": " + p.summary;
  std::vector<std::string> preset_names;
  for (const host::Preset& p : host::Presets()) preset_names.emplace_back(p.name);
  cmd->add_option("--preset", args.preset, preset_help)->check(CLI::IsMember(preset_names));
  cmd->add_option("--scheme", args.scheme,
                  "qmc: top-rho outliers in MRAM + inliers in ReRAM; rtn: the same group quantizer without "
                  "outliers; gptq: rtn's layout with GPTQ's error-compensated rounding (Frantar et al. 2022); awq: "
                  "rtn's layout after AWQ's activation-aware channel scaling and clip search (Lin et al. 2023); "
                  "gptq and awq need --calib; mxint4: OCP MX INT4 (blocks of 32, E8M0 scale); fp16, f32: unquantized "
                  "weights in DRAM [default: qmc]")
      ->check(CLI::IsMember({"qmc", "rtn", "gptq", "awq", "mxint4", "fp16", "f32"}));
  cmd->add_option("--bits", args.bits, "inlier code bits for qmc/rtn/gptq/awq [default: 3]")->check(CLI::IsMember({2u, 3u, 4u}));
  cmd->add_option("--group", args.group,
                  "weights per scale/zero along a row (the last group may be partial), or 'channel': one per row. "
                  "With --outlier-bits N: inliers per scale, counted over a row's inliers [default: 64; gptq, awq: 128]")
      ->check(CLI::IsMember({"channel"}) | CLI::Range(1, 4096));
  cmd->add_option("--outlier-ratio", args.outlier_ratio,
                  "qmc: fraction rho of each matrix's weights (largest |w|) made outliers [default: 0.005]")
      ->check(CLI::Range(0.0, 0.9));
  cmd->add_option("--outlier-bits", args.outlier_bits,
                  "qmc: fp16 keeps outliers exact (a CSR in MRAM); 4..8 quantizes them per row with an MSE-searched "
                  "scale and stores their positions as a bitmap (the paper's split layout, docs/image-format.md) "
                  "[default: fp16]")
      ->check(CLI::IsMember({"fp16", "4", "5", "6", "7", "8"}));
  cmd->add_option("--outlier-balance", args.balance,
                  "tensor: top rho of the whole matrix; row: the same count spread evenly over rows [default: tensor]")
      ->check(CLI::IsMember({"tensor", "row"}));
  cmd->add_option("--cell-bits", args.cell_bits, "bits per MLC ReRAM cell (default: the code bits if <= 3, else 2)")
      ->check(CLI::IsMember({1u, 2u, 3u}));
  cmd->add_option("--noise-aware", args.noise_aware,
                  "on: choose each inlier scale by the paper's noise-aware loss ||W - Q(W)||^2 + n*E[d^2]*step^2, "
                  "E[d^2] the expected squared code error of one stored code under the device profile's error rates "
                  "for the cell mode; off: plain MSE. The search grid is in docs/image-format.md "
                  "[default: on for the paper presets, else off]")
      ->check(CLI::IsMember({"on", "off"}));
  cmd->add_option("--device", args.device,
                  "device profile JSON (docs/device-model.md) whose ReRAM error rates --noise-aware uses "
                  "[default: the built-in hal/profiles/devices/default.json]");
  cmd->add_option("--embedding", args.embedding,
                  "token embedding / classifier: quant (like the other matrices) or fp16 (kept in DRAM) [default: quant]")
      ->check(CLI::IsMember({"quant", "fp16"}));
  cmd->add_flag("--gptq", args.gptq,
                "qmc: split the outliers off as usual, then round the inliers (and the 5-bit outliers of the paper "
                "presets) with GPTQ's error feedback, so each row's rounding error is compensated inside it; needs "
                "--calib. Not recorded in the image");
  cmd->add_flag("--act-order", args.act_order,
                "gptq, qmc --gptq: round columns in descending order of their input's energy (diag of X^T X); the "
                "groups stay the natural-order ones, fitted up front");
  cmd->add_option("--damp", args.damp,
                  "gptq, qmc --gptq: dampening added to the Hessian X^T X, as a fraction of its mean diagonal "
                  "[default: 0.01]")
      ->check(CLI::Range(0.0, 1.0));
}

host::QuantOptions ResolveOptions(const SchemeArgs& args) {
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
  const bool calibrated_scheme = o.quantizer == image::Quantizer::kGptq || o.quantizer == image::Quantizer::kAwq;
  if (calibrated_scheme && !args.group) o.group_size = 128;
  if (args.gptq) {
    if (o.quantizer != image::Quantizer::kQmc) throw CLI::ValidationError("--gptq applies to --scheme qmc (use --scheme gptq)");
    o.gptq.enabled = true;
  }
  const bool gptq = o.quantizer == image::Quantizer::kGptq || o.gptq.enabled;
  if ((args.act_order || args.damp) && !gptq) throw CLI::ValidationError("--act-order and --damp apply to gptq and qmc --gptq");
  o.gptq.act_order = args.act_order;
  if (args.damp) o.gptq.damp = *args.damp;
  // MLC cells default to the code width when a cell can hold it.
  if (args.cell_bits) {
    o.cell_bits = *args.cell_bits;
  } else if (preset == nullptr) {
    o.cell_bits = o.bits <= 3 ? o.bits : 2;
  }
  o.embedding = args.embedding.value_or("quant") == "fp16" ? host::EmbeddingMode::kFp16 : host::EmbeddingMode::kQuantize;
  if (args.noise_aware) noise_aware = *args.noise_aware == "on";
  if (noise_aware) {
    if (o.quantizer != image::Quantizer::kQmc && o.quantizer != image::Quantizer::kRtn) {
      throw CLI::ValidationError("--noise-aware on applies to --scheme qmc and rtn, not " + args.scheme.value_or("?"));
    }
    try {
      hal::emu::DeviceProfile profile = hal::emu::DefaultDeviceProfile();
      if (!args.device.empty()) {
        // Read here, so a missing file is an I/O error like any other input file's.
        const std::vector<uint8_t> text = host::ReadWholeFile(args.device);
        profile = hal::emu::ParseDeviceProfile({reinterpret_cast<const char*>(text.data()), text.size()}, args.device);
      }
      o.inlier_noise = hal::emu::CodeErrors(profile.Mode(o.cell_bits), o.bits, o.cell_bits).mean_square_levels;
    } catch (const hal::emu::ProfileError& e) {
      throw host::InputError(e.what());
    }
  }
  return o;
}

std::string DescribeScheme(const host::QuantOptions& o) {
  if (!o.preset.empty()) return o.gptq.enabled ? o.preset + "+gptq" : o.preset;
  char text[96];
  const std::string group = o.group_size == host::kPerChannel ? "ch" : std::to_string(o.group_size);
  switch (o.quantizer) {
    case image::Quantizer::kF32: return "f32";
    case image::Quantizer::kFp16: return "fp16";
    case image::Quantizer::kMxInt4:
      std::snprintf(text, sizeof text, "mxint4 c%u", o.cell_bits);
      return text;
    case image::Quantizer::kRtn:
    case image::Quantizer::kGptq:
    case image::Quantizer::kAwq:
      std::snprintf(text, sizeof text, "%s b%u g%s c%u", o.quantizer == image::Quantizer::kRtn ? "rtn"
                                                        : o.quantizer == image::Quantizer::kGptq ? "gptq" : "awq",
                    o.bits, group.c_str(), o.cell_bits);
      return text;
    case image::Quantizer::kQmc:
      std::snprintf(text, sizeof text, "qmc%s b%u g%s rho%g o%u c%u", o.gptq.enabled ? "+gptq" : "", o.bits,
                    group.c_str(), o.outlier_ratio, o.outlier_bits == 0 ? 16u : o.outlier_bits, o.cell_bits);
      return text;
  }
  return "?";
}

}  // namespace qmc::cli
