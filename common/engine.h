// The Llama forward pass (llama2.c run.c's forward(), with grouped-query
// attention, configurable RoPE theta and RMSNorm epsilon, and Qwen2's q/k/v
// biases), reading every weight in place from an image.
//
// Memory is the caller's: activations and scratch come from an arena span of
// ArenaBytes(config), the KV cache from a span of KvBytes(config, n, format)
// (the DRAM window on the device). Both sizes follow from the header alone.
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
#include "common/read_counter.h"
#include "common/status.h"

namespace qmc {

// How the KV cache stores each cached vector (one KV head at one position):
// f32; IEEE fp16 (round to nearest even); or int8, symmetric, with one f32
// scale per vector (max |x| / 127, codes in -127..127). Every position,
// the current one included, is read back from the cache as stored.
enum class KvFormat : uint8_t { kF32, kFp16, kInt8 };

class Engine {
 public:
  // Keys and values of every layer for `positions` positions.
  static size_t KvBytes(const image::ModelConfig& config, uint32_t positions, KvFormat format = KvFormat::kF32);
  static size_t ArenaBytes(const image::ModelConfig& config);

  // `image` must have passed Validate(); it, `arena` and `kv` must outlive
  // the engine. The context is as many positions as `kv` holds in `format`,
  // at most the model's seq_len.
  Status Init(const image::ImageView& image, std::span<uint8_t> arena, std::span<uint8_t> kv,
              KvFormat format = KvFormat::kF32);

  // Runs `token` at position `pos` (positions 0..pos-1 having run before)
  // and returns vocab_size logits, valid until the next call; nullptr when
  // the token or the position is out of range.
  const float* Forward(uint32_t token, uint32_t pos);

  const image::ModelConfig& config() const { return config_; }
  uint32_t context() const { return context_; }
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
  struct Layer {
    image::TensorEntry attn_norm, q, k, v, q_bias, k_bias, v_bias, attn_output;
    image::TensorEntry ffn_norm, gate, up, down;
  };

  // Calls visit(pointer, count) for every arena buffer, in arena order: the
  // one list both ArenaBytes and Init walk.
  template <typename Visit>
  void ForEachBuffer(Visit&& visit);
  Status FindTensors(const image::ImageView& image);
  // A norm's or bias's values, counted as read.
  const float* Params(const image::TensorEntry& t);
  void MatVec(const image::TensorEntry& t, const float* in, float* out);
  void RmsNorm(float* out, const float* in, const image::TensorEntry& weight);
  void Rotate(float* vectors, uint32_t count) const;
  // Cache row of (layer, position, KV head): head_dim elements.
  size_t KvRow(uint32_t layer, uint32_t pos, uint32_t kv_head) const;
  // Stores kv_dim values (every KV head) at `first_row` onwards.
  void StoreKv(const float* in, uint8_t* cache, float* scales, size_t first_row);
  // Row `row` as floats: in place for f32, else decoded into `scratch`.
  const float* LoadKv(const uint8_t* cache, const float* scales, size_t row, float* scratch);
  // Bytes of one cached row in the cache: its elements and, for int8, its scale.
  size_t KvRowBytes() const;
  void Attention(uint32_t layer, uint32_t pos);

  const image::ImageView* image_ = nullptr;
  image::ModelConfig config_{};
  uint32_t q_dim_ = 0;
  uint32_t kv_dim_ = 0;
  uint32_t context_ = 0;
  KvFormat kv_format_ = KvFormat::kF32;
  Arena arena_;
  ReadCounter traffic_{};

  image::TensorEntry token_embd_{};
  image::TensorEntry output_norm_{};
  image::TensorEntry classifier_{};
  Layer* layers_ = nullptr;

  float* x_ = nullptr;       // the residual stream, dim
  float* xb_ = nullptr;      // normed input / attention output, max(dim, q_dim)
  float* xb2_ = nullptr;     // a block's output before the residual add, dim
  float* q_ = nullptr;       // q_dim
  float* k_ = nullptr;       // this position's key and value before they are cached, kv_dim
  float* v_ = nullptr;
  float* kv_row_ = nullptr;  // one cached key or value decoded, head_dim
  float* hb_ = nullptr;      // FFN gate, hidden_dim
  float* hb2_ = nullptr;     // FFN up, hidden_dim
  float* att_ = nullptr;     // attention weights of one KV head's query group, [group][seq_len]
  float* logits_ = nullptr;  // vocab_size
  float* row_ = nullptr;     // one dequantized weight row, the widest input
  float* rope_cos_ = nullptr;  // per rotated pair at the current position, head_dim / 2
  float* rope_sin_ = nullptr;
  // [layer][position][KV head][head_dim] elements of the format; int8 rows
  // have their scales, [layer][position][KV head], in the *_scales_ arrays.
  uint8_t* key_cache_ = nullptr;
  uint8_t* value_cache_ = nullptr;
  float* key_scales_ = nullptr;
  float* value_scales_ = nullptr;
};

}  // namespace qmc
