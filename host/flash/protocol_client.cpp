#include "host/flash/protocol_client.h"

#include <random>
#include <string>
#include <thread>
#include <utility>

namespace qmc::host::flash {
namespace {

using namespace qmc::flash;
using Clock = std::chrono::steady_clock;

// A reply's fixed cost on top of the wire time: the device's turnaround and
// the host's scheduling (a USB-UART adds its latency timer).
constexpr std::chrono::milliseconds kBaseTimeout{500};
// How fast a device is assumed to read NVM for CRCs, copies and validation:
// a slow MCU's, so large requests still get their time.
constexpr uint64_t kDeviceBytesPerSecond = 2'000'000;
// Waits for HELLO's reply while the board may still be booting (validating
// its image, creating window files).
constexpr std::chrono::milliseconds kHelloWaits[] = {std::chrono::milliseconds(250), std::chrono::milliseconds(500),
                                                     std::chrono::milliseconds(1000), std::chrono::milliseconds(2000),
                                                     std::chrono::milliseconds(4000), std::chrono::milliseconds(8000)};
// After a baud switch, before the first byte at the new rate: the UARTs settle.
constexpr std::chrono::milliseconds kBaudSettle{20};
// HELLOs at the new rate before falling back (each waits for a reply's timeout).
constexpr int kFastHelloAttempts = 3;
// Console chatter the board may print before it reads the END byte.
constexpr std::chrono::milliseconds kHandOverPause{50};

std::string ErrorMessage(Opcode opcode, ErrorCode code) {
  return std::string("the board refused ") + OpcodeName(opcode) + ": " + ErrorCodeName(code);
}

}  // namespace

DeviceError::DeviceError(Opcode opcode, ErrorCode code, bool resent)
    : IoError(ErrorMessage(opcode, code)), opcode_(opcode), code_(code), resent_(resent) {}

const char* OpcodeName(Opcode opcode) {
  switch (opcode) {
    case Opcode::kNak: return "NAK";
    case Opcode::kHello: return "HELLO";
    case Opcode::kBegin: return "BEGIN";
    case Opcode::kData: return "DATA";
    case Opcode::kEnd: return "END";
    case Opcode::kChecksum: return "CHECKSUM";
    case Opcode::kCopy: return "COPY";
    case Opcode::kCommit: return "COMMIT";
    case Opcode::kRead: return "READ";
    case Opcode::kReset: return "RESET";
    case Opcode::kRun: return "RUN";
    case Opcode::kBaud: return "BAUD";
  }
  return "an unknown request";
}

ProtocolClient::ProtocolClient(Port& port, int attempts)
    : port_(port),
      attempts_(attempts < 1 ? 1 : attempts),
      // A random first sequence number: a reply left over from an earlier
      // session on the same link does not pass for one of this session's.
      seq_(static_cast<uint16_t>(std::random_device{}())),
      rx_buffer_(kMaxPacketBytes),
      decoder_(rx_buffer_) {}

std::chrono::milliseconds ProtocolClient::TimeoutFor(size_t frame_bytes, uint64_t device_work_bytes) const {
  // The request out and a reply as large back (READ, CHECKSUM), twice over for slack.
  const uint64_t bps = port_.bytes_per_second();
  const uint64_t wire_ms = bps == 0 ? 0 : 2 * 2 * (frame_bytes + kMaxFrameBytes / 2) * 1000 / bps;
  const uint64_t work_ms = device_work_bytes * 1000 / kDeviceBytesPerSecond;
  return kBaseTimeout + std::chrono::milliseconds(wire_ms + work_ms);
}

size_t ProtocolClient::SendRequest(Opcode opcode, uint16_t seq, std::span<const uint8_t> payload) {
  frame_.resize(MaxFrameBytes(kHeaderBytes + payload.size() + kCrcBytes));
  const PacketHeader header{static_cast<uint8_t>(opcode), 0, seq, kStatusOk, 0, 0};
  const size_t n = EncodeFrame(header, payload, frame_);
  port_.Write(std::span(frame_).first(n));
  stats_.bytes_sent += n;
  return n;
}

ProtocolClient::Wait ProtocolClient::AwaitReply(Opcode opcode, uint16_t seq, std::chrono::milliseconds timeout,
                                                Reply& reply) {
  const Clock::time_point deadline = Clock::now() + timeout;
  for (;;) {
    while (pending_pos_ < pending_.size()) {
      const SlipDecoder::Event event = decoder_.Push(pending_[pending_pos_++]);
      if (event == SlipDecoder::Event::kNone) continue;
      Packet packet;
      if (event != SlipDecoder::Event::kFrame || ParsePacket(decoder_.frame(), packet) != PacketError::kNone) {
        return Wait::kCorrupt;
      }
      // Our own requests come back on a link that echoes; they are not replies.
      if ((packet.header.flags & kFlagReply) == 0) continue;
      if (packet.header.opcode == static_cast<uint8_t>(Opcode::kNak)) return Wait::kNak;
      // Stale: the reply to an earlier request, or a duplicate of one.
      if (packet.header.seq != seq || packet.header.opcode != static_cast<uint8_t>(opcode)) continue;
      reply.header = packet.header;
      reply.payload.assign(packet.payload.begin(), packet.payload.end());
      return packet.header.status == kStatusOk ? Wait::kReply : Wait::kError;
    }
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) return Wait::kTimeout;
    pending_.resize(4096);
    pending_pos_ = 0;
    const size_t n = port_.Read(pending_, left);
    pending_.resize(n);
    stats_.bytes_received += n;
  }
}

std::optional<std::vector<uint8_t>> ProtocolClient::CallOnce(Opcode opcode, std::span<const uint8_t> payload,
                                                             uint64_t device_work_bytes) {
  const uint16_t seq = ++seq_;
  ++stats_.requests;
  const size_t frame_bytes = SendRequest(opcode, seq, payload);
  Reply reply;
  const Wait wait = AwaitReply(opcode, seq, TimeoutFor(frame_bytes, device_work_bytes), reply);
  if (wait == Wait::kError) throw DeviceError(opcode, static_cast<ErrorCode>(reply.header.error), false);
  if (wait != Wait::kReply) return std::nullopt;
  return std::move(reply.payload);
}

std::vector<uint8_t> ProtocolClient::Call(Opcode opcode, std::span<const uint8_t> payload,
                                          uint64_t device_work_bytes) {
  const uint16_t seq = ++seq_;
  ++stats_.requests;
  for (int attempt = 0; attempt < attempts_; ++attempt) {
    if (attempt > 0) ++stats_.resends;
    const size_t frame_bytes = SendRequest(opcode, seq, payload);
    Reply reply;
    switch (AwaitReply(opcode, seq, TimeoutFor(frame_bytes, device_work_bytes), reply)) {
      case Wait::kReply:
        return std::move(reply.payload);
      case Wait::kError:
        throw DeviceError(opcode, static_cast<ErrorCode>(reply.header.error), attempt > 0);
      case Wait::kNak:
      case Wait::kCorrupt:
      case Wait::kTimeout:
        break;
    }
  }
  throw NoReplyError(port_.Describe() + ": no valid reply to " + OpcodeName(opcode) + " after " +
                  std::to_string(attempts_) + " attempts");
}

void ProtocolClient::RequestFastBaud(uint32_t current, uint32_t fast) {
  current_baud_ = current;
  fast_baud_ = fast;
}

InfoReply ProtocolClient::Connect() {
  const InfoReply info = Wake();
  if (fast_baud_ == 0) return info;
  return SwitchBaud(info);
}

InfoReply ProtocolClient::SwitchBaud(const InfoReply& info) {
  const uint32_t fast = std::exchange(fast_baud_, 0);
  // Back at the old rate (where the board returns after its probation): connect again.
  auto fall_back = [&](const std::string& why) {
    port_.SetBaud(current_baud_);
    try {
      const InfoReply back = Wake();
      baud_note_ = why + "; fell back to " + std::to_string(current_baud_) + " baud";
      return back;
    } catch (const PortError&) {
      throw PortError(port_.Describe() + ": " + why + ", and the board does not answer at " +
                      std::to_string(current_baud_) + " baud either");
    }
  };
  try {
    Call(Opcode::kBaud, BaudRequest{fast});
  } catch (const NoReplyError&) {
    return fall_back("no reply to BAUD " + std::to_string(fast));
  } catch (const DeviceError& e) {
    if (e.code() != ErrorCode::kUnknownOpcode && e.code() != ErrorCode::kBadPayload) throw;
    baud_note_ = "the board cannot switch its baud rate; stayed at " + std::to_string(current_baud_) + " baud";
    return info;
  }
  port_.SetBaud(fast);
  std::this_thread::sleep_for(kBaudSettle);
  // The board is in its flash server: no wake-up byte, just HELLO at the new rate.
  uint8_t hello[8];
  const size_t hello_bytes = Encode(HelloRequest{}, hello);
  for (int attempt = 0; attempt < kFastHelloAttempts; ++attempt) {
    if (const auto reply = CallOnce(Opcode::kHello, std::span<const uint8_t>(hello, hello_bytes))) {
      InfoReply now;
      if (Decode(*reply, now)) {
        switched_ = true;
        baud_note_ = "switched to " + std::to_string(fast) + " baud";
        return now;
      }
    }
    ++stats_.resends;
  }
  return fall_back("no reply at " + std::to_string(fast) + " baud");
}

void ProtocolClient::RestoreBaud() {
  if (!std::exchange(switched_, false)) return;
  port_.SetBaud(current_baud_);
}

std::vector<uint8_t> ProtocolClient::TakeUnread() {
  std::vector<uint8_t> rest(pending_.begin() + static_cast<std::ptrdiff_t>(pending_pos_), pending_.end());
  pending_.clear();
  pending_pos_ = 0;
  return rest;
}

InfoReply ProtocolClient::Wake() {
  const uint8_t hand_over[] = {kSlipEnd};
  uint8_t hello[8];
  const size_t hello_bytes = Encode(HelloRequest{}, hello);
  for (int attempt = 0; attempt < attempts_ && attempt < static_cast<int>(std::size(kHelloWaits)); ++attempt) {
    const std::chrono::milliseconds wait = kHelloWaits[attempt];
    port_.Write(hand_over);
    stats_.bytes_sent += sizeof hand_over;
    std::this_thread::sleep_for(kHandOverPause);
    port_.Purge();
    pending_.clear();
    pending_pos_ = 0;
    decoder_.Reset();

    const uint16_t seq = ++seq_;
    ++stats_.requests;
    SendRequest(Opcode::kHello, seq, std::span<const uint8_t>(hello, hello_bytes));
    Reply reply;
    const Wait result = AwaitReply(Opcode::kHello, seq, wait, reply);
    if (result == Wait::kError) throw DeviceError(Opcode::kHello, static_cast<ErrorCode>(reply.header.error), false);
    if (result != Wait::kReply) {
      ++stats_.resends;
      continue;
    }
    InfoReply info;
    if (!Decode(reply.payload, info)) throw PortError(port_.Describe() + ": the board's INFO does not decode");
    if (info.version != kProtocolVersion) {
      throw PortError(port_.Describe() + ": the board speaks flash protocol " + std::to_string(info.version) +
                      ", this qmc " + std::to_string(kProtocolVersion));
    }
    return info;
  }
  throw PortError(port_.Describe() + ": no flash server answers (is a QMC board on this port?)");
}

}  // namespace qmc::host::flash
