#include "host/quantize.h"

#include <gtest/gtest.h>

#include "common/model_tensors.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>

#include "common/dequantize.h"
#include "common/half.h"
#include "common/quant_layout.h"
#include "host/pack.h"
#include "tests/tiny_model.h"

namespace qmc::host {
namespace {

using image::Quantizer;

std::vector<Checkpoint> Models() {
  std::vector<Checkpoint> models = {testing::TinyCheckpoint()};
  const std::filesystem::path shared = QMC_SHARED_DIR;
  if (std::filesystem::exists(shared / "models/stories260K.bin")) {
    Checkpoint c = LoadLlama2c(shared / "models/stories260K.bin");
    c.tokenizer = LoadTokenizerFile(shared / "models/tok512.bin", c.config.vocab_size);
    models.push_back(std::move(c));
  }
  return models;
}

double RelativeError(const std::vector<float>& w, const std::vector<float>& r) {
  double num = 0, den = 0;
  for (size_t i = 0; i < w.size(); ++i) {
    num += (static_cast<double>(w[i]) - r[i]) * (static_cast<double>(w[i]) - r[i]);
    den += static_cast<double>(w[i]) * w[i];
  }
  return std::sqrt(num / den);
}

// What the image decodes to (through the device-side reader) must be what
// the quantizer says it reconstructs, bit for bit, for every scheme and layout.
TEST(Quantize, ImageDecodesToTheQuantizersReconstructionBitForBit) {
  struct Case {
    Quantizer q;
    uint32_t bits, cell_bits, group;
    OutlierBalance balance;
    uint32_t outlier_bits = 0;
    double rho = 0.01;
  };
  std::vector<Case> cases = {{Quantizer::kF32, 3, 3, 64, OutlierBalance::kTensor},
                             {Quantizer::kFp16, 3, 3, 64, OutlierBalance::kTensor},
                             {Quantizer::kMxInt4, 4, 2, 32, OutlierBalance::kTensor},
                             {Quantizer::kMxInt4, 4, 3, 32, OutlierBalance::kTensor},
                             {Quantizer::kQmc, 3, 3, 64, OutlierBalance::kRow}};
  for (uint32_t bits = 2; bits <= 4; ++bits) {
    for (uint32_t cell = 1; cell <= 3; ++cell) {
      cases.push_back({Quantizer::kQmc, bits, cell, 64, OutlierBalance::kTensor});
      cases.push_back({Quantizer::kRtn, bits, cell, 32, OutlierBalance::kTensor});
      cases.push_back({Quantizer::kQmc, bits, cell, kPerChannel, OutlierBalance::kTensor, 5, 0.3});
    }
  }
  cases.push_back({Quantizer::kRtn, 4, 2, kPerChannel, OutlierBalance::kTensor});
  cases.push_back({Quantizer::kQmc, 3, 2, 32, OutlierBalance::kRow, 4, 0.5});
  cases.push_back({Quantizer::kQmc, 3, 3, 17, OutlierBalance::kTensor, 8, 0.1});
  cases.push_back({Quantizer::kQmc, 2, 1, kPerChannel, OutlierBalance::kTensor, 6, 0.9});
  cases.push_back({Quantizer::kQmc, 3, 3, kPerChannel, OutlierBalance::kTensor, 5, 0.0});
  for (const Checkpoint& model : Models()) {
    for (const Case& c : cases) {
      QuantOptions o;
      o.quantizer = c.q;
      o.bits = c.bits;
      o.cell_bits = c.cell_bits;
      o.group_size = c.group;
      o.balance = c.balance;
      o.outlier_ratio = c.rho;
      o.outlier_bits = c.outlier_bits;
      const PackedModel packed = PackModel(model, o);
      const image::ImageView view = image::ImageView::OpenFile(packed.image).value();
      ASSERT_TRUE(view.Validate().ok()) << view.Validate().what;
      for (uint32_t i = 0; i < view.tensor_count(); ++i) {
        const image::TensorEntry t = view.tensor(i);
        const QuantizedTensor& q = packed.tensors[i];
        std::vector<float> row(t.cols);
        for (uint32_t r = 0; r < t.rows; ++r) {
          image::DequantizeRow(view, t, r, row.data());
          ASSERT_EQ(std::memcmp(row.data(), q.reconstruction.data() + static_cast<size_t>(r) * t.cols, t.cols * 4u), 0)
              << model.format << " " << q.name << " row " << r << " scheme " << static_cast<int>(c.q) << " bits "
              << c.bits << " cell " << c.cell_bits;
        }
      }
    }
  }
}

TEST(Quantize, OutlierCountIsRoundRhoTimesN) {
  for (const Checkpoint& model : Models()) {
    for (OutlierBalance balance : {OutlierBalance::kTensor, OutlierBalance::kRow}) {
      for (double rho : {0.0, 0.001, 0.005, 0.0123}) {
        QuantOptions o;
        o.outlier_ratio = rho;
        o.balance = balance;
        for (const TensorSpec& spec : RequiredTensors(model.config, model.detail)) {
          if (!spec.is_matrix) continue;
          const QuantizedTensor q = QuantizeTensor(spec, model.tensors.at(spec.name), o);
          const double n = static_cast<double>(spec.rows) * spec.cols;
          EXPECT_EQ(q.outlier_count, static_cast<uint32_t>(std::llround(rho * n))) << spec.name << " rho " << rho;
        }
      }
    }
  }
}

// At an outlier the inlier code decodes to exactly 0, so the weight is its fp16 value.
TEST(Quantize, OutliersAreTheLargestWeightsAndExact) {
  const Checkpoint model = Models().back();
  QuantOptions o;
  o.outlier_ratio = 0.01;
  const TensorSpec spec = RequiredTensors(model.config, model.detail)[2];  // blk.0.attn_q.weight
  const Tensor& w = model.tensors.at(spec.name);
  const std::vector<uint32_t> chosen = SelectOutliers(w, o.outlier_ratio, o.balance);
  ASSERT_FALSE(chosen.empty());
  float smallest_chosen = INFINITY;
  std::vector<bool> is_outlier(w.data.size(), false);
  for (uint32_t i : chosen) {
    is_outlier[i] = true;
    smallest_chosen = std::min(smallest_chosen, std::fabs(w.data[i]));
  }
  for (size_t i = 0; i < w.data.size(); ++i) {
    if (!is_outlier[i]) {
      EXPECT_LE(std::fabs(w.data[i]), smallest_chosen);
    }
  }
  const QuantizedTensor q = QuantizeTensor(spec, w, o);
  for (uint32_t i : chosen) EXPECT_EQ(q.reconstruction[i], RoundToHalf(w.data[i])) << i;
}

TEST(Quantize, RowBalanceSpreadsOutliersOverRows) {
  const Checkpoint model = Models().back();
  const TensorSpec spec = RequiredTensors(model.config, model.detail)[2];
  const Tensor& w = model.tensors.at(spec.name);
  const std::vector<uint32_t> chosen = SelectOutliers(w, 2.5 / w.cols, OutlierBalance::kRow);
  std::vector<uint32_t> per_row(w.rows, 0);
  for (uint32_t i : chosen) ++per_row[i / w.cols];
  for (uint32_t n : per_row) {
    EXPECT_GE(n, 2u);
    EXPECT_LE(n, 3u);
  }
}

// The clipping search never does worse than the plain min/max range.
TEST(Quantize, ClippingSearchBeatsMinMaxPerGroup) {
  const Checkpoint model = Models().back();
  const Tensor& w = model.tensors.at("blk.0.ffn_down.weight");
  for (uint32_t bits = 2; bits <= 4; ++bits) {
    const uint32_t group = 64, max_code = (1u << bits) - 1u;
    const GroupCodes codes = QuantizeGroupAffine(w, {}, bits, group, 0.0);
    const uint32_t groups = quant::GroupsPerRow(w.cols, group);
    for (uint32_t r = 0; r < w.rows; ++r) {
      for (uint32_t g = 0; g < groups; ++g) {
        const uint32_t first = g * group, n = std::min(group, w.cols - first);
        const float* x = w.data.data() + static_cast<size_t>(r) * w.cols + first;
        float lo = 0, hi = 0;
        for (uint32_t i = 0; i < n; ++i) {
          lo = std::min(lo, x[i]);
          hi = std::max(hi, x[i]);
        }
        const float s = RoundToHalf((hi - lo) / static_cast<float>(max_code));
        const float z = std::clamp(std::nearbyint(-lo / s), 0.0f, static_cast<float>(max_code));
        double minmax = 0, searched = 0;
        const size_t pair = (static_cast<size_t>(r) * groups + g) * 2u;
        for (uint32_t i = 0; i < n; ++i) {
          const float q = std::clamp(std::nearbyint(x[i] / s + z), 0.0f, static_cast<float>(max_code));
          minmax += std::pow(x[i] - (q - z) * s, 2.0);
          const uint8_t code = codes.codes[static_cast<size_t>(r) * w.cols + first + i];
          ASSERT_LE(code, max_code);
          searched += std::pow(x[i] - quant::DequantGroupAffine(code, codes.scale_zero[pair], codes.scale_zero[pair + 1]), 2.0);
        }
        EXPECT_LE(searched, minmax * (1 + 1e-6) + 1e-12) << "row " << r << " group " << g << " bits " << bits;
      }
    }
  }
}

TEST(Quantize, ErrorFallsWithBitsAndOutliersHelp) {
  const Checkpoint model = Models().back();
  const TensorSpec spec = RequiredTensors(model.config, model.detail)[2];
  const Tensor& w = model.tensors.at(spec.name);
  double previous = INFINITY;
  for (uint32_t bits = 2; bits <= 4; ++bits) {
    QuantOptions rtn;
    rtn.quantizer = Quantizer::kRtn;
    rtn.bits = bits;
    QuantOptions qmc = rtn;
    qmc.quantizer = Quantizer::kQmc;
    qmc.outlier_ratio = 0.01;
    const double e_rtn = RelativeError(w.data, QuantizeTensor(spec, w, rtn).reconstruction);
    const double e_qmc = RelativeError(w.data, QuantizeTensor(spec, w, qmc).reconstruction);
    EXPECT_LT(e_rtn, previous);
    EXPECT_LT(e_qmc, e_rtn) << bits;
    previous = e_rtn;
  }
}

TEST(Quantize, MxInt4FollowsTheOcpSharedExponent) {
  Tensor w{1, 40, std::vector<float>(40)};
  for (uint32_t i = 0; i < 40; ++i) w.data[i] = 0.01f * static_cast<float>(i) - 0.1f;
  w.data[5] = 0.75f;  // block 0 amax: floor(log2 0.75) = -1, so the scale is 2^-3
  const MxCodes codes = QuantizeMxInt4(w);
  ASSERT_EQ(codes.scales.size(), 2u);
  EXPECT_EQ(codes.scales[0], 127 - 1 - 2);
  EXPECT_EQ(quant::DequantMxInt4(codes.codes[5], codes.scales[0]), 0.75f);
  // block 1 (8 weights, partial): amax 0.29 -> floor(log2) = -2, scale 2^-4.
  EXPECT_EQ(codes.scales[1], 127 - 2 - 2);
  const Tensor zeros{1, 32, std::vector<float>(32, 0.0f)};
  EXPECT_EQ(QuantizeMxInt4(zeros).codes, std::vector<uint8_t>(32, 0));
}

TEST(Quantize, SameInputSameBytes) {
  const Checkpoint model = Models().back();
  QuantOptions o;
  EXPECT_EQ(PackModel(model, o).image, PackModel(model, o).image);
}

TEST(Quantize, RejectsNonFiniteWeightsAndBadOptions) {
  Checkpoint model = testing::TinyCheckpoint();
  model.tensors["blk.1.ffn_up.weight"].data[7] = NAN;
  try {
    PackModel(model, {});
    FAIL() << "NaN accepted";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("non-finite"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("blk.1.ffn_up.weight"), std::string::npos) << e.what();
  }
  QuantOptions bad;
  bad.bits = 5;
  EXPECT_THROW(PackModel(testing::TinyCheckpoint(), bad), InputError);
}

// An fp16 scale that overflows, or flushes to zero while the group's weights
// are not all zero, is an error naming the tensor, row and group — not a
// group that silently decodes to infinities or zeros.
TEST(Quantize, ScalesFp16CannotHoldNameTheTensorAndGroup) {
  QuantOptions rtn;
  rtn.quantizer = image::Quantizer::kRtn;
  QuantOptions exact;  // qmc, exact outliers
  QuantOptions split;
  split.outlier_bits = 8;
  split.outlier_ratio = 0.01;
  struct Case {
    float value;
    const char* says;
  };
  for (const Case c : {Case{1e6f, "overflows"}, Case{1e-9f, "flushes to zero"}}) {
    for (const QuantOptions& o : {rtn, exact, split}) {
      const TensorSpec spec{"blk.0.test.weight", 4, 128, true};
      Tensor w{4, 128, std::vector<float>(4 * 128, 0.0f)};
      for (uint32_t i = 0; i < 64; ++i) w.data[2 * 128 + 64 + i] = (i % 2 ? c.value : -c.value) * (1.0f + i / 64.0f);
      try {
        QuantizeTensor(spec, w, o);
        ADD_FAILURE() << c.says << ": accepted";
      } catch (const InputError& e) {
        const std::string m = e.what();
        EXPECT_EQ(m.rfind("tensor blk.0.test.weight, row 2, ", 0), 0u) << m;
        EXPECT_NE(m.find(c.says), std::string::npos) << m;
      }
    }
  }
  // All zero is no error: that group's scale is 0 and decodes exactly.
  const Tensor zeros{4, 128, std::vector<float>(4 * 128, 0.0f)};
  EXPECT_NO_THROW(QuantizeTensor({"blk.0.test.weight", 4, 128, true}, zeros, rtn));
}

// Rows quantized on several threads: a bad group in another thread's rows
// still ends in the error, not in std::terminate.
TEST(Quantize, ABadGroupOnAnotherThreadIsStillAnError) {
  const uint32_t rows = 2048, cols = 1024;
  Tensor w{rows, cols, std::vector<float>(size_t{rows} * cols, 0.01f)};
  w.data[size_t{rows - 1} * cols + 5] = 1e6f;
  QuantOptions rtn;
  rtn.quantizer = image::Quantizer::kRtn;
  try {
    QuantizeTensor({"blk.0.big.weight", rows, cols, true}, w, rtn);
    ADD_FAILURE() << "accepted";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("row 2047, group 0"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace qmc::host
