#include "common/commit_record.h"

#include <cstring>

#include "common/crc32.h"

namespace qmc::nvm {

CommitRecord MakeCommitRecord(uint32_t sequence, uint8_t slot, uint32_t header_crc, uint32_t image_size) {
  CommitRecord record;
  std::memset(&record, 0, sizeof record);
  record.magic = kCommitMagic;
  record.sequence = sequence;
  record.slot = slot;
  record.header_crc = header_crc;
  record.image_size = image_size;
  record.record_crc = Crc32(&record, offsetof(CommitRecord, record_crc));
  return record;
}

bool IsValid(const CommitRecord& record) {
  return record.magic == kCommitMagic && record.slot < 2 &&
         record.record_crc == Crc32(&record, offsetof(CommitRecord, record_crc));
}

BootOrder OrderForBoot(const CommitRecord (&copies)[2]) {
  BootOrder order;
  for (uint32_t i = 0; i < 2; ++i) {
    if (IsValid(copies[i])) order.copy[order.count++] = i;
  }
  if (order.count == 2 && Newer(copies[1].sequence, copies[0].sequence)) {
    order.copy[0] = 1;
    order.copy[1] = 0;
  }
  return order;
}

NextCommit PlanCommit(const CommitRecord (&copies)[2], int booted_copy) {
  const BootOrder order = OrderForBoot(copies);
  const uint32_t sequence = order.count == 0 ? 1 : copies[order.copy[0]].sequence + 1;
  if (booted_copy == 0 || booted_copy == 1) return {1u - static_cast<uint32_t>(booted_copy), sequence};
  if (order.count == 0) return {0, sequence};
  return {1u - order.copy[0], sequence};
}

}  // namespace qmc::nvm
