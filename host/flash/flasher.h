// Flashing an image into a board's inactive slot and committing it
// (docs/protocol.md, "The host's algorithm"). Every range (each section,
// then the boot record, last) goes in 4 KiB blocks: blocks whose device CRC
// already matches are skipped (resume after an interrupted flash), blocks
// that match in the active slot at the same place are copied on the device
// (delta flashing), the rest are sent, deflated where that is smaller. The
// device's CRCs then verify every block before COMMIT, which validates the
// whole image again on the device before the board boots it.
#pragma once

#include <cstdint>
#include <functional>
#include <span>

#include "common/image_reader.h"
#include "host/flash/protocol_client.h"

namespace qmc::host::flash {

struct FlashOptions {
  bool verify = true;    // re-read every written block's CRC from the device
  bool compress = true;  // deflate DATA blocks where that is smaller
  bool dry_run = false;  // plan from the device's CRCs, write nothing
  // Leave with RUN (the board boots the new image into its console, on the
  // same link) instead of RESET: how --then-console hands over.
  bool run = false;
};

// What one flash did, in bytes of the image unless named otherwise.
struct FlashSummary {
  uint8_t slot = 0;              // the slot written (and committed)
  uint32_t commit_sequence = 0;  // the board's after COMMIT
  uint64_t image_bytes = 0;      // sections and boot record
  uint64_t skipped = 0;          // already in place in the slot
  uint64_t copied = 0;           // copied on the device from the active slot
  uint64_t sent = 0;             // sent in DATA blocks
  uint64_t sent_deflated = 0;    // those blocks' payload bytes, compressed where it helped
  uint64_t resent_blocks = 0;    // blocks written again after a failed verify
  LinkStats link;
  double seconds = 0;
};

// Progress after each block: image bytes dealt with so far, of `total`.
using FlashProgress = std::function<void(uint64_t done, uint64_t total, const LinkStats& link)>;

// `image` is the whole image file and `view` its validated ImageView.
// Connects, flashes, verifies, commits and resets (or RUNs) the board into
// the new image (a dry run stops after planning). Throws InputError when the image
// does not fit the board's slots, PortError/DeviceError when the link or
// the board fails; the previously committed image then still boots.
FlashSummary FlashImage(ProtocolClient& client, std::span<const uint8_t> image, const image::ImageView& view,
                        const FlashOptions& options, const FlashProgress& progress = {});

// COMMITs `slot` (its image's header_crc; image_bytes paces the wait while
// the board validates it), never resent blindly: after a lost reply, HELLO
// tells whether it took effect (a blind repeat would write a second record
// for the same slot over the one naming the fallback image). `before` is
// INFO from before the COMMIT. Throws DeviceError when the board refuses.
void CommitSlot(ProtocolClient& client, const qmc::flash::InfoReply& before, uint8_t slot, uint32_t header_crc,
                uint64_t image_bytes);

}  // namespace qmc::host::flash
