// SLIP framing and packets (common/slip_frame.h): round trips of random
// packets, every byte value, back-to-back frames, garbage between frames,
// oversize frames and bad escapes reported and followed by a clean resync,
// and a fuzz run over random bytes in which no frame that the parser
// accepts fails its CRC.
#include "common/slip_frame.h"

#include <gtest/gtest.h>
#include <zlib.h>

#include <random>
#include <vector>

namespace qmc::flash {
namespace {

using Bytes = std::vector<uint8_t>;

Bytes Frame(std::span<const uint8_t> bytes) {
  Bytes out(MaxFrameBytes(bytes.size()));
  out.resize(SlipEncode(bytes, out));
  return out;
}

// Every event and frame the decoder reports for `stream`.
struct Decoded {
  std::vector<SlipDecoder::Event> events;
  std::vector<Bytes> frames;
};
Decoded DecodeAll(std::span<const uint8_t> stream, size_t buffer_bytes = kMaxPacketBytes) {
  Bytes buffer(buffer_bytes);
  SlipDecoder decoder(buffer);
  Decoded out;
  for (uint8_t b : stream) {
    const SlipDecoder::Event e = decoder.Push(b);
    if (e == SlipDecoder::Event::kNone) continue;
    out.events.push_back(e);
    out.frames.emplace_back(decoder.frame().begin(), decoder.frame().end());
  }
  return out;
}

Bytes RandomBytes(std::mt19937& rng, size_t n) {
  Bytes b(n);
  for (uint8_t& x : b) x = static_cast<uint8_t>(rng());
  return b;
}

TEST(Slip, EncodesPerRfc1055) {
  const Bytes in = {0x01, 0xC0, 0x02, 0xDB, 0x03};
  const Bytes expected = {0xC0, 0x01, 0xDB, 0xDC, 0x02, 0xDB, 0xDD, 0x03, 0xC0};
  EXPECT_EQ(Frame(in), expected);
  Bytes small(expected.size() - 1);
  EXPECT_EQ(SlipEncode(in, small), 0u);  // does not fit
}

TEST(Slip, EveryByteValueRoundTrips) {
  Bytes all(256);
  for (int i = 0; i < 256; ++i) all[i] = static_cast<uint8_t>(i);
  const Decoded d = DecodeAll(Frame(all));
  ASSERT_EQ(d.events.size(), 1u);
  EXPECT_EQ(d.events[0], SlipDecoder::Event::kFrame);
  EXPECT_EQ(d.frames[0], all);
}

TEST(Slip, RandomPacketsRoundTripBackToBack) {
  std::mt19937 rng(7);
  Bytes stream;
  std::vector<Bytes> payloads;
  std::vector<PacketHeader> headers;
  for (int i = 0; i < 200; ++i) {
    const size_t n = rng() % (kMaxPayloadBytes + 1);
    payloads.push_back(RandomBytes(rng, n));
    headers.push_back({static_cast<uint8_t>(rng()), static_cast<uint8_t>(rng() & 1), static_cast<uint16_t>(rng()),
                       static_cast<uint8_t>(rng() & 1), static_cast<uint8_t>(rng()), 0});
    Bytes frame(kMaxFrameBytes);
    frame.resize(EncodeFrame(headers.back(), payloads.back(), frame));
    ASSERT_FALSE(frame.empty());
    // EncodeFrame is BuildPacket then SlipEncode.
    Bytes packet(kMaxPacketBytes);
    packet.resize(BuildPacket(headers.back(), payloads.back(), packet));
    ASSERT_EQ(frame, Frame(packet));
    // Alternate the shared END between frames with a doubled one.
    if (i % 2 == 1 && !stream.empty()) stream.pop_back();
    stream.insert(stream.end(), frame.begin(), frame.end());
  }
  const Decoded d = DecodeAll(stream);
  ASSERT_EQ(d.frames.size(), payloads.size());
  for (size_t i = 0; i < payloads.size(); ++i) {
    ASSERT_EQ(d.events[i], SlipDecoder::Event::kFrame);
    Packet p;
    ASSERT_EQ(ParsePacket(d.frames[i], p), PacketError::kNone);
    EXPECT_EQ(p.header.opcode, headers[i].opcode);
    EXPECT_EQ(p.header.flags, headers[i].flags);
    EXPECT_EQ(p.header.seq, headers[i].seq);
    EXPECT_EQ(p.header.status, headers[i].status);
    EXPECT_EQ(p.header.error, headers[i].error);
    EXPECT_EQ(p.header.payload_length, payloads[i].size());
    EXPECT_EQ(Bytes(p.payload.begin(), p.payload.end()), payloads[i]);
  }
}

TEST(Slip, PacketCrcIsZlibsOverHeaderAndPayload) {
  const Bytes payload = {1, 2, 3};
  Bytes packet(64);
  packet.resize(BuildPacket({0x05, 0, 0x1234, 0, 0, 0}, payload, packet));
  ASSERT_EQ(packet.size(), 8u + 3u + 4u);
  const uLong crc = crc32(0, packet.data(), 11);
  EXPECT_EQ(LoadU32(&packet[11]), crc);
}

TEST(Slip, BytesBeforeTheFirstEndAreNotAFrame) {
  Bytes stream = {'q', 'm', 'c', '-', 'f', 'w', '\n'};
  const Bytes packet = {1, 2, 3, 4};
  const Bytes frame = Frame(packet);
  stream.insert(stream.end(), frame.begin(), frame.end());
  const Decoded d = DecodeAll(stream);
  ASSERT_EQ(d.frames.size(), 1u);
  EXPECT_EQ(d.frames[0], packet);
}

TEST(Slip, GarbageBetweenFramesIsItsOwnFrameAndTheNextFrameSurvives) {
  std::mt19937 rng(3);
  Bytes a(32), b(40);
  for (uint8_t& x : a) x = static_cast<uint8_t>(rng());
  for (uint8_t& x : b) x = static_cast<uint8_t>(rng());
  Bytes packet_a(64), packet_b(64);
  packet_a.resize(BuildPacket({1, 0, 1, 0, 0, 0}, a, packet_a));
  packet_b.resize(BuildPacket({1, 0, 2, 0, 0, 0}, b, packet_b));
  Bytes stream = Frame(packet_a);
  for (int i = 0; i < 50; ++i) stream.push_back(static_cast<uint8_t>(rng() % 0xC0));  // no END in the garbage
  const Bytes frame_b = Frame(packet_b);
  stream.insert(stream.end(), frame_b.begin(), frame_b.end());
  const Decoded d = DecodeAll(stream);
  ASSERT_GE(d.frames.size(), 3u);
  EXPECT_EQ(d.frames.front(), packet_a);
  EXPECT_EQ(d.frames.back(), packet_b);
  Packet p;
  for (size_t i = 1; i + 1 < d.frames.size(); ++i) EXPECT_NE(ParsePacket(d.frames[i], p), PacketError::kNone);
}

TEST(Slip, OversizeFrameIsReportedAndTheDecoderResyncs) {
  const Bytes big(100, 0x11), small = {9, 8, 7};
  Bytes stream = Frame(big);
  const Bytes next = Frame(small);
  stream.insert(stream.end(), next.begin(), next.end());
  const Decoded d = DecodeAll(stream, 64);
  ASSERT_EQ(d.events.size(), 2u);
  EXPECT_EQ(d.events[0], SlipDecoder::Event::kOversize);
  EXPECT_EQ(d.frames[0], Bytes(64, 0x11));  // the head is kept: a NAK can copy its seq
  EXPECT_EQ(d.events[1], SlipDecoder::Event::kFrame);
  EXPECT_EQ(d.frames[1], small);
  // A frame of exactly the buffer's size fits.
  EXPECT_EQ(DecodeAll(Frame(Bytes(64, 0x22)), 64).events, std::vector{SlipDecoder::Event::kFrame});
}

TEST(Slip, BadEscapesAreReportedAndTheDecoderResyncs) {
  const Bytes stream = {0xC0, 1, 0xDB, 0x05, 2, 0xC0, 3, 0xDB, 0xC0, 4, 5, 0xC0};
  const Decoded d = DecodeAll(stream);
  ASSERT_EQ(d.events.size(), 3u);
  EXPECT_EQ(d.events[0], SlipDecoder::Event::kBadEscape);
  EXPECT_EQ(d.events[1], SlipDecoder::Event::kBadEscape);  // ESC right before END
  EXPECT_EQ(d.events[2], SlipDecoder::Event::kFrame);
  EXPECT_EQ(d.frames[2], (Bytes{4, 5}));
}

TEST(Slip, EmptyFramesAreSkipped) {
  const Bytes stream = {0xC0, 0xC0, 0xC0, 7, 0xC0, 0xC0};
  const Decoded d = DecodeAll(stream);
  ASSERT_EQ(d.frames.size(), 1u);
  EXPECT_EQ(d.frames[0], Bytes{7});
}

TEST(Packet, ParseRejectsShortWrongLengthAndBadCrc) {
  Bytes packet(64);
  packet.resize(BuildPacket({2, 0, 0xBEEF, 0, 0, 0}, Bytes{1, 2, 3, 4}, packet));
  Packet p;
  ASSERT_EQ(ParsePacket(packet, p), PacketError::kNone);
  EXPECT_EQ(ParsePacket(std::span(packet).first(11), p), PacketError::kTooShort);
  EXPECT_EQ(ParsePacket(std::span(packet).first(packet.size() - 1), p), PacketError::kLengthMismatch);
  EXPECT_EQ(p.header.seq, 0xBEEF);  // still readable for a NAK
  for (size_t i = 0; i < packet.size(); ++i) {
    for (int bit = 0; bit < 8; ++bit) {
      Bytes bad = packet;
      bad[i] ^= static_cast<uint8_t>(1 << bit);
      const PacketError e = ParsePacket(bad, p);
      EXPECT_NE(e, PacketError::kNone) << "byte " << i << " bit " << bit;
    }
  }
}

// Random streams: runs of noise, valid frames, and frames with a flipped
// byte. The decoder must never crash or overrun its buffer, and every frame
// ParsePacket accepts must be exactly one that was sent.
TEST(SlipFuzz, RandomBytesNeverYieldAFrameWhoseCrcFails) {
  size_t total = 0, accepted = 0, sent = 0;
  for (uint32_t seed = 1; seed <= 8; ++seed) {
    std::mt19937 rng(seed);
    Bytes buffer(kMaxPacketBytes + 16);
    // A guard after the decoder's buffer: an overrun would change it.
    const std::span<uint8_t> decoder_buffer = std::span(buffer).first(kMaxPacketBytes);
    for (size_t i = kMaxPacketBytes; i < buffer.size(); ++i) buffer[i] = 0xA5;
    SlipDecoder decoder(decoder_buffer);
    std::vector<Bytes> valid;  // payloads sent intact, by seq
    Bytes frame(kMaxFrameBytes);
    uint16_t seq = 0;
    const size_t end = total + 1500000;
    while (total < end) {
      const uint32_t kind = rng() % 4;
      Bytes chunk;
      if (kind == 0) {  // noise, END bytes included
        chunk = RandomBytes(rng, rng() % 2000);
      } else {
        const Bytes payload = RandomBytes(rng, rng() % 600);
        frame.resize(kMaxFrameBytes);
        frame.resize(EncodeFrame({3, 0, ++seq, 0, 0, 0}, payload, frame));
        chunk = frame;
        if (kind == 1) {
          chunk[1 + rng() % (chunk.size() - 2)] ^= static_cast<uint8_t>(1 + rng() % 255);
        } else {
          ++sent;
          if (valid.size() <= seq) valid.resize(seq + 1u);
          valid[seq] = payload;
        }
      }
      for (uint8_t b : chunk) {
        ++total;
        if (decoder.Push(b) != SlipDecoder::Event::kFrame) continue;
        Packet p;
        if (ParsePacket(decoder.frame(), p) != PacketError::kNone) continue;
        ++accepted;
        ASSERT_EQ(crc32(0, decoder.frame().data(), static_cast<uInt>(decoder.frame().size() - 4)),
                  LoadU32(&decoder.frame()[decoder.frame().size() - 4]));
        ASSERT_LT(p.header.seq, valid.size());
        ASSERT_EQ(Bytes(p.payload.begin(), p.payload.end()), valid[p.header.seq]);
      }
    }
    for (size_t i = kMaxPacketBytes; i < buffer.size(); ++i) ASSERT_EQ(buffer[i], 0xA5);
  }
  EXPECT_GT(total, 10000000u);
  // Noise may swallow a frame's leading END, so not every frame sent survives; most do.
  EXPECT_GT(accepted, sent * 9 / 10);
  std::printf("fuzz: %zu bytes, %zu intact frames sent, %zu accepted\n", total, sent, accepted);
}

}  // namespace
}  // namespace qmc::flash
