// HuggingFace (and llama.cpp's NEOX-style Qwen2) checkpoints order the q/k
// projection rows of each head "rotate-half": RoPE pairs row j with row
// j + D/2. The engine, like llama2.c, pairs rows 2j and 2j + 1. Reordering the
// rows once at load time lets one RoPE kernel serve every checkpoint.
#pragma once

#include <cstdint>
#include <vector>

#include "host/checkpoint.h"

namespace qmc::host {

// Reorders `data`, a q or k weight matrix (or bias vector) of n_heads *
// head_dim rows stored contiguously, so that interleaved row h*D + 2j + i
// holds rotate-half row h*D + i*(D/2) + j (i in {0, 1}, j < D/2).
void RotateHalfToInterleaved(std::vector<float>& data, uint32_t n_heads, uint32_t head_dim);

// Applies RotateHalfToInterleaved to every layer's attn_q / attn_k weight and,
// when present, bias in `checkpoint`, whose config and shapes are checked.
void RotateHalfToInterleaved(Checkpoint& checkpoint);

}  // namespace qmc::host
