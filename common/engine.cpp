#include "common/engine.h"

#include <cmath>
#include <cstring>

#include "common/half.h"
#include "common/matvec.h"
#include "common/model_tensors.h"
#include "common/softmax.h"
#include "common/tensor_traffic.h"

namespace qmc {
namespace {

uint32_t Max(uint32_t a, uint32_t b) { return a > b ? a : b; }

bool HasQkvBias(const image::ModelConfig& c) { return (c.flags & image::kModelQkvBias) != 0; }

size_t KvElementBytes(KvFormat format) {
  switch (format) {
    case KvFormat::kF32:
      return sizeof(float);
    case KvFormat::kFp16:
      return sizeof(uint16_t);
    case KvFormat::kInt8:
      return sizeof(int8_t);
  }
  return 0;
}

// Query heads per KV head (grouped-query attention).
uint32_t QueryGroup(const image::ModelConfig& c) { return c.n_kv_heads != 0 ? c.n_heads / c.n_kv_heads : c.n_heads; }

// Round half away from zero; |v| <= 127 here.
int8_t RoundToInt8(float v) { return static_cast<int8_t>(v >= 0.0f ? v + 0.5f : v - 0.5f); }

}  // namespace

template <typename Visit>
void Engine::ForEachBuffer(Visit&& visit) {
  const image::ModelConfig& c = config_;
  const uint32_t q_dim = c.n_heads * c.head_dim;
  const uint32_t kv_dim = c.n_kv_heads * c.head_dim;
  visit(layers_, c.n_layers);
  visit(x_, c.dim);
  visit(xb_, Max(c.dim, q_dim));
  visit(xb2_, c.dim);
  visit(q_, q_dim);
  visit(k_, kv_dim);
  visit(v_, kv_dim);
  visit(kv_row_, c.head_dim);
  visit(hb_, c.hidden_dim);
  visit(hb2_, c.hidden_dim);
  visit(att_, static_cast<size_t>(QueryGroup(c)) * c.seq_len);
  visit(logits_, c.vocab_size);
  visit(row_, Max(Max(c.dim, c.hidden_dim), q_dim));
  visit(rope_cos_, c.head_dim / 2);
  visit(rope_sin_, c.head_dim / 2);
}

size_t Engine::KvBytes(const image::ModelConfig& config, uint32_t positions, KvFormat format) {
  const size_t rows = 2u * static_cast<size_t>(config.n_layers) * positions * config.n_kv_heads;
  const size_t scale_bytes = format == KvFormat::kInt8 ? sizeof(float) : 0;
  return rows * (config.head_dim * KvElementBytes(format) + scale_bytes);
}

size_t Engine::ArenaBytes(const image::ModelConfig& config) {
  Engine sizing;
  sizing.config_ = config;
  size_t bytes = Arena::kStartPadding;
  sizing.ForEachBuffer([&bytes]<typename T>(T*&, size_t count) { bytes += Arena::Footprint<T>(count); });
  return bytes;
}

Status Engine::Init(const image::ImageView& image, std::span<uint8_t> arena, std::span<uint8_t> kv,
                    KvFormat format) {
  image_ = nullptr;  // Forward refuses to run until Init succeeds
  config_ = image.model();
  if (Status s = image::ValidateModelConfig(config_); !s.ok()) return s;
  if (arena.size() < ArenaBytes(config_)) return Error(StatusCode::kTooLarge, "engine arena too small");
  if (KvElementBytes(format) == 0) return Error(StatusCode::kInvalidValue, "unknown KV cache format");
  if (kv.size() < KvBytes(config_, 1, format)) return Error(StatusCode::kTooLarge, "KV cache holds no position");
  if (reinterpret_cast<uintptr_t>(kv.data()) % alignof(float) != 0) {
    return Error(StatusCode::kInvalidValue, "KV cache is not float-aligned");
  }
  q_dim_ = config_.n_heads * config_.head_dim;
  kv_dim_ = config_.n_kv_heads * config_.head_dim;
  const size_t positions = kv.size() / KvBytes(config_, 1, format);
  context_ = positions < config_.seq_len ? static_cast<uint32_t>(positions) : config_.seq_len;
  kv_format_ = format;
  // int8: both scale arrays first (they keep the float alignment), then the codes.
  const size_t rows = static_cast<size_t>(config_.n_layers) * context_ * config_.n_kv_heads;
  uint8_t* next = kv.data();
  key_scales_ = value_scales_ = nullptr;
  if (format == KvFormat::kInt8) {
    key_scales_ = reinterpret_cast<float*>(next);
    value_scales_ = key_scales_ + rows;
    next += 2 * rows * sizeof(float);
  }
  key_cache_ = next;
  value_cache_ = key_cache_ + rows * config_.head_dim * KvElementBytes(format);

  traffic_ = ReadCounter{};
  arena_ = Arena(arena);
  ForEachBuffer([this]<typename T>(T*& buffer, size_t count) { buffer = arena_.template Allocate<T>(count); });
  if (Status s = FindTensors(image); !s.ok()) return s;
  image_ = &image;
  return Status::Ok();
}

// The directory lists the model's tensors in a fixed order
// (common/model_tensors.h); each is checked against it as it is taken.
Status Engine::FindTensors(const image::ImageView& image) {
  if (image.tensor_count() != image::RequiredTensorCount(config_)) {
    return Error(StatusCode::kShapeMismatch, "tensor count does not match the model");
  }
  uint32_t index = 0;
  Status status = Status::Ok();
  auto take = [&](image::TensorEntry& out) {
    if (!status.ok()) return;
    const image::TensorRequirement required = image::RequiredTensor(config_, index);
    out = image.tensor(index);
    if (std::strncmp(out.name, required.name, image::kTensorNameSize) != 0 || out.rows != required.rows ||
        out.cols != required.cols) {
      status = TensorError(StatusCode::kMissing, "tensor missing, out of order or misshapen", index);
    } else if (!required.is_matrix && (out.scheme != static_cast<uint8_t>(image::Scheme::kF32) ||
                                       reinterpret_cast<uintptr_t>(image.blob(out.data).data()) % alignof(float) != 0)) {
      status = TensorError(StatusCode::kInvalidValue, "norm or bias is not aligned f32", index);
    }
    ++index;
  };
  take(token_embd_);
  for (uint32_t l = 0; l < config_.n_layers; ++l) {
    Layer& layer = layers_[l];
    take(layer.attn_norm);
    take(layer.q);
    take(layer.k);
    take(layer.v);
    if (HasQkvBias(config_)) {
      take(layer.q_bias);
      take(layer.k_bias);
      take(layer.v_bias);
    }
    take(layer.attn_output);
    take(layer.ffn_norm);
    take(layer.gate);
    take(layer.up);
    take(layer.down);
  }
  take(output_norm_);
  if ((config_.flags & image::kModelSharedClassifier) != 0) {
    classifier_ = token_embd_;
  } else {
    take(classifier_);
  }
  return status;
}

const float* Engine::Params(const image::TensorEntry& t) {
  AddTensorTraffic(*image_, t, traffic_);
  return reinterpret_cast<const float*>(image_->blob(t.data).data());
}

void Engine::MatVec(const image::TensorEntry& t, const float* in, float* out) {
  qmc::MatVec(*image_, t, in, out, row_);
  AddTensorTraffic(*image_, t, traffic_);
}

void Engine::RmsNorm(float* out, const float* in, const image::TensorEntry& weight) {
  const float* w = Params(weight);
  float ss = 0.0f;
  for (uint32_t i = 0; i < config_.dim; ++i) ss += in[i] * in[i];
  const float scale = 1.0f / sqrtf(ss / static_cast<float>(config_.dim) + config_.norm_eps);
  for (uint32_t i = 0; i < config_.dim; ++i) out[i] = w[i] * (scale * in[i]);
}

// RoPE, interleaved: pair (2i, 2i+1) of every head turns by the position's
// angle for frequency i (rope_cos_/rope_sin_).
void Engine::Rotate(float* vectors, uint32_t heads) const {
  for (uint32_t h = 0; h < heads; ++h) {
    float* v = vectors + h * config_.head_dim;
    for (uint32_t i = 0; i < config_.head_dim / 2; ++i) {
      const float v0 = v[2 * i], v1 = v[2 * i + 1];
      v[2 * i] = v0 * rope_cos_[i] - v1 * rope_sin_[i];
      v[2 * i + 1] = v0 * rope_sin_[i] + v1 * rope_cos_[i];
    }
  }
}

size_t Engine::KvRowBytes() const {
  return config_.head_dim * KvElementBytes(kv_format_) + (kv_format_ == KvFormat::kInt8 ? sizeof(float) : 0);
}

size_t Engine::KvRow(uint32_t layer, uint32_t pos, uint32_t kv_head) const {
  return (static_cast<size_t>(layer) * context_ + pos) * config_.n_kv_heads + kv_head;
}

void Engine::StoreKv(const float* in, uint8_t* cache, float* scales, size_t first_row) {
  const uint32_t n = config_.head_dim;
  traffic_.Write(image::Window::kDram, config_.n_kv_heads * KvRowBytes());
  for (uint32_t h = 0; h < config_.n_kv_heads; ++h) {
    const float* x = in + h * n;
    const size_t row = first_row + h;
    switch (kv_format_) {
      case KvFormat::kF32:
        std::memcpy(reinterpret_cast<float*>(cache) + row * n, x, n * sizeof(float));
        break;
      case KvFormat::kFp16: {
        uint16_t* out = reinterpret_cast<uint16_t*>(cache) + row * n;
        for (uint32_t i = 0; i < n; ++i) out[i] = FloatToHalf(x[i]);
        break;
      }
      case KvFormat::kInt8: {
        float max_abs = 0.0f;
        for (uint32_t i = 0; i < n; ++i) max_abs = fmaxf(max_abs, fabsf(x[i]));
        const float inverse = max_abs > 0.0f ? 127.0f / max_abs : 0.0f;
        int8_t* out = reinterpret_cast<int8_t*>(cache) + row * n;
        for (uint32_t i = 0; i < n; ++i) out[i] = RoundToInt8(x[i] * inverse);
        scales[row] = max_abs / 127.0f;
        break;
      }
    }
  }
}

const float* Engine::LoadKv(const uint8_t* cache, const float* scales, size_t row, float* scratch) {
  const uint32_t n = config_.head_dim;
  traffic_.Read(image::Window::kDram, KvRowBytes());
  switch (kv_format_) {
    case KvFormat::kF32:
      return reinterpret_cast<const float*>(cache) + row * n;
    case KvFormat::kFp16: {
      const uint16_t* in = reinterpret_cast<const uint16_t*>(cache) + row * n;
      for (uint32_t i = 0; i < n; ++i) scratch[i] = HalfToFloat(in[i]);
      return scratch;
    }
    case KvFormat::kInt8: {
      const int8_t* in = reinterpret_cast<const int8_t*>(cache) + row * n;
      for (uint32_t i = 0; i < n; ++i) scratch[i] = static_cast<float>(in[i]) * scales[row];
      return scratch;
    }
  }
  return scratch;
}

// Grouped-query attention: query heads g·group .. g·group + group − 1 share
// KV head g, so each cached key and value row is loaded (decoded, counted)
// once and used by every query head of its group. Each head's scores and
// weighted sum are the same operations in the same order as one head at a
// time. Writes the heads' outputs to xb_.
void Engine::Attention(uint32_t layer, uint32_t pos) {
  const uint32_t head_dim = config_.head_dim;
  const uint32_t group = QueryGroup(config_);
  const uint32_t stride = config_.seq_len;  // att_ holds one row of seq_len per head of a group
  const float scale = 1.0f / sqrtf(static_cast<float>(head_dim));
  for (uint32_t kv_head = 0; kv_head < config_.n_kv_heads; ++kv_head) {
    const float* q = q_ + static_cast<size_t>(kv_head) * group * head_dim;
    float* out = xb_ + static_cast<size_t>(kv_head) * group * head_dim;
    for (uint32_t t = 0; t <= pos; ++t) {
      const float* k = LoadKv(key_cache_, key_scales_, KvRow(layer, t, kv_head), kv_row_);
      for (uint32_t j = 0; j < group; ++j) {
        const float* qj = q + j * head_dim;
        float score = 0.0f;
        for (uint32_t i = 0; i < head_dim; ++i) score += qj[i] * k[i];
        att_[j * stride + t] = score * scale;
      }
    }
    for (uint32_t j = 0; j < group; ++j) Softmax(att_ + j * stride, pos + 1);
    for (uint32_t i = 0; i < group * head_dim; ++i) out[i] = 0.0f;
    for (uint32_t t = 0; t <= pos; ++t) {
      const float* v = LoadKv(value_cache_, value_scales_, KvRow(layer, t, kv_head), kv_row_);
      for (uint32_t j = 0; j < group; ++j) {
        const float weight = att_[j * stride + t];
        float* outj = out + j * head_dim;
        for (uint32_t i = 0; i < head_dim; ++i) outj[i] += weight * v[i];
      }
    }
  }
}

const float* Engine::Forward(uint32_t token, uint32_t pos) {
  const image::ModelConfig& c = config_;
  if (image_ == nullptr || token >= c.vocab_size || pos >= context_) return nullptr;
  if (!LookupRow(*image_, token_embd_, token, x_).ok()) return nullptr;
  AddRowTraffic(*image_, token_embd_, token, 1, traffic_);

  for (uint32_t i = 0; i < c.head_dim / 2; ++i) {
    const float frequency = 1.0f / powf(c.rope_theta, static_cast<float>(2 * i) / static_cast<float>(c.head_dim));
    const float angle = static_cast<float>(pos) * frequency;
    rope_cos_[i] = cosf(angle);
    rope_sin_[i] = sinf(angle);
  }

  for (uint32_t l = 0; l < c.n_layers; ++l) {
    const Layer& layer = layers_[l];
    // Attention block: this position's key and value are cached first.
    RmsNorm(xb_, x_, layer.attn_norm);
    MatVec(layer.q, xb_, q_);
    MatVec(layer.k, xb_, k_);
    MatVec(layer.v, xb_, v_);
    if (HasQkvBias(c)) {
      const float *qb = Params(layer.q_bias), *kb = Params(layer.k_bias), *vb = Params(layer.v_bias);
      for (uint32_t i = 0; i < q_dim_; ++i) q_[i] += qb[i];
      for (uint32_t i = 0; i < kv_dim_; ++i) k_[i] += kb[i];
      for (uint32_t i = 0; i < kv_dim_; ++i) v_[i] += vb[i];
    }
    Rotate(q_, c.n_heads);
    Rotate(k_, c.n_kv_heads);
    StoreKv(k_, key_cache_, key_scales_, KvRow(l, pos, 0));
    StoreKv(v_, value_cache_, value_scales_, KvRow(l, pos, 0));
    Attention(l, pos);
    MatVec(layer.attn_output, xb_, xb2_);
    for (uint32_t i = 0; i < c.dim; ++i) x_[i] += xb2_[i];

    // SwiGLU feed-forward block: down(silu(gate x) * up x).
    RmsNorm(xb_, x_, layer.ffn_norm);
    MatVec(layer.gate, xb_, hb_);
    MatVec(layer.up, xb_, hb2_);
    for (uint32_t i = 0; i < c.hidden_dim; ++i) hb_[i] = hb_[i] / (1.0f + expf(-hb_[i])) * hb2_[i];
    MatVec(layer.down, hb_, xb2_);
    for (uint32_t i = 0; i < c.dim; ++i) x_[i] += xb2_[i];
  }

  RmsNorm(x_, x_, output_norm_);
  MatVec(classifier_, x_, logits_);
  return logits_;
}

}  // namespace qmc
