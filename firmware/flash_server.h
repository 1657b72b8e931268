// The flash server: the device side of the flash protocol (docs/protocol.md).
// The console hands the link over when it reads a SLIP END byte; the server
// then answers one reply per frame until RUN or RESET. Writes go only to the
// inactive slot (the active one and MRAM's commit area are protected), and
// COMMIT validates the whole image in its slot before it writes a commit
// record, so whatever happens on the link the committed image keeps booting.
//
// Freestanding: no heap; the receive, reply and block buffers are members
// (about 21 KiB), so the one server lives in static storage.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "common/flash_protocol.h"
#include "common/image_reader.h"
#include "common/slip_frame.h"
#include "firmware/boot.h"
#include "firmware/link_input.h"
#include "hal/hal.h"

namespace qmc::firmware {

class FlashServer {
 public:
  enum class Exit {
    kRun,     // RUN was answered: boot the committed image into the console
    kReset,   // RESET was answered: reset the board
    kClosed,  // the link closed (only the emu's does)
  };

  // Serves the frames in `input` (replies go out on `link`) until RUN, RESET
  // or the link closes; `slots` says what booted. Bytes after the last frame
  // served stay in `input`. Any BEGIN still open is dropped on return.
  Exit Serve(const hal::BoardInfo& board, LinkInput& input, hal::ByteLink& link, const SlotState& slots);

  // What boots now: `slots` as given to Serve, or as the last COMMIT left it.
  const SlotState& slots() const { return slots_; }

 private:
  enum class Action { kContinue, kRun, kReset, kBaud };
  struct BeginRange {
    bool open = false;
    uint8_t window = 0;
    uint32_t offset = 0;
    uint32_t size = 0;
    uint32_t written = 0;
  };

  Action OnFrame(flash::SlipDecoder::Event event, std::span<const uint8_t> frame, hal::ByteLink& link);
  // Handles one request; the reply's payload goes to reply_ and its size to `reply_bytes`.
  flash::ErrorCode Handle(const flash::Packet& request, size_t& reply_bytes);
  void SendReply(hal::ByteLink& link, uint8_t opcode, uint16_t seq, flash::ErrorCode error, size_t payload_bytes);

  flash::ErrorCode Hello(std::span<const uint8_t> payload, size_t& reply_bytes);
  flash::ErrorCode Begin(std::span<const uint8_t> payload);
  flash::ErrorCode Data(std::span<const uint8_t> payload);
  flash::ErrorCode End(std::span<const uint8_t> payload, size_t& reply_bytes);
  flash::ErrorCode Checksum(std::span<const uint8_t> payload, size_t& reply_bytes);
  flash::ErrorCode Copy(std::span<const uint8_t> payload, size_t& reply_bytes);
  flash::ErrorCode Commit(std::span<const uint8_t> payload);
  flash::ErrorCode Read(std::span<const uint8_t> payload, size_t& reply_bytes);
  flash::ErrorCode Baud(std::span<const uint8_t> payload, const hal::ByteLink& link);

  hal::MemoryWindow* WindowAt(uint8_t index) const;
  // Whether a write of [offset, offset + length) may start: in the window,
  // aligned to its granularity, clear of the active slot and the commit area.
  flash::ErrorCode CheckWritable(const hal::MemoryWindow& window, uint64_t offset, uint64_t length) const;
  // Writes `data` at an aligned `offset`; a partial last granule keeps the
  // stored bytes past the data (read, merge, write).
  bool WriteRange(hal::MemoryWindow& window, uint32_t offset, std::span<const uint8_t> data);
  bool RangeCrc(hal::MemoryWindow& window, uint32_t offset, uint32_t length, uint32_t& crc);

  const hal::BoardInfo* board_ = nullptr;
  SlotState slots_{};
  BeginRange begin_{};
  // After BAUD: the rate to switch to once the reply is out, and while on
  // probation the rate to go back to (0: none) and the silent polls so far.
  uint32_t next_baud_ = 0;
  uint32_t fallback_baud_ = 0;
  uint32_t silent_polls_ = 0;
  image::ImageView commit_view_;
  uint8_t rx_[flash::kMaxPacketBytes];
  uint8_t tx_[flash::kMaxFrameBytes];
  uint8_t reply_[flash::kMaxPayloadBytes];
  uint8_t block_[flash::kMaxDataBytes];
  uint8_t granule_[64];
};

}  // namespace qmc::firmware
