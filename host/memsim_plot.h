// `qmc memsim --plot DIR`: gnuplot plots of a model's memory system, as
// PNG and SVG, with the data (.dat) and scripts (.gp) beside them:
//   schemes-paper, schemes-allin  energy, latency and capacity per scheme,
//                                 normalized to FP16 on the baseline (the paper's Fig. 4);
//   rho-sweep                     energy and latency across rho 0.1..0.5 (Fig. 3 right);
//   traffic                       bytes per token by window, KV cache apart.
#pragma once

#include <string>
#include <vector>

#include "host/board_profile.h"
#include "host/memsim.h"
#include "host/model_shapes.h"

namespace qmc::host {

struct PlotInputs {
  const ModelShape* shape = nullptr;
  const BoardProfile* board = nullptr;     // QMC's
  const BoardProfile* baseline = nullptr;  // FP16, INT4, MXINT4
  const BoardProfile* emems = nullptr;     // eMEMs-like INT4
  Workload workload;
};

// Writes the plots into `dir` (created) and returns the image files
// written. Throws IoError when gnuplot cannot be run (the .dat and .gp files stay).
std::vector<std::string> WritePlots(const std::string& dir, const PlotInputs& inputs);

}  // namespace qmc::host
