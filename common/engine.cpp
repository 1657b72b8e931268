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

// A layer that sees the meta tokens and the last attn_window positions only.
bool Windowed(const image::ModelDetail& d, uint32_t layer) {
  return (d.layer_flags[layer] & image::kLayerGlobalAttention) == 0 && d.attn_window != 0;
}

// Positions in a windowed layer's ring: its window, and batch - 1 more so
// a batch's last token does not overwrite what its first attends to.
uint32_t RingPositions(const image::ModelDetail& d, uint32_t batch) { return d.attn_window + batch - 1; }

// Cache positions an owning layer keeps for `positions` caller positions:
// the meta tokens, then every position, or a ring for a windowed layer (it
// never looks further back than its window).
uint32_t CachedPositions(const image::ModelDetail& d, uint32_t layer, uint32_t positions, uint32_t batch) {
  const uint32_t ring = RingPositions(d, batch);
  return d.meta_tokens + (Windowed(d, layer) && positions > ring ? ring : positions);
}

// Elements of Hymba's in_proj output for a layer that owns a KV cache; 0 without an SSM.
uint32_t InProjRows(const image::ModelConfig& c, const image::ModelDetail& d) {
  if (d.ssm_inner == 0) return 0;
  return c.n_heads * c.head_dim + c.n_kv_heads * (c.head_dim + d.value_head_dim) + 2 * d.ssm_inner;
}

}  // namespace

void Engine::SetWidths() {
  const image::ModelConfig& c = config_;
  const image::ModelDetail& d = detail_;
  x_.stride = c.dim;
  xb_.stride = Max(c.dim, c.n_heads * d.value_head_dim);
  xb2_.stride = c.dim;
  q_.stride = c.n_heads * c.head_dim;
  k_.stride = c.n_kv_heads * c.head_dim;
  v_.stride = c.n_kv_heads * d.value_head_dim;
  hb_.stride = hb2_.stride = c.hidden_dim;
  logits_.stride = c.vocab_size;
  rope_cos_.stride = rope_sin_.stride = d.rope_dims / 2;
  in_proj_.stride = InProjRows(c, d);
  ssm_u_.stride = ssm_dt_.stride = ssm_y_.stride = d.ssm_inner;
  ssm_params_.stride = d.ssm_inner != 0 ? d.ssm_dt_rank + 2 * d.ssm_state : 0;
}

template <typename Visit>
void Engine::ForEachBuffer(Visit&& visit) {
  const image::ModelConfig& c = config_;
  const image::ModelDetail& d = detail_;
  const uint32_t widest_input = Max(Max(Max(c.dim, c.hidden_dim), Max(q_.stride, xb_.stride)), d.ssm_inner);
  visit(layers_, c.n_layers);
  visit(kv_first_, c.n_layers);
  for (Rows* rows : {&x_, &xb_, &xb2_, &q_, &k_, &v_, &hb_, &hb2_, &logits_, &rope_cos_, &rope_sin_, &in_proj_,
                     &ssm_u_, &ssm_params_, &ssm_dt_, &ssm_y_}) {
    visit(rows->data, static_cast<size_t>(batch_) * rows->stride);
  }
  visit(kv_row_, Max(c.head_dim, d.value_head_dim));
  visit(att_, static_cast<size_t>(batch_) * QueryGroup(c) * (d.meta_tokens + context_));
  visit(q_t_, batch_ > 1 ? static_cast<size_t>(batch_) * q_.stride : 0);
  visit(scores_, batch_);
  visit(row_, widest_input);
}

namespace {

// Cached position rows of every owning layer together.
size_t CachedRows(const image::ModelConfig& c, const image::ModelDetail& d, uint32_t positions, uint32_t batch) {
  size_t rows = 0;
  for (uint32_t l = 0; l < c.n_layers; ++l) {
    if (image::OwnsKv(d, l)) rows += CachedPositions(d, l, positions, batch);
  }
  return rows;
}

size_t SsmStateFloats(const image::ModelConfig& c, const image::ModelDetail& d) {
  if (d.ssm_inner == 0) return 0;
  return static_cast<size_t>(c.n_layers) * d.ssm_inner * (d.ssm_conv - 1 + d.ssm_state);
}

}  // namespace

size_t Engine::KvBytes(const image::ModelConfig& config, const image::ModelDetail& detail, uint32_t positions,
                       KvFormat format, uint32_t batch) {
  const size_t vectors = CachedRows(config, detail, positions, batch) * config.n_kv_heads;
  const size_t scale_bytes = format == KvFormat::kInt8 ? sizeof(float) : 0;
  const size_t cache = vectors * ((config.head_dim + detail.value_head_dim) * KvElementBytes(format) + 2 * scale_bytes);
  return cache + SsmStateFloats(config, detail) * sizeof(float);
}

size_t Engine::ArenaBytes(const image::ModelConfig& config, const image::ModelDetail& detail, uint32_t positions,
                          uint32_t batch) {
  Engine sizing;
  sizing.config_ = config;
  sizing.detail_ = detail;
  sizing.context_ = positions;
  sizing.batch_ = batch;
  sizing.SetWidths();
  size_t bytes = Arena::kStartPadding;
  sizing.ForEachBuffer([&bytes]<typename T>(T*&, size_t count) { bytes += Arena::Footprint<T>(count); });
  return bytes;
}

Status Engine::Init(const image::ImageView& image, std::span<uint8_t> arena, std::span<uint8_t> kv,
                    KvFormat format, uint32_t batch) {
  image_ = nullptr;  // Forward refuses to run until Init succeeds
  config_ = image.model();
  detail_ = image.detail();
  if (Status s = image::ValidateModelConfig(config_); !s.ok()) return s;
  if (Status s = image::ValidateModelDetail(config_, detail_); !s.ok()) return s;
  if (KvElementBytes(format) == 0) return Error(StatusCode::kInvalidValue, "unknown KV cache format");
  if (batch == 0) return Error(StatusCode::kInvalidValue, "batch of no tokens");
  if (KvBytes(config_, detail_, 1, format, batch) > kv.size()) return Error(StatusCode::kTooLarge, "KV cache holds no position");
  if (reinterpret_cast<uintptr_t>(kv.data()) % alignof(float) != 0) {
    return Error(StatusCode::kInvalidValue, "KV cache is not float-aligned");
  }
  q_dim_ = config_.n_heads * config_.head_dim;
  kv_dim_ = config_.n_kv_heads * config_.head_dim;
  value_dim_ = config_.n_kv_heads * detail_.value_head_dim;
  // The most positions whose KvBytes fit (windowed caches stop growing, so
  // the bytes are not linear in the positions).
  uint32_t fits = 1, beyond = config_.seq_len + 1;
  while (beyond - fits > 1) {
    const uint32_t middle = fits + (beyond - fits) / 2;
    if (KvBytes(config_, detail_, middle, format, batch) <= kv.size()) {
      fits = middle;
    } else {
      beyond = middle;
    }
  }
  context_ = fits;
  batch_ = batch;
  SetWidths();
  if (arena.size() < ArenaBytes(config_, detail_, context_, batch_)) return Error(StatusCode::kTooLarge, "engine arena too small");
  kv_format_ = format;
  // int8: both scale arrays first (they keep the float alignment), then the
  // codes; the SSM state (f32) leads for the same reason.
  const size_t rows = CachedRows(config_, detail_, context_, batch_) * config_.n_kv_heads;
  uint8_t* next = kv.data();
  conv_state_ = ssm_state_ = nullptr;
  if (detail_.ssm_inner != 0) {
    conv_state_ = reinterpret_cast<float*>(next);
    ssm_state_ = conv_state_ + static_cast<size_t>(config_.n_layers) * detail_.ssm_inner * (detail_.ssm_conv - 1);
    next += SsmStateFloats(config_, detail_) * sizeof(float);
  }
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
  uint32_t first = 0;
  for (uint32_t l = 0; l < config_.n_layers; ++l) {
    if (!image::OwnsKv(detail_, l)) continue;
    kv_first_[l] = first;
    first += CachedPositions(detail_, l, context_, batch_);
  }
  for (uint32_t l = 0; l < config_.n_layers; ++l) kv_first_[l] = kv_first_[detail_.kv_source[l]];
  if (Status s = FindTensors(image); !s.ok()) return s;
  image_ = &image;
  return Status::Ok();
}

// The directory lists the model's tensors in a fixed order
// (common/model_tensors.h); each is checked against it as it is taken.
Status Engine::FindTensors(const image::ImageView& image) {
  const uint32_t count = image::RequiredTensorCount(config_, detail_);
  if (image.tensor_count() != count) return Error(StatusCode::kShapeMismatch, "tensor count does not match the model");
  for (uint16_t& t : globals_.tensor) t = kAbsent;
  for (uint32_t l = 0; l < config_.n_layers; ++l) {
    for (uint16_t& t : layers_[l].tensor) t = kAbsent;
  }
  for (uint32_t index = 0; index < count; ++index) {
    const image::TensorRequirement required = image::RequiredTensor(config_, detail_, index);
    const image::TensorEntry t = image.tensor(index);
    if (std::strncmp(t.name, required.name, image::kTensorNameSize) != 0 || t.rows != required.rows ||
        t.cols != required.cols) {
      return TensorError(StatusCode::kMissing, "tensor missing, out of order or misshapen", index);
    }
    if (!required.is_matrix && (t.scheme != static_cast<uint8_t>(image::Scheme::kF32) ||
                                reinterpret_cast<uintptr_t>(image.blob(t.data).data()) % alignof(float) != 0)) {
      return TensorError(StatusCode::kInvalidValue, "norm, bias or SSM vector is not aligned f32", index);
    }
    Layer& owner = required.layer == image::kNoLayer ? globals_ : layers_[required.layer];
    owner.tensor[static_cast<uint32_t>(required.role)] = static_cast<uint16_t>(index);
  }
  return Status::Ok();
}

image::TensorEntry Engine::Tensor(const Layer& layer, image::Role role) const {
  return image_->tensor(layer.tensor[static_cast<uint32_t>(role)]);
}

const float* Engine::Params(const image::TensorEntry& t) {
  AddTensorTraffic(*image_, t, traffic_);
  return reinterpret_cast<const float*>(image_->blob(t.data).data());
}

void Engine::MatMul(const Layer& layer, image::Role role, Rows in, Rows out, uint32_t n) {
  const uint16_t index = layer.tensor[static_cast<uint32_t>(role)];
  const image::TensorEntry t = image_->tensor(index);
  if (observer_ != nullptr) observer_(observer_context_, index, in.data, in.stride, n);
  if (n == 1) {
    qmc::MatVec(*image_, t, in.data, out.data, row_);
  } else {
    qmc::MatMul(*image_, t, in.data, in.stride, out.data, out.stride, n, row_);
  }
  AddTensorTraffic(*image_, t, traffic_);
}

void Engine::AddBias(Rows x, const image::TensorEntry& bias, uint32_t n) {
  const float* b = Params(bias);
  for (uint32_t t = 0; t < n; ++t) {
    for (uint32_t i = 0; i < bias.cols; ++i) x[t][i] += b[i];
  }
}

void Engine::RmsNorm(Rows out, Rows in, const image::TensorEntry& weight, uint32_t width, uint32_t n) {
  const float* w = Params(weight);
  for (uint32_t t = 0; t < n; ++t) {
    const float* x = in[t];
    float ss = 0.0f;
    for (uint32_t i = 0; i < width; ++i) ss += x[i] * x[i];
    const float scale = 1.0f / sqrtf(ss / static_cast<float>(width) + config_.norm_eps);
    for (uint32_t i = 0; i < width; ++i) out[t][i] = w[i] * (scale * x[i]);
  }
}

void Engine::LayerNorm(Rows out, Rows in, const image::TensorEntry& weight, const image::TensorEntry& bias,
                       uint32_t n) {
  const float* w = Params(weight);
  const float* b = Params(bias);
  const uint32_t width = weight.cols;
  for (uint32_t t = 0; t < n; ++t) {
    const float* x = in[t];
    float mean = 0.0f;
    for (uint32_t i = 0; i < width; ++i) mean += x[i];
    mean /= static_cast<float>(width);
    float variance = 0.0f;
    for (uint32_t i = 0; i < width; ++i) variance += (x[i] - mean) * (x[i] - mean);
    const float scale = 1.0f / sqrtf(variance / static_cast<float>(width) + config_.norm_eps);
    for (uint32_t i = 0; i < width; ++i) out[t][i] = w[i] * ((x[i] - mean) * scale) + b[i];
  }
}

const float* Engine::Logits(uint32_t n) {
  const bool shared = (config_.flags & image::kModelSharedClassifier) != 0;
  MatMul(globals_, shared ? image::Role::kTokenEmbd : image::Role::kOutput, x_, logits_, n);
  if (globals_.tensor[static_cast<uint32_t>(image::Role::kOutputBias)] != kAbsent) {
    AddBias(logits_, Tensor(globals_, image::Role::kOutputBias), n);
  }
  return logits_.data;
}

// Frequency i of rope_dims / 2 is theta^(-2i / rope_dims); llama3 scaling
// divides the low frequencies by the factor and blends the middle band
// (HF modeling_rope_utils.py, _compute_llama3_parameters).
void Engine::SetRope(uint32_t t, uint32_t pos) {
  const image::ModelDetail& d = detail_;
  const bool llama3 = d.rope_scaling == static_cast<uint32_t>(image::RopeScaling::kLlama3);
  constexpr float kTwoPi = 6.283185307179586f;
  for (uint32_t i = 0; i < d.rope_dims / 2; ++i) {
    float frequency = 1.0f / powf(config_.rope_theta, static_cast<float>(2 * i) / static_cast<float>(d.rope_dims));
    if (llama3) {
      const float context = static_cast<float>(d.rope_original_context);
      const float wavelength = kTwoPi / frequency;
      if (wavelength > context / d.rope_low_freq_factor) {
        frequency /= d.rope_factor;
      } else if (wavelength >= context / d.rope_high_freq_factor) {
        const float smooth = (context / wavelength - d.rope_low_freq_factor) /
                             (d.rope_high_freq_factor - d.rope_low_freq_factor);
        frequency = (1.0f - smooth) * frequency / d.rope_factor + smooth * frequency;
      }
    }
    const float angle = static_cast<float>(pos) * frequency;
    rope_cos_[t][i] = cosf(angle);
    rope_sin_[t][i] = sinf(angle);
  }
}

// RoPE, interleaved: pair (2i, 2i+1) of the first rope_dims dims of every
// head turns by the position's angle for frequency i; the rest pass through.
void Engine::Rotate(Rows vectors, uint32_t heads, uint32_t n) const {
  for (uint32_t t = 0; t < n; ++t) {
    const float* cos = rope_cos_[t];
    const float* sin = rope_sin_[t];
    for (uint32_t h = 0; h < heads; ++h) {
      float* v = vectors[t] + h * config_.head_dim;
      for (uint32_t i = 0; i < detail_.rope_dims / 2; ++i) {
        const float v0 = v[2 * i], v1 = v[2 * i + 1];
        v[2 * i] = v0 * cos[i] - v1 * sin[i];
        v[2 * i + 1] = v0 * sin[i] + v1 * cos[i];
      }
    }
  }
}

size_t Engine::KvRowBytes(uint32_t width) const {
  return width * KvElementBytes(kv_format_) + (kv_format_ == KvFormat::kInt8 ? sizeof(float) : 0);
}

// A windowed layer's positions past the meta tokens go round a ring of
// attn_window + batch - 1 slots: position p overwrites p - (ring size), which
// no position of p's batch or later sees.
size_t Engine::KvRow(uint32_t layer, uint32_t pos, uint32_t kv_head) const {
  const uint32_t meta = detail_.meta_tokens;
  const uint32_t slot =
      Windowed(detail_, layer) && pos >= meta ? meta + (pos - meta) % RingPositions(detail_, batch_) : pos;
  return (static_cast<size_t>(kv_first_[layer]) + slot) * config_.n_kv_heads + kv_head;
}

void Engine::StoreRows(const float* in, uint8_t* cache, float* scales, size_t first_row, uint32_t n) {
  traffic_.Write(image::Window::kDram, config_.n_kv_heads * KvRowBytes(n));
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

void Engine::StoreKv(uint32_t layer, uint32_t pos, uint32_t t) {
  StoreRows(k_[t], key_cache_, key_scales_, KvRow(layer, pos, 0), config_.head_dim);
  StoreRows(v_[t], value_cache_, value_scales_, KvRow(layer, pos, 0), detail_.value_head_dim);
}

const float* Engine::LoadKv(const uint8_t* cache, const float* scales, size_t row, uint32_t n, float* scratch) {
  traffic_.Read(image::Window::kDram, KvRowBytes(n));
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

// Grouped-query attention of n tokens from cache position `pos`, every one's
// key and value cached: token t (position pos + t) sees the positions up to
// its own, and a layer without global attention the meta tokens and the last
// attn_window positions only. Query heads g·group .. g·group + group − 1 share
// KV head g. Each cached key and value row is loaded (decoded, counted) once
// for the batch and used by every token and query head that sees it. A
// token's scores, softmax and weighted sums are the same operations in the
// same order as one token and one head at a time; the score sums run across
// the tokens (the queries transposed), a loop the compiler vectorises.
// Writes each token's heads' outputs to its row of xb_.
void Engine::Attention(uint32_t layer, uint32_t pos, uint32_t n) {
  if (n == 1) return DecodeAttention(layer, pos);
  const uint32_t head_dim = config_.head_dim;
  const uint32_t value_dim = detail_.value_head_dim;
  const uint32_t group = QueryGroup(config_);
  const uint32_t stride = detail_.meta_tokens + context_;  // att_ holds a row of cache positions per token and head of a group
  const float scale = 1.0f / sqrtf(static_cast<float>(head_dim));
  const bool windowed = Windowed(detail_, layer);
  const uint32_t meta = detail_.meta_tokens, window = detail_.attn_window;
  // Token t sees [0, meta_end) and [window_start, pos + t]: Hymba's decode
  // rule, {0..meta-1} and [max(meta, p - window + 1), p], once p passes the window.
  auto meta_end = [&](uint32_t t) { return windowed && pos + t + 1 > meta + window ? meta : 0u; };
  auto window_start = [&](uint32_t t) { return meta_end(t) != 0 ? pos + t + 1 - window : 0u; };
  // Where cache position m lands in token t's row of att_.
  auto column = [&](uint32_t t, uint32_t m) { return m < meta_end(t) ? m : meta_end(t) + (m - window_start(t)); };
  // The tokens [first, last) that see cache position m.
  auto seen_by = [&](uint32_t m, uint32_t& first, uint32_t& last) {
    first = m > pos ? m - pos : 0u;
    last = n;
    // Past the meta tokens, a windowed layer's token t sees m while m + window > pos + t.
    if (windowed && m >= meta) last = m + window > pos ? (m + window - pos < n ? m + window - pos : n) : 0u;
  };
  // The queries, transposed: element i of head h for token t at [(h·head_dim + i)·n + t].
  const float* queries = q_.data;
  if (n > 1) {
    for (uint32_t t = 0; t < n; ++t) {
      for (uint32_t e = 0; e < q_dim_; ++e) q_t_[static_cast<size_t>(e) * n + t] = q_[t][e];
    }
    queries = q_t_;
  }
  for (uint32_t kv_head = 0; kv_head < config_.n_kv_heads; ++kv_head) {
    for (uint32_t m = 0, first, last; m < pos + n; ++m) {
      seen_by(m, first, last);
      if (first >= last) continue;
      const float* k = LoadKv(key_cache_, key_scales_, KvRow(layer, m, kv_head), head_dim, kv_row_);
      for (uint32_t j = 0; j < group; ++j) {
        const float* q = queries + static_cast<size_t>(kv_head * group + j) * head_dim * n;
        if (last - first == 1) {  // one token (decode): the sum in a register, not through scores_
          float score = 0.0f;
          for (uint32_t i = 0; i < head_dim; ++i) score += q[static_cast<size_t>(i) * n + first] * k[i];
          att_[(static_cast<size_t>(first) * group + j) * stride + column(first, m)] = score * scale;
          continue;
        }
        for (uint32_t t = first; t < last; ++t) scores_[t] = 0.0f;
        for (uint32_t i = 0; i < head_dim; ++i) {
          const float* qi = q + static_cast<size_t>(i) * n;
          const float ki = k[i];
          for (uint32_t t = first; t < last; ++t) scores_[t] += qi[t] * ki;
        }
        for (uint32_t t = first; t < last; ++t) att_[(static_cast<size_t>(t) * group + j) * stride + column(t, m)] = scores_[t] * scale;
      }
    }
    for (uint32_t t = 0; t < n; ++t) {
      const uint32_t visible = meta_end(t) + (pos + t + 1 - window_start(t));
      for (uint32_t j = 0; j < group; ++j) Softmax(att_ + (static_cast<size_t>(t) * group + j) * stride, visible);
      float* out = xb_[t] + static_cast<size_t>(kv_head) * group * value_dim;
      for (uint32_t i = 0; i < group * value_dim; ++i) out[i] = 0.0f;
    }
    for (uint32_t m = 0, first, last; m < pos + n; ++m) {
      seen_by(m, first, last);
      if (first >= last) continue;
      const float* v = LoadKv(value_cache_, value_scales_, KvRow(layer, m, kv_head), value_dim, kv_row_);
      for (uint32_t t = first; t < last; ++t) {
        float* out = xb_[t] + static_cast<size_t>(kv_head) * group * value_dim;
        for (uint32_t j = 0; j < group; ++j) {
          const float weight = att_[(static_cast<size_t>(t) * group + j) * stride + column(t, m)];
          float* outj = out + j * value_dim;
          for (uint32_t i = 0; i < value_dim; ++i) outj[i] += weight * v[i];
        }
      }
    }
  }
}

// One token at cache position `pos` (decode), as Attention with n = 1 and in
// the same order, each step a dispatched vector kernel: a score per visible
// position and query head (Dot), each head's softmax, then each value row
// added into each head's output by its weight (Axpy).
void Engine::DecodeAttention(uint32_t layer, uint32_t pos) {
  const uint32_t head_dim = config_.head_dim;
  const uint32_t value_dim = detail_.value_head_dim;
  const uint32_t group = QueryGroup(config_);
  const uint32_t stride = detail_.meta_tokens + context_;
  const float scale = 1.0f / sqrtf(static_cast<float>(head_dim));
  // Visible: the meta tokens [0, meta_end) once past a windowed layer's
  // window, then [window_start, pos]; column c of a head's att_ row is the
  // c-th of them.
  const bool past_window = Windowed(detail_, layer) && pos + 1 > detail_.meta_tokens + detail_.attn_window;
  const uint32_t meta_end = past_window ? detail_.meta_tokens : 0u;
  const uint32_t window_start = past_window ? pos + 1 - detail_.attn_window : 0u;
  const uint32_t visible = meta_end + (pos + 1 - window_start);
  auto position = [&](uint32_t c) { return c < meta_end ? c : window_start + (c - meta_end); };
  for (uint32_t kv_head = 0; kv_head < config_.n_kv_heads; ++kv_head) {
    const float* q = q_[0] + static_cast<size_t>(kv_head) * group * head_dim;
    for (uint32_t c = 0; c < visible; ++c) {
      const float* k = LoadKv(key_cache_, key_scales_, KvRow(layer, position(c), kv_head), head_dim, kv_row_);
      for (uint32_t j = 0; j < group; ++j) att_[j * stride + c] = Dot(q + j * head_dim, k, head_dim) * scale;
    }
    for (uint32_t j = 0; j < group; ++j) Softmax(att_ + j * stride, visible);
    float* out = xb_[0] + static_cast<size_t>(kv_head) * group * value_dim;
    for (uint32_t i = 0; i < group * value_dim; ++i) out[i] = 0.0f;
    for (uint32_t c = 0; c < visible; ++c) {
      const float* v = LoadKv(value_cache_, value_scales_, KvRow(layer, position(c), kv_head), value_dim, kv_row_);
      for (uint32_t j = 0; j < group; ++j) Axpy(att_[j * stride + c], v, out + j * value_dim, value_dim);
    }
  }
}

void Engine::Attend(uint32_t layer, uint32_t pos, uint32_t n) {
  const bool owner = image::OwnsKv(detail_, layer);
  Rotate(q_, config_.n_heads, n);
  if (owner) {
    Rotate(k_, config_.n_kv_heads, n);
    // The ring keeps batch - 1 positions more than the window, so the batch's
    // last key does not overwrite what its first token still sees.
    for (uint32_t t = 0; t < n; ++t) StoreKv(layer, pos + t, t);
  }
  Attention(layer, pos, n);
}

const float* Engine::Forward(uint32_t token, uint32_t pos) { return Forward(&token, 1, pos); }

const float* Engine::Forward(const uint32_t* tokens, uint32_t count, uint32_t pos) {
  if (image_ == nullptr || count == 0 || count > batch_ || pos >= context_ || count > context_ - pos) return nullptr;
  for (uint32_t t = 0; t < count; ++t) {
    if (tokens[t] >= config_.vocab_size) return nullptr;
  }
  const bool hymba = config_.arch == static_cast<uint32_t>(image::Arch::kHymba);
  if (hymba && pos == 0) RunMetaTokens();
  const image::TensorEntry embedding = Tensor(globals_, image::Role::kTokenEmbd);
  const uint32_t at = detail_.meta_tokens + pos;  // the cache and RoPE position
  for (uint32_t t = 0; t < count; ++t) {
    if (!LookupRow(*image_, embedding, tokens[t], x_[t]).ok()) return nullptr;
    AddRowTraffic(*image_, embedding, tokens[t], 1, traffic_);
    SetRope(t, at + t);
  }
  switch (static_cast<image::Arch>(config_.arch)) {
    case image::Arch::kLlama:
    case image::Arch::kQwen2: return ForwardLlama(at, count);
    case image::Arch::kPhi: return ForwardPhi(at, count);
    case image::Arch::kHymba: return ForwardHymba(at, count);
  }
  return nullptr;
}

}  // namespace qmc
