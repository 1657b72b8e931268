// The flash protocol's packets: opcodes, error codes, the packet header and
// every request and reply payload, with their encoders and decoders.
// docs/protocol.md is the specification, byte by byte; common/slip_frame.h
// frames packets on the link. Shared by the host flasher and the firmware's
// flash server, so both sides read and write the same bytes.
//
// Payloads are encoded field by field (little-endian, no padding) rather than
// copied as structs: several payloads (CHECKSUM, READ) end in a u16 and so
// are not a multiple of their alignment. The static_asserts below run each
// encoder at compile time and pin its wire size.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>

namespace qmc::flash {

inline constexpr uint16_t kProtocolVersion = 1;
// Raw bytes one DATA block may carry.
inline constexpr uint32_t kMaxDataBytes = 4096;
// The device's largest payload in either direction, announced by INFO: a
// DATA block and its 8-byte header with room to spare.
inline constexpr uint32_t kMaxPayloadBytes = kMaxDataBytes + 16;
inline constexpr size_t kBoardNameBytes = 24;
inline constexpr size_t kMaxWindows = 4;

enum class Opcode : uint8_t {
  kNak = 0x00,  // reply only: a frame that is not a packet
  kHello = 0x01,
  kBegin = 0x02,
  kData = 0x03,
  kEnd = 0x04,
  kChecksum = 0x05,
  kCopy = 0x06,
  kCommit = 0x07,
  kRead = 0x08,
  kReset = 0x09,
  kRun = 0x0A,
  kBaud = 0x0B,  // switch the link's baud rate (added after 1.0; older boards: kUnknownOpcode)
};

enum class ErrorCode : uint8_t {
  kNone = 0,
  kBadFrame = 1,        // bad CRC, impossible length, bad SLIP escape, oversize frame
  kUnknownOpcode = 2,
  kBadPayload = 3,      // payload length or a field value the opcode does not allow
  kOutOfRange = 4,      // window index, offset or length outside the window
  kAlignment = 5,       // offset or length not a multiple of the write granularity
  kProtected = 6,       // the range overlaps the active slot or the commit area
  kNotBegun = 7,        // DATA/END without BEGIN, or DATA outside the BEGIN range
  kInflate = 8,         // a deflated DATA block does not decode
  kLengthMismatch = 9,  // a DATA block decodes to other than its raw length
  kWriteFailed = 10,
  kImageInvalid = 11,   // COMMIT: the slot's image fails a check
  kHeaderMismatch = 12, // COMMIT: the slot's header CRC is not the one named
  kNoImage = 13,        // RUN with nothing committed that boots
};

// A stable name for messages, e.g. "protected".
const char* ErrorCodeName(ErrorCode code);

inline constexpr uint8_t kFlagReply = 0x01;
inline constexpr uint8_t kStatusOk = 0;
inline constexpr uint8_t kStatusError = 1;

// Every packet starts with this header, then payload_length bytes, then a
// u32 CRC-32 (zlib's) of the header and payload.
struct PacketHeader {
  uint8_t opcode;
  uint8_t flags;  // kFlagReply on replies
  uint16_t seq;   // chosen by the host; a reply echoes its request's
  uint8_t status; // kStatusOk/kStatusError; 0 on requests
  uint8_t error;  // ErrorCode; 0 when ok
  uint16_t payload_length;
};
static_assert(sizeof(PacketHeader) == 8);
static_assert(offsetof(PacketHeader, seq) == 2);
static_assert(offsetof(PacketHeader, status) == 4);
static_assert(offsetof(PacketHeader, payload_length) == 6);

inline constexpr size_t kHeaderBytes = sizeof(PacketHeader);
inline constexpr size_t kCrcBytes = 4;
inline constexpr size_t kMaxPacketBytes = kHeaderBytes + kMaxPayloadBytes + kCrcBytes;

constexpr uint16_t LoadU16(const uint8_t* p) { return static_cast<uint16_t>(p[0] | p[1] << 8); }
constexpr uint32_t LoadU32(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) | static_cast<uint32_t>(p[1]) << 8 | static_cast<uint32_t>(p[2]) << 16 |
         static_cast<uint32_t>(p[3]) << 24;
}
constexpr void StoreU16(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v);
  p[1] = static_cast<uint8_t>(v >> 8);
}
constexpr void StoreU32(uint8_t* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}

// Writes fields in order; `ok` turns false (and stays) when `out` is full.
class WireWriter {
 public:
  constexpr explicit WireWriter(std::span<uint8_t> out) : out_(out) {}
  constexpr void U8(const uint8_t& v) {
    if (Room(1)) out_[pos_++] = v;
  }
  constexpr void U16(const uint16_t& v) {
    if (Room(2)) {
      StoreU16(&out_[pos_], v);
      pos_ += 2;
    }
  }
  constexpr void U32(const uint32_t& v) {
    if (Room(4)) {
      StoreU32(&out_[pos_], v);
      pos_ += 4;
    }
  }
  constexpr void Reserved(size_t n) {
    for (size_t i = 0; i < n; ++i) U8(0);
  }
  template <size_t N>
  constexpr void Chars(const char (&v)[N]) {
    for (size_t i = 0; i < N; ++i) U8(static_cast<uint8_t>(v[i]));
  }
  constexpr bool ok() const { return ok_; }
  constexpr size_t size() const { return pos_; }

 private:
  constexpr bool Room(size_t n) {
    ok_ = ok_ && out_.size() - pos_ >= n;
    return ok_;
  }
  std::span<uint8_t> out_;
  size_t pos_ = 0;
  bool ok_ = true;
};

// Reads fields in order; `ok` turns false (and stays) when `in` runs out.
// Reserved bytes are skipped, not checked: senders write zero.
class WireReader {
 public:
  constexpr explicit WireReader(std::span<const uint8_t> in) : in_(in) {}
  constexpr void U8(uint8_t& v) {
    if (Have(1)) v = in_[pos_++];
  }
  constexpr void U16(uint16_t& v) {
    if (Have(2)) {
      v = LoadU16(&in_[pos_]);
      pos_ += 2;
    }
  }
  constexpr void U32(uint32_t& v) {
    if (Have(4)) {
      v = LoadU32(&in_[pos_]);
      pos_ += 4;
    }
  }
  constexpr void Reserved(size_t n) {
    if (Have(n)) pos_ += n;
  }
  template <size_t N>
  constexpr void Chars(char (&v)[N]) {
    for (size_t i = 0; i < N; ++i) {
      uint8_t c = 0;
      U8(c);
      v[i] = static_cast<char>(c);
    }
  }
  constexpr bool ok() const { return ok_; }
  constexpr size_t position() const { return pos_; }
  constexpr std::span<const uint8_t> rest() const { return in_.subspan(ok_ ? pos_ : in_.size()); }

 private:
  constexpr bool Have(size_t n) {
    ok_ = ok_ && in_.size() - pos_ >= n;
    return ok_;
  }
  std::span<const uint8_t> in_;
  size_t pos_ = 0;
  bool ok_ = true;
};

// Payloads. Each lists its fields once, in wire order, in Fields(), which
// both Encode and Decode walk.

// HELLO request.
struct HelloRequest {
  uint16_t version = kProtocolVersion;
  template <typename Io> constexpr void Fields(Io& io) { io.U16(version); }
};

inline constexpr uint8_t kWindowNeedsErase = 0x01;
inline constexpr uint8_t kWindowNonVolatile = 0x02;
inline constexpr uint8_t kNoActiveSlot = 0xFF;

// One window as INFO describes it. Offsets are window offsets; slot_size is
// 0 for a window without slots (SRAM).
struct WindowInfo {
  uint8_t kind = 0;  // hal::WindowKind: 0 SRAM, 1 MRAM, 2 ReRAM, 3 DRAM
  uint8_t flags = 0; // kWindowNeedsErase | kWindowNonVolatile
  uint16_t write_granularity = 1;
  uint32_t base = 0;  // the CPU address of offset 0
  uint32_t size = 0;
  uint32_t slot0_offset = 0;
  uint32_t slot1_offset = 0;
  uint32_t slot_size = 0;
  template <typename Io> constexpr void Fields(Io& io) {
    io.U8(kind), io.U8(flags), io.U16(write_granularity), io.U32(base), io.U32(size);
    io.U32(slot0_offset), io.U32(slot1_offset), io.U32(slot_size);
  }
  constexpr uint32_t slot_offset(uint32_t slot) const { return slot == 0 ? slot0_offset : slot1_offset; }
};

// INFO, the reply to HELLO: a fixed part, then window_count WindowInfos.
struct InfoReply {
  uint16_t version = kProtocolVersion;
  uint16_t max_payload = kMaxPayloadBytes;
  char board[kBoardNameBytes] = {};  // NUL-padded; not NUL-terminated when full
  uint8_t window_count = 0;          // <= kMaxWindows
  uint8_t active_slot = kNoActiveSlot;
  uint32_t commit_sequence = 0;  // of the booted commit record; 0 when none
  WindowInfo windows[kMaxWindows] = {};
  template <typename Io> constexpr void Fields(Io& io) {
    io.U16(version), io.U16(max_payload), io.Chars(board), io.U8(window_count), io.U8(active_slot);
    io.Reserved(2), io.U32(commit_sequence);
    for (size_t i = 0; i < window_count && i < kMaxWindows; ++i) windows[i].Fields(io);
  }
  constexpr bool Valid() const { return window_count <= kMaxWindows; }
};

// BEGIN: start a write of [offset, offset + size) in `window`.
struct BeginRequest {
  uint8_t window = 0;
  uint32_t offset = 0;
  uint32_t size = 0;
  template <typename Io> constexpr void Fields(Io& io) { io.U8(window), io.Reserved(3), io.U32(offset), io.U32(size); }
};

enum class DataEncoding : uint8_t { kRaw = 0, kDeflate = 1 };

// DATA: the fixed part; the block's bytes (raw, or a raw-deflate stream that
// inflates to exactly raw_length bytes) follow it to the payload's end.
struct DataRequest {
  uint32_t offset = 0;  // from the BEGIN offset
  uint16_t raw_length = 0;
  uint8_t encoding = 0;  // DataEncoding
  template <typename Io> constexpr void Fields(Io& io) {
    io.U32(offset), io.U16(raw_length), io.U8(encoding), io.Reserved(1);
  }
};
inline constexpr size_t kDataHeaderBytes = 8;

// END's reply.
struct EndReply {
  uint32_t crc32 = 0;          // of the whole BEGIN range as stored now
  uint32_t bytes_written = 0;  // raw bytes DATA wrote since BEGIN (retries count again)
  template <typename Io> constexpr void Fields(Io& io) { io.U32(crc32), io.U32(bytes_written); }
};

// CHECKSUM: `count` CRCs of consecutive `block_size`-byte blocks from
// `offset`; the reply is count u32 CRCs.
struct ChecksumRequest {
  uint8_t window = 0;
  uint32_t offset = 0;
  uint32_t block_size = 0;
  uint16_t count = 0;
  template <typename Io> constexpr void Fields(Io& io) {
    io.U8(window), io.Reserved(3), io.U32(offset), io.U32(block_size), io.U16(count);
  }
};

// COPY: `length` bytes from `source` to `destination` in one window.
struct CopyRequest {
  uint8_t window = 0;
  uint32_t source = 0;
  uint32_t destination = 0;
  uint32_t length = 0;
  template <typename Io> constexpr void Fields(Io& io) {
    io.U8(window), io.Reserved(3), io.U32(source), io.U32(destination), io.U32(length);
  }
};

struct CopyReply {
  uint32_t crc32 = 0;  // of the destination after the copy
  template <typename Io> constexpr void Fields(Io& io) { io.U32(crc32); }
};

// COMMIT: make the image in `slot` the one that boots.
struct CommitRequest {
  uint8_t slot = 0;
  uint32_t header_crc = 0;  // the image header's header_crc field
  template <typename Io> constexpr void Fields(Io& io) { io.U8(slot), io.Reserved(3), io.U32(header_crc); }
};

// BAUD: switch the link to `baud` after the (empty) reply; the device goes
// back to its old rate when no valid packet comes within kBaudProbationMs.
struct BaudRequest {
  uint32_t baud = 0;
  template <typename Io> constexpr void Fields(Io& io) { io.U32(baud); }
};
inline constexpr uint32_t kBaudProbationMs = 1000;

// READ: `length` bytes from `offset`; the reply is the bytes.
struct ReadRequest {
  uint8_t window = 0;
  uint32_t offset = 0;
  uint16_t length = 0;
  template <typename Io> constexpr void Fields(Io& io) { io.U8(window), io.Reserved(3), io.U32(offset), io.U16(length); }
};

// Writes `payload` into `out`; the bytes written, or 0 when `out` is too
// small or the payload invalid.
template <typename Payload>
constexpr size_t Encode(Payload payload, std::span<uint8_t> out) {
  if constexpr (requires { payload.Valid(); }) {
    if (!payload.Valid()) return 0;
  }
  WireWriter writer(out);
  payload.Fields(writer);
  return writer.ok() ? writer.size() : 0;
}

// Reads a payload that must fill `in` exactly; false on any other length or
// an invalid count.
template <typename Payload>
constexpr bool Decode(std::span<const uint8_t> in, Payload& payload) {
  WireReader reader(in);
  payload.Fields(reader);
  if constexpr (requires { payload.Valid(); }) {
    if (!payload.Valid()) return false;
  }
  return reader.ok() && reader.position() == in.size();
}

// DATA's fixed part, then its bytes: the rest of the payload.
constexpr bool DecodeData(std::span<const uint8_t> in, DataRequest& request, std::span<const uint8_t>& bytes) {
  WireReader reader(in);
  request.Fields(reader);
  bytes = reader.rest();
  return reader.ok();
}

// The wire size of a payload (of INFO: with `windows` windows).
template <typename Payload>
constexpr size_t WireBytes(Payload payload = {}) {
  std::array<uint8_t, 256> buffer{};
  return Encode(payload, buffer);
}
constexpr size_t InfoWireBytes(uint8_t windows) {
  InfoReply info;
  info.window_count = windows;
  return WireBytes(info);
}

static_assert(WireBytes<HelloRequest>() == 2);
static_assert(WireBytes<WindowInfo>() == 24);
static_assert(InfoWireBytes(0) == 36 && InfoWireBytes(4) == 36 + 4 * 24);
static_assert(WireBytes<BeginRequest>() == 12);
static_assert(WireBytes<DataRequest>() == kDataHeaderBytes);
static_assert(WireBytes<EndReply>() == 8);
static_assert(WireBytes<ChecksumRequest>() == 14);
static_assert(WireBytes<CopyRequest>() == 16);
static_assert(WireBytes<CopyReply>() == 4);
static_assert(WireBytes<CommitRequest>() == 8);
static_assert(WireBytes<ReadRequest>() == 10);
static_assert(WireBytes<BaudRequest>() == 4);
static_assert(kDataHeaderBytes + kMaxDataBytes <= kMaxPayloadBytes);

}  // namespace qmc::flash
