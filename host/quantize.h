// Turning checkpoint tensors into image tensors: every quantizer (QMC and
// its baselines) produces the same QuantizedTensor, so comparisons are one
// flag apart.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/image_format.h"
#include "host/calibration.h"
#include "host/checkpoint.h"

namespace qmc::host {

enum class OutlierBalance { kTensor, kRow };

// Where the embedding / classifier matrices go: quantized like the other
// matrices, or kept in fp16.
enum class EmbeddingMode { kQuantize, kFp16 };

// GPTQ's column-by-column rounding with error feedback (host/gptq.h).
struct GptqOptions {
  bool enabled = false;    // qmc: round with GPTQ's error feedback (needs the tensor's InputStats)
  double damp = 0.01;      // H + damp * mean(diag H) * I
  bool act_order = false;  // columns in descending diag(H) order; groups stay the natural-order groups
  uint32_t block = 128;    // lazy-batch width in columns
};

struct QuantOptions {
  image::Quantizer quantizer = image::Quantizer::kQmc;
  uint32_t bits = 3;         // rtn, qmc: inlier code bits
  uint32_t group_size = 64;  // rtn, qmc: weights (split: inliers) per scale; kPerChannel: one per row
  uint32_t cell_bits = 3;    // all packed schemes
  double outlier_ratio = 0.005;
  OutlierBalance balance = OutlierBalance::kTensor;
  EmbeddingMode embedding = EmbeddingMode::kQuantize;
  // qmc: 0 keeps outliers exact (fp16, group-affine scheme); 4..8 quantizes
  // them per row to that many bits (the paper's split scheme).
  uint32_t outlier_bits = 0;
  // The noise-aware scale objective's weight: the expected squared code error
  // of one stored inlier, in code levels (p- + p+ for ±1-level errors; from
  // the device profile and the cell mode). 0: plain MSE.
  double inlier_noise = 0.0;
  GptqOptions gptq;    // used by gptq (always on) and by qmc when enabled
  std::string preset;  // recorded in the image header
  // Fill QuantizedTensor::reconstruction; PackImage, which never reads it, turns it off.
  bool reconstruct = true;
};

inline constexpr uint32_t kPerChannel = 0;

// Throws InputError when the options make no sense together.
void ValidateOptions(const QuantOptions& options);

struct QuantizedTensor {
  std::string name;
  uint32_t rows = 0;
  uint32_t cols = 0;
  bool is_matrix = false;
  image::Scheme scheme = image::Scheme::kF32;
  uint8_t bits = 32;
  uint8_t cell_bits = 0;
  uint8_t outlier_bits = 0;  // split only
  uint16_t group_size = 0;
  std::vector<uint8_t> data;      // dense values or packed code words, little-endian
  std::vector<uint8_t> scales;    // {fp16 scale, fp16 zero} per group, or E8M0 per block
  std::vector<uint8_t> outliers;  // CSR: u32 row_start[rows + 1], then {u16 col, fp16 value}; split: index + codes
  uint32_t outlier_count = 0;
  std::vector<float> reconstruction;  // the weights the image decodes to (empty without QuantOptions::reconstruct)
};

// `input`: the statistics of the tensor's input (host/calibration.h), which
// gptq, awq and qmc with GPTQ need for every matrix but a non-shared
// embedding (rounded to nearest without them); InputError when missing.
QuantizedTensor QuantizeTensor(const TensorSpec& spec, const Tensor& tensor, const QuantOptions& options,
                               const InputStats* input = nullptr);

// The scheme QuantizeTensor gives `spec` under `options` (norms and biases
// f32; the embedding fp16 with EmbeddingMode::kFp16). Throws InputError for
// rows too wide for the scheme.
image::Scheme SchemeFor(const TensorSpec& spec, const QuantOptions& options);

// The scale search shared by every affine quantizer: candidate ranges are
// the value range shrunk by 1, 1 − step, …, 1 − (steps − 1)·step. With
// `holds_zero` the range is widened to hold 0 and shrunk towards it, and the
// zero point is a code (inliers: 0 decodes exactly); without, the range is
// the values' own, shrunk about its middle, and the zero point any integer
// fp16 holds exactly (|zero| ≤ 2048; outliers, often all of one sign). The
// objective is Σ (w − ŵ)² + n · noise · scale², the paper's noise-aware loss.
struct AffineGrid {
  int steps;
  float step;
  bool holds_zero;
};
inline constexpr AffineGrid kGroupGrid{25, 0.02f, true};   // rtn and exact-outlier qmc
inline constexpr AffineGrid kInlierGrid{50, 0.015f, true};  // the split scheme's inliers
inline constexpr AffineGrid kOutlierGrid{50, 0.015f, false};
struct AffineFit {
  uint16_t scale = 0;  // fp16
  uint16_t zero = 0;   // fp16, an integer
  double loss = 0.0;
};
AffineFit FitAffine(const float* w, uint32_t n, uint32_t max_code, const AffineGrid& grid, double noise);
// The same search summing every candidate's loss in element order: the
// reference FitAffine's vectorized search is held equal to.
AffineFit FitAffineReference(const float* w, uint32_t n, uint32_t max_code, const AffineGrid& grid, double noise);
// The one candidate of that search whose range is shrunk by `shrink` (loss
// unset): AWQ's clip search weighs candidates by the output error instead.
AffineFit ShrunkAffine(const float* w, uint32_t n, uint32_t max_code, bool holds_zero, float shrink);
// A fit fp16 cannot hold: its scale overflows, or flushes to zero while the
// weights are not all zero (they would decode as infinities or silently as
// zeros). CheckFit throws it naming the row and group (kOutlierGroup: the
// split scheme's outlier grid); QuantizeTensor adds the tensor's name.
class ScaleRangeError : public InputError {
 public:
  using InputError::InputError;
};
inline constexpr uint32_t kOutlierGroup = UINT32_MAX;
void CheckFit(const AffineFit& fit, const float* w, uint32_t n, uint32_t row, uint32_t group);
// The code of w under a fit (clamped to [0, max_code]).
uint32_t AffineCode(float w, const AffineFit& fit, uint32_t max_code);
// AffineCode of w[0..n) into codes[0..n) (max_code ≤ 255).
void AffineCodes(const float* w, uint32_t n, const AffineFit& fit, uint32_t max_code, uint8_t* codes);

// Per group of `group_size` along each row (the last group may be partial):
// asymmetric `bits`-bit codes with an integer zero point, the clipping range
// searched for the least squared error over the non-outlier weights. Codes
// at outlier positions equal the zero point, so they decode to exactly 0.
// `is_outlier` has rows*cols entries (or is empty for none).
struct GroupCodes {
  std::vector<uint8_t> codes;        // one per weight, unpacked
  std::vector<uint16_t> scale_zero;  // fp16 {scale, zero} per group
};
// `noise` weighs the noise-aware term (QuantOptions::inlier_noise).
GroupCodes QuantizeGroupAffine(const Tensor& tensor, const std::vector<bool>& is_outlier, uint32_t bits,
                               uint32_t group_size, double noise);

// The paper's split (image::Scheme::kSplit) with options.outlier_bits > 0,
// in two steps so GPTQ can choose the codes: FitSplit selects the outliers
// and fits every grid from the weights, with codes rounded to nearest;
// WriteSplit lays codes and fits out as the scheme stores them.
struct SplitCodes {
  std::vector<bool> is_outlier;  // rows * cols
  std::vector<AffineFit> fits;   // per row SplitScalePairsPerRow: the outliers' fit, then each inlier group's
  std::vector<uint8_t> codes;    // rows * cols: the outlier or inlier code of each weight
};
SplitCodes FitSplit(const Tensor& tensor, const QuantOptions& options);
QuantizedTensor WriteSplit(const SplitCodes& split, uint32_t rows, uint32_t cols, const QuantOptions& options);
QuantizedTensor QuantizeSplit(const Tensor& tensor, const QuantOptions& options);

// OCP MX INT4: blocks of 32 along each row share an E8M0 exponent.
struct MxCodes {
  std::vector<uint8_t> codes;   // 4-bit two's complement, one per weight
  std::vector<uint8_t> scales;  // E8M0 per block
};
MxCodes QuantizeMxInt4(const Tensor& tensor);

// Flat indices (ascending) of the round(ratio * n) largest-|w| weights, over
// the tensor or spread evenly over the rows.
std::vector<uint32_t> SelectOutliers(const Tensor& tensor, double ratio, OutlierBalance balance);

// Packs one code per weight into words, row by row (common/quant_layout.h).
std::vector<uint8_t> PackCodes(const std::vector<uint8_t>& codes, uint32_t rows, uint32_t cols, uint32_t bits,
                               uint32_t cell_bits);

}  // namespace qmc::host
