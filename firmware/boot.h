// Finding the committed image (docs/protocol.md, "Slots and the commit
// record"): MRAM's commit area holds two commit-record copies, each naming a
// slot and the header CRC of the image committed there. Boot tries the valid
// copies newest first; for each it opens the slot's boot record (header and
// section table at the slot's MRAM offset 0), maps every section in place in
// that slot of its window, checks every section CRC, the tensor directory
// and the tokenizer, and the header CRC the record names. The first that
// passes boots; nothing that failed a check ever runs.
#pragma once

#include <cstdint>

#include "common/commit_record.h"
#include "common/image_reader.h"
#include "common/status.h"
#include "hal/hal.h"

namespace qmc::firmware {

enum class BootState {
  kReady,     // `view` maps a validated image
  kNoImage,   // no valid commit record (a blank or erased part)
  kRejected,  // every committed image fails a check (`status` says why the newest does)
};

inline constexpr uint8_t kNoSlot = 0xFF;

// Which slot the running image came from and the record that named it: what
// the flash server protects and builds its next commit on.
struct SlotState {
  uint8_t active_slot = kNoSlot;
  int booted_copy = -1;  // the commit-record copy, or -1
  uint32_t sequence = 0;
};

struct BootResult {
  BootState state;
  Status status;         // why the newest record's image failed (when one did)
  SlotState slots;       // where the image booted from (kReady only)
  bool fell_back = false;  // a newer record's image failed and an older one booted
};

BootResult BootImage(const hal::BoardInfo& board, image::ImageView& view);

// Reads both commit-record copies from MRAM's commit area.
Status ReadCommitRecords(hal::MemoryWindow& mram, nvm::CommitRecord (&copies)[2]);

// Maps the image in `slot` in place from its boot record, checking its
// structure (OpenWindows) but none of its CRCs: for tools that act on the
// stored cells (hal/emu/retention.h), never for booting.
Status MapSlotImage(const hal::BoardInfo& board, uint32_t slot, image::ImageView& view);

// Opens and validates the image in `slot` in place (everything Validate
// checks), without consulting the commit records.
Status OpenSlotImage(const hal::BoardInfo& board, uint32_t slot, image::ImageView& view);

// Declares every range an inference reads in place as data
// (common/read_ranges.h: codes, dense values, scales, norms, biases, the
// split scheme's outlier bitmaps and codes) to its window for a read pass,
// so read errors the board models apply from here on; indices (the split
// scheme's row starts, the group-affine CSR), the directory and the
// tokenizer are structure and stay exact. Call after validation: CRCs are
// over the stored bits.
Status StartReadPasses(const image::ImageView& view, const hal::BoardInfo& board, uint32_t slot);

// A fresh read of the same data: ends every window's read passes (a board
// that models read errors draws anew after that) and starts them again.
Status RestartReadPasses(const image::ImageView& view, const hal::BoardInfo& board, uint32_t slot);

}  // namespace qmc::firmware
