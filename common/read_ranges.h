// The byte ranges of an image that an inference reads in place from
// non-volatile memory, with the width of the cells they are stored in: what
// a device's read errors can reach. Per tensor: its codes or values (`data`,
// cell_bits wide for packed codes, 1 for dense values), its scales, and its
// outliers (1-bit MRAM cells). Index structures a kernel follows to find a
// row's entries are left out, as directories are: a real part protects them
// with ECC, and a corrupt index models a crash, not an accuracy loss. For a
// split tensor that is the u32 row-start table at the front of the outliers
// blob (its bitmap and codes are in); for group-affine it is the whole CSR,
// whose u16 columns index the row.
#pragma once

#include <cstdint>

#include "common/image_reader.h"
#include "common/split_layout.h"

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
    if (t.scheme == static_cast<uint8_t>(Scheme::kSplit)) range(t.outliers, quant::SplitBitmapOffset(t.rows), 1);
  }
}

}  // namespace qmc::image
