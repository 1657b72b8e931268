#include "common/matvec.h"

#include "common/dequantize.h"

namespace qmc {

void MatVec(const image::ImageView& image, const image::TensorEntry& t, const float* x, float* y, float* row_buffer) {
  for (uint32_t r = 0; r < t.rows; ++r) {
    image::DequantizeRow(image, t, r, row_buffer);
    float sum = 0.0f;
    for (uint32_t c = 0; c < t.cols; ++c) sum += row_buffer[c] * x[c];
    y[r] = sum;
  }
}

Status LookupRow(const image::ImageView& image, const image::TensorEntry& t, uint32_t row, float* out) {
  if (row >= t.rows) return Error(StatusCode::kOutOfBounds, "row index past the tensor");
  image::DequantizeRow(image, t, row, out);
  return Status::Ok();
}

}  // namespace qmc
