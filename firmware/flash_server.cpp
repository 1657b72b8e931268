#include "firmware/flash_server.h"

#include <cstring>

#include "common/commit_record.h"
#include "common/crc32.h"
#include "common/inflate.h"
#include "common/slot_layout.h"

namespace qmc::firmware {
namespace {

using flash::ErrorCode;

constexpr uint32_t kPollUs = 100000;
constexpr uint32_t kReplyTimeoutUs = 1000000;  // a host that stops reading loses the reply

bool InWindow(const hal::MemoryWindow& window, uint64_t offset, uint64_t length) {
  return offset <= window.size() && length <= window.size() - offset;
}

}  // namespace

FlashServer::Exit FlashServer::Serve(const hal::BoardInfo& board, LinkInput& input, hal::ByteLink& link,
                                     const SlotState& slots) {
  board_ = &board;
  slots_ = slots;
  begin_ = {};
  // Checks here and the boot after RUN or RESET read the stored bits.
  for (hal::MemoryWindow* window : board.windows) window->EndReadPasses();
  fallback_baud_ = 0;
  const uint32_t session_baud = link.baud();
  flash::SlipDecoder decoder(rx_);
  for (;;) {
    const std::span<const uint8_t> bytes = input.Peek(kPollUs);
    if (bytes.empty() && input.done()) return Exit::kClosed;
    // A host that cannot reach the new rate goes quiet and retries at the
    // old one: after a probation of silence, go back to it.
    if (bytes.empty() && fallback_baud_ != 0 && ++silent_polls_ * (kPollUs / 1000) >= flash::kBaudProbationMs) {
      link.SetBaud(fallback_baud_);
      fallback_baud_ = 0;
    }
    for (size_t i = 0; i < bytes.size(); ++i) {
      const flash::SlipDecoder::Event event = decoder.Push(bytes[i]);
      if (event == flash::SlipDecoder::Event::kNone) continue;
      const Action action = OnFrame(event, decoder.frame(), link);
      if (action == Action::kBaud) {
        // The reply went out at the old rate; a rate the UART cannot take leaves it there.
        const uint32_t old_baud = link.baud();
        if (link.SetBaud(next_baud_)) {
          fallback_baud_ = old_baud;
          silent_polls_ = 0;
        }
        continue;
      }
      if (action != Action::kContinue) {
        input.Consume(i + 1);  // what follows is the console's
        begin_ = {};
        // A BAUD switch lasts for the session: the console runs at the board's rate.
        if (session_baud != 0 && link.baud() != session_baud) link.SetBaud(session_baud);
        return action == Action::kRun ? Exit::kRun : Exit::kReset;
      }
    }
    input.Consume(bytes.size());
  }
}

FlashServer::Action FlashServer::OnFrame(flash::SlipDecoder::Event event, std::span<const uint8_t> frame,
                                         hal::ByteLink& link) {
  flash::Packet request;
  if (event != flash::SlipDecoder::Event::kFrame || flash::ParsePacket(frame, request) != flash::PacketError::kNone) {
    // Not a packet: a NAK, with the sequence number if the bytes have one.
    const uint16_t seq = frame.size() >= 4 ? flash::LoadU16(&frame[2]) : 0;
    SendReply(link, static_cast<uint8_t>(flash::Opcode::kNak), seq, ErrorCode::kBadFrame, 0);
    return Action::kContinue;
  }
  // A reply is never answered: on a link that echoes, answering would loop.
  if ((request.header.flags & flash::kFlagReply) != 0) return Action::kContinue;
  fallback_baud_ = 0;  // a valid packet: the link works at this rate
  size_t reply_bytes = 0;
  const ErrorCode error = request.header.opcode == static_cast<uint8_t>(flash::Opcode::kBaud)
                              ? Baud(request.payload, link)
                              : Handle(request, reply_bytes);
  SendReply(link, request.header.opcode, request.header.seq, error, error == ErrorCode::kNone ? reply_bytes : 0);
  if (error != ErrorCode::kNone) return Action::kContinue;
  if (request.header.opcode == static_cast<uint8_t>(flash::Opcode::kRun)) return Action::kRun;
  if (request.header.opcode == static_cast<uint8_t>(flash::Opcode::kReset)) return Action::kReset;
  if (request.header.opcode == static_cast<uint8_t>(flash::Opcode::kBaud) && next_baud_ != 0) return Action::kBaud;
  return Action::kContinue;
}

void FlashServer::SendReply(hal::ByteLink& link, uint8_t opcode, uint16_t seq, ErrorCode error, size_t payload_bytes) {
  const flash::PacketHeader header{opcode,
                                   flash::kFlagReply,
                                   seq,
                                   error == ErrorCode::kNone ? flash::kStatusOk : flash::kStatusError,
                                   static_cast<uint8_t>(error),
                                   0};
  const size_t n = flash::EncodeFrame(header, {reply_, payload_bytes}, tx_);
  link.Write({tx_, n}, kReplyTimeoutUs);
}

ErrorCode FlashServer::Handle(const flash::Packet& request, size_t& reply_bytes) {
  const std::span<const uint8_t> payload = request.payload;
  switch (static_cast<flash::Opcode>(request.header.opcode)) {
    case flash::Opcode::kHello: return Hello(payload, reply_bytes);
    case flash::Opcode::kBegin: return Begin(payload);
    case flash::Opcode::kData: return Data(payload);
    case flash::Opcode::kEnd: return End(payload, reply_bytes);
    case flash::Opcode::kChecksum: return Checksum(payload, reply_bytes);
    case flash::Opcode::kCopy: return Copy(payload, reply_bytes);
    case flash::Opcode::kCommit: return Commit(payload);
    case flash::Opcode::kRead: return Read(payload, reply_bytes);
    case flash::Opcode::kReset: return payload.empty() ? ErrorCode::kNone : ErrorCode::kBadPayload;
    case flash::Opcode::kRun:
      if (!payload.empty()) return ErrorCode::kBadPayload;
      return slots_.active_slot == kNoSlot ? ErrorCode::kNoImage : ErrorCode::kNone;
    case flash::Opcode::kBaud:  // needs the link: OnFrame handles it
    case flash::Opcode::kNak: break;
  }
  return ErrorCode::kUnknownOpcode;
}

ErrorCode FlashServer::Hello(std::span<const uint8_t> payload, size_t& reply_bytes) {
  flash::HelloRequest hello;
  if (!flash::Decode(payload, hello)) return ErrorCode::kBadPayload;
  flash::InfoReply info;
  for (size_t i = 0; i < flash::kBoardNameBytes && board_->name[i] != '\0'; ++i) info.board[i] = board_->name[i];
  info.window_count = static_cast<uint8_t>(hal::kWindowCount);
  info.active_slot = slots_.active_slot;
  info.commit_sequence = slots_.sequence;
  for (uint32_t w = 0; w < hal::kWindowCount; ++w) {
    const hal::MemoryWindow& window = *board_->windows[w];
    const nvm::SlotGeometry slots = nvm::SlotsOf(window.kind(), window.size());
    const bool non_volatile = window.kind() == hal::WindowKind::kMram || window.kind() == hal::WindowKind::kReram;
    // The CPU address, where it fits the field (a board's does; the emu's 64-bit mapping does not: 0).
    const auto address = reinterpret_cast<uintptr_t>(window.bytes().data());
    info.windows[w] = {static_cast<uint8_t>(window.kind()),
                       static_cast<uint8_t>((window.needs_erase() ? flash::kWindowNeedsErase : 0) |
                                            (non_volatile ? flash::kWindowNonVolatile : 0)),
                       static_cast<uint16_t>(window.write_granularity()),
                       address <= 0xFFFFFFFFu ? static_cast<uint32_t>(address) : 0,
                       static_cast<uint32_t>(window.size()),
                       slots.offset[0],
                       slots.offset[1],
                       slots.size};
  }
  reply_bytes = flash::Encode(info, reply_);
  return ErrorCode::kNone;
}

hal::MemoryWindow* FlashServer::WindowAt(uint8_t index) const {
  return index < hal::kWindowCount ? board_->windows[index] : nullptr;
}

ErrorCode FlashServer::CheckWritable(const hal::MemoryWindow& window, uint64_t offset, uint64_t length) const {
  // SRAM is the running firmware's working memory, not a place for images.
  if (window.kind() == hal::WindowKind::kSram) return ErrorCode::kProtected;
  if (!InWindow(window, offset, length)) return ErrorCode::kOutOfRange;
  if (offset % window.write_granularity() != 0) return ErrorCode::kAlignment;
  if (window.kind() == hal::WindowKind::kMram && nvm::Overlaps(offset, length, 0, nvm::kCommitAreaBytes)) {
    return ErrorCode::kProtected;
  }
  if (slots_.active_slot != kNoSlot) {
    const nvm::SlotGeometry slots = nvm::SlotsOf(window.kind(), window.size());
    if (nvm::Overlaps(offset, length, slots.offset[slots_.active_slot], slots.size)) return ErrorCode::kProtected;
  }
  return ErrorCode::kNone;
}

bool FlashServer::WriteRange(hal::MemoryWindow& window, uint32_t offset, std::span<const uint8_t> data) {
  const uint32_t granule = window.write_granularity();
  const size_t whole = data.size() / granule * granule;
  if (whole > 0 && !window.Write(offset, data.first(whole)).ok()) return false;
  if (whole == data.size()) return true;
  if (granule > sizeof granule_) return false;
  const uint32_t tail = static_cast<uint32_t>(offset + whole);
  const std::span<uint8_t> merged(granule_, granule);
  if (!window.Read(tail, merged).ok()) return false;
  std::memcpy(granule_, data.data() + whole, data.size() - whole);
  return window.Write(tail, merged).ok();
}

bool FlashServer::RangeCrc(hal::MemoryWindow& window, uint32_t offset, uint32_t length, uint32_t& crc) {
  crc = 0;
  for (uint32_t done = 0; done < length;) {
    const uint32_t n = length - done < sizeof block_ ? length - done : static_cast<uint32_t>(sizeof block_);
    if (!window.Read(offset + done, {block_, n}).ok()) return false;
    crc = Crc32(block_, n, crc);
    done += n;
  }
  return true;
}

ErrorCode FlashServer::Begin(std::span<const uint8_t> payload) {
  flash::BeginRequest request;
  if (!flash::Decode(payload, request) || request.size == 0) return ErrorCode::kBadPayload;
  hal::MemoryWindow* window = WindowAt(request.window);
  if (window == nullptr) return ErrorCode::kOutOfRange;
  if (ErrorCode e = CheckWritable(*window, request.offset, request.size); e != ErrorCode::kNone) return e;
  // No board has a window that needs erasing, and the HAL has no erase to call.
  if (window->needs_erase()) return ErrorCode::kWriteFailed;
  begin_ = {true, request.window, request.offset, request.size, 0};
  return ErrorCode::kNone;
}

ErrorCode FlashServer::Data(std::span<const uint8_t> payload) {
  flash::DataRequest request;
  std::span<const uint8_t> bytes;
  if (!flash::DecodeData(payload, request, bytes)) return ErrorCode::kBadPayload;
  if (request.raw_length == 0 || request.raw_length > flash::kMaxDataBytes ||
      request.encoding > static_cast<uint8_t>(flash::DataEncoding::kDeflate)) {
    return ErrorCode::kBadPayload;
  }
  if (!begin_.open || request.offset > begin_.size || request.raw_length > begin_.size - request.offset) {
    return ErrorCode::kNotBegun;
  }
  hal::MemoryWindow& window = *WindowAt(begin_.window);
  const uint32_t granule = window.write_granularity();
  const bool ends_range = request.offset + request.raw_length == begin_.size;
  if (request.offset % granule != 0 || (request.raw_length % granule != 0 && !ends_range)) {
    return ErrorCode::kAlignment;
  }
  std::span<const uint8_t> data = bytes;
  if (request.encoding == static_cast<uint8_t>(flash::DataEncoding::kDeflate)) {
    const Result<size_t> inflated = Inflate(bytes, {block_, request.raw_length});
    if (!inflated.ok()) {
      return inflated.status().code == StatusCode::kTooLarge ? ErrorCode::kLengthMismatch : ErrorCode::kInflate;
    }
    data = {block_, inflated.value()};
  }
  if (data.size() != request.raw_length) return ErrorCode::kLengthMismatch;
  if (!WriteRange(window, begin_.offset + request.offset, data)) return ErrorCode::kWriteFailed;
  begin_.written += request.raw_length;
  return ErrorCode::kNone;
}

ErrorCode FlashServer::End(std::span<const uint8_t> payload, size_t& reply_bytes) {
  if (!payload.empty()) return ErrorCode::kBadPayload;
  if (!begin_.open) return ErrorCode::kNotBegun;
  flash::EndReply reply;
  if (!RangeCrc(*WindowAt(begin_.window), begin_.offset, begin_.size, reply.crc32)) return ErrorCode::kWriteFailed;
  reply.bytes_written = begin_.written;
  begin_ = {};
  reply_bytes = flash::Encode(reply, reply_);
  return ErrorCode::kNone;
}

ErrorCode FlashServer::Checksum(std::span<const uint8_t> payload, size_t& reply_bytes) {
  flash::ChecksumRequest request;
  if (!flash::Decode(payload, request) || request.block_size == 0 || request.count == 0 ||
      request.count * size_t{4} > flash::kMaxPayloadBytes) {
    return ErrorCode::kBadPayload;
  }
  hal::MemoryWindow* window = WindowAt(request.window);
  if (window == nullptr || !InWindow(*window, request.offset, uint64_t{request.block_size} * request.count)) {
    return ErrorCode::kOutOfRange;
  }
  for (uint32_t i = 0; i < request.count; ++i) {
    uint32_t crc = 0;
    if (!RangeCrc(*window, request.offset + i * request.block_size, request.block_size, crc)) {
      return ErrorCode::kOutOfRange;
    }
    flash::StoreU32(reply_ + 4 * i, crc);
  }
  reply_bytes = request.count * size_t{4};
  return ErrorCode::kNone;
}

ErrorCode FlashServer::Copy(std::span<const uint8_t> payload, size_t& reply_bytes) {
  flash::CopyRequest request;
  if (!flash::Decode(payload, request) || request.length == 0) return ErrorCode::kBadPayload;
  hal::MemoryWindow* window = WindowAt(request.window);
  if (window == nullptr || !InWindow(*window, request.source, request.length)) return ErrorCode::kOutOfRange;
  if (ErrorCode e = CheckWritable(*window, request.destination, request.length); e != ErrorCode::kNone) return e;
  if (nvm::Overlaps(request.source, request.length, request.destination, request.length)) {
    return ErrorCode::kBadPayload;
  }
  // Whole granules per chunk, so every chunk but the last stays aligned.
  const uint32_t chunk = static_cast<uint32_t>(sizeof block_) / window->write_granularity() * window->write_granularity();
  if (chunk == 0) return ErrorCode::kAlignment;
  for (uint32_t done = 0; done < request.length;) {
    const uint32_t n = request.length - done < chunk ? request.length - done : chunk;
    if (!window->Read(request.source + done, {block_, n}).ok()) return ErrorCode::kOutOfRange;
    if (!WriteRange(*window, request.destination + done, {block_, n})) return ErrorCode::kWriteFailed;
    done += n;
  }
  flash::CopyReply reply;
  if (!RangeCrc(*window, request.destination, request.length, reply.crc32)) return ErrorCode::kWriteFailed;
  reply_bytes = flash::Encode(reply, reply_);
  return ErrorCode::kNone;
}

ErrorCode FlashServer::Commit(std::span<const uint8_t> payload) {
  flash::CommitRequest request;
  if (!flash::Decode(payload, request) || request.slot >= nvm::kSlotCount) return ErrorCode::kBadPayload;
  // Whatever was being written, the slot is now either committed or not: a
  // range left open could otherwise go on writing into the active slot.
  begin_ = {};
  if (!OpenSlotImage(*board_, request.slot, commit_view_).ok()) return ErrorCode::kImageInvalid;
  if (commit_view_.header().header_crc != request.header_crc) return ErrorCode::kHeaderMismatch;

  hal::MemoryWindow& mram = board_->window(hal::WindowKind::kMram);
  nvm::CommitRecord copies[2];
  if (!ReadCommitRecords(mram, copies).ok()) return ErrorCode::kWriteFailed;
  const nvm::NextCommit next = nvm::PlanCommit(copies, slots_.booted_copy);
  const nvm::CommitRecord record =
      nvm::MakeCommitRecord(next.sequence, request.slot, request.header_crc, commit_view_.header().image_size);
  uint8_t bytes[sizeof record];
  std::memcpy(bytes, &record, sizeof record);
  if (!mram.Write(nvm::kCommitCopyOffsets[next.copy], bytes).ok()) return ErrorCode::kWriteFailed;
  uint8_t back[sizeof record];
  if (!mram.Read(nvm::kCommitCopyOffsets[next.copy], back).ok() || std::memcmp(back, bytes, sizeof back) != 0) {
    return ErrorCode::kWriteFailed;
  }
  slots_ = {request.slot, static_cast<int>(next.copy), next.sequence};
  return ErrorCode::kNone;
}

ErrorCode FlashServer::Baud(std::span<const uint8_t> payload, const hal::ByteLink& link) {
  flash::BaudRequest request;
  if (!flash::Decode(payload, request) || request.baud == 0) return ErrorCode::kBadPayload;
  // A link without a baud rate (the emu's pipes) carries any: nothing to switch.
  next_baud_ = link.baud() == 0 || request.baud == link.baud() ? 0 : request.baud;
  return ErrorCode::kNone;
}

ErrorCode FlashServer::Read(std::span<const uint8_t> payload, size_t& reply_bytes) {
  flash::ReadRequest request;
  if (!flash::Decode(payload, request) || request.length > flash::kMaxPayloadBytes) return ErrorCode::kBadPayload;
  hal::MemoryWindow* window = WindowAt(request.window);
  if (window == nullptr || !InWindow(*window, request.offset, request.length)) return ErrorCode::kOutOfRange;
  if (!window->Read(request.offset, {reply_, request.length}).ok()) return ErrorCode::kOutOfRange;
  reply_bytes = request.length;
  return ErrorCode::kNone;
}

}  // namespace qmc::firmware
