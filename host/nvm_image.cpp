#include "host/nvm_image.h"

#include <algorithm>
#include <string>
#include <vector>

#include "common/commit_record.h"
#include "common/crc32.h"
#include "common/slot_layout.h"
#include "hal/emu/emu_board.h"
#include "host/atomic_file.h"
#include "host/checkpoint.h"
#include "host/image_summary.h"

namespace qmc::host {
namespace {

void Check(const Status& status, const char* what) {
  if (!status.ok()) throw IoError(std::string(what) + ": " + DescribeStatus(status));
}

// Writes `bytes` at `offset`, the last partial granule padded with zeros
// (sections are 64-aligned, so the padding never reaches the next one).
void WritePadded(hal::MemoryWindow& window, uint32_t offset, std::span<const uint8_t> bytes) {
  const uint32_t granule = window.write_granularity();
  const size_t whole = bytes.size() / granule * granule;
  Check(window.Write(offset, bytes.first(whole)), "write failed");
  if (whole == bytes.size()) return;
  std::vector<uint8_t> tail(granule, 0);
  std::copy(bytes.begin() + static_cast<std::ptrdiff_t>(whole), bytes.end(), tail.begin());
  Check(window.Write(static_cast<uint32_t>(offset + whole), tail), "write failed");
}

}  // namespace

void WriteImageToNvm(const image::ImageView& view, std::span<const uint8_t> file, const std::filesystem::path& dir,
                     const hal::emu::WindowSizes& sizes) {
  std::error_code error;
  std::filesystem::create_directories(dir, error);
  if (error) throw IoError(dir.string() + ": cannot create: " + error.message());
  try {
    hal::emu::EmuBoard board(dir, {}, sizes);
    uint32_t slot_offset[hal::kWindowCount] = {};
    for (uint32_t w = 0; w < hal::kWindowCount; ++w) {
      const auto kind = static_cast<hal::WindowKind>(w);
      const nvm::SlotGeometry slots = nvm::SlotsOf(kind, board.window(kind).size());
      const uint64_t need = view.WindowBytes(kind);
      if (need > slots.size) {
        throw InputError("the image needs " + std::to_string(need) + " bytes of " + hal::WindowName(kind) +
                         "; a slot of the emu board's has " + std::to_string(slots.size));
      }
      slot_offset[w] = slots.offset[0];
    }
    hal::MemoryWindow& mram = board.window(hal::WindowKind::kMram);
    // No record may name slot 0 while it is being rewritten.
    const std::vector<uint8_t> blank(sizeof(nvm::CommitRecord), 0);
    for (uint32_t copy : nvm::kCommitCopyOffsets) Check(mram.Write(copy, blank), "cannot clear the commit records");
    board.Sync();

    for (uint32_t i = 0; i < view.section_count(); ++i) {
      const image::SectionEntry& s = view.section(i);
      hal::MemoryWindow& window = board.window(static_cast<hal::WindowKind>(s.window));
      const uint32_t offset = slot_offset[s.window] + s.window_offset;
      WritePadded(window, offset, view.section_bytes(i));
      // Verify before committing, as the flasher's CHECKSUM does.
      std::vector<uint8_t> back(s.length);
      Check(window.Read(offset, back), "read-back failed");
      if (Crc32(back.data(), back.size()) != s.crc32) {
        throw IoError(dir.string() + ": section " + std::to_string(i) + " does not read back");
      }
    }
    // The boot record at the slot's MRAM start, then the commit record last.
    const uint32_t mram_slot = slot_offset[static_cast<uint32_t>(hal::WindowKind::kMram)];
    WritePadded(mram, mram_slot, file.first(image::BootRecordSize(view.section_count())));
    board.Sync();
    const nvm::CommitRecord record = nvm::MakeCommitRecord(1, 0, view.header().header_crc, view.header().image_size);
    WritePadded(mram, nvm::kCommitCopyOffsets[0], {reinterpret_cast<const uint8_t*>(&record), sizeof record});
    board.Sync();
  } catch (const hal::emu::EmuError& e) {
    throw IoError(e.what());
  }
}

}  // namespace qmc::host
