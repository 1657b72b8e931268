// The host end of the flash protocol (docs/protocol.md): frames a request,
// waits for the reply with its sequence number, and resends on a timeout,
// a NAK or a corrupted reply, a bounded number of times. Requests are
// idempotent on the device (a resent DATA rewrites the same bytes), which
// is what makes resending safe; the flasher handles the two that are not
// (END, COMMIT).
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "common/flash_protocol.h"
#include "common/slip_frame.h"
#include "host/flash/port.h"

namespace qmc::host::flash {

// The device answered a request with an error status. A device failure,
// so an IoError: qmc exits 4.
class DeviceError : public IoError {
 public:
  DeviceError(qmc::flash::Opcode opcode, qmc::flash::ErrorCode code, bool resent);
  qmc::flash::Opcode opcode() const { return opcode_; }
  qmc::flash::ErrorCode code() const { return code_; }
  // The request went out more than once: an error may answer a repeat of
  // a request that had already succeeded (END closes its range).
  bool resent() const { return resent_; }

 private:
  qmc::flash::Opcode opcode_;
  qmc::flash::ErrorCode code_;
  bool resent_;
};

// No valid reply came to a request after every attempt: the link damages
// or loses frames of this size, or the board stopped answering.
class NoReplyError : public PortError {
 public:
  using PortError::PortError;
};

struct LinkStats {
  uint64_t bytes_sent = 0;      // on the wire, frames and wake-up bytes
  uint64_t bytes_received = 0;  // on the wire, console chatter included
  uint64_t requests = 0;
  uint64_t resends = 0;
};

const char* OpcodeName(qmc::flash::Opcode opcode);

class ProtocolClient {
 public:
  // `attempts`: how often one request is sent before the link counts as failed.
  ProtocolClient(Port& port, int attempts);

  // Hands the board's link to its flash server (one SLIP END, a pause, the
  // console's chatter discarded) and says HELLO, with growing waits while
  // the board may still be booting (one wait per attempt). Throws PortError when nothing answers,
  // DeviceError when the board refuses.
  qmc::flash::InfoReply Connect();

  // Makes the next Connect switch the link from `current` to `fast` baud
  // once HELLO is answered: BAUD, then the port at `fast` and a HELLO there.
  // When that HELLO gets no reply the port goes back to `current` and
  // connects again (the board returns to it after its probation); only when
  // the board then does not answer either does Connect throw. A board that
  // does not know BAUD stays at `current`.
  void RequestFastBaud(uint32_t current, uint32_t fast);
  // What the switch came to ("921600 baud", or why it stayed), for the
  // command's message; empty when none was asked for.
  const std::string& baud_note() const { return baud_note_; }
  // After RUN or RESET, where the board leaves the switched rate: the port
  // back at the rate the session began at.
  void RestoreBaud();

  // Bytes read from the port after the last reply (the console's first
  // output after RUN), handed to whoever reads the link next.
  std::vector<uint8_t> TakeUnread();

  // One request and its reply's payload. `device_work_bytes`: the bytes
  // the device reads or writes to answer (CRCs, copies, validation), which
  // lengthens the wait. Throws PortError when no valid reply comes after
  // every attempt (NoReplyError when the port itself still works),
  // DeviceError on an error reply.
  std::vector<uint8_t> Call(qmc::flash::Opcode opcode, std::span<const uint8_t> payload,
                            uint64_t device_work_bytes = 0);
  template <typename Request>
    requires requires(Request request, qmc::flash::WireWriter& writer) { request.Fields(writer); }
  std::vector<uint8_t> Call(qmc::flash::Opcode opcode, const Request& request, uint64_t device_work_bytes = 0) {
    uint8_t payload[64];
    const size_t n = qmc::flash::Encode(request, payload);
    return Call(opcode, std::span<const uint8_t>(payload, n), device_work_bytes);
  }

  // A single send and wait, no resend: the reply's payload, or nullopt when
  // no valid reply came. For requests whose repeat is not harmless.
  std::optional<std::vector<uint8_t>> CallOnce(qmc::flash::Opcode opcode, std::span<const uint8_t> payload,
                                               uint64_t device_work_bytes = 0);

  const LinkStats& stats() const { return stats_; }
  int attempts() const { return attempts_; }
  Port& port() { return port_; }

 private:
  enum class Wait { kReply, kError, kNak, kCorrupt, kTimeout };
  struct Reply {
    qmc::flash::PacketHeader header{};
    std::vector<uint8_t> payload;
  };

  // Wakes the flash server and says HELLO, at the port's current rate.
  qmc::flash::InfoReply Wake();
  qmc::flash::InfoReply SwitchBaud(const qmc::flash::InfoReply& info);
  std::chrono::milliseconds TimeoutFor(size_t frame_bytes, uint64_t device_work_bytes) const;
  size_t SendRequest(qmc::flash::Opcode opcode, uint16_t seq, std::span<const uint8_t> payload);
  Wait AwaitReply(qmc::flash::Opcode opcode, uint16_t seq, std::chrono::milliseconds timeout, Reply& reply);

  Port& port_;
  int attempts_;
  uint16_t seq_;
  LinkStats stats_;
  std::vector<uint8_t> frame_;      // the request being sent, SLIP-encoded
  std::vector<uint8_t> rx_buffer_;  // the decoder's frame buffer
  qmc::flash::SlipDecoder decoder_;
  std::vector<uint8_t> pending_;    // read from the port, not yet decoded
  size_t pending_pos_ = 0;
  uint32_t current_baud_ = 0;
  uint32_t fast_baud_ = 0;  // 0: no switch pending
  bool switched_ = false;
  std::string baud_note_;
};

}  // namespace qmc::host::flash
