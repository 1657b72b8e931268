// What a board's two slots hold, read over the flash protocol (each slot's
// boot record: the image header and section table, by READ), and rollback:
// the other slot's image made the one that boots by an ordinary COMMIT,
// which the board refuses unless that image validates completely. The boot
// rule stays "the slot named by the newest valid commit record".
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/flash_protocol.h"
#include "common/image_format.h"
#include "host/flash/protocol_client.h"

namespace qmc::host::flash {

// One slot's boot record as stored. `problem` is empty when its magic,
// size and header CRC hold (the sections themselves are not read: the
// board checks them at COMMIT and at boot).
struct SlotRecord {
  uint8_t slot = 0;
  std::string problem;
  image::Header header{};
  std::vector<image::SectionEntry> sections;
  bool valid() const { return problem.empty(); }
};

// Reads `slot`'s boot record. Throws PortError/DeviceError when the link
// or the board fails.
SlotRecord ReadSlotRecord(ProtocolClient& client, const qmc::flash::InfoReply& info, uint8_t slot);

struct RollbackResult {
  uint8_t from = 0;  // the slot that booted before
  uint8_t to = 0;    // the slot that boots now
  uint32_t commit_sequence = 0;
  SlotRecord record;  // `to`'s boot record
};

// The board refuses a rollback: nothing committed to roll back from, or the
// other slot holds no image that validates. Nothing was changed.
class RollbackRefused : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Connects, commits the other slot's image and resets the board into it.
// Throws RollbackRefused, or PortError/DeviceError when the link or the
// board fails (the committed image then still boots).
RollbackResult Rollback(ProtocolClient& client);

}  // namespace qmc::host::flash
