// The bytes one Engine::Forward reads and writes in place, by window: what
// the firmware adds to the HAL's counters per token, since in-place reads
// bypass the HAL (hal.h explains why). It follows what the engine touches:
// every matrix's values or codes, scales and outlier table once (the
// classifier too, shared with the embedding or not), every norm and bias,
// one row of the token embedding, and the KV cache: each key and value of
// positions 0..pos read once (a KV head serves its whole query group) and
// this position's written. Activations in SRAM are not counted.
#pragma once

#include <cstddef>
#include <cstdint>

#include "common/image_reader.h"
#include "hal/hal.h"

namespace qmc::firmware {

class TokenTraffic {
 public:
  // `view` is validated and outlives this.
  void Init(const image::ImageView& view);

  // Adds Forward(token, pos) to the counters; the KV cache holds
  // `kv_position_bytes` per position (Engine::KvBytes of one position).
  void Count(const hal::BoardInfo& board, uint32_t token, uint32_t pos, size_t kv_position_bytes) const;

 private:
  void Add(const image::BlobRef& ref, uint64_t bytes, uint64_t (&by_window)[hal::kWindowCount]) const;
  void AddTensor(const image::TensorEntry& t, uint64_t (&by_window)[hal::kWindowCount]) const;
  void AddEmbeddingRow(uint32_t row, uint64_t (&by_window)[hal::kWindowCount]) const;

  const image::ImageView* view_ = nullptr;
  image::TensorEntry embedding_{};
  uint64_t per_token_[hal::kWindowCount] = {};  // everything but the embedding row and the KV cache
};

}  // namespace qmc::firmware
