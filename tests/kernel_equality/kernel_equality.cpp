#include "tests/kernel_equality/kernel_equality.h"

#include "common/dequantize.h"

namespace qmc::kernel_equality {
namespace {

// xorshift32: the same sequence on every target, no library needed.
class Random {
 public:
  explicit Random(uint32_t seed) : state_(seed * 2654435761u + 1u) {
    if (state_ == 0) state_ = 1;
  }
  // Roughly normal in (−2, 2), variance 1/3 (a sum of four uniforms): the
  // spread of activations without their rare huge values.
  float Activation() {
    float sum = 0.0f;
    for (int i = 0; i < 4; ++i) sum += static_cast<float>(Next() >> 8) * 0x1p-24f;
    return sum - 2.0f;
  }

 private:
  uint32_t Next() {
    state_ ^= state_ << 13;
    state_ ^= state_ >> 17;
    state_ ^= state_ << 5;
    return state_;
  }
  uint32_t state_;
};

double Abs(double v) { return v < 0 ? -v : v; }

constexpr double kInfinity = __builtin_inf();

}  // namespace

uint32_t MaxCols(const image::ImageView& image) {
  uint32_t cols = 0;
  for (uint32_t i = 0; i < image.tensor_count(); ++i) cols = image.tensor(i).cols > cols ? image.tensor(i).cols : cols;
  return cols;
}

uint32_t MaxRows(const image::ImageView& image) {
  uint32_t rows = 0;
  for (uint32_t i = 0; i < image.tensor_count(); ++i) rows = image.tensor(i).rows > rows ? image.tensor(i).rows : rows;
  return rows;
}

TensorResult CheckTensor(const image::ImageView& image, uint32_t index, MatVecKernel kernel, uint32_t seed,
                         const Scratch& scratch) {
  const image::TensorEntry t = image.tensor(index);
  Random random(seed);
  for (uint32_t c = 0; c < t.cols; ++c) scratch.x[c] = random.Activation();
  MatVec(image, t, scratch.x.data(), scratch.y_reference.data(), scratch.row.data(), MatVecKernel::kReference);
  MatVec(image, t, scratch.x.data(), scratch.y.data(), scratch.row.data(), kernel);

  TensorResult result{0.0, 0, true};
  for (uint32_t r = 0; r < t.rows; ++r) {
    image::DequantizeRow(image, t, r, scratch.row.data());
    double magnitude = 0.0;
    for (uint32_t c = 0; c < t.cols; ++c) magnitude += Abs(double{scratch.row[c]} * scratch.x[c]);
    const double error = Abs(double{scratch.y[r]} - scratch.y_reference[r]);
    double ratio = magnitude > 0.0 ? error / magnitude : error == 0.0 ? 0.0 : kInfinity;
    if (!(ratio <= kInfinity)) ratio = kInfinity;  // NaN, from either kernel
    if (ratio > result.worst) {
      result.worst = ratio;
      result.worst_row = r;
    }
  }
  result.pass = result.worst <= kTolerance;
  return result;
}

}  // namespace qmc::kernel_equality
