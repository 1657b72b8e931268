// The scheme flags `qmc pack` takes (--preset, --scheme, --bits, --group,
// --outlier-ratio, --outlier-bits, --outlier-balance, --cell-bits,
// --noise-aware, --device, --embedding, --gptq, --act-order, --damp), registered on a command and
// resolved into QuantOptions: one definition for every command that
// describes a packing (`qmc pack`, `qmc memsim`).
#pragma once

#include <CLI/CLI.hpp>
#include <optional>
#include <string>

#include "host/quantize.h"

namespace qmc::cli {

struct SchemeArgs {
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
  std::optional<std::string> embedding;
  bool gptq = false;
  bool act_order = false;
  std::optional<double> damp;

  // Whether any scheme flag was given on the command line.
  bool AnyGiven() const;
};

// Adds the scheme flags to `cmd`, storing into `args` (which must outlive it).
void AddSchemeOptions(CLI::App* cmd, SchemeArgs& args);

// The options a command line means: the preset's (or the defaults), then
// every explicit flag. Throws CLI::ValidationError (usage, exit 2) for a
// flag that contradicts the preset, and host::InputError for a bad device profile.
host::QuantOptions ResolveOptions(const SchemeArgs& args);

// The name a report shows for the options: the preset, or the scheme with
// its distinguishing parameters ("rtn b4 g64 c2", "qmc b3 rho0.005 o16 c3").
std::string DescribeScheme(const host::QuantOptions& options);

}  // namespace qmc::cli
