// The byte ranges of an image that an inference reads in place from
// non-volatile memory, with the width of the cells they are stored in: what
// a device's read errors can reach. Per tensor: its codes or values (`data`,
// cell_bits wide for packed codes, 1 for dense values), its scales, and its
// outliers (1-bit MRAM cells). The u32 row-start table at the front of an
// outliers blob (split or CSR) is left out, as directories are: a real part
// protects such indices with ECC, and a corrupt one models a crash, not an
// accuracy loss. Everything after it is in: a split tensor's bitmap and
// codes, a CSR's {column, value} entries (decoders skip a column past the
// row, so a flipped column costs that outlier, never a stray access).
#pragma once

#include <cstdint>

#include "common/image_reader.h"

namespace qmc::image {

// visit(window, offset in the section's window area, length, cell_bits) for
// every range, in directory order.
template <typename Visit>
void ForEachReadRange(const ImageView& view, Visit&& visit) {
  auto range = [&](const BlobRef& ref, uint64_t skip, uint8_t cell_bits) {
    if (ref.section == kNoSection || ref.length <= skip) return;
    const SectionEntry& s = view.section(ref.section);
    visit(static_cast<Window>(s.window), s.window_offset + ref.offset + static_cast<uint32_t>(skip),
          static_cast<uint32_t>(ref.length - skip), cell_bits);
  };
  for (uint32_t i = 0; i < view.tensor_count(); ++i) {
    const TensorEntry t = view.tensor(i);
    range(t.data, 0, t.cell_bits != 0 ? t.cell_bits : 1);
    range(t.scales, 0, 1);
    range(t.outliers, (uint64_t{t.rows} + 1u) * 4u, 1);  // past u32 row_start[rows + 1]
  }
}

}  // namespace qmc::image
