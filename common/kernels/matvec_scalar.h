// The portable optimised matvec (any target, freestanding): packed codes
// decoded a whole word at a time, per-group scaling, several partial sums.
#pragma once

#include "common/image_reader.h"

namespace qmc::kernels {

// y[t.rows] = W x[t.cols], as qmc::MatVec; `row_buffer` holds t.cols floats.
void MatVecScalar(const image::ImageView& image, const image::TensorEntry& t, const float* x, float* y,
                  float* row_buffer);

}  // namespace qmc::kernels
