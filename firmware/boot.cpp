#include "firmware/boot.h"

#include <cstring>

namespace qmc::firmware {
namespace {

Status Declare(const image::ImageView& view, const hal::BoardInfo& board, const image::BlobRef& ref,
               uint8_t cell_bits) {
  if (ref.section == image::kNoSection) return Status::Ok();
  const image::SectionEntry& section = view.section(ref.section);
  return board.window(static_cast<hal::WindowKind>(section.window))
      .BeginReadPass(section.window_offset + ref.offset, ref.length, cell_bits);
}

}  // namespace

BootResult BootImage(const hal::BoardInfo& board, image::ImageView& view) {
  hal::MemoryWindow& mram = board.window(hal::WindowKind::kMram);
  uint8_t record[image::BootRecordSize(image::kMaxSections)];
  image::Header header;
  if (Status s = mram.Read(0, {record, sizeof header}); !s.ok()) return {BootState::kNoImage, s};
  std::memcpy(&header, record, sizeof header);
  if (header.magic != image::kMagic) {
    return {BootState::kNoImage, Error(StatusCode::kBadMagic, "MRAM holds no QMC boot record")};
  }
  // An out-of-range count is OpenWindows' to reject; read no more than fits.
  const uint32_t sections = header.section_count < image::kMaxSections ? header.section_count : image::kMaxSections;
  const uint32_t record_size = image::BootRecordSize(sections);
  if (Status s = mram.Read(sizeof header, {record + sizeof header, record_size - sizeof header}); !s.ok()) {
    return {BootState::kRejected, s};
  }

  std::span<const uint8_t> windows[image::kWindowCount];
  for (uint32_t w = 0; w < image::kWindowCount; ++w) windows[w] = board.windows[w]->bytes();
  const Result<image::ImageView> opened = image::ImageView::OpenWindows({record, record_size}, windows);
  if (!opened.ok()) return {BootState::kRejected, opened.status()};
  view = opened.value();
  if (Status s = view.Validate(); !s.ok()) return {BootState::kRejected, s};
  // Validation read every section in place once.
  for (uint32_t i = 0; i < view.section_count(); ++i) {
    board.window(static_cast<hal::WindowKind>(view.section(i).window)).CountInPlace(view.section(i).length, 0);
  }
  return {BootState::kReady, Status::Ok()};
}

Status StartReadPasses(const image::ImageView& view, const hal::BoardInfo& board) {
  for (uint32_t i = 0; i < view.tensor_count(); ++i) {
    const image::TensorEntry t = view.tensor(i);
    const bool packed = t.cell_bits != 0;
    if (Status s = Declare(view, board, t.data, packed ? t.cell_bits : 1); !s.ok()) return s;
    if (Status s = Declare(view, board, t.scales, 1); !s.ok()) return s;
  }
  return Status::Ok();
}

}  // namespace qmc::firmware
