#include "common/slip_frame.h"

#include "common/crc32.h"

namespace qmc::flash {
namespace {

// Escapes bytes into `out` from `pos`; `ok` turns false when it is full.
struct SlipWriter {
  std::span<uint8_t> out;
  size_t pos = 0;
  bool ok = true;

  void Raw(uint8_t byte) {
    if (pos == out.size()) {
      ok = false;
      return;
    }
    out[pos++] = byte;
  }
  void Escaped(std::span<const uint8_t> bytes) {
    for (uint8_t b : bytes) {
      if (b == kSlipEnd) {
        Raw(kSlipEsc);
        Raw(kSlipEscEnd);
      } else if (b == kSlipEsc) {
        Raw(kSlipEsc);
        Raw(kSlipEscEsc);
      } else {
        Raw(b);
      }
    }
  }
};

void StoreHeader(const PacketHeader& header, uint8_t (&out)[kHeaderBytes]) {
  out[0] = header.opcode;
  out[1] = header.flags;
  StoreU16(out + 2, header.seq);
  out[4] = header.status;
  out[5] = header.error;
  StoreU16(out + 6, header.payload_length);
}

}  // namespace

size_t SlipEncode(std::span<const uint8_t> bytes, std::span<uint8_t> out) {
  SlipWriter writer{out};
  writer.Raw(kSlipEnd);
  writer.Escaped(bytes);
  writer.Raw(kSlipEnd);
  return writer.ok ? writer.pos : 0;
}

size_t BuildPacket(PacketHeader header, std::span<const uint8_t> payload, std::span<uint8_t> out) {
  if (payload.size() > 0xFFFF || out.size() < kHeaderBytes + payload.size() + kCrcBytes) return 0;
  header.payload_length = static_cast<uint16_t>(payload.size());
  uint8_t head[kHeaderBytes];
  StoreHeader(header, head);
  size_t pos = 0;
  for (uint8_t b : head) out[pos++] = b;
  for (uint8_t b : payload) out[pos++] = b;
  StoreU32(&out[pos], Crc32(out.data(), pos));
  return pos + kCrcBytes;
}

size_t EncodeFrame(PacketHeader header, std::span<const uint8_t> payload, std::span<uint8_t> out) {
  if (payload.size() > 0xFFFF) return 0;
  header.payload_length = static_cast<uint16_t>(payload.size());
  uint8_t head[kHeaderBytes];
  StoreHeader(header, head);
  uint8_t crc[kCrcBytes];
  StoreU32(crc, Crc32(payload.data(), payload.size(), Crc32(head, sizeof head)));
  SlipWriter writer{out};
  writer.Raw(kSlipEnd);
  writer.Escaped(head);
  writer.Escaped(payload);
  writer.Escaped(crc);
  writer.Raw(kSlipEnd);
  return writer.ok ? writer.pos : 0;
}

PacketError ParsePacket(std::span<const uint8_t> bytes, Packet& packet) {
  if (bytes.size() < kHeaderBytes + kCrcBytes) return PacketError::kTooShort;
  packet.header = {bytes[0], bytes[1], LoadU16(&bytes[2]), bytes[4], bytes[5], LoadU16(&bytes[6])};
  if (bytes.size() != kHeaderBytes + packet.header.payload_length + kCrcBytes) return PacketError::kLengthMismatch;
  const size_t body = bytes.size() - kCrcBytes;
  if (Crc32(bytes.data(), body) != LoadU32(&bytes[body])) return PacketError::kBadCrc;
  packet.payload = bytes.subspan(kHeaderBytes, packet.header.payload_length);
  return PacketError::kNone;
}

void SlipDecoder::Reset() {
  length_ = 0;
  synced_ = false;
  complete_ = false;
  escape_ = oversize_ = bad_escape_ = false;
}

SlipDecoder::Event SlipDecoder::Push(uint8_t byte) {
  if (complete_) {  // the caller has had the last frame; start the next
    complete_ = false;
    length_ = 0;
    escape_ = oversize_ = bad_escape_ = false;
  }
  if (byte == kSlipEnd) {
    if (!synced_) {
      synced_ = true;
      return Event::kNone;
    }
    // An ESC right before END is a bad escape too.
    const bool bad_escape = bad_escape_ || escape_;
    if (length_ == 0 && !oversize_ && !bad_escape) return Event::kNone;  // END END: no frame
    complete_ = true;
    if (oversize_) return Event::kOversize;
    if (bad_escape) return Event::kBadEscape;
    return Event::kFrame;
  }
  if (!synced_) return Event::kNone;
  if (escape_) {
    escape_ = false;
    if (byte == kSlipEscEnd) {
      byte = kSlipEnd;
    } else if (byte == kSlipEscEsc) {
      byte = kSlipEsc;
    } else {
      bad_escape_ = true;
      return Event::kNone;
    }
  } else if (byte == kSlipEsc) {
    escape_ = true;
    return Event::kNone;
  }
  if (length_ == buffer_.size()) {
    oversize_ = true;
  } else {
    buffer_[length_++] = byte;
  }
  return Event::kNone;
}

}  // namespace qmc::flash
