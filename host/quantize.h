// Turning checkpoint tensors into image tensors: every quantizer (QMC and
// its baselines) produces the same QuantizedTensor, so comparisons are one
// flag apart.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/image_format.h"
#include "host/checkpoint.h"

namespace qmc::host {

enum class OutlierBalance { kTensor, kRow };

// Where the embedding / classifier matrices go: quantized like the other
// matrices, or kept in fp16.
enum class EmbeddingMode { kQuantize, kFp16 };

struct QuantOptions {
  image::Quantizer quantizer = image::Quantizer::kQmc;
  uint32_t bits = 3;         // rtn, qmc
  uint32_t group_size = 64;  // rtn, qmc
  uint32_t cell_bits = 3;    // all packed schemes
  double outlier_ratio = 0.005;
  OutlierBalance balance = OutlierBalance::kTensor;
  EmbeddingMode embedding = EmbeddingMode::kQuantize;
};

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
  uint16_t group_size = 0;
  std::vector<uint8_t> data;      // dense values or packed code words, little-endian
  std::vector<uint8_t> scales;    // {fp16 scale, fp16 zero} per group, or E8M0 per block
  std::vector<uint8_t> outliers;  // CSR: u32 row_start[rows + 1], then {u16 col, fp16 value}
  uint32_t outlier_count = 0;
  std::vector<float> reconstruction;  // the weights the image decodes to
};

QuantizedTensor QuantizeTensor(const TensorSpec& spec, const Tensor& tensor, const QuantOptions& options);

// Per group of `group_size` along each row (the last group may be partial):
// asymmetric `bits`-bit codes with an integer zero point, the clipping range
// searched for the least squared error over the non-outlier weights. Codes
// at outlier positions equal the zero point, so they decode to exactly 0.
// `is_outlier` has rows*cols entries (or is empty for none).
struct GroupCodes {
  std::vector<uint8_t> codes;        // one per weight, unpacked
  std::vector<uint16_t> scale_zero;  // fp16 {scale, zero} per group
};
GroupCodes QuantizeGroupAffine(const Tensor& tensor, const std::vector<bool>& is_outlier, uint32_t bits,
                               uint32_t group_size);

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
