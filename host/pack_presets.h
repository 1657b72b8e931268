// Named sets of `qmc pack` options: the QMC paper's two cell modes and our
// exact-outlier mode. A preset fills every option; explicit flags then
// override what they name, unless they contradict what defines the preset
// (ContradictingFlag).
#pragma once

#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "host/quantize.h"

namespace qmc::host {

struct Preset {
  const char* name;
  const char* summary;
  QuantOptions options;  // options.preset == name
  bool noise_aware;      // the inlier scale uses the device profile's error rates
};

std::span<const Preset> Presets();
const Preset* FindPreset(std::string_view name);

// What the user passed explicitly; unset means "the preset's, or the default".
struct ExplicitFlags {
  std::optional<std::string> scheme;
  std::optional<uint32_t> cell_bits;
  std::optional<uint32_t> outlier_bits;  // 0 = fp16
};

// The flag that contradicts `preset` ("--scheme rtn"), or nothing.
std::optional<std::string> ContradictingFlag(const Preset& preset, const ExplicitFlags& flags);

}  // namespace qmc::host
