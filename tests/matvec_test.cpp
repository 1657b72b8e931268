#include "common/matvec.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "host/pack.h"
#include "tests/tiny_model.h"

namespace qmc {
namespace {

using image::Quantizer;

struct Scheme {
  Quantizer quantizer;
  uint32_t bits;
  uint32_t cell_bits;
  double outlier_ratio;
};

// Every scheme the image format has, over the synthetic model (odd widths,
// partial groups) packed in memory.
TEST(MatVec, EqualsTheProductWithTheQuantizersReconstruction) {
  const host::Checkpoint model = testing::TinyCheckpoint();
  const Scheme schemes[] = {{Quantizer::kF32, 3, 3, 0.0},   {Quantizer::kFp16, 3, 3, 0.0},
                            {Quantizer::kRtn, 4, 2, 0.0},   {Quantizer::kQmc, 3, 3, 0.02},
                            {Quantizer::kQmc, 2, 1, 0.05},  {Quantizer::kMxInt4, 4, 3, 0.0}};
  std::mt19937 rng(17);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (const Scheme& scheme : schemes) {
    host::QuantOptions options;
    options.quantizer = scheme.quantizer;
    options.bits = scheme.bits;
    options.cell_bits = scheme.cell_bits;
    options.group_size = 16;
    options.outlier_ratio = scheme.outlier_ratio;
    const host::PackedModel packed = host::PackModel(model, options);
    const image::ImageView view = image::ImageView::OpenFile(packed.image).value();
    ASSERT_TRUE(view.Validate().ok());
    for (uint32_t i = 0; i < view.tensor_count(); ++i) {
      const image::TensorEntry t = view.tensor(i);
      const host::QuantizedTensor& q = packed.tensors[i];
      std::vector<float> x(t.cols), y(t.rows), row(t.cols);
      for (float& v : x) v = normal(rng);
      MatVec(view, t, x.data(), y.data(), row.data());
      for (uint32_t r = 0; r < t.rows; ++r) {
        double expected = 0.0, magnitude = 0.0;
        for (uint32_t c = 0; c < t.cols; ++c) {
          const double term = static_cast<double>(q.reconstruction[static_cast<size_t>(r) * t.cols + c]) * x[c];
          expected += term;
          magnitude += std::fabs(term);
        }
        ASSERT_NEAR(y[r], expected, 1e-6 * magnitude + 1e-30) << q.name << " row " << r;
      }
    }
    if (scheme.quantizer == Quantizer::kQmc) EXPECT_GT(view.tensor(2).outlier_count, 0u);  // outliers were exercised
  }
}

TEST(MatVec, LookupRowIsTheReconstructedRowAndChecksTheIndex) {
  const host::Checkpoint model = testing::TinyCheckpoint();
  host::QuantOptions options;
  options.outlier_ratio = 0.02;
  const host::PackedModel packed = host::PackModel(model, options);
  const image::ImageView view = image::ImageView::OpenFile(packed.image).value();
  const image::TensorEntry embedding = view.tensor(0);
  std::vector<float> row(embedding.cols);
  for (uint32_t r = 0; r < embedding.rows; ++r) {
    ASSERT_TRUE(LookupRow(view, embedding, r, row.data()).ok());
    EXPECT_EQ(std::memcmp(row.data(), packed.tensors[0].reconstruction.data() + static_cast<size_t>(r) * embedding.cols,
                          row.size() * sizeof(float)),
              0)
        << r;
  }
  EXPECT_EQ(LookupRow(view, embedding, embedding.rows, row.data()).code, StatusCode::kOutOfBounds);
}

}  // namespace
}  // namespace qmc
