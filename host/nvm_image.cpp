#include "host/nvm_image.h"

#include <algorithm>
#include <string>
#include <vector>

#include "common/crc32.h"
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

void WriteImageToNvm(const image::ImageView& view, std::span<const uint8_t> file, const std::filesystem::path& dir) {
  std::error_code error;
  std::filesystem::create_directories(dir, error);
  if (error) throw IoError(dir.string() + ": cannot create: " + error.message());
  try {
    hal::emu::EmuBoard board(dir, {});
    for (uint32_t w = 0; w < hal::kWindowCount; ++w) {
      const auto kind = static_cast<hal::WindowKind>(w);
      const uint64_t need = view.WindowBytes(kind), have = board.window(kind).size();
      if (need > have) {
        throw InputError("the image needs " + std::to_string(need) + " bytes of " + hal::WindowName(kind) +
                         "; the emu board has " + std::to_string(have));
      }
    }
    hal::MemoryWindow& mram = board.window(hal::WindowKind::kMram);
    const std::vector<uint8_t> blank(sizeof(image::Header), 0);
    Check(mram.Write(0, blank), "cannot clear the old boot record");
    board.Sync();

    for (uint32_t i = 0; i < view.section_count(); ++i) {
      const image::SectionEntry& s = view.section(i);
      hal::MemoryWindow& window = board.window(static_cast<hal::WindowKind>(s.window));
      WritePadded(window, s.window_offset, view.section_bytes(i));
      // Verify before committing, as the flasher's CHECKSUM does.
      std::vector<uint8_t> back(s.length);
      Check(window.Read(s.window_offset, back), "read-back failed");
      if (Crc32(back.data(), back.size()) != s.crc32) {
        throw IoError(dir.string() + ": section " + std::to_string(i) + " does not read back");
      }
    }
    // The boot record last, its header (with the magic) after the section table.
    const uint32_t record = image::BootRecordSize(view.section_count());
    WritePadded(mram, sizeof(image::Header), file.subspan(sizeof(image::Header), record - sizeof(image::Header)));
    board.Sync();
    WritePadded(mram, 0, file.first(sizeof(image::Header)));
    board.Sync();
  } catch (const hal::emu::EmuError& e) {
    throw IoError(e.what());
  }
}

}  // namespace qmc::host
