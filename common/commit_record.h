// The commit record: which slot holds the image that boots (docs/protocol.md,
// "Slots and the commit record"). Two copies sit in MRAM's commit area
// (common/slot_layout.h); a copy counts when its magic and CRC hold. Boot
// tries the valid copies newest first; a commit overwrites the copy that did
// not boot, so a write torn by a power cut leaves the booting one intact.
#pragma once

#include <cstddef>
#include <cstdint>

namespace qmc::nvm {

inline constexpr uint32_t kCommitMagic = 0x43434D51u;  // bytes "QMCC"

struct CommitRecord {
  uint32_t magic;
  uint32_t sequence;  // one more than the newest valid record's when written
  uint8_t slot;       // 0 or 1
  uint8_t reserved0[3];
  uint32_t header_crc;  // the committed image's Header::header_crc
  uint32_t image_size;  // its Header::image_size
  uint8_t reserved1[8];
  uint32_t record_crc;  // CRC-32 of the 28 bytes before it
};
static_assert(sizeof(CommitRecord) == 32);
static_assert(offsetof(CommitRecord, sequence) == 4);
static_assert(offsetof(CommitRecord, slot) == 8);
static_assert(offsetof(CommitRecord, header_crc) == 12);
static_assert(offsetof(CommitRecord, image_size) == 16);
static_assert(offsetof(CommitRecord, record_crc) == 28);

// A record with its CRC filled in and reserved bytes zero.
CommitRecord MakeCommitRecord(uint32_t sequence, uint8_t slot, uint32_t header_crc, uint32_t image_size);

// Magic, CRC and slot number hold.
bool IsValid(const CommitRecord& record);

// Whether sequence `a` is newer than `b`, in serial-number arithmetic
// (RFC 1982) so the counter may wrap.
constexpr bool Newer(uint32_t a, uint32_t b) { return static_cast<int32_t>(a - b) > 0; }

// The copies worth trying at boot, in order: the valid ones, newest first
// (copy 0 first when both hold the same sequence).
struct BootOrder {
  uint32_t count = 0;
  uint32_t copy[2] = {0, 0};  // indexes into the copies
};
BootOrder OrderForBoot(const CommitRecord (&copies)[2]);

// Where and with what sequence the next commit is written.
struct NextCommit {
  uint32_t copy;      // the copy to overwrite
  uint32_t sequence;  // newer than every valid copy
};
// `booted_copy` is the copy the running image booted from, or -1 if none
// did: that copy is never overwritten. Without one, the copy not holding the
// newest valid record is.
NextCommit PlanCommit(const CommitRecord (&copies)[2], int booted_copy);

}  // namespace qmc::nvm
