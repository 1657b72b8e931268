// Small HuggingFace config.json texts of the four families, for tests that
// build models from synthetic weights (host/synthetic_checkpoint.h). Vocab
// 512 fits the shared tok512.bin; Hymba's layers 1 and 2 attend over a
// 16-position window and share one KV cache.
#pragma once

namespace qmc::testing {

inline constexpr const char* kSmallConfigs[][2] = {
    {"llama", R"({"model_type": "llama", "hidden_size": 64, "intermediate_size": 160, "num_hidden_layers": 2,
      "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 512, "max_position_embeddings": 128,
      "rms_norm_eps": 1e-5, "tie_word_embeddings": true})"},
    {"qwen2", R"({"model_type": "qwen2", "hidden_size": 64, "intermediate_size": 160, "num_hidden_layers": 2,
      "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 512, "max_position_embeddings": 128,
      "rms_norm_eps": 1e-6, "tie_word_embeddings": false})"},
    {"phi", R"({"model_type": "phi", "hidden_size": 64, "intermediate_size": 256, "num_hidden_layers": 2,
      "num_attention_heads": 4, "vocab_size": 512, "max_position_embeddings": 128, "layer_norm_eps": 1e-5,
      "hidden_act": "gelu_new", "partial_rotary_factor": 0.5, "tie_word_embeddings": false})"},
    {"hymba", R"({"model_type": "hymba", "hidden_size": 64, "intermediate_size": 160, "num_hidden_layers": 3,
      "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 512, "max_position_embeddings": 256,
      "orig_max_position_embeddings": 128, "rms_norm_eps": 1e-6, "hidden_act": "silu", "mlp_hidden_act": "silu",
      "mamba_expand": 2, "mamba_d_state": 8, "mamba_d_conv": 4, "mamba_dt_rank": 8, "v_head_dim": 32,
      "num_memory_tokens": 4, "sliding_window": 16, "global_attn_idx": [0], "kv_reuse_group": [[1, 2]],
      "tie_word_embeddings": true})"},
};

}  // namespace qmc::testing
