#include "host/quantize.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "common/half.h"
#include "common/quant_layout.h"
#include "common/split_layout.h"
#include "host/awq.h"
#include "host/code_stream.h"
#include "host/gptq.h"

namespace qmc::host {
namespace {

template <typename T>
void Append(std::vector<uint8_t>& out, T value) {
  uint8_t bytes[sizeof(T)];
  std::memcpy(bytes, &value, sizeof(T));
  out.insert(out.end(), bytes, bytes + sizeof(T));
}

uint16_t ToHalfChecked(float w, const std::string& name) {
  const uint16_t h = FloatToHalf(w);
  if ((h & 0x7C00u) == 0x7C00u) throw InputError("tensor " + name + ": weight " + std::to_string(w) + " overflows fp16");
  return h;
}

QuantizedTensor Dense(const TensorSpec& spec, const Tensor& tensor, image::Scheme scheme, bool reconstruct) {
  QuantizedTensor q;
  q.scheme = scheme;
  if (scheme == image::Scheme::kF32) {
    q.bits = 32;
    const auto* bytes = reinterpret_cast<const uint8_t*>(tensor.data.data());
    q.data.assign(bytes, bytes + tensor.data.size() * 4u);
    if (reconstruct) q.reconstruction = tensor.data;
  } else {
    q.bits = 16;
    q.data.resize(tensor.data.size() * 2u);
    if (reconstruct) q.reconstruction.resize(tensor.data.size());
    for (size_t i = 0; i < tensor.data.size(); ++i) {
      const uint16_t h = ToHalfChecked(tensor.data[i], spec.name);
      std::memcpy(q.data.data() + 2u * i, &h, 2);
      if (reconstruct) q.reconstruction[i] = HalfToFloat(h);
    }
  }
  return q;
}

// The codes of a group-affine tensor: rounded to nearest, by GPTQ, or with AWQ's clip search.
GroupCodes ChooseCodes(const TensorSpec& spec, const Tensor& tensor, const std::vector<bool>& is_outlier,
                       const QuantOptions& options, const InputStats* input) {
  using image::Quantizer;
  if (input != nullptr && options.quantizer == Quantizer::kAwq) return AwqGroupAffine(tensor, options, *input);
  if (input != nullptr && (options.quantizer == Quantizer::kGptq || options.gptq.enabled)) {
    return GptqGroupAffine(spec, tensor, is_outlier, options, *input);
  }
  return QuantizeGroupAffine(tensor, is_outlier, options.bits, options.group_size, options.inlier_noise);
}

QuantizedTensor GroupAffine(const TensorSpec& spec, const Tensor& tensor, QuantOptions options, bool outliers,
                            const InputStats* input) {
  if (options.group_size == kPerChannel) options.group_size = tensor.cols;
  std::vector<uint32_t> outlier_index;
  std::vector<bool> is_outlier;
  if (outliers) {
    outlier_index = SelectOutliers(tensor, options.outlier_ratio, options.balance);
    is_outlier.assign(tensor.data.size(), false);
    for (uint32_t i : outlier_index) is_outlier[i] = true;
  }
  const GroupCodes codes = ChooseCodes(spec, tensor, is_outlier, options, input);

  QuantizedTensor q;
  q.scheme = image::Scheme::kGroupAffine;
  q.bits = static_cast<uint8_t>(options.bits);
  q.cell_bits = static_cast<uint8_t>(options.cell_bits);
  q.group_size = static_cast<uint16_t>(options.group_size);
  q.data = PackCodes(codes.codes, tensor.rows, tensor.cols, options.bits, options.cell_bits);
  q.scales.reserve(codes.scale_zero.size() * 2u);
  for (uint16_t h : codes.scale_zero) Append(q.scales, h);

  const uint32_t groups = quant::GroupsPerRow(tensor.cols, options.group_size);
  if (options.reconstruct) q.reconstruction.resize(tensor.data.size());
  for (uint32_t r = 0; r < tensor.rows && options.reconstruct; ++r) {
    for (uint32_t g = 0; g < groups; ++g) {
      const size_t pair = (static_cast<size_t>(r) * groups + g) * 2u;
      const float scale = HalfToFloat(codes.scale_zero[pair]), zero = HalfToFloat(codes.scale_zero[pair + 1]);
      const size_t end = static_cast<size_t>(r) * tensor.cols + std::min(tensor.cols, (g + 1u) * options.group_size);
      // quant::DequantGroupAffine with the group's fp16 pair decoded once.
      for (size_t i = static_cast<size_t>(r) * tensor.cols + g * options.group_size; i < end; ++i) {
        q.reconstruction[i] = (static_cast<float>(codes.codes[i]) - zero) * scale;
      }
    }
  }
  if (outlier_index.empty()) return q;

  // CSR: row starts, then {column, fp16 value}; the code there decodes to 0.
  if (tensor.cols > image::kMaxOutlierColumns) {
    throw InputError("tensor " + spec.name + ": too many columns for 16-bit outlier indices");
  }
  q.outlier_count = static_cast<uint32_t>(outlier_index.size());
  std::vector<uint32_t> row_start(tensor.rows + 1u, 0);
  for (uint32_t i : outlier_index) ++row_start[i / tensor.cols + 1u];
  for (uint32_t r = 0; r < tensor.rows; ++r) row_start[r + 1u] += row_start[r];
  for (uint32_t s : row_start) Append(q.outliers, s);
  for (uint32_t i : outlier_index) {
    const uint16_t value = ToHalfChecked(tensor.data[i], spec.name);
    Append(q.outliers, static_cast<uint16_t>(i % tensor.cols));
    Append(q.outliers, value);
    if (options.reconstruct) q.reconstruction[i] += HalfToFloat(value);
  }
  return q;
}

QuantizedTensor MxInt4(const Tensor& tensor, const QuantOptions& options) {
  const MxCodes codes = QuantizeMxInt4(tensor);
  QuantizedTensor q;
  q.scheme = image::Scheme::kMxInt4;
  q.bits = 4;
  q.cell_bits = static_cast<uint8_t>(options.cell_bits);
  q.group_size = static_cast<uint16_t>(quant::kMxBlock);
  q.data = PackCodes(codes.codes, tensor.rows, tensor.cols, 4, options.cell_bits);
  q.scales = codes.scales;
  const uint32_t blocks = quant::GroupsPerRow(tensor.cols, quant::kMxBlock);
  if (options.reconstruct) q.reconstruction.resize(tensor.data.size());
  for (size_t i = 0; i < tensor.data.size() && options.reconstruct; ++i) {
    const uint8_t scale = codes.scales[(i / tensor.cols) * blocks + (i % tensor.cols) / quant::kMxBlock];
    q.reconstruction[i] = quant::DequantMxInt4(codes.codes[i], scale);
  }
  return q;
}

bool IsEmbedding(const TensorSpec& spec) { return spec.name == "token_embd.weight" || spec.name == "output.weight"; }

bool NeedsInput(const QuantOptions& o) {
  return o.quantizer == image::Quantizer::kGptq || o.quantizer == image::Quantizer::kAwq ||
         (o.quantizer == image::Quantizer::kQmc && o.gptq.enabled);
}

// The stats a calibrated quantizer uses for `spec`: null for a non-shared
// embedding, which is only looked up and so is rounded to nearest.
const InputStats* CheckedInput(const TensorSpec& spec, const QuantOptions& options, const InputStats* input) {
  if (!spec.is_matrix || !NeedsInput(options)) return nullptr;
  if (input == nullptr) {
    if (spec.name == "token_embd.weight") return nullptr;
    const char* method = options.quantizer == image::Quantizer::kAwq ? "AWQ" : "GPTQ";
    throw InputError("tensor " + spec.name + ": " + method + " needs calibration statistics (--calib)");
  }
  if (input->width != spec.cols || input->xtx.size() != static_cast<size_t>(spec.cols) * spec.cols ||
      input->mean_abs.size() != spec.cols) {
    throw InputError("tensor " + spec.name + ": calibration statistics are " + std::to_string(input->width) +
                     " wide, the matrix has " + std::to_string(spec.cols) + " columns");
  }
  return input;
}

}  // namespace

void ValidateOptions(const QuantOptions& o) {
  using image::Quantizer;
  if (o.quantizer == Quantizer::kRtn || o.quantizer == Quantizer::kQmc || o.quantizer == Quantizer::kGptq ||
      o.quantizer == Quantizer::kAwq) {
    if (o.bits < 2 || o.bits > 4) throw InputError("--bits must be 2, 3 or 4");
    if (o.group_size != kPerChannel && (o.group_size < 1 || o.group_size > 4096)) {
      throw InputError("--group must be between 1 and 4096, or channel");
    }
  }
  if (o.cell_bits < 1 || o.cell_bits > 3) throw InputError("--cell-bits must be 1, 2 or 3");
  if (o.quantizer == Quantizer::kQmc) {
    if (!(o.outlier_ratio >= 0.0 && o.outlier_ratio <= 0.9)) throw InputError("--outlier-ratio must be between 0 and 0.9");
    if (o.outlier_bits != 0 && (o.outlier_bits < quant::kMinOutlierBits || o.outlier_bits > quant::kMaxOutlierBits)) {
      throw InputError("--outlier-bits must be 4 to 8, or fp16");
    }
  }
  if (!(o.inlier_noise >= 0.0 && o.inlier_noise <= 4.0)) throw InputError("inlier noise weight must be in [0, 4]");
  if (o.quantizer == Quantizer::kGptq || o.gptq.enabled) {
    if (!(o.gptq.damp >= 0.0 && o.gptq.damp <= 1.0)) throw InputError("GPTQ dampening must be in [0, 1]");
    if (o.gptq.block < 1 || o.gptq.block > 4096) throw InputError("GPTQ block must be between 1 and 4096 columns");
  }
}

std::vector<uint8_t> PackCodes(const std::vector<uint8_t>& codes, uint32_t rows, uint32_t cols, uint32_t bits,
                               uint32_t cell_bits) {
  const uint32_t words_per_row = quant::WordsPerRow(cols, bits, cell_bits);
  std::vector<uint32_t> words(static_cast<size_t>(rows) * words_per_row, 0u);
  for (uint32_t r = 0; r < rows; ++r) {
    CodeStream row(words.data() + static_cast<size_t>(r) * words_per_row, bits, cell_bits);
    for (uint32_t c = 0; c < cols; ++c) row.Put(codes[static_cast<size_t>(r) * cols + c]);
    row.Flush();
  }
  std::vector<uint8_t> bytes(words.size() * 4u);
  std::memcpy(bytes.data(), words.data(), bytes.size());
  return bytes;
}

image::Scheme SchemeFor(const TensorSpec& spec, const QuantOptions& options) {
  using image::Quantizer;
  if (!spec.is_matrix || options.quantizer == Quantizer::kF32) return image::Scheme::kF32;
  if (options.quantizer == Quantizer::kFp16 || (IsEmbedding(spec) && options.embedding == EmbeddingMode::kFp16)) {
    return image::Scheme::kF16;
  }
  if (options.quantizer == Quantizer::kMxInt4) return image::Scheme::kMxInt4;
  if (options.quantizer == Quantizer::kQmc && options.outlier_bits != 0) {
    if (spec.cols > 65535) throw InputError("tensor " + spec.name + ": rows wider than 65535 columns");
    return image::Scheme::kSplit;
  }
  if (spec.cols > 65535 && options.group_size == kPerChannel) {
    throw InputError("tensor " + spec.name + ": rows too wide for one channel group");
  }
  return image::Scheme::kGroupAffine;
}

// The tensor in `scheme`, without its name and shape.
QuantizedTensor QuantizeAs(image::Scheme scheme, const TensorSpec& spec, const Tensor& tensor, const QuantOptions& options,
                           const InputStats* input) {
  using image::Quantizer;
  switch (scheme) {
    case image::Scheme::kF32:
      return Dense(spec, tensor, image::Scheme::kF32, options.reconstruct);
    case image::Scheme::kF16:
      return Dense(spec, tensor, image::Scheme::kF16, options.reconstruct);
    case image::Scheme::kMxInt4:
      return MxInt4(tensor, options);
    case image::Scheme::kSplit:
      return input != nullptr ? GptqSplit(spec, tensor, options, *input) : QuantizeSplit(tensor, options);
    case image::Scheme::kGroupAffine:
      return GroupAffine(spec, tensor, options, options.quantizer == Quantizer::kQmc, input);
  }
  throw std::logic_error("unknown scheme");
}

QuantizedTensor QuantizeTensor(const TensorSpec& spec, const Tensor& tensor, const QuantOptions& options,
                               const InputStats* input) {
  input = CheckedInput(spec, options, input);
  QuantizedTensor q;
  try {
    q = QuantizeAs(SchemeFor(spec, options), spec, tensor, options, input);
  } catch (const ScaleRangeError& e) {
    throw InputError("tensor " + spec.name + ", " + e.what());
  }
  q.name = spec.name;
  q.rows = tensor.rows;
  q.cols = tensor.cols;
  q.is_matrix = spec.is_matrix;
  return q;
}

}  // namespace qmc::host
