#include "host/flash/flasher.h"

#include <algorithm>
#include <chrono>
#include <string>

#include "common/crc32.h"
#include "host/checkpoint.h"
#include "host/flash/deflate_block.h"
#include "host/flash/frame_budget.h"

namespace qmc::host::flash {
namespace {

using namespace qmc::flash;

// Write passes per range: the first writes, the others repair what the
// device's CRCs show did not land (each followed by a fresh CRC check).
constexpr int kWritePasses = 3;

// One range of the image as it lies in the slot: a section, or the boot record.
struct Range {
  uint8_t window = 0;  // index into INFO's windows
  uint32_t slot_offset = 0;
  std::span<const uint8_t> bytes;
  std::string name;
};

InfoReply Hello(ProtocolClient& client) {
  InfoReply info;
  if (!Decode(client.Call(Opcode::kHello, HelloRequest{}), info)) {
    throw PortError(client.port().Describe() + ": the board's INFO does not decode");
  }
  return info;
}

class Flasher {
 public:
  Flasher(ProtocolClient& client, const InfoReply& info, const FlashOptions& options, const FlashProgress& progress,
          FlashSummary& summary)
      : client_(client),
        info_(info),
        options_(options),
        progress_(progress),
        summary_(summary),
        block_(DataBlockBytes(info)),
        budget_(block_) {
    if (block_ < FrameBudget::kMinBytes) {
      throw PortError(client.port().Describe() + ": the board's packets are too small to flash");
    }
  }

  void Place(const Range& range);

 private:
  // A DATA payload is its 8-byte header and the block; the board may take less than 4 KiB.
  static uint32_t DataBlockBytes(const InfoReply& info) {
    const uint32_t room = info.max_payload > kDataHeaderBytes ? info.max_payload - uint32_t{kDataHeaderBytes} : 0;
    return std::min<uint32_t>(kMaxDataBytes, room / 64 * 64);
  }
  uint32_t SlotStart(uint8_t window, uint8_t slot) const { return info_.windows[window].slot_offset(slot); }
  std::vector<uint32_t> ExpectedCrcs(std::span<const uint8_t> bytes) const;
  std::vector<uint32_t> DeviceCrcs(uint8_t window, uint32_t offset, uint32_t length);
  // Copies blocks [first, last) from the active slot; throws when the copy's CRC is wrong.
  void CopyBlocks(const Range& range, size_t first, size_t last);
  void SendBlocks(const Range& range, size_t first, size_t last);
  // One DATA request: `raw` at `offset` in the open BEGIN range.
  void SendPiece(uint32_t offset, std::span<const uint8_t> raw);
  void Advance(uint64_t bytes) {
    done_ += bytes;
    if (progress_) progress_(done_, summary_.image_bytes, client_.stats());
  }
  uint64_t BlockBytes(const Range& range, size_t first, size_t last) const {
    return std::min<uint64_t>(range.bytes.size(), uint64_t{last} * block_) - uint64_t{first} * block_;
  }

  ProtocolClient& client_;
  const InfoReply& info_;
  const FlashOptions& options_;
  const FlashProgress& progress_;
  FlashSummary& summary_;
  BlockDeflater deflater_;
  uint32_t block_;
  FrameBudget budget_;  // sizes DATA pieces and CHECKSUM replies to what the link carries
  uint64_t done_ = 0;
};

std::vector<uint32_t> Flasher::ExpectedCrcs(std::span<const uint8_t> bytes) const {
  std::vector<uint32_t> crcs;
  for (size_t pos = 0; pos < bytes.size(); pos += block_) {
    const size_t n = std::min<size_t>(block_, bytes.size() - pos);
    crcs.push_back(Crc32(bytes.data() + pos, n));
  }
  return crcs;
}

std::vector<uint32_t> Flasher::DeviceCrcs(uint8_t window, uint32_t offset, uint32_t length) {
  std::vector<uint32_t> crcs;
  const uint32_t whole = length / block_;
  auto request = [&](uint32_t at, uint32_t block_size, uint32_t count) {
    const ChecksumRequest checksum{window, at, block_size, static_cast<uint16_t>(count)};
    const std::vector<uint8_t> reply = client_.Call(Opcode::kChecksum, checksum, uint64_t{block_size} * count);
    if (reply.size() != size_t{count} * 4) {
      throw PortError(client_.port().Describe() + ": CHECKSUM's reply has the wrong length");
    }
    for (uint32_t i = 0; i < count; ++i) crcs.push_back(LoadU32(&reply[4 * i]));
  };
  for (uint32_t i = 0; i < whole;) {
    const uint32_t done = budget_.Run(client_, [&](uint32_t bytes) {
      const uint32_t count = std::min(bytes / 4, whole - i);  // 4 reply bytes per CRC
      request(offset + i * block_, block_, count);
      return count;
    });
    i += done;
  }
  // The last block may be short: the device's CRC covers only the range.
  if (length % block_ != 0) request(offset + whole * block_, length % block_, 1);
  return crcs;
}

void Flasher::SendPiece(uint32_t offset, std::span<const uint8_t> raw) {
  const std::vector<uint8_t> deflated = options_.compress ? deflater_.Compress(raw) : std::vector<uint8_t>();
  const bool deflate = !deflated.empty();
  const std::span<const uint8_t> body = deflate ? std::span<const uint8_t>(deflated) : raw;
  std::vector<uint8_t> payload(kDataHeaderBytes);
  Encode(DataRequest{offset, static_cast<uint16_t>(raw.size()),
                     static_cast<uint8_t>(deflate ? DataEncoding::kDeflate : DataEncoding::kRaw)},
         payload);
  payload.insert(payload.end(), body.begin(), body.end());
  client_.Call(Opcode::kData, payload, raw.size());
  summary_.sent_deflated += body.size();
}

void Flasher::CopyBlocks(const Range& range, size_t first, size_t last) {
  const uint32_t at = static_cast<uint32_t>(first * block_);
  const auto length = static_cast<uint32_t>(BlockBytes(range, first, last));
  const CopyRequest copy{range.window, SlotStart(range.window, info_.active_slot) + range.slot_offset + at,
                         SlotStart(range.window, summary_.slot) + range.slot_offset + at, length};
  CopyReply reply;
  if (!Decode(client_.Call(Opcode::kCopy, copy, 2ull * length), reply)) {
    throw PortError(client_.port().Describe() + ": COPY's reply does not decode");
  }
  if (reply.crc32 != Crc32(range.bytes.data() + at, length)) {
    throw PortError(client_.port().Describe() + ": COPY stored other bytes than the active slot's CRCs promised");
  }
}

void Flasher::SendBlocks(const Range& range, size_t first, size_t last) {
  const uint32_t start = static_cast<uint32_t>(first * block_);
  const auto length = static_cast<uint32_t>(BlockBytes(range, first, last));
  // One BEGIN per run of blocks: a window that needs erasing erases just these.
  const BeginRequest begin{range.window, SlotStart(range.window, summary_.slot) + range.slot_offset + start, length};
  client_.Call(Opcode::kBegin, begin, length);
  for (uint32_t at = 0; at < length;) {
    const uint32_t sent = budget_.Run(client_, [&](uint32_t bytes) {
      const std::span<const uint8_t> raw = range.bytes.subspan(start + at, std::min(bytes, length - at));
      SendPiece(at, raw);
      return static_cast<uint32_t>(raw.size());
    });
    at += sent;
  }
  try {
    client_.Call(Opcode::kEnd, std::span<const uint8_t>(), length);
  } catch (const DeviceError& e) {
    // A resent END whose first copy closed the range: the range is closed, as wanted.
    if (!(e.resent() && e.code() == ErrorCode::kNotBegun)) throw;
  }
}

void Flasher::Place(const Range& range) {
  const std::vector<uint32_t> expected = ExpectedCrcs(range.bytes);
  const uint32_t target = SlotStart(range.window, summary_.slot) + range.slot_offset;
  const auto length = static_cast<uint32_t>(range.bytes.size());
  std::vector<uint32_t> active;  // the active slot's CRCs at the same place, read once if needed
  for (int pass = 0;; ++pass) {
    const std::vector<uint32_t> stored = DeviceCrcs(range.window, target, length);
    std::vector<size_t> needed;
    uint64_t in_place = range.bytes.size();
    for (size_t i = 0; i < expected.size(); ++i) {
      if (stored[i] == expected[i]) continue;
      needed.push_back(i);
      in_place -= BlockBytes(range, i, i + 1);
    }
    if (pass == 0) {
      summary_.skipped += in_place;
      Advance(in_place);
    }
    if (needed.empty()) return;
    if (pass == kWritePasses) {
      throw PortError(client_.port().Describe() + ": " + range.name + " does not verify after " +
                      std::to_string(kWritePasses) + " writes (" + std::to_string(needed.size()) +
                      " blocks differ)");
    }
    if (pass > 0) summary_.resent_blocks += needed.size();
    if (active.empty() && info_.active_slot != kNoActiveSlot) {
      active = DeviceCrcs(range.window, SlotStart(range.window, info_.active_slot) + range.slot_offset, length);
    }
    // Runs of consecutive needed blocks that take the same action.
    for (size_t r = 0; r < needed.size();) {
      const bool copy = !active.empty() && active[needed[r]] == expected[needed[r]];
      size_t end = r + 1;
      while (end < needed.size() && needed[end] == needed[end - 1] + 1 &&
             (!active.empty() && active[needed[end]] == expected[needed[end]]) == copy) {
        ++end;
      }
      const size_t first = needed[r], last = needed[end - 1] + 1;
      const uint64_t bytes = BlockBytes(range, first, last);
      if (!options_.dry_run) {
        if (copy) {
          CopyBlocks(range, first, last);
        } else {
          SendBlocks(range, first, last);
        }
      }
      if (pass == 0) {
        (copy ? summary_.copied : summary_.sent) += bytes;
        Advance(bytes);
      }
      r = end;
    }
    if (options_.dry_run || !options_.verify) return;
  }
}

}  // namespace

void CommitSlot(ProtocolClient& client, const InfoReply& before, uint8_t slot, uint32_t header_crc,
                uint64_t image_bytes) {
  uint8_t payload[16];
  const size_t n = Encode(CommitRequest{slot, header_crc}, payload);
  for (int attempt = 0; attempt < client.attempts(); ++attempt) {
    // The board validates the whole image before it commits: every byte is read.
    if (client.CallOnce(Opcode::kCommit, std::span<const uint8_t>(payload, n), image_bytes)) return;
    const InfoReply now = Hello(client);
    if (now.active_slot == slot && now.commit_sequence != before.commit_sequence) return;
  }
  throw PortError(client.port().Describe() + ": no reply to COMMIT after " + std::to_string(client.attempts()) +
                  " attempts");
}

FlashSummary FlashImage(ProtocolClient& client, std::span<const uint8_t> image, const image::ImageView& view,
                        const FlashOptions& options, const FlashProgress& progress) {
  const auto start = std::chrono::steady_clock::now();
  const InfoReply info = client.Connect();
  FlashSummary summary;
  summary.slot = info.active_slot == kNoActiveSlot ? 0 : static_cast<uint8_t>(1 - info.active_slot);

  auto window_of = [&](image::Window kind) -> uint8_t {
    for (uint8_t i = 0; i < info.window_count; ++i) {
      if (info.windows[i].kind == static_cast<uint8_t>(kind) && info.windows[i].slot_size > 0) return i;
    }
    throw InputError(std::string("the board has no slots in a window the image uses (") +
                     std::to_string(static_cast<int>(kind)) + ")");
  };
  auto fits = [&](const Range& range) {
    if (uint64_t{range.slot_offset} + range.bytes.size() > info.windows[range.window].slot_size) {
      throw InputError(range.name + " does not fit the board's slot (" +
                       std::to_string(info.windows[range.window].slot_size) + " bytes)");
    }
  };
  std::vector<Range> ranges;
  for (uint32_t i = 0; i < view.section_count(); ++i) {
    const image::SectionEntry& s = view.section(i);
    ranges.push_back({window_of(static_cast<image::Window>(s.window)), s.window_offset, view.section_bytes(i),
                      "section " + std::to_string(i)});
  }
  // The boot record last: until it is in place and verified the slot holds no image.
  ranges.push_back({window_of(image::Window::kMram), 0,
                    image.first(image::BootRecordSize(view.section_count())), "the boot record"});
  for (const Range& range : ranges) {
    fits(range);
    summary.image_bytes += range.bytes.size();
  }

  Flasher flasher(client, info, options, progress, summary);
  for (const Range& range : ranges) flasher.Place(range);

  if (!options.dry_run) {
    CommitSlot(client, info, summary.slot, view.header().header_crc, summary.image_bytes);
    const InfoReply now = Hello(client);
    if (now.active_slot != summary.slot) {
      throw PortError(client.port().Describe() + ": the board did not switch to slot " +
                      std::to_string(summary.slot) + " after COMMIT");
    }
    summary.commit_sequence = now.commit_sequence;
    // The board boots what it committed. RESET's reply may be lost to the
    // reset: no resend. A resent RUN is harmless (its END hands the console
    // back to the server, which runs the image again).
    if (options.run) {
      client.Call(Opcode::kRun, std::span<const uint8_t>());
    } else {
      client.CallOnce(Opcode::kReset, std::span<const uint8_t>());
    }
  }
  summary.link = client.stats();
  summary.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return summary;
}

}  // namespace qmc::host::flash
