// The QMC image: structures exactly as they lie in the file and on the device.
// docs/image-format.md is the specification; the static_asserts pin it.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>

namespace qmc::image {

static_assert(std::endian::native == std::endian::little, "the image is little-endian");

inline constexpr uint32_t kMagic = 0x49434D51u;  // bytes "QMCI"
inline constexpr uint16_t kVersionMajor = 1;
inline constexpr uint16_t kVersionMinor = 2;  // 1.1: the split scheme, outlier_bits, preset; 1.2: model detail, BPE tokenizer sections
inline constexpr uint32_t kMaxSections = 16;
inline constexpr uint32_t kTensorNameSize = 40;
inline constexpr uint32_t kSectionAlignment = 64;  // in the file and in a window
inline constexpr uint32_t kBlobAlignment = 16;     // inside a section
inline constexpr uint32_t kNoSection = 0xFFFFFFFFu;
inline constexpr uint32_t kMaxOutlierColumns = 65536;  // columns are stored as u16

enum class Window : uint8_t { kSram = 0, kMram = 1, kReram = 2, kDram = 3 };
inline constexpr uint32_t kWindowCount = 4;

enum class SectionKind : uint8_t {
  kTensorDirectory = 1,
  kTokenizer = 2,
  kParams = 3,       // exact parameters: norms, biases, scales, outliers
  kInlierCodes = 4,  // packed MLC cells
  kDenseWeights = 5, // unquantized f32/fp16 matrices
  kModelDetail = 6,  // ModelDetail: what ModelConfig cannot say (1.2)
};

enum class Arch : uint32_t { kLlama = 0, kQwen2 = 1, kPhi = 2, kHymba = 3 };

// Which quantizer produced the image (informational: the tensor entries say
// how to decode every tensor).
enum class Quantizer : uint32_t { kF32 = 0, kFp16 = 1, kRtn = 2, kQmc = 3, kMxInt4 = 4, kGptq = 5, kAwq = 6 };

enum class Scheme : uint8_t {
  kF32 = 0,
  kF16 = 1,
  kGroupAffine = 2,  // w = scale * (code - zero) per group; outliers in CSR
  kMxInt4 = 3,       // w = 2^(e-127) * int4 per block of 32
  kSplit = 4,        // the paper's split: compact inlier codes in ReRAM, quantized
                     // outliers + their bitmap in MRAM (common/split_layout.h)
};

inline constexpr uint32_t kModelSharedClassifier = 1u << 0;
inline constexpr uint32_t kModelQkvBias = 1u << 1;

struct ModelConfig {
  uint32_t arch;
  uint32_t dim;
  uint32_t hidden_dim;
  uint32_t n_layers;
  uint32_t n_heads;
  uint32_t n_kv_heads;
  uint32_t head_dim;
  uint32_t vocab_size;
  uint32_t seq_len;
  float rope_theta;
  float norm_eps;
  uint32_t flags;  // kModel* bits
};
static_assert(sizeof(ModelConfig) == 48);

inline constexpr uint32_t kMaxLayers = 128;  // ModelDetail's per-layer tables

enum class RopeScaling : uint32_t { kNone = 0, kLlama3 = 1 };

// ModelDetail.layer_flags bits.
inline constexpr uint8_t kLayerGlobalAttention = 1u << 0;  // attends to every position, not a window

// The model-detail section (kind 6, 1.2): the rest of the architecture. An
// image without one (1.1) has DefaultDetail(model).
struct ModelDetail {
  uint32_t rope_dims;              // leading dims of each q/k head that rotate; even, <= head_dim
  uint32_t rope_scaling;           // RopeScaling
  float rope_factor;               // llama3: the factor f
  float rope_low_freq_factor;      // llama3: l
  float rope_high_freq_factor;     // llama3: h
  uint32_t rope_original_context;  // llama3: the original context L
  uint32_t value_head_dim;         // dims of a value head (Hymba: 128); head_dim otherwise
  uint32_t attn_window;            // tokens a non-global layer sees besides the meta tokens; 0: all
  uint32_t meta_tokens;            // learned vectors run before every sequence (Hymba)
  uint32_t ssm_inner;              // Mamba d_inner; 0 when the model has no SSM
  uint32_t ssm_state;              // d_state
  uint32_t ssm_conv;               // d_conv
  uint32_t ssm_dt_rank;            // dt_rank
  uint32_t reserved[3];            // zero
  uint8_t layer_flags[kMaxLayers];  // kLayer* bits per layer; zero past n_layers
  uint8_t kv_source[kMaxLayers];    // the layer whose KV cache a layer attends over: itself, or an
                                    // earlier layer that owns one (cross-layer KV sharing)
};
static_assert(sizeof(ModelDetail) == 320);
static_assert(offsetof(ModelDetail, layer_flags) == 64);

struct Header {
  uint32_t magic;
  uint16_t version_major;
  uint16_t version_minor;
  uint32_t header_size;           // sizeof(Header)
  uint32_t image_size;            // bytes of the whole image file
  uint32_t section_count;
  uint32_t section_table_offset;  // == header_size
  uint32_t tensor_count;
  uint32_t quantizer;             // Quantizer
  ModelConfig model;
  float outlier_ratio;            // rho the image was packed with (0 if none)
  char preset[16];                // the qmc pack preset, NUL-padded ASCII; empty when none (1.1)
  uint8_t reserved[24];           // zero
  uint32_t header_crc;            // CRC-32 of bytes [0, 124) then the section table
};
static_assert(sizeof(Header) == 128);
static_assert(offsetof(Header, model) == 32);
static_assert(offsetof(Header, preset) == 84);
static_assert(offsetof(Header, header_crc) == 124);

struct SectionEntry {
  uint8_t kind;    // SectionKind
  uint8_t window;  // Window
  uint16_t reserved;
  uint32_t file_offset;
  uint32_t window_offset;
  uint32_t length;
  uint32_t crc32;  // CRC-32 of the section's bytes
  uint32_t reserved2;
};
static_assert(sizeof(SectionEntry) == 24);

// A byte range inside one section; section == kNoSection and length 0 when absent.
struct BlobRef {
  uint32_t section;
  uint32_t offset;
  uint32_t length;
};
static_assert(sizeof(BlobRef) == 12);

struct TensorEntry {
  char name[kTensorNameSize];  // NUL-terminated, NUL-padded
  uint8_t scheme;              // Scheme
  uint8_t bits;                // bits per weight code (32, 16, 2..4)
  uint8_t cell_bits;           // bits per MLC cell (1..3); 0 for dense schemes
  uint8_t outlier_bits;        // split: bits per outlier code (4..8); 0 otherwise (1.1)
  uint16_t group_size;         // weights per scale (split: inlier codes per scale); 0 for dense schemes
  uint16_t reserved1;
  uint32_t rows;
  uint32_t cols;               // a vector is 1 x cols
  uint32_t outlier_count;
  BlobRef data;                // dense values, or packed inlier codes
  BlobRef scales;              // {fp16 scale, fp16 zero} per group, or E8M0 per block
  BlobRef outliers;            // group-affine: u32 row_start[rows + 1], then {u16 col, fp16 value};
                               // split: row starts, bitmap, outlier codes (common/split_layout.h)
};
static_assert(sizeof(TensorEntry) == 96);
static_assert(offsetof(TensorEntry, outlier_bits) == 43);
static_assert(offsetof(TensorEntry, data) == 60);

struct OutlierEntry {
  uint16_t col;
  uint16_t value;  // fp16
};
static_assert(sizeof(OutlierEntry) == 4);

}  // namespace qmc::image
