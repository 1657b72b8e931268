#include "host/pack_presets.h"

namespace qmc::host {
namespace {

QuantOptions Paper(const char* name, uint32_t cell_bits) {
  QuantOptions o;
  o.quantizer = image::Quantizer::kQmc;
  o.outlier_ratio = 0.3;
  o.outlier_bits = 5;
  o.bits = 3;
  o.group_size = kPerChannel;
  o.cell_bits = cell_bits;
  o.preset = name;
  return o;
}

QuantOptions ExactOutliers() {
  QuantOptions o;  // the defaults are this mode's
  o.preset = "exact-outliers";
  return o;
}

const Preset kPresets[] = {
    {"paper-3mlc",
     "the QMC paper: rho 0.3 outliers as 5-bit codes per channel in MRAM, 3-bit noise-aware per-channel inliers, "
     "one per 3-bit MLC ReRAM cell",
     Paper("paper-3mlc", 3), true},
    {"paper-2mlc", "the same codes packed across 2-bit MLC ReRAM cells (fewer read errors)", Paper("paper-2mlc", 2),
     true},
    {"exact-outliers",
     "rho 0.005 outliers exact as fp16 (CSR) in MRAM, 3-bit inliers in groups of 64, 3-bit cells: stronger at small rho",
     ExactOutliers(), false},
};

}  // namespace

std::span<const Preset> Presets() { return kPresets; }

const Preset* FindPreset(std::string_view name) {
  for (const Preset& p : kPresets) {
    if (name == p.name) return &p;
  }
  return nullptr;
}

std::optional<std::string> ContradictingFlag(const Preset& preset, const ExplicitFlags& flags) {
  if (flags.scheme && *flags.scheme != "qmc") return "--scheme " + *flags.scheme;
  const bool split = preset.options.outlier_bits != 0;
  if (flags.outlier_bits && (*flags.outlier_bits != 0) != split) {
    return "--outlier-bits " + (*flags.outlier_bits == 0 ? std::string("fp16") : std::to_string(*flags.outlier_bits));
  }
  // A paper preset is defined by its cell mode.
  if (split && flags.cell_bits && *flags.cell_bits != preset.options.cell_bits) {
    return "--cell-bits " + std::to_string(*flags.cell_bits);
  }
  return std::nullopt;
}

}  // namespace qmc::host
