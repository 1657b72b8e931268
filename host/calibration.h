// What calibration-based quantizers (GPTQ, AWQ, QMC + GPTQ) learn from text:
// for every weight matrix, statistics of the inputs the matrix multiplies,
// gathered by running the unquantized model over calibration text
// (CollectCalibration, host/calibration.cpp).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string_view>
#include <vector>

#include "host/checkpoint.h"

namespace qmc::host {

// The inputs x_t (t = one calibration token) of a matrix with `width` columns.
struct InputStats {
  uint32_t width = 0;
  uint64_t tokens = 0;
  std::vector<double> xtx;       // width x width, row-major: sum over t of x_t x_t^T (symmetric, both halves)
  std::vector<double> mean_abs;  // width: mean over t of |x_t[i]|
};

// Per tensor of RequiredTensors(config, detail), in image order: the stats of
// its input, shared by matrices that read the same activation (q, k and v
// read the same normed x); null for tensors no matrix product reads (norms,
// biases, an embedding that is only looked up).
struct Calibration {
  std::vector<std::shared_ptr<const InputStats>> inputs;
};

struct CalibrationOptions {
  // Tokens to calibrate on: the first this many of the text; 0 = 128
  // windows' worth, or what the text holds.
  size_t tokens = 0;
  uint32_t context = 0;  // positions per window, the start token included; 0 = min(seq_len, 2048)
  unsigned threads = 0;  // 0: one per hardware thread
  // Called after each window with the tokens run so far (one call at a time).
  std::function<void(size_t done, size_t total)> progress;
};

inline constexpr size_t kDefaultCalibrationWindows = 128;

// Runs the checkpoint, unquantized (an f32 image in memory), over `text`
// encoded by its tokenizer, cut into windows as `qmc eval` cuts a text
// (host/eval.h): consecutive windows of context - 1 tokens after the start
// token. Every matrix product's inputs are gathered (Engine::Observe). The
// sums are added window by window in text order, so the result does not
// depend on the thread count. Throws InputError when the text holds less
// than one window, or is not in the tokenizer's alphabet (nearly all of it
// unknown bytes).
Calibration CollectCalibration(const Checkpoint& checkpoint, std::string_view text,
                               const CalibrationOptions& options = {});

}  // namespace qmc::host
