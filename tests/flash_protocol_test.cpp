// Byte-exact encodings of requests and replies, written out by hand from
// docs/protocol.md (not produced by the code under test), and the decoders'
// refusal of payloads of the wrong length.
#include "common/flash_protocol.h"

#include <gtest/gtest.h>

#include <vector>

#include "common/slip_frame.h"

namespace qmc::flash {
namespace {

using Bytes = std::vector<uint8_t>;

template <typename Payload>
Bytes Encoded(const Payload& payload) {
  Bytes out(512);
  out.resize(Encode(payload, out));
  return out;
}

TEST(FlashProtocol, HelloRequestPacket) {
  // protocol.md: HELLO, seq 0x0102, payload u16 version 1; CRC-32 over the 10 bytes.
  Bytes packet(64);
  packet.resize(BuildPacket({0x01, 0x00, 0x0102, 0, 0, 0}, Encoded(HelloRequest{}), packet));
  const Bytes head = {0x01, 0x00, 0x02, 0x01, 0x00, 0x00, 0x02, 0x00, 0x01, 0x00};
  ASSERT_EQ(packet.size(), head.size() + 4);
  EXPECT_EQ(Bytes(packet.begin(), packet.begin() + 10), head);
  // CRC-32 of those ten bytes, computed by hand-written bitwise CRC below.
  uint32_t crc = 0xFFFFFFFFu;
  for (uint8_t b : head) {
    crc ^= b;
    for (int k = 0; k < 8; ++k) crc = (crc & 1u) ? 0xEDB88320u ^ (crc >> 1) : crc >> 1;
  }
  crc = ~crc;
  EXPECT_EQ(Bytes(packet.begin() + 10, packet.end()),
            (Bytes{uint8_t(crc), uint8_t(crc >> 8), uint8_t(crc >> 16), uint8_t(crc >> 24)}));
}

TEST(FlashProtocol, BaudRequestPacket) {
  // protocol.md: BAUD 921600 with seq 0x0005 is 0B 00 05 00 00 00 04 00 | 00 10 0E 00 | crc32.
  Bytes packet(64);
  packet.resize(BuildPacket({0x0B, 0x00, 0x0005, 0, 0, 0}, Encoded(BaudRequest{921600}), packet));
  const Bytes head = {0x0B, 0x00, 0x05, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x10, 0x0E, 0x00};
  ASSERT_EQ(packet.size(), head.size() + 4);
  EXPECT_EQ(Bytes(packet.begin(), packet.begin() + 12), head);
  EXPECT_EQ(static_cast<uint8_t>(Opcode::kBaud), 0x0B);
  BaudRequest decoded;
  EXPECT_TRUE(Decode(std::span<const uint8_t>(head).subspan(8), decoded));
  EXPECT_EQ(decoded.baud, 921600u);
  EXPECT_FALSE(Decode(std::span<const uint8_t>(head).subspan(8, 3), decoded));
}

TEST(FlashProtocol, BeginRequest) {
  BeginRequest r;
  r.window = 2;
  r.offset = 0x02000000;
  r.size = 0x1234;
  EXPECT_EQ(Encoded(r), (Bytes{0x02, 0, 0, 0, 0x00, 0x00, 0x00, 0x02, 0x34, 0x12, 0x00, 0x00}));
}

TEST(FlashProtocol, DataRequestHeaderThenBytes) {
  DataRequest r;
  r.offset = 0x1000;
  r.raw_length = 4096;
  r.encoding = 1;
  EXPECT_EQ(Encoded(r), (Bytes{0x00, 0x10, 0x00, 0x00, 0x00, 0x10, 0x01, 0x00}));
  const Bytes payload = {0x00, 0x10, 0x00, 0x00, 0x00, 0x10, 0x01, 0x00, 0xAA, 0xBB};
  DataRequest d;
  std::span<const uint8_t> bytes;
  ASSERT_TRUE(DecodeData(payload, d, bytes));
  EXPECT_EQ(d.offset, 0x1000u);
  EXPECT_EQ(d.raw_length, 4096u);
  EXPECT_EQ(d.encoding, 1u);
  EXPECT_EQ(Bytes(bytes.begin(), bytes.end()), (Bytes{0xAA, 0xBB}));
  EXPECT_FALSE(DecodeData(std::span(payload).first(7), d, bytes));
}

TEST(FlashProtocol, EndReply) {
  EndReply r;
  r.crc32 = 0xCAFEBABE;
  r.bytes_written = 5;
  EXPECT_EQ(Encoded(r), (Bytes{0xBE, 0xBA, 0xFE, 0xCA, 0x05, 0, 0, 0}));
}

TEST(FlashProtocol, ChecksumRequestIsFourteenBytes) {
  ChecksumRequest r;
  r.window = 1;
  r.offset = 4096;
  r.block_size = 4096;
  r.count = 3;
  EXPECT_EQ(Encoded(r), (Bytes{0x01, 0, 0, 0, 0x00, 0x10, 0, 0, 0x00, 0x10, 0, 0, 0x03, 0x00}));
}

TEST(FlashProtocol, CopyCommitAndReadRequests) {
  CopyRequest c;
  c.window = 3;
  c.source = 0x10;
  c.destination = 0x02000010;
  c.length = 0x100;
  EXPECT_EQ(Encoded(c), (Bytes{0x03, 0, 0, 0, 0x10, 0, 0, 0, 0x10, 0, 0, 0x02, 0x00, 0x01, 0, 0}));
  CommitRequest m;
  m.slot = 1;
  m.header_crc = 0x01020304;
  EXPECT_EQ(Encoded(m), (Bytes{0x01, 0, 0, 0, 0x04, 0x03, 0x02, 0x01}));
  ReadRequest r;
  r.window = 1;
  r.offset = 0x400000;
  r.length = 0x1010;
  EXPECT_EQ(Encoded(r), (Bytes{0x01, 0, 0, 0, 0x00, 0x00, 0x40, 0x00, 0x10, 0x10}));
}

TEST(FlashProtocol, InfoReplyWithOneWindow) {
  InfoReply info;
  info.board[0] = 'e', info.board[1] = 'm', info.board[2] = 'u';
  info.window_count = 1;
  info.active_slot = 0;
  info.commit_sequence = 7;
  info.windows[0] = {1, 0x02, 1, 0, 8u << 20, 4096, 4096 + 0x3FF000, 0x3FF000};
  Bytes expected;
  auto add = [&expected](std::initializer_list<int> bytes) {
    for (int b : bytes) expected.push_back(static_cast<uint8_t>(b));
  };
  add({0x01, 0x00, 0x10, 0x10, 'e', 'm', 'u'});  // version 1, max payload 4112, board
  for (int i = 3; i < 24; ++i) add({0});         // NUL padding
  add({0x01, 0x00, 0, 0});                       // window count, active slot, reserved
  add({0x07, 0, 0, 0});                          // commit sequence
  add({0x01, 0x02, 0x01, 0x00, 0, 0, 0, 0, 0x00, 0x00, 0x80, 0x00});  // kind, flags, granularity, base, size
  add({0x00, 0x10, 0, 0, 0x00, 0x00, 0x40, 0x00, 0x00, 0xF0, 0x3F, 0x00});  // slot 0, slot 1, slot size
  EXPECT_EQ(Encoded(info), expected);
  InfoReply back;
  ASSERT_TRUE(Decode(std::span<const uint8_t>(expected), back));
  EXPECT_EQ(back.window_count, 1u);
  EXPECT_EQ(back.windows[0].slot_offset(1), 0x400000u);
  EXPECT_EQ(back.commit_sequence, 7u);
  // Five windows is more than INFO carries.
  expected[28] = 5;
  EXPECT_FALSE(Decode(std::span<const uint8_t>(expected), back));
}

TEST(FlashProtocol, DecodeRequiresTheExactLength) {
  const Bytes twelve = {2, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0};
  BeginRequest r;
  EXPECT_TRUE(Decode(std::span<const uint8_t>(twelve), r));
  EXPECT_EQ(r.size, 2u);
  EXPECT_FALSE(Decode(std::span(twelve).first(11), r));
  Bytes thirteen = twelve;
  thirteen.push_back(0);
  EXPECT_FALSE(Decode(std::span<const uint8_t>(thirteen), r));
  Bytes small(11);
  EXPECT_EQ(Encode(r, small), 0u);  // does not fit
}

TEST(FlashProtocol, NakReplyPacket) {
  // A NAK for a frame whose seq read 0x0007: opcode 0, reply flag, status 1, kBadFrame.
  Bytes packet(64);
  packet.resize(BuildPacket({0x00, kFlagReply, 7, kStatusError, static_cast<uint8_t>(ErrorCode::kBadFrame), 0}, {},
                            packet));
  ASSERT_EQ(packet.size(), 12u);
  EXPECT_EQ(Bytes(packet.begin(), packet.begin() + 8), (Bytes{0x00, 0x01, 0x07, 0x00, 0x01, 0x01, 0x00, 0x00}));
  EXPECT_STREQ(ErrorCodeName(ErrorCode::kProtected), "protected");
}

}  // namespace
}  // namespace qmc::flash
