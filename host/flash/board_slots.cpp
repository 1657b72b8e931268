#include "host/flash/board_slots.h"

#include <algorithm>
#include <cstring>

#include "common/image_reader.h"
#include "host/flash/flasher.h"

namespace qmc::host::flash {
namespace {

using namespace qmc::flash;

uint8_t MramWindow(const InfoReply& info) {
  for (uint8_t i = 0; i < info.window_count; ++i) {
    if (info.windows[i].kind == static_cast<uint8_t>(image::Window::kMram) && info.windows[i].slot_size > 0) return i;
  }
  throw PortError("the board reports no MRAM slots");
}

// `out.size()` bytes at `offset` in `window`, in READs the board's payload allows.
void ReadWindow(ProtocolClient& client, const InfoReply& info, uint8_t window, uint32_t offset,
                std::span<uint8_t> out) {
  const size_t most = std::min<size_t>(info.max_payload, kMaxDataBytes);
  for (size_t done = 0; done < out.size();) {
    const auto length = static_cast<uint16_t>(std::min(most, out.size() - done));
    const std::vector<uint8_t> bytes =
        client.Call(Opcode::kRead, ReadRequest{window, static_cast<uint32_t>(offset + done), length}, length);
    if (bytes.size() != length) throw PortError(client.port().Describe() + ": READ's reply has the wrong length");
    std::memcpy(out.data() + done, bytes.data(), length);
    done += length;
  }
}

}  // namespace

SlotRecord ReadSlotRecord(ProtocolClient& client, const InfoReply& info, uint8_t slot) {
  SlotRecord record;
  record.slot = slot;
  const uint8_t mram = MramWindow(info);
  const uint32_t start = info.windows[mram].slot_offset(slot);
  ReadWindow(client, info, mram, start, std::span(reinterpret_cast<uint8_t*>(&record.header), sizeof record.header));
  const image::Header& h = record.header;
  if (h.magic != image::kMagic) {
    record.problem = "no boot record";
    return record;
  }
  if (h.section_count == 0 || h.section_count > image::kMaxSections ||
      image::BootRecordSize(h.section_count) > info.windows[mram].slot_size) {
    record.problem = "a damaged boot record (section count " + std::to_string(h.section_count) + ")";
    return record;
  }
  record.sections.resize(h.section_count);
  ReadWindow(client, info, mram, start + static_cast<uint32_t>(sizeof h),
             std::span(reinterpret_cast<uint8_t*>(record.sections.data()),
                       record.sections.size() * sizeof(image::SectionEntry)));
  if (image::HeaderCrc(h, record.sections.data()) != h.header_crc) {
    record.problem = "a boot record that fails its CRC (partly written?)";
  }
  return record;
}

RollbackResult Rollback(ProtocolClient& client) {
  const InfoReply info = client.Connect();
  if (info.active_slot == kNoActiveSlot) throw RollbackRefused("the board has no committed image to roll back from");
  RollbackResult result;
  result.from = info.active_slot;
  result.to = static_cast<uint8_t>(1 - info.active_slot);
  result.record = ReadSlotRecord(client, info, result.to);
  const std::string other = "slot " + std::to_string(result.to);
  if (!result.record.valid()) throw RollbackRefused(other + " holds " + result.record.problem + ": nothing to roll back to");
  try {
    CommitSlot(client, info, result.to, result.record.header.header_crc, result.record.header.image_size);
  } catch (const DeviceError& e) {
    if (e.code() == ErrorCode::kImageInvalid || e.code() == ErrorCode::kHeaderMismatch) {
      throw RollbackRefused(other + "'s image does not validate on the board (" + ErrorCodeName(e.code()) +
                            "): nothing to roll back to");
    }
    throw;
  }
  InfoReply now;
  if (!Decode(client.Call(Opcode::kHello, HelloRequest{}), now) || now.active_slot != result.to) {
    throw PortError(client.port().Describe() + ": the board did not switch to " + other + " after COMMIT");
  }
  result.commit_sequence = now.commit_sequence;
  // Boot it; the reply may be lost to the reset: no resend.
  client.CallOnce(Opcode::kReset, std::span<const uint8_t>());
  return result;
}

}  // namespace qmc::host::flash
