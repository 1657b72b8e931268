#include "host/synthetic_checkpoint.h"

#include <algorithm>
#include <cmath>
#include <thread>

namespace qmc::host {
namespace {

// Student-t degrees of freedom of the weight body: a finite variance, a
// heavy tail (kurtosis 9) like trained weight matrices'.
constexpr double kNu = 5.0;
constexpr double kUnitVariance = 0.7745966692414834;  // sqrt((ν − 2) / ν): t_5 scaled to variance 1
// Outlier input channels: this fraction of a matrix's columns, each scaled
// by a gain drawn from [kGainLow, kGainHigh].
constexpr double kHotChannelFraction = 0.0025;
constexpr double kGainLow = 4.0, kGainHigh = 10.0;
constexpr double kNormStd = 0.05;  // norm weights: 1 ± this
constexpr double kBiasStd = 0.02;
// Mamba's dt initialisation range.
constexpr double kDtMin = 1e-3, kDtMax = 1e-1, kDtFloor = 1e-4;
// Elements per random stream: the unit of work a thread takes, so the
// values do not depend on how many threads draw them.
constexpr size_t kChunk = size_t{1} << 16;

// SplitMix64's output function: seeds streams from (seed, tensor, chunk).
uint64_t Mix(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// SplitMix64 (Steele, Lea, Flood 2014): fast, and its own code, so a seed
// gives the same weights with every standard library.
class Stream {
 public:
  explicit Stream(uint64_t seed) : state_(seed) {}

  uint64_t Next() {
    state_ += 0x9E3779B97F4A7C15ull;
    uint64_t z = state_;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  // In (0, 1]: safe under a log.
  double Uniform() { return static_cast<double>((Next() >> 11) + 1) * 0x1.0p-53; }
  double Normal() {  // Marsaglia's polar method, both values used: no trigonometry
    if (has_spare_) {
      has_spare_ = false;
      return spare_;
    }
    double u, v, s;
    do {
      u = 2.0 * Uniform() - 1.0;
      v = 2.0 * Uniform() - 1.0;
      s = u * u + v * v;
    } while (s >= 1.0 || s == 0.0);
    const double scale = std::sqrt(-2.0 * std::log(s) / s);
    spare_ = v * scale;
    has_spare_ = true;
    return u * scale;
  }
  // Student-t with ν = 5: Z / sqrt(χ²₅ / 5), χ²₅ = χ²₄ + Z'², χ²₄ = −2 ln(U₁U₂).
  double StudentT5() {
    const double z = Normal();
    const double extra = Normal();
    const double chi2 = -2.0 * std::log(Uniform() * Uniform()) + extra * extra;
    return z * std::sqrt(kNu / chi2);
  }

 private:
  uint64_t state_;
  double spare_ = 0.0;
  bool has_spare_ = false;
};

uint64_t NameHash(const char* name) {  // FNV-1a
  uint64_t h = 0xCBF29CE484222325ull;
  for (const char* p = name; *p != '\0'; ++p) h = (h ^ static_cast<uint8_t>(*p)) * 0x100000001B3ull;
  return h;
}

enum class Kind { kWeights, kNorm, kBias, kConv, kALog, kD, kDtBias };

Kind KindOf(const image::TensorRequirement& t) {
  using image::Role;
  if (t.is_matrix) return Kind::kWeights;
  switch (t.role) {
    case Role::kMetaTokens: return Kind::kWeights;  // rows the layers read like embeddings
    case Role::kOutputNorm:
    case Role::kAttnNorm:
    case Role::kFfnNorm:
    case Role::kDtNorm:
    case Role::kBNorm:
    case Role::kCNorm:
    case Role::kAttnOutNorm:
    case Role::kSsmOutNorm: return Kind::kNorm;
    case Role::kConv: return Kind::kConv;
    case Role::kALog: return Kind::kALog;
    case Role::kD: return Kind::kD;
    case Role::kDtBias: return Kind::kDtBias;
    default: return Kind::kBias;
  }
}

// Per-column gains of a weight matrix: 1, and kGainLow..kGainHigh on its
// outlier input channels, drawn from the tensor's own stream.
std::vector<float> ChannelGains(uint32_t cols, uint64_t tensor_seed) {
  std::vector<float> gain(cols, 1.0f);
  const auto hot = static_cast<uint32_t>(std::llround(kHotChannelFraction * cols));
  Stream s(Mix(tensor_seed ^ 0x686F745F6368616Eull));
  for (uint32_t k = 0; k < hot;) {
    const auto col = static_cast<uint32_t>(s.Next() % cols);
    if (gain[col] != 1.0f) continue;  // already hot: draw another
    gain[col] = static_cast<float>(kGainLow + (kGainHigh - kGainLow) * s.Uniform());
    ++k;
  }
  return gain;
}

// One value of a tensor of `kind` at column `col`.
float Draw(Kind kind, Stream& s, double sigma, const std::vector<float>& gain, uint32_t col) {
  switch (kind) {
    case Kind::kWeights: return static_cast<float>(sigma * kUnitVariance * s.StudentT5() * gain[col]);
    case Kind::kNorm: return static_cast<float>(1.0 + kNormStd * s.Normal());
    case Kind::kBias: return static_cast<float>(kBiasStd * s.Normal());
    case Kind::kConv: return static_cast<float>(sigma * (2.0 * s.Uniform() - 1.0));
    case Kind::kALog: return static_cast<float>(std::log(col + 1.0));
    case Kind::kD: return 1.0f;
    case Kind::kDtBias: {
      const double dt =
          std::max(kDtFloor, std::exp(std::log(kDtMin) + (std::log(kDtMax) - std::log(kDtMin)) * s.Uniform()));
      return static_cast<float>(dt + std::log(-std::expm1(-dt)));  // softplus⁻¹(dt)
    }
  }
  return 0.0f;
}

}  // namespace

ModelSpec SyntheticModel(const std::filesystem::path& config, uint32_t layers) {
  std::error_code ec;
  const std::filesystem::path file = std::filesystem::is_directory(config, ec) ? config / "config.json" : config;
  ModelSpec spec = LoadHuggingFaceConfig(file);
  if (layers == 0 || layers == spec.config.n_layers) return spec;
  if (layers > spec.config.n_layers) {
    throw InputError(file.string() + ": --synthetic-layers " + std::to_string(layers) + " exceeds the model's " +
                     std::to_string(spec.config.n_layers) + " layers");
  }
  // The first layers keep their attention span and KV source (never a later layer).
  spec.config.n_layers = layers;
  for (uint32_t l = layers; l < image::kMaxLayers; ++l) {
    spec.detail.layer_flags[l] = 0;
    spec.detail.kv_source[l] = 0;
  }
  return spec;
}

Tensor SyntheticTensor(const image::TensorRequirement& t, uint64_t seed, uint32_t threads) {
  const Kind kind = KindOf(t);
  const uint64_t tensor_seed = Mix(seed ^ Mix(NameHash(t.name)));
  // Matrices ~ 1/sqrt(fan-in), which keeps activations of unit scale
  // through the layers (≈ HF's 0.02 at these widths); Mamba's conv taps
  // U(±1/sqrt(width)) as PyTorch initialises them.
  const double sigma = 1.0 / std::sqrt(static_cast<double>(t.cols));
  const std::vector<float> gain = kind == Kind::kWeights ? ChannelGains(t.cols, tensor_seed) : std::vector<float>();
  Tensor out{t.rows, t.cols, std::vector<float>(static_cast<size_t>(t.rows) * t.cols)};
  const size_t n = out.data.size();
  const size_t chunks = (n + kChunk - 1) / kChunk;
  auto fill = [&](size_t first_chunk, size_t stride) {
    for (size_t c = first_chunk; c < chunks; c += stride) {
      Stream s(Mix(tensor_seed ^ Mix(c + 1)));
      auto col = static_cast<uint32_t>(c * kChunk % t.cols);
      for (size_t i = c * kChunk; i < std::min(n, (c + 1) * kChunk); ++i) {
        out.data[i] = Draw(kind, s, sigma, gain, col);
        if (++col == t.cols) col = 0;
      }
    }
  };
  const size_t workers = std::min<size_t>(std::max<uint32_t>(threads, 1), chunks);
  std::vector<std::thread> pool;
  for (size_t w = 1; w < workers; ++w) pool.emplace_back(fill, w, workers);
  fill(0, std::max<size_t>(workers, 1));
  for (std::thread& th : pool) th.join();
  return out;
}

ModelSource SyntheticSource(const ModelSpec& model, uint64_t seed, std::vector<uint8_t> tokenizer) {
  // Every core draws each tensor: a large one (the embedding) would
  // otherwise hold up the packers waiting for it.
  const uint32_t threads = std::max(1u, std::thread::hardware_concurrency());
  return {model.config, model.detail, std::move(tokenizer), [model, seed, threads](size_t index, const TensorSpec&) {
            const image::TensorRequirement r =
                image::RequiredTensor(model.config, model.detail, static_cast<uint32_t>(index));
            return SyntheticTensor(r, seed, threads);
          },
          nullptr};
}

Checkpoint SyntheticCheckpoint(const ModelSpec& model, uint64_t seed) {
  Checkpoint checkpoint;
  checkpoint.format = "synthetic";
  checkpoint.config = model.config;
  checkpoint.detail = model.detail;
  const uint32_t count = image::RequiredTensorCount(model.config, model.detail);
  for (uint32_t i = 0; i < count; ++i) {
    const image::TensorRequirement r = image::RequiredTensor(model.config, model.detail, i);
    checkpoint.tensors[r.name] = SyntheticTensor(r, seed);
  }
  return checkpoint;
}

}  // namespace qmc::host
