// Framing of flash-protocol packets on a byte stream (docs/protocol.md):
// a packet is its header, payload and CRC-32; a frame is that packet in
// SLIP (RFC 1055): END, the packet with END and ESC bytes escaped, END.
// Freestanding: callers own every buffer.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "common/flash_protocol.h"

namespace qmc::flash {

inline constexpr uint8_t kSlipEnd = 0xC0;
inline constexpr uint8_t kSlipEsc = 0xDB;
inline constexpr uint8_t kSlipEscEnd = 0xDC;  // ESC ESC_END stands for a 0xC0 byte
inline constexpr uint8_t kSlipEscEsc = 0xDD;  // ESC ESC_ESC stands for a 0xDB byte

// The most bytes `packet_bytes` can take as a frame: every byte escaped, two ENDs.
constexpr size_t MaxFrameBytes(size_t packet_bytes) { return 2 * packet_bytes + 2; }
inline constexpr size_t kMaxFrameBytes = MaxFrameBytes(kMaxPacketBytes);

// One frame of `bytes`: END, escaped bytes, END. The frame's size, or 0 when
// `out` is too small.
size_t SlipEncode(std::span<const uint8_t> bytes, std::span<uint8_t> out);

// The packet `header` (payload_length taken from `payload`), `payload`, CRC.
// Its size, or 0 when `out` is too small or the payload longer than a u16.
size_t BuildPacket(PacketHeader header, std::span<const uint8_t> payload, std::span<uint8_t> out);

// BuildPacket then SlipEncode in one pass, without a packet buffer.
size_t EncodeFrame(PacketHeader header, std::span<const uint8_t> payload, std::span<uint8_t> out);

enum class PacketError : uint8_t {
  kNone,
  kTooShort,        // less than a header and a CRC
  kLengthMismatch,  // payload_length disagrees with the frame's size
  kBadCrc,
};

struct Packet {
  PacketHeader header{};
  std::span<const uint8_t> payload;  // inside the parsed bytes
};

// Parses one unescaped frame. On kLengthMismatch and kBadCrc `packet.header`
// still holds the header as received (a NAK copies its seq).
PacketError ParsePacket(std::span<const uint8_t> bytes, Packet& packet);

// Undoes SLIP a byte at a time into a fixed buffer. Bytes before the first
// END are not a frame (console text, line noise) and are dropped; after it
// every END closes the frame before it and opens the next. Empty frames
// (END END) are skipped. A frame longer than the buffer, or one with an ESC
// not followed by ESC_END/ESC_ESC, is reported at its closing END and
// decoding resumes cleanly with the next frame.
class SlipDecoder {
 public:
  enum class Event : uint8_t {
    kNone,       // nothing complete yet
    kFrame,      // frame() is a whole frame, unescaped
    kOversize,   // the frame overflowed; frame() is its first buffer-size bytes
    kBadEscape,  // the frame had an invalid escape; frame() is what decoded
  };

  explicit SlipDecoder(std::span<uint8_t> buffer) : buffer_(buffer) {}

  Event Push(uint8_t byte);
  // Valid after an event other than kNone, until the next Push.
  std::span<const uint8_t> frame() const { return buffer_.first(length_); }
  // Forgets any partial frame and waits for an END again.
  void Reset();

 private:
  std::span<uint8_t> buffer_;
  size_t length_ = 0;
  bool synced_ = false;    // an END has been seen
  bool complete_ = false;  // the last Push closed a frame: start over at the next byte
  bool escape_ = false;
  bool oversize_ = false;
  bool bad_escape_ = false;
};

}  // namespace qmc::flash
