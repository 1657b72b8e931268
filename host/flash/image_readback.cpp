#include "host/flash/image_readback.h"

#include <algorithm>
#include <cstring>
#include <string>

#include "common/image_reader.h"
#include "host/flash/frame_budget.h"
#include "host/image_summary.h"

namespace qmc::host::flash {
namespace {

using namespace qmc::flash;

class Reader {
 public:
  Reader(ProtocolClient& client, const InfoReply& info)
      : client_(client), info_(info), budget_(std::min<uint32_t>(info.max_payload, kMaxDataBytes)) {}

  uint8_t WindowOf(image::Window kind) const {
    for (uint8_t i = 0; i < info_.window_count; ++i) {
      if (info_.windows[i].kind == static_cast<uint8_t>(kind) && info_.windows[i].slot_size > 0) return i;
    }
    throw NoImageError("the board's boot record names a window it has no slots in");
  }

  // `out.size()` bytes from `slot_offset` in the active slot of `window`.
  void Read(uint8_t window, uint32_t slot_offset, std::span<uint8_t> out) {
    const WindowInfo& w = info_.windows[window];
    if (uint64_t{slot_offset} + out.size() > w.slot_size) {
      throw NoImageError("the board's boot record places a section outside its slot");
    }
    for (size_t done = 0; done < out.size();) {
      const uint16_t n = budget_.Run(client_, [&](uint32_t budget) {
        const auto length = static_cast<uint16_t>(std::min<size_t>(budget, out.size() - done));
        const ReadRequest request{window, static_cast<uint32_t>(w.slot_offset(info_.active_slot) + slot_offset + done),
                                  length};
        const std::vector<uint8_t> bytes = client_.Call(Opcode::kRead, request, length);
        if (bytes.size() != length) throw PortError(client_.port().Describe() + ": READ's reply has the wrong length");
        std::memcpy(out.data() + done, bytes.data(), length);
        return length;
      });
      done += n;
      if (progress_) progress_(bytes_read_ += n, total_);
    }
  }

  void Track(const ReadProgress& progress, uint64_t total) {
    progress_ = progress;
    total_ = total;
  }

 private:
  ProtocolClient& client_;
  const InfoReply& info_;
  FrameBudget budget_;  // sizes READ replies to what the link carries
  ReadProgress progress_;
  uint64_t bytes_read_ = 0;
  uint64_t total_ = 0;
};

}  // namespace

std::vector<uint8_t> ReadBackImage(ProtocolClient& client, const ReadProgress& progress) {
  const InfoReply info = client.Connect();
  if (info.active_slot == kNoActiveSlot) throw NoImageError("the board has no committed image");
  Reader reader(client, info);
  const uint8_t mram = reader.WindowOf(image::Window::kMram);

  image::Header header;
  reader.Read(mram, 0, std::span(reinterpret_cast<uint8_t*>(&header), sizeof header));
  if (header.magic != image::kMagic || header.section_count == 0 || header.section_count > image::kMaxSections) {
    throw NoImageError("the active slot holds no QMC boot record");
  }
  const uint32_t record_bytes = image::BootRecordSize(header.section_count);
  std::vector<uint8_t> record(record_bytes);
  std::memcpy(record.data(), &header, sizeof header);
  reader.Read(mram, sizeof header, std::span(record).subspan(sizeof header));
  std::vector<image::SectionEntry> sections(header.section_count);
  std::memcpy(sections.data(), record.data() + sizeof header, sections.size() * sizeof(image::SectionEntry));
  if (image::HeaderCrc(header, sections.data()) != header.header_crc) {
    throw NoImageError("the active slot's boot record fails its CRC");
  }

  // The file is no larger than what it describes: a boot record that passed
  // its CRC says how large, and every section must lie inside it.
  std::vector<uint8_t> file(header.image_size, 0);
  if (record_bytes > file.size()) throw NoImageError("the boot record is larger than its image");
  std::memcpy(file.data(), record.data(), record_bytes);
  uint64_t total = 0;
  for (const image::SectionEntry& s : sections) total += s.length;
  reader.Track(progress, total);
  for (const image::SectionEntry& s : sections) {
    if (uint64_t{s.file_offset} + s.length > file.size()) throw NoImageError("a section lies outside the image");
    reader.Read(reader.WindowOf(static_cast<image::Window>(s.window)), s.window_offset,
                std::span(file).subspan(s.file_offset, s.length));
  }

  const Result<image::ImageView> view = image::ImageView::OpenFile(file);
  const Status status = view.ok() ? view.value().Validate() : view.status();
  if (!status.ok()) throw NoImageError("the image read back does not validate: " + DescribeStatus(status));
  return file;
}

}  // namespace qmc::host::flash
