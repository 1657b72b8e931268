// The optimised matvec kernels against the reference, the definition:
// code unpacking exactly, products within f32 rounding, and the engine's
// greedy tokens.
//
// Tolerance: |y − y_ref| ≤ 2e-6 · Σ_c |w_c·x_c| per row (w the decoded
// weights). Both kernels round the same products and sums in different
// orders; the largest difference seen here is 3.4e-7 of that sum. One code
// read one level off moves a row of these widths (≤ 288 columns) by ~1e-3
// of it, hundreds of times the tolerance.
#include "common/matvec.h"

#include <gtest/gtest.h>

#include "common/model_tensors.h"

#include <bit>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "common/dequantize.h"
#include "common/engine.h"
#include "common/kernels/fast_half.h"
#include "common/kernels/unpack_codes.h"
#include "common/half.h"
#include "common/quant_layout.h"
#include "common/split_layout.h"
#include "host/pack.h"
#include "tests/kernel_equality/kernel_equality.h"
#include "tests/random_checkpoint.h"
#if QMC_AVX2_KERNELS
#include "common/kernels/matvec_avx2.h"
#endif

namespace qmc {
namespace {

namespace fs = std::filesystem;
using image::Quantizer;

constexpr double kTolerance = kernel_equality::kTolerance;
const fs::path kShared = QMC_SHARED_DIR;

std::vector<MatVecKernel> OptimisedKernels() {
  std::vector<MatVecKernel> kernels = {MatVecKernel::kScalar};
  for (MatVecKernel kernel : {MatVecKernel::kAvx2, MatVecKernel::kAvx512, MatVecKernel::kHelium}) {
    if (MatVecKernelAvailable(kernel)) kernels.push_back(kernel);
  }
  return kernels;
}

const char* Name(MatVecKernel kernel) {
  switch (kernel) {
    case MatVecKernel::kReference: return "reference";
    case MatVecKernel::kScalar: return "scalar";
    case MatVecKernel::kAvx2: return "avx2";
    case MatVecKernel::kAvx512: return "avx512";
    case MatVecKernel::kHelium: return "helium";
  }
  return "?";
}

// Every tensor of the image, by every optimised kernel, on a random x: each
// output within the tolerance of the reference's.
void ExpectKernelsMatchReference(const host::PackedModel& packed, const std::string& label, uint32_t seed) {
  const image::ImageView view = image::ImageView::OpenFile(packed.image).value();
  EXPECT_TRUE(view.Validate().ok()) << label;
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (uint32_t i = 0; i < view.tensor_count(); ++i) {
    const image::TensorEntry t = view.tensor(i);
    const std::vector<float>& w = packed.tensors[i].reconstruction;
    std::vector<float> x(t.cols), expected(t.rows), row(t.cols);
    for (float& v : x) v = normal(rng);
    MatVec(view, t, x.data(), expected.data(), row.data(), MatVecKernel::kReference);
    for (MatVecKernel kernel : OptimisedKernels()) {
      std::vector<float> y(t.rows), buffer(t.cols);  // exactly t.cols: an overrun shows under ASan
      MatVec(view, t, x.data(), y.data(), buffer.data(), kernel);
      for (uint32_t r = 0; r < t.rows; ++r) {
        double magnitude = 0.0;
        for (uint32_t c = 0; c < t.cols; ++c) magnitude += std::fabs(double{w[size_t{r} * t.cols + c]} * x[c]);
        const double error = std::fabs(double{y[r]} - expected[r]);
        ASSERT_LE(error, kTolerance * magnitude)
            << label << " " << t.name << " row " << r << " kernel " << Name(kernel) << ": " << y[r] << " vs "
            << expected[r];
      }
    }
  }
}

// The shared check (tests/kernel_equality), which the Cortex-M55 target
// program runs too: every tensor of the image, every optimised kernel.
void ExpectSharedCheckPasses(const host::PackedModel& packed, const std::string& label) {
  const image::ImageView view = image::ImageView::OpenFile(packed.image).value();
  ASSERT_TRUE(view.Validate().ok()) << label;
  for (MatVecKernel kernel : OptimisedKernels()) {
    for (uint32_t i = 0; i < view.tensor_count(); ++i) {
      const image::TensorEntry t = view.tensor(i);
      std::vector<float> x(t.cols), row(t.cols), y(t.rows), y_reference(t.rows);  // exact sizes, for ASan
      const kernel_equality::TensorResult result =
          kernel_equality::CheckTensor(view, i, kernel, i, {x, row, y, y_reference});
      EXPECT_TRUE(result.pass) << label << " " << t.name << " kernel " << Name(kernel) << ": row "
                               << result.worst_row << " off by " << result.worst << " of its magnitude";
    }
  }
}

// Whether some row of some tensor has an outlier in its last column.
bool HasOutlierAtRowEnd(const image::ImageView& view) {
  for (uint32_t i = 0; i < view.tensor_count(); ++i) {
    const image::TensorEntry t = view.tensor(i);
    if (t.outlier_count == 0) continue;
    const uint8_t* csr = view.blob(t.outliers).data();
    const auto* entries = reinterpret_cast<const image::OutlierEntry*>(csr + (t.rows + 1u) * 4u);
    for (uint32_t k = 0; k < t.outlier_count; ++k) {
      if (entries[k].col == t.cols - 1) return true;
    }
  }
  return false;
}

host::PackedModel Pack(const host::Checkpoint& checkpoint, Quantizer quantizer, uint32_t bits, uint32_t cell_bits,
                       uint32_t group_size, double outlier_ratio) {
  host::QuantOptions options;
  options.quantizer = quantizer;
  options.bits = bits;
  options.cell_bits = cell_bits;
  options.group_size = group_size;
  options.outlier_ratio = outlier_ratio;
  return host::PackModel(checkpoint, options);
}

TEST(FastHalfToFloat, EqualsHalfToFloatBitForBitOnEveryHalf) {
  for (uint32_t h = 0; h <= 0xFFFFu; ++h) {
    const auto half = static_cast<uint16_t>(h);
    ASSERT_EQ(std::bit_cast<uint32_t>(kernels::FastHalfToFloat(half)), std::bit_cast<uint32_t>(HalfToFloat(half))) << h;
  }
}

TEST(UnpackCodes, EveryKernelReadsEachCodeAsReadCodeDoes) {
  std::mt19937 rng(5);
  for (uint32_t bits = 2; bits <= 4; ++bits) {
    for (uint32_t cell_bits = 1; cell_bits <= 3; ++cell_bits) {
      for (uint32_t cols = 1; cols <= 260; cols += (cols < 130 ? 1 : 7)) {
        // Random words, the bits of a 30-bit word above its cells included:
        // no kernel may read them.
        std::vector<uint32_t> words(quant::WordsPerRow(cols, bits, cell_bits));
        for (uint32_t& word : words) word = static_cast<uint32_t>(rng());
        for (uint32_t flip : {0u, 8u}) {
          std::vector<float> scalar(cols), avx2(cols);
          kernels::UnpackCodes(words.data(), cols, bits, cell_bits, flip, scalar.data());
#if QMC_AVX2_KERNELS
          if (kernels::Avx2Supported()) kernels::UnpackCodesAvx2(words.data(), cols, bits, cell_bits, flip, avx2.data());
#endif
          for (uint32_t k = 0; k < cols; ++k) {
            const auto expected = static_cast<float>(quant::ReadCode(words.data(), k, bits, cell_bits) ^ flip);
            ASSERT_EQ(scalar[k], expected) << "scalar bits " << bits << " cells " << cell_bits << " cols " << cols
                                           << " code " << k;
            if (MatVecKernelAvailable(MatVecKernel::kAvx2)) {
              ASSERT_EQ(avx2[k], expected) << "avx2 bits " << bits << " cells " << cell_bits << " cols " << cols
                                           << " code " << k;
            }
          }
        }
      }
    }
  }
}

// (bits, cell_bits): every pair the format allows.
class PackedKernels : public ::testing::TestWithParam<std::tuple<uint32_t, uint32_t>> {};

// Group-affine, with outliers (qmc) and without (rtn), over widths 288, 172
// and 97 (partial groups) and group sizes dividing them or not: multiples
// of 8 and one group a row (the fused AVX2 path), 12 (unpacked first).
TEST_P(PackedKernels, EqualTheReferenceOnRandomTensors) {
  const auto [bits, cell_bits] = GetParam();
  const host::Checkpoint shapes[] = {testing::RandomCheckpoint(288, 172, 1), testing::RandomCheckpoint(97, 40, 2)};
  for (const host::Checkpoint& checkpoint : shapes) {
    for (uint32_t group_size : {32u, 64u, 128u, 40u, 12u, host::kPerChannel}) {
      for (double outliers : {0.0, 0.02}) {
        const Quantizer quantizer = outliers > 0.0 ? Quantizer::kQmc : Quantizer::kRtn;
        const host::PackedModel packed = Pack(checkpoint, quantizer, bits, cell_bits, group_size, outliers);
        if (outliers > 0.0) ASSERT_GT(packed.tensors[7].outlier_count, 0u);  // blk.0.ffn_gate.weight
        const std::string label = "dim " + std::to_string(checkpoint.config.dim) + " group " +
                                  std::to_string(group_size) + " outliers " + std::to_string(outliers);
        ExpectKernelsMatchReference(packed, label, group_size);
      }
    }
  }
}

// The shared check on odd shapes: width 97 (no multiple of 4, 8 or the
// group), width 1 and single-row tensors (hidden 1: ffn_gate and ffn_up are
// 1 x 97, ffn_down 97 x 1), outliers in a row's last column.
TEST_P(PackedKernels, PassTheSharedEqualityCheckOnOddShapes) {
  const auto [bits, cell_bits] = GetParam();
  bool outlier_at_row_end = false;
  for (const host::Checkpoint& checkpoint : {testing::RandomCheckpoint(97, 40, 5), testing::RandomCheckpoint(97, 1, 6)}) {
    for (uint32_t group_size : {32u, 40u}) {
      for (double outliers : {0.0, 0.02}) {
        const Quantizer quantizer = outliers > 0.0 ? Quantizer::kQmc : Quantizer::kRtn;
        const host::PackedModel packed = Pack(checkpoint, quantizer, bits, cell_bits, group_size, outliers);
        outlier_at_row_end = outlier_at_row_end || HasOutlierAtRowEnd(image::ImageView::OpenFile(packed.image).value());
        ExpectSharedCheckPasses(packed, "hidden " + std::to_string(checkpoint.config.hidden_dim) + " group " +
                                            std::to_string(group_size) + " outliers " + std::to_string(outliers));
      }
    }
  }
  EXPECT_TRUE(outlier_at_row_end) << "no image here tests an outlier in a row's last column";
}

// MatMul (n inputs at once) by every optimised kernel against n reference
// MatVecs: every layout, widths 97 and 288 (partial vectors), input counts
// that fill the microkernel's 4-row x 3-input tiles or leave every edge,
// strides wider than a row. Bound as ExpectKernelsMatchReference's.
TEST_P(PackedKernels, MatMulEqualsReferenceMatVecs) {
  const auto [bits, cell_bits] = GetParam();
  std::vector<std::pair<std::string, host::PackedModel>> images;
  for (const host::Checkpoint& checkpoint : {testing::RandomCheckpoint(97, 40, 11), testing::RandomCheckpoint(288, 172, 12)}) {
    const std::string dim = " dim " + std::to_string(checkpoint.config.dim);
    images.emplace_back("qmc g40" + dim, Pack(checkpoint, Quantizer::kQmc, bits, cell_bits, 40, 0.02));
    images.emplace_back("rtn g12" + dim, Pack(checkpoint, Quantizer::kRtn, bits, cell_bits, 12, 0.0));
    if (bits == 3) {  // the other schemes once
      images.emplace_back("f32" + dim, Pack(checkpoint, Quantizer::kF32, 3, 3, 64, 0.0));
      images.emplace_back("fp16" + dim, Pack(checkpoint, Quantizer::kFp16, 3, 3, 64, 0.0));
      images.emplace_back("mxint4" + dim, Pack(checkpoint, Quantizer::kMxInt4, 4, cell_bits, 32, 0.0));
    }
    host::QuantOptions split;
    split.bits = bits;
    split.cell_bits = cell_bits;
    split.group_size = host::kPerChannel;
    split.outlier_ratio = 0.3;
    split.outlier_bits = 5;
    images.emplace_back("split" + dim, host::PackModel(checkpoint, split));
  }
  std::mt19937 rng(bits * 3 + cell_bits);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (const auto& [label, packed] : images) {
    const image::ImageView view = image::ImageView::OpenFile(packed.image).value();
    ASSERT_TRUE(view.Validate().ok()) << label;
    for (const char* name : {"blk.0.attn_k.weight", "blk.0.ffn_gate.weight", "blk.0.ffn_down.weight"}) {
      const uint32_t index = view.FindTensor(name);
      ASSERT_LT(index, view.tensor_count()) << name;
      const image::TensorEntry t = view.tensor(index);
      const std::vector<float>& w = packed.tensors[index].reconstruction;
      for (uint32_t n : {1u, 2u, 3u, 4u, 7u, 13u}) {
        const size_t x_stride = t.cols + 5, y_stride = t.rows + 3;
        std::vector<float> x(n * x_stride), expected(n * t.rows), row(t.cols);
        for (float& v : x) v = normal(rng);
        for (uint32_t i = 0; i < n; ++i) {
          MatVec(view, t, x.data() + i * x_stride, expected.data() + i * t.rows, row.data(), MatVecKernel::kReference);
        }
        for (MatVecKernel kernel : OptimisedKernels()) {
          std::vector<float> y(n * y_stride, NAN), buffer(t.cols);
          MatMul(view, t, x.data(), x_stride, y.data(), y_stride, n, buffer.data(), kernel);
          for (uint32_t i = 0; i < n; ++i) {
            for (uint32_t r = 0; r < t.rows; ++r) {
              double magnitude = 0.0;
              for (uint32_t c = 0; c < t.cols; ++c) {
                magnitude += std::fabs(double{w[size_t{r} * t.cols + c]} * x[i * x_stride + c]);
              }
              const double error = std::fabs(double{y[i * y_stride + r]} - expected[i * t.rows + r]);
              ASSERT_LE(error, kTolerance * magnitude) << label << " " << t.name << " n " << n << " input " << i
                                                       << " row " << r << " kernel " << Name(kernel);
            }
            for (uint32_t r = t.rows; r < y_stride; ++r) {
              ASSERT_TRUE(std::isnan(y[i * y_stride + r])) << label << " wrote past row " << t.rows;
            }
          }
        }
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(AllCellLayouts, PackedKernels,
                         ::testing::Combine(::testing::Values(2u, 3u, 4u), ::testing::Values(1u, 2u, 3u)),
                         [](const auto& info) {
                           return "b" + std::to_string(std::get<0>(info.param)) + "c" +
                                  std::to_string(std::get<1>(info.param));
                         });

// The paper's split scheme: a tensor-wide inlier stream that rows enter
// mid-word, a bitmap, quantized outliers; per channel and per group of
// inliers, over outlier widths and shares, widths 288/172 and 97/40/1.
TEST_P(PackedKernels, SplitEqualsTheReference) {
  const auto [bits, cell_bits] = GetParam();
  const host::Checkpoint shapes[] = {testing::RandomCheckpoint(288, 172, 7), testing::RandomCheckpoint(97, 40, 8),
                                     testing::RandomCheckpoint(97, 1, 9)};
  for (const host::Checkpoint& checkpoint : shapes) {
    for (uint32_t group_size : {host::kPerChannel, 32u, 40u}) {
      for (const auto& [outlier_bits, rho] : {std::pair{5u, 0.3}, std::pair{4u, 0.1}, std::pair{8u, 0.5}}) {
        host::QuantOptions options;
        options.bits = bits;
        options.cell_bits = cell_bits;
        options.group_size = group_size;
        options.outlier_bits = outlier_bits;
        options.outlier_ratio = rho;
        const host::PackedModel packed = host::PackModel(checkpoint, options);
        const std::string label = "split dim " + std::to_string(checkpoint.config.dim) + " hidden " +
                                  std::to_string(checkpoint.config.hidden_dim) + " group " + std::to_string(group_size) +
                                  " outlier bits " + std::to_string(outlier_bits) + " rho " + std::to_string(rho);
        ExpectKernelsMatchReference(packed, label, outlier_bits);
        ExpectSharedCheckPasses(packed, label);
      }
    }
  }
}

// MRAM bit errors corrupt a split tensor's bitmap at run time (the emulator
// injects them after the image was validated). Whatever the bitmap says,
// every optimised kernel writes only y and its row buffer: the guard floats
// around both stay as they were, and y stays finite.
TEST(SplitKernels, CorruptBitmapsWriteOnlyYAndTheBuffer) {
  constexpr size_t kGuard = 16;
  constexpr uint32_t kSentinel = 0x7FC0DEADu;  // a NaN no kernel writes
  const host::Checkpoint checkpoint = testing::RandomCheckpoint(97, 40, 10);
  std::mt19937 rng(11);
  for (const auto& [cell_bits, group_size] : {std::pair{3u, host::kPerChannel}, std::pair{2u, 40u}}) {
    host::QuantOptions options;
    options.cell_bits = cell_bits;
    options.group_size = group_size;
    options.outlier_bits = 5;
    options.outlier_ratio = 0.3;
    std::vector<uint8_t> image = host::PackModel(checkpoint, options).image;
    const image::ImageView view = image::ImageView::OpenFile(image).value();
    for (uint32_t i = 0; i < view.tensor_count(); ++i) {
      const image::TensorEntry t = view.tensor(i);
      if (t.scheme != static_cast<uint8_t>(image::Scheme::kSplit)) continue;
      // Every bitmap word random: bits past the last column set too.
      auto* bitmap = const_cast<uint8_t*>(view.blob(t.outliers).data()) + quant::SplitBitmapOffset(t.rows);
      for (size_t w = 0; w < size_t{t.rows} * quant::BitmapWordsPerRow(t.cols); ++w) {
        const auto word = static_cast<uint32_t>(rng());
        std::memcpy(bitmap + w * 4, &word, 4);
      }
      std::vector<float> x(t.cols);
      for (float& v : x) v = std::normal_distribution<float>(0.0f, 1.0f)(rng);
      for (MatVecKernel kernel : OptimisedKernels()) {
        std::vector<float> y(t.rows + 2 * kGuard, std::bit_cast<float>(kSentinel));
        std::vector<float> buffer(t.cols + 2 * kGuard, std::bit_cast<float>(kSentinel));
        MatVec(view, t, x.data(), y.data() + kGuard, buffer.data() + kGuard, kernel);
        for (size_t g = 0; g < kGuard; ++g) {
          for (const std::vector<float>* v : {&y, &buffer}) {
            ASSERT_EQ(std::bit_cast<uint32_t>((*v)[g]), kSentinel) << t.name << " " << Name(kernel);
            ASSERT_EQ(std::bit_cast<uint32_t>((*v)[v->size() - 1 - g]), kSentinel) << t.name << " " << Name(kernel);
          }
        }
        for (uint32_t r = 0; r < t.rows; ++r) {
          ASSERT_TRUE(std::isfinite(y[kGuard + r])) << t.name << " " << Name(kernel);
        }
      }
    }
  }
}

// MRAM bit errors reach the exact-outlier CSR's {column, value} entries too
// (common/read_ranges.h). An entry whose column lies past the row adds
// nothing in every kernel, the reference included, so the kernels still
// agree and nothing outside x is read (ASan would say).
TEST(OutlierCsr, ColumnsPastTheRowAreSkippedByEveryKernel) {
  const host::Checkpoint checkpoint = testing::RandomCheckpoint(97, 40, 12);
  std::vector<uint8_t> image = Pack(checkpoint, Quantizer::kQmc, 3, 3, 32, 0.05).image;
  const image::ImageView view = image::ImageView::OpenFile(image).value();
  std::mt19937 rng(13);
  uint32_t corrupted = 0;
  for (uint32_t i = 0; i < view.tensor_count(); ++i) {
    const image::TensorEntry t = view.tensor(i);
    if (t.outlier_count == 0) continue;
    auto* entries = const_cast<uint8_t*>(view.blob(t.outliers).data()) + (t.rows + 1u) * 4u;
    for (uint32_t k = 0; k < t.outlier_count; k += 3) {  // every third column flipped high
      const auto col = static_cast<uint16_t>(t.cols + rng() % (65536u - t.cols));
      std::memcpy(entries + k * 4u, &col, 2);
      ++corrupted;
    }
    std::vector<float> x(t.cols), expected(t.rows), row(t.cols);  // exact sizes, for ASan
    for (float& v : x) v = std::normal_distribution<float>(0.0f, 1.0f)(rng);
    MatVec(view, t, x.data(), expected.data(), row.data(), MatVecKernel::kReference);
    for (MatVecKernel kernel : OptimisedKernels()) {
      std::vector<float> y(t.rows);
      MatVec(view, t, x.data(), y.data(), row.data(), kernel);
      for (uint32_t r = 0; r < t.rows; ++r) {
        image::DequantizeRow(view, t, r, row.data());
        double magnitude = 0.0;
        for (uint32_t c = 0; c < t.cols; ++c) magnitude += std::fabs(double{row[c]} * x[c]);
        ASSERT_LE(std::fabs(double{y[r]} - expected[r]), kTolerance * magnitude) << t.name << " " << Name(kernel);
      }
    }
  }
  EXPECT_GT(corrupted, 0u);
}

TEST(DenseAndMxKernels, EqualTheReferenceOnRandomTensors) {
  for (const host::Checkpoint& checkpoint : {testing::RandomCheckpoint(288, 172, 3), testing::RandomCheckpoint(97, 40, 4)}) {
    const std::string dim = "dim " + std::to_string(checkpoint.config.dim);
    ExpectKernelsMatchReference(Pack(checkpoint, Quantizer::kF32, 3, 3, 64, 0.0), "f32 " + dim, 1);
    ExpectKernelsMatchReference(Pack(checkpoint, Quantizer::kFp16, 3, 3, 64, 0.0), "fp16 " + dim, 2);
    for (uint32_t cell_bits = 1; cell_bits <= 3; ++cell_bits) {
      ExpectKernelsMatchReference(Pack(checkpoint, Quantizer::kMxInt4, 4, cell_bits, 32, 0.0),
                                  "mxint4 cells " + std::to_string(cell_bits) + " " + dim, cell_bits);
    }
    ExpectSharedCheckPasses(Pack(checkpoint, Quantizer::kF32, 3, 3, 64, 0.0), "shared check f32 " + dim);
    ExpectSharedCheckPasses(Pack(checkpoint, Quantizer::kFp16, 3, 3, 64, 0.0), "shared check fp16 " + dim);
    ExpectSharedCheckPasses(Pack(checkpoint, Quantizer::kMxInt4, 4, 3, 32, 0.0), "shared check mxint4 " + dim);
  }
}

host::Checkpoint Stories() {
  host::Checkpoint c = host::LoadLlama2c(kShared / "models/stories260K.bin");
  c.tokenizer = host::LoadTokenizerFile(kShared / "models/tok512.bin", c.config.vocab_size);
  return c;
}

// Trained weights (widths 64 and 172) in every layout, and the other schemes.
TEST(RealLayers, Stories260KEveryKernelEqualsTheReference) {
  if (!fs::exists(kShared / "models/stories260K.bin")) GTEST_SKIP() << "../shared/models is missing";
  const host::Checkpoint checkpoint = Stories();
  for (uint32_t bits = 2; bits <= 4; ++bits) {
    for (uint32_t cell_bits = 1; cell_bits <= 3; ++cell_bits) {
      ExpectKernelsMatchReference(Pack(checkpoint, Quantizer::kQmc, bits, cell_bits, 64, 0.005),
                                  "qmc b" + std::to_string(bits) + " c" + std::to_string(cell_bits), bits * cell_bits);
    }
  }
  ExpectKernelsMatchReference(Pack(checkpoint, Quantizer::kMxInt4, 4, 2, 32, 0.0), "mxint4", 20);
  ExpectKernelsMatchReference(Pack(checkpoint, Quantizer::kFp16, 3, 3, 64, 0.0), "fp16", 21);
  ExpectKernelsMatchReference(Pack(checkpoint, Quantizer::kF32, 3, 3, 64, 0.0), "f32", 22);
}

// Greedy tokens from BOS, the engine running on `kernel` for every matvec.
std::vector<int> GreedyTokens(const image::ImageView& view, MatVecKernel kernel, uint32_t steps) {
  EXPECT_TRUE(UseMatVecKernel(kernel).ok());
  const image::ModelConfig& c = view.model();
  std::vector<uint8_t> arena(Engine::ArenaBytes(c, image::DefaultDetail(c), c.seq_len)), kv(Engine::KvBytes(c, image::DefaultDetail(c), steps));
  Engine engine;
  EXPECT_TRUE(engine.Init(view, arena, kv).ok());
  std::vector<int> tokens = {1};
  for (uint32_t pos = 0; pos < steps; ++pos) {
    const float* logits = engine.Forward(static_cast<uint32_t>(tokens.back()), pos);
    if (logits == nullptr) {
      ADD_FAILURE() << "Forward failed at " << pos;
      break;
    }
    tokens.push_back(static_cast<int>(std::max_element(logits, logits + c.vocab_size) - logits));
  }
  return tokens;
}

TEST(EngineKernels, GreedyStories260KTokensEqualTheReferenceKernels) {
  if (!fs::exists(kShared / "models/stories260K.bin")) GTEST_SKIP() << "../shared/models is missing";
  const host::Checkpoint checkpoint = Stories();
  const MatVecKernel previous = ActiveMatVecKernel();
  for (uint32_t bits : {3u, 4u}) {
    const host::PackedModel packed = Pack(checkpoint, Quantizer::kQmc, bits, bits <= 3 ? bits : 2, 64, 0.005);
    const image::ImageView view = image::ImageView::OpenFile(packed.image).value();
    ASSERT_TRUE(view.Validate().ok());
    const std::vector<int> expected = GreedyTokens(view, MatVecKernel::kReference, 64);
    for (MatVecKernel kernel : OptimisedKernels()) {
      EXPECT_EQ(GreedyTokens(view, kernel, 64), expected) << "qmc b" << bits << " kernel " << Name(kernel);
    }
  }
  ASSERT_TRUE(UseMatVecKernel(previous).ok());
}

TEST(MatVecKernelSelection, DefaultsToTheFastestUnlessBuiltForTheReference) {
#if QMC_REFERENCE_KERNELS
  EXPECT_EQ(ActiveMatVecKernel(), MatVecKernel::kReference);
#else
  EXPECT_EQ(ActiveMatVecKernel(), OptimisedKernels().back());  // the fastest is listed last
#endif
  const MatVecKernel previous = ActiveMatVecKernel();
  for (MatVecKernel kernel :
       {MatVecKernel::kReference, MatVecKernel::kScalar, MatVecKernel::kAvx2, MatVecKernel::kAvx512,
        MatVecKernel::kHelium}) {
    EXPECT_EQ(UseMatVecKernel(kernel).ok(), MatVecKernelAvailable(kernel)) << Name(kernel);
    if (MatVecKernelAvailable(kernel)) EXPECT_EQ(ActiveMatVecKernel(), kernel);
  }
  ASSERT_TRUE(UseMatVecKernel(previous).ok());
}

}  // namespace
}  // namespace qmc
