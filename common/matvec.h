// The reference matrix-vector product over an image tensor of any scheme:
// each row is decoded in place (image::DequantizeRow) into a row buffer and
// dotted in plain scalar order. Optimised kernels are held equal to this.
#pragma once

#include <cstdint>

#include "common/image_reader.h"
#include "common/status.h"

namespace qmc {

// y[t.rows] = W x[t.cols]; `row_buffer` holds t.cols floats. `t` comes from
// a validated image.
void MatVec(const image::ImageView& image, const image::TensorEntry& t, const float* x, float* y, float* row_buffer);

// Row `row` of `t` decoded into out[t.cols]: the embedding lookup.
Status LookupRow(const image::ImageView& image, const image::TensorEntry& t, uint32_t row, float* out);

}  // namespace qmc
