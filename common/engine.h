// The forward pass of every supported family, reading every weight in place
// from an image: Llama and Qwen2 (llama2.c run.c's forward(), with
// grouped-query attention, RoPE theta and scaling, Qwen2's q/k/v biases),
// Phi and Hymba. Forward() dispatches once on the family; each family's pass
// is one plain function in its own file (common/forward_*.cpp) built from
// the shared steps declared here.
//
// Memory is the caller's: activations and scratch come from an arena span of
// ArenaBytes(config, detail, context, batch), the KV cache and any recurrent
// state from a span of KvBytes(config, detail, context, format, batch) (the
// DRAM window on the device). Both follow from the image's header and model
// detail, and from the context the caller serves, not the model's maximum.
//
// An engine runs up to `batch` consecutive tokens per Forward call (a window
// at once, for evaluation and calibration): every matrix multiplies all of
// them while its weights are read once (MatMul), and what is sequential in
// the tokens (the KV cache, attention, the SSM scan) runs token by token
// inside. A device runs batch 1.
//
// Positions are the caller's: 0 is a sequence's first token, and context()
// and the `positions` of KvBytes and ArenaBytes count the caller's
// positions, at most seq_len. A model with meta tokens (Hymba) runs them
// before position 0: Forward(token, 0) first runs the meta tokens at cache
// (and RoPE) positions 0..meta_tokens-1 from a zeroed recurrent state,
// dropping their outputs, then the token at cache position meta_tokens; the
// caller's position p is cache position p + meta_tokens throughout. The meta
// prefix is the same for every sequence; it is recomputed at every position
// 0 (meta_tokens forward passes) rather than kept, as no memory is set aside
// for a copy. seq_len, for such a model, counts the caller's positions (the
// checkpoint's maximum less the meta tokens), and KvBytes and ArenaBytes add
// the meta tokens themselves, so a caller sizes and runs a context the same
// way for every family.
//
// The engine counts what it reads in place (traffic()): every weight blob a
// matvec, the embedding lookup, a norm or a bias reads, in the window the
// image puts it (common/tensor_traffic.h), and every KV cache row it loads
// or stores, in DRAM (where the cache lives on the device; a host caller's
// span counts as DRAM too). Activations and scratch in the arena (SRAM) are
// not counted.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "common/arena.h"
#include "common/image_reader.h"
#include "common/model_tensors.h"
#include "common/read_counter.h"
#include "common/status.h"

namespace qmc {

// How the KV cache stores each cached vector (one KV head at one position):
// f32; IEEE fp16 (round to nearest even); or int8, symmetric, with one f32
// scale per vector (max |x| / 127, codes in -127..127). Every position,
// the current one included, is read back from the cache as stored.
enum class KvFormat : uint8_t { kF32, kFp16, kInt8 };

// The context served when none is asked for: min(the model's, this). The KV
// cache is sized to the context served, never to the model's maximum
// (131072 positions for Llama-3.2).
inline constexpr uint32_t kDefaultContext = 2048;

// The context to serve when `asked` positions are asked for (0: the default);
// 0 when more are asked than the model has.
inline uint32_t ServedContext(const image::ModelConfig& config, uint32_t asked) {
  if (asked == 0) return config.seq_len < kDefaultContext ? config.seq_len : kDefaultContext;
  return asked <= config.seq_len ? asked : 0;
}

class Engine {
 public:
  // Keys and values of every layer that owns a cache, for `positions`
  // positions and the meta tokens, then the recurrent (SSM) state of every
  // layer, in f32. A sliding-window layer's cache holds the meta tokens and
  // a ring of at most attn_window positions.
  // A windowed layer's ring holds batch - 1 positions more, so the last
  // token of a batch does not overwrite what the first still attends to.
  static size_t KvBytes(const image::ModelConfig& config, const image::ModelDetail& detail, uint32_t positions,
                        KvFormat format = KvFormat::kF32, uint32_t batch = 1);
  // Activations and scratch for a context of `positions` positions and
  // `batch` tokens per Forward.
  static size_t ArenaBytes(const image::ModelConfig& config, const image::ModelDetail& detail, uint32_t positions,
                           uint32_t batch = 1);

  // `image` must have passed Validate(); it, `arena` and `kv` must outlive
  // the engine. The context is as many positions as `kv` holds in `format`
  // (the most whose KvBytes fit), at most the model's seq_len; `arena` must
  // hold ArenaBytes for it and `batch` (at least 1).
  Status Init(const image::ImageView& image, std::span<uint8_t> arena, std::span<uint8_t> kv,
              KvFormat format = KvFormat::kF32, uint32_t batch = 1);

  // Runs `token` at position `pos` (positions 0..pos-1 having run before;
  // position 0 starts a sequence) and returns vocab_size logits, valid until
  // the next call; nullptr when the token or the position is out of range.
  const float* Forward(uint32_t token, uint32_t pos);
  // Runs `count` (1..batch) tokens at positions pos..pos+count-1 and returns
  // count x vocab_size logits, one row per token; the same values as count
  // one-token calls up to f32 rounding (MatMul sums in another order).
  const float* Forward(const uint32_t* tokens, uint32_t count, uint32_t pos);

  // Called with the inputs of every matrix product before it runs: the
  // directory index of the tensor, `count` input rows of t.cols floats
  // `stride` apart. Calibration reads the activations this way.
  using InputObserver = void (*)(void* context, uint32_t tensor, const float* in, size_t stride, uint32_t count);
  void Observe(InputObserver observer, void* context) {
    observer_ = observer;
    observer_context_ = context;
  }

  const image::ModelConfig& config() const { return config_; }
  const image::ModelDetail& detail() const { return detail_; }
  uint32_t context() const { return context_; }
  uint32_t batch() const { return batch_; }
  KvFormat kv_format() const { return kv_format_; }
  const Arena& arena() const { return arena_; }

  // Bytes read and written per window since Init or the last TakeTraffic.
  const ReadCounter& traffic() const { return traffic_; }
  // Returns traffic() and starts counting afresh: one Forward's worth when
  // called after each.
  ReadCounter TakeTraffic() {
    const ReadCounter taken = traffic_;
    traffic_ = ReadCounter{};
    return taken;
  }

 private:
  static constexpr uint16_t kAbsent = 0xFFFF;
  // Directory index of each role's tensor in a layer (or outside the
  // layers), kAbsent where the family has none.
  struct Layer {
    uint16_t tensor[image::kRoleCount];
  };
  // A buffer of one row per token of a batch.
  struct Rows {
    float* data = nullptr;
    uint32_t stride = 0;  // floats per row
    float* operator[](uint32_t t) const { return data + static_cast<size_t>(t) * stride; }
  };

  // Sets every Rows stride from the config, detail and batch.
  void SetWidths();
  // Calls visit(pointer, count) for every arena buffer, in arena order: the
  // one list both ArenaBytes and Init walk.
  template <typename Visit>
  void ForEachBuffer(Visit&& visit);
  Status FindTensors(const image::ImageView& image);
  image::TensorEntry Tensor(const Layer& layer, image::Role role) const;

  // One pass per family, each in its own file; x_ holds the tokens'
  // embeddings, `pos` is the first one's cache position and the RoPE tables
  // are set for every one.
  const float* ForwardLlama(uint32_t pos, uint32_t n);  // common/forward_llama.cpp
  const float* ForwardPhi(uint32_t pos, uint32_t n);    // common/forward_phi.cpp
  const float* ForwardHymba(uint32_t pos, uint32_t n);  // common/forward_hymba.cpp
  // Hymba's steps (common/forward_hymba.cpp).
  void RunMetaTokens();
  void HymbaLayers(uint32_t pos, uint32_t n);
  void HymbaMixer(uint32_t layer, uint32_t pos, uint32_t n);
  void SsmStep(uint32_t layer, uint32_t n);
  void HymbaFeedForward(const Layer& layer, uint32_t n);

  // The shared steps (common/engine.cpp), each over the first n rows.
  // A norm's, bias's or SSM vector's values, counted as read.
  const float* Params(const image::TensorEntry& t);
  // out = W in for the first n rows, W the layer's tensor of `role`.
  void MatMul(const Layer& layer, image::Role role, Rows in, Rows out, uint32_t n);
  void AddBias(Rows x, const image::TensorEntry& bias, uint32_t n);
  void RmsNorm(Rows out, Rows in, const image::TensorEntry& weight, uint32_t width, uint32_t n);
  void LayerNorm(Rows out, Rows in, const image::TensorEntry& weight, const image::TensorEntry& bias, uint32_t n);
  // The classifier (and its bias, if the family has one) on the normed x_.
  const float* Logits(uint32_t n);
  // Row t of the RoPE tables: the angles of every rotated pair at `pos`,
  // with the image's RoPE scaling.
  void SetRope(uint32_t t, uint32_t pos);
  void Rotate(Rows vectors, uint32_t heads, uint32_t n) const;
  // Caches row t of k_ and v_ as position `pos` of `layer`'s cache.
  void StoreKv(uint32_t layer, uint32_t pos, uint32_t t);
  // The attention of n tokens from `pos` over `layer`'s KV source, each
  // token's key and value cached, into their rows of xb_.
  void Attention(uint32_t layer, uint32_t pos, uint32_t n);
  // Attention for one token (decode), by the dispatched vector kernels.
  void DecodeAttention(uint32_t layer, uint32_t pos);
  // The attention step of n tokens from `pos`: q_ (and, for a layer that
  // owns its cache, k_) rotated, the keys and values cached, then each
  // token's attention over the positions up to its own.
  void Attend(uint32_t layer, uint32_t pos, uint32_t n);
  // Cache row of (layer's KV source, cache position, KV head) in the key or value cache.
  size_t KvRow(uint32_t layer, uint32_t pos, uint32_t kv_head) const;
  // Stores `count` KV heads of `width` values at `first_row` onwards.
  void StoreRows(const float* in, uint8_t* cache, float* scales, size_t first_row, uint32_t width);
  // Row `row` as floats: in place for f32, else decoded into `scratch`.
  const float* LoadKv(const uint8_t* cache, const float* scales, size_t row, uint32_t width, float* scratch);
  // Bytes of one cached row of `width` elements: its elements and, for int8, its scale.
  size_t KvRowBytes(uint32_t width) const;

  const image::ImageView* image_ = nullptr;
  image::ModelConfig config_{};
  image::ModelDetail detail_{};
  uint32_t q_dim_ = 0;
  uint32_t kv_dim_ = 0;     // keys of every KV head
  uint32_t value_dim_ = 0;  // values of every KV head
  uint32_t context_ = 0;  // the caller's positions
  uint32_t batch_ = 1;
  KvFormat kv_format_ = KvFormat::kF32;
  Arena arena_;
  ReadCounter traffic_{};
  InputObserver observer_ = nullptr;
  void* observer_context_ = nullptr;

  Layer globals_{};
  Layer* layers_ = nullptr;
  uint32_t* kv_first_ = nullptr;  // per layer: the first cached position row of its KV source's cache

  // Per token of a batch:
  Rows x_;       // the residual stream, dim
  Rows xb_;      // normed input / attention output, max(dim, n_heads x value_head_dim)
  Rows xb2_;     // a block's output before the residual add, dim
  Rows q_;       // q_dim
  Rows k_;       // this position's key and value before they are cached
  Rows v_;
  Rows hb_;      // FFN hidden, hidden_dim
  Rows hb2_;     // FFN up, hidden_dim
  Rows logits_;  // vocab_size
  Rows rope_cos_;  // per rotated pair at the token's position, rope_dims / 2
  Rows rope_sin_;
  // Hymba's mixer (empty for the other families).
  Rows in_proj_;     // [q | k | v (owners) | xs | z], the widest in_proj
  Rows ssm_u_;       // the conv's output, ssm_inner
  Rows ssm_params_;  // x_proj's [dt | B | C], ssm_dt_rank + 2 ssm_state
  Rows ssm_dt_;      // dt_proj's output, ssm_inner
  Rows ssm_y_;       // the SSM's output, ssm_inner
  // Shared by the tokens:
  float* kv_row_ = nullptr;  // one cached key or value decoded, max(head_dim, value_head_dim)
  float* att_ = nullptr;     // attention weights of one KV head's query group, [token][group][context]
  float* q_t_ = nullptr;     // q_ transposed, [q_dim][token] (a batch of more than one token only)
  float* scores_ = nullptr;  // one cache position's scores, [token]
  float* row_ = nullptr;     // one dequantized weight row, the widest input
  // [owning layer][cached position][KV head][head_dim or value_head_dim]
  // elements of the format (an owning layer caches CachedPositions of them);
  // int8 rows have their scales, [owning layer][cached position][KV head],
  // in the *_scales_ arrays.
  uint8_t* key_cache_ = nullptr;
  uint8_t* value_cache_ = nullptr;
  float* key_scales_ = nullptr;
  float* value_scales_ = nullptr;
  // Hymba's recurrent state, after the caches: [layer][ssm_inner][ssm_conv - 1]
  // conv inputs and [layer][ssm_inner][ssm_state] SSM state.
  float* conv_state_ = nullptr;
  float* ssm_state_ = nullptr;
};

}  // namespace qmc
