#include "firmware/boot.h"

#include <cstring>

#include "common/read_ranges.h"
#include "common/slot_layout.h"

namespace qmc::firmware {
namespace {

uint32_t SlotOffset(const hal::MemoryWindow& window, uint32_t slot) {
  return nvm::SlotsOf(window.kind(), window.size()).offset[slot];
}

}  // namespace

Status ReadCommitRecords(hal::MemoryWindow& mram, nvm::CommitRecord (&copies)[2]) {
  for (uint32_t i = 0; i < 2; ++i) {
    uint8_t bytes[sizeof(nvm::CommitRecord)];
    if (Status s = mram.Read(nvm::kCommitCopyOffsets[i], bytes); !s.ok()) return s;
    std::memcpy(&copies[i], bytes, sizeof bytes);
  }
  return Status::Ok();
}

Status MapSlotImage(const hal::BoardInfo& board, uint32_t slot, image::ImageView& view) {
  hal::MemoryWindow& mram = board.window(hal::WindowKind::kMram);
  const nvm::SlotGeometry mram_slots = nvm::SlotsOf(mram.kind(), mram.size());
  if (!mram_slots.has_slots()) return Error(StatusCode::kTooLarge, "MRAM is too small for image slots");
  uint8_t record[image::BootRecordSize(image::kMaxSections)];
  image::Header header;
  if (Status s = mram.Read(mram_slots.offset[slot], {record, sizeof header}); !s.ok()) return s;
  std::memcpy(&header, record, sizeof header);
  if (header.magic != image::kMagic) return Error(StatusCode::kBadMagic, "the slot holds no QMC boot record");
  // An out-of-range count is OpenWindows' to reject; read no more than fits.
  const uint32_t sections = header.section_count < image::kMaxSections ? header.section_count : image::kMaxSections;
  const uint32_t record_size = image::BootRecordSize(sections);
  if (Status s = mram.Read(mram_slots.offset[slot] + sizeof header, {record + sizeof header, record_size - sizeof header});
      !s.ok()) {
    return s;
  }
  // Sections map inside the slot of their window; SRAM holds no image.
  std::span<const uint8_t> windows[image::kWindowCount];
  for (uint32_t w = 0; w < image::kWindowCount; ++w) {
    windows[w] = nvm::SlotBytes(board.windows[w]->bytes(), board.windows[w]->kind(), slot);
  }
  const Result<image::ImageView> opened = image::ImageView::OpenWindows({record, record_size}, windows);
  if (!opened.ok()) return opened.status();
  view = opened.value();
  return Status::Ok();
}

Status OpenSlotImage(const hal::BoardInfo& board, uint32_t slot, image::ImageView& view) {
  if (Status s = MapSlotImage(board, slot, view); !s.ok()) return s;
  if (Status s = view.Validate(); !s.ok()) return s;
  // Validation read every section in place once.
  for (uint32_t i = 0; i < view.section_count(); ++i) {
    board.window(static_cast<hal::WindowKind>(view.section(i).window)).CountInPlace(view.section(i).length, 0);
  }
  return Status::Ok();
}

BootResult BootImage(const hal::BoardInfo& board, image::ImageView& view) {
  nvm::CommitRecord copies[2];
  if (Status s = ReadCommitRecords(board.window(hal::WindowKind::kMram), copies); !s.ok()) {
    return {BootState::kNoImage, s, {}};
  }
  const nvm::BootOrder order = nvm::OrderForBoot(copies);
  if (order.count == 0) {
    return {BootState::kNoImage, Error(StatusCode::kMissing, "MRAM holds no valid commit record"), {}};
  }
  BootResult result{BootState::kRejected, Status::Ok(), {}};
  for (uint32_t i = 0; i < order.count; ++i) {
    const nvm::CommitRecord& record = copies[order.copy[i]];
    Status s = OpenSlotImage(board, record.slot, view);
    if (s.ok() && view.header().header_crc != record.header_crc) {
      s = Error(StatusCode::kBadChecksum, "the slot's image is not the one its commit record names");
    }
    if (s.ok()) {
      result.state = BootState::kReady;
      result.slots = {record.slot, static_cast<int>(order.copy[i]), record.sequence};
      result.fell_back = i > 0;
      return result;
    }
    if (i == 0) result.status = s;
  }
  return result;
}

Status StartReadPasses(const image::ImageView& view, const hal::BoardInfo& board, uint32_t slot) {
  Status status = Status::Ok();
  image::ForEachReadRange(view, [&](image::Window kind, uint32_t offset, uint32_t length, uint8_t cell_bits) {
    hal::MemoryWindow& window = board.window(kind);
    if (status.ok()) status = window.BeginReadPass(SlotOffset(window, slot) + offset, length, cell_bits);
  });
  return status;
}

Status RestartReadPasses(const image::ImageView& view, const hal::BoardInfo& board, uint32_t slot) {
  for (hal::MemoryWindow* window : board.windows) window->EndReadPasses();
  return StartReadPasses(view, board, slot);
}

}  // namespace qmc::firmware
