// The tokens the firmware's console runs for a prompt, computed on the host
// engine: BOS and the prompt forced, then greedy choices, up to `steps`
// positions or a BOS. Tests that compare the firmware's counts with a
// prediction replay these.
#pragma once

#include <gtest/gtest.h>

#include "common/model_tensors.h"

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "common/engine.h"
#include "host/eval.h"

namespace qmc::testing {

inline std::vector<uint32_t> GreedyTokens(const image::ImageView& view, const std::string& prompt, uint32_t steps,
                                          KvFormat format = KvFormat::kF32) {
  std::vector<uint32_t> tokens = host::EncodeText(view, prompt);
  tokens.insert(tokens.begin(), 1);
  const size_t prompt_tokens = tokens.size();
  const image::ModelConfig& c = view.model();
  std::vector<uint8_t> arena(Engine::ArenaBytes(c, view.detail(), c.seq_len)),
      kv(Engine::KvBytes(c, view.detail(), c.seq_len, format));
  Engine engine;
  EXPECT_TRUE(engine.Init(view, arena, kv, format).ok());
  std::vector<uint32_t> run;
  for (uint32_t pos = 0; pos < steps; ++pos) {
    run.push_back(tokens[pos]);
    const float* logits = engine.Forward(tokens[pos], pos);
    const uint32_t next = pos + 1 < prompt_tokens
                              ? tokens[pos + 1]
                              : static_cast<uint32_t>(std::max_element(logits, logits + c.vocab_size) - logits);
    if (next == 1) break;
    if (pos + 1 >= prompt_tokens) tokens.push_back(next);
  }
  return run;
}

}  // namespace qmc::testing
