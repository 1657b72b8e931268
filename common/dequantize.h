// Reference decoding of a tensor row from its blobs, read in place: the
// definition of what every scheme's bytes mean, which kernels are held to.
#pragma once

#include <cstdint>

#include "common/image_reader.h"

namespace qmc::image {

// Writes the `t.cols` weights of row `row` to `out`. The tensor must come
// from a validated image.
void DequantizeRow(const ImageView& image, const TensorEntry& t, uint32_t row, float* out);

}  // namespace qmc::image
