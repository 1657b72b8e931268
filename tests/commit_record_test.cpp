// Commit records (common/commit_record.h): validity, the order boot tries
// the copies in (both valid, one torn, both torn, equal sequences, a wrapped
// counter) and which copy a commit overwrites.
#include "common/commit_record.h"

#include <gtest/gtest.h>
#include <zlib.h>

#include <cstring>

namespace qmc::nvm {
namespace {

CommitRecord Torn(CommitRecord r) {
  reinterpret_cast<uint8_t*>(&r)[13] ^= 0x40;  // a byte of header_crc: the record CRC no longer holds
  return r;
}

TEST(CommitRecord, LayoutAndCrcAsSpecified) {
  const CommitRecord r = MakeCommitRecord(5, 1, 0xAABBCCDD, 1000);
  uint8_t bytes[32];
  std::memcpy(bytes, &r, sizeof bytes);
  const uint8_t head[20] = {'Q', 'M', 'C', 'C', 5, 0, 0, 0, 1, 0, 0, 0, 0xDD, 0xCC, 0xBB, 0xAA, 0xE8, 0x03, 0, 0};
  EXPECT_EQ(std::memcmp(bytes, head, sizeof head), 0);
  for (int i = 20; i < 28; ++i) EXPECT_EQ(bytes[i], 0) << i;
  EXPECT_EQ(r.record_crc, crc32(0, bytes, 28));
  EXPECT_TRUE(IsValid(r));
}

TEST(CommitRecord, InvalidWhenTornOrBlankOrBadSlot) {
  const CommitRecord good = MakeCommitRecord(1, 0, 1, 1);
  EXPECT_FALSE(IsValid(Torn(good)));
  CommitRecord blank;
  std::memset(&blank, 0, sizeof blank);
  EXPECT_FALSE(IsValid(blank));
  std::memset(&blank, 0xFF, sizeof blank);
  EXPECT_FALSE(IsValid(blank));
  EXPECT_FALSE(IsValid(MakeCommitRecord(1, 2, 1, 1)));  // slot 2 does not exist
}

TEST(CommitRecord, BothValidNewestFirst) {
  const CommitRecord copies[2] = {MakeCommitRecord(4, 0, 1, 1), MakeCommitRecord(5, 1, 2, 2)};
  const BootOrder order = OrderForBoot(copies);
  ASSERT_EQ(order.count, 2u);
  EXPECT_EQ(order.copy[0], 1u);
  EXPECT_EQ(order.copy[1], 0u);
  const CommitRecord swapped[2] = {copies[1], copies[0]};
  EXPECT_EQ(OrderForBoot(swapped).copy[0], 0u);
}

TEST(CommitRecord, OneTornLeavesTheOther) {
  const CommitRecord copies[2] = {MakeCommitRecord(4, 0, 1, 1), Torn(MakeCommitRecord(5, 1, 2, 2))};
  const BootOrder order = OrderForBoot(copies);
  ASSERT_EQ(order.count, 1u);
  EXPECT_EQ(order.copy[0], 0u);
}

TEST(CommitRecord, BothTornLeavesNothing) {
  const CommitRecord copies[2] = {Torn(MakeCommitRecord(4, 0, 1, 1)), Torn(MakeCommitRecord(5, 1, 2, 2))};
  EXPECT_EQ(OrderForBoot(copies).count, 0u);
  // The first commit on such a board writes sequence 1 into copy 0.
  const NextCommit next = PlanCommit(copies, -1);
  EXPECT_EQ(next.copy, 0u);
  EXPECT_EQ(next.sequence, 1u);
}

TEST(CommitRecord, EqualSequencesTryCopyZeroFirst) {
  const CommitRecord copies[2] = {MakeCommitRecord(9, 0, 1, 1), MakeCommitRecord(9, 1, 2, 2)};
  const BootOrder order = OrderForBoot(copies);
  ASSERT_EQ(order.count, 2u);
  EXPECT_EQ(order.copy[0], 0u);
  EXPECT_EQ(order.copy[1], 1u);
  // Without a booted copy the commit keeps copy 0 (the one boot tries first).
  EXPECT_EQ(PlanCommit(copies, -1).copy, 1u);
  EXPECT_EQ(PlanCommit(copies, -1).sequence, 10u);
}

TEST(CommitRecord, SequenceWraps) {
  const CommitRecord copies[2] = {MakeCommitRecord(0xFFFFFFFFu, 0, 1, 1), MakeCommitRecord(0, 1, 2, 2)};
  EXPECT_EQ(OrderForBoot(copies).copy[0], 1u);  // 0 follows 0xFFFFFFFF
  const CommitRecord before[2] = {MakeCommitRecord(0xFFFFFFFFu, 0, 1, 1), MakeCommitRecord(0xFFFFFFFEu, 1, 2, 2)};
  const NextCommit next = PlanCommit(before, 0);
  EXPECT_EQ(next.copy, 1u);
  EXPECT_EQ(next.sequence, 0u);
}

TEST(CommitRecord, CommitNeverOverwritesTheBootedCopy) {
  // The newest record's image failed at boot and the older one booted: the
  // commit must overwrite the newer (failed) copy, not the one that boots.
  const CommitRecord copies[2] = {MakeCommitRecord(5, 1, 1, 1), MakeCommitRecord(4, 0, 2, 2)};
  const NextCommit next = PlanCommit(copies, 1);
  EXPECT_EQ(next.copy, 0u);
  EXPECT_EQ(next.sequence, 6u);
  // Nothing booted: overwrite the copy that does not hold the newest record.
  EXPECT_EQ(PlanCommit(copies, -1).copy, 1u);
}

}  // namespace
}  // namespace qmc::nvm
