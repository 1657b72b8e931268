// HuggingFace (and llama.cpp's NEOX-style Qwen2) checkpoints order the q/k
// projection rows of each head "rotate-half": RoPE pairs row j with row
// j + r/2 of the rotated block, the first r rows of the head (r = head_dim,
// or fewer with Phi's partial rotary). The engine, like llama2.c, pairs rows
// 2j and 2j + 1. Reordering the rows once at load time lets one RoPE kernel
// serve every checkpoint.
#pragma once

#include <cstdint>
#include <vector>

#include "host/checkpoint.h"

namespace qmc::host {

// Reorders `data`, a q or k weight matrix (or bias vector) of n_heads *
// head_dim rows stored contiguously, so that interleaved row h*D + 2j + i
// holds rotate-half row h*D + i*(r/2) + j (i in {0, 1}, j < r/2, r =
// rope_dims); rows h*D + r .. h*D + D - 1 do not rotate and stay put.
void RotateHalfToInterleaved(std::vector<float>& data, uint32_t n_heads, uint32_t head_dim, uint32_t rope_dims);

// Applies RotateHalfToInterleaved, with the checkpoint's detail.rope_dims, to
// every layer's attn_q / attn_k weight and, when present, bias in
// `checkpoint`, whose config and shapes are checked.
void RotateHalfToInterleaved(Checkpoint& checkpoint);

// Hymba's q and k are row ranges of each layer's ssm_in.weight (in_proj):
// q the first n_heads * head_dim rows, k the next n_kv_heads * head_dim in a
// layer that owns its KV cache. Applies RotateHalfToInterleaved to those.
void HymbaInProjToInterleaved(Checkpoint& checkpoint);

}  // namespace qmc::host
