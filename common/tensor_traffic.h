// What reading a tensor costs, by window: the one definition of the bytes a
// decode or matvec reads of each of a tensor's blobs (data, scales,
// outliers), which the engine adds to its ReadCounter at every weight access.
// Each blob's window is the one the image's section table gives its section.
//
// Rows [first_row, first_row + rows) of a tensor read, by scheme
// (docs/image-format.md, common/split_layout.h):
//   f32, fp16      rows × cols values.
//   group-affine   rows × words-per-row code words, rows × groups scale pairs;
//                  with outliers, row_start[first_row .. first_row + rows]
//                  (rows + 1 u32) and the rows' CSR entries.
//   mxint4         rows × words-per-row code words, rows × blocks E8M0 bytes.
//   split          the inlier-code words the rows' inlier codes touch (the
//                  stream is tensor-wide: row r's codes start at code
//                  r·cols − row_start[r]), the rows' scale pairs (all
//                  SplitScalePairsPerRow of each), row_start[first_row ..
//                  first_row + rows], the rows' bitmap words and the
//                  outlier-code words their outlier codes touch.
// For all rows of a tensor (a matvec) that is exactly the blobs' lengths.
// Norms and biases are f32 1 × n tensors: one row, the whole vector.
#pragma once

#include <cstdint>

#include "common/image_reader.h"
#include "common/read_counter.h"

namespace qmc {

// The bytes of each of a tensor's blobs rows [first_row, first_row + rows)
// read: the definition itself, from the directory entry alone. The row
// tables it needs are given as numbers: the outliers stored before
// first_row and before first_row + rows (row_start[first_row] and
// row_start[first_row + rows] of group-affine CSR and split tensors;
// ignored by the other schemes). `qmc memsim` calls it for tensors laid
// out without weights; AddRowTraffic for tensors of an image.
struct BlobTraffic {
  uint64_t data = 0;
  uint64_t scales = 0;
  uint64_t outliers = 0;
};
BlobTraffic RowBlobTraffic(const image::TensorEntry& t, uint32_t first_row, uint32_t rows,
                           uint64_t outliers_before_first, uint64_t outliers_before_end);

// Adds the bytes rows [first_row, first_row + rows) of `t` read to `counter`.
// `t` comes from `image`, validated; the rows lie inside the tensor.
void AddRowTraffic(const image::ImageView& image, const image::TensorEntry& t, uint32_t first_row, uint32_t rows,
                   ReadCounter& counter);

// The whole tensor: what a matvec over it reads.
inline void AddTensorTraffic(const image::ImageView& image, const image::TensorEntry& t, ReadCounter& counter) {
  AddRowTraffic(image, t, 0, t.rows, counter);
}

}  // namespace qmc
