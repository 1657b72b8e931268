// The console's line syntax: a prompt, optionally after option words.
//
//     [steps=N] [ctx=N] [temp=T] [topp=P] [seed=S] [kv=f32|fp16|int8]
//     [kernel=reference|scalar|avx2|helium] PROMPT
//
// Options apply to their line only; any order; a word whose key is not one
// of these starts the prompt, which is the rest of the line verbatim (an
// empty prompt generates from BOS alone). Defaults are those of `qmc run`
// except the temperature: steps=256 (0 or more than the context means the
// context), ctx= the context the firmware serves (it reserved KV room for it at
// boot; a line may ask for less, not more), temp=0 (greedy), topp=0.9, seed from the cycle counter
// (printed in the stats line), kv=f32, kernel= the build's default matvec
// kernel (common/matvec.h; one the build lacks is refused when the line runs).
// Example: `steps=64 temp=0.8 seed=7 Once upon a time`.
#pragma once

#include <cstdint>
#include <string_view>

#include "common/engine.h"
#include "common/matvec.h"

namespace qmc::firmware {

struct GenerateOptions {
  uint32_t steps = 256;
  uint32_t context = 0;  // 0: the context the firmware serves
  float temperature = 0.0f;
  float topp = 0.9f;
  uint64_t seed = 0;  // 0: not given
  KvFormat kv = KvFormat::kF32;
  MatVecKernel kernel = DefaultMatVecKernel();
};

struct ConsoleLine {
  GenerateOptions options;
  std::string_view prompt;
  const char* error = nullptr;  // set when an option word's value is invalid
};

ConsoleLine ParseConsoleLine(std::string_view line);

}  // namespace qmc::firmware
