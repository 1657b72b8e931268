// How many payload bytes one frame may carry on the link as it behaves now.
// A damaged byte costs its whole frame, so where a lossy link almost never
// delivers a 4 KiB frame it still delivers small ones: the budget halves
// after every exchange that needed a resend or got no reply, and doubles
// back after a run of clean ones. A clean link never leaves the maximum.
#pragma once

#include <algorithm>
#include <cstdint>

#include "host/flash/protocol_client.h"

namespace qmc::host::flash {

class FrameBudget {
 public:
  // Sizes stay multiples of 64 bytes, so DATA offsets stay aligned to any
  // write granularity a board reports.
  static constexpr uint32_t kMinBytes = 64;

  explicit FrameBudget(uint32_t max_bytes) : max_(std::max(kMinBytes, max_bytes / kMinBytes * kMinBytes)), bytes_(max_) {}

  uint32_t bytes() const { return bytes_; }

  // Runs `exchange(bytes())`, one request that sizes itself to the budget,
  // until it gets its reply: after a NoReplyError the budget shrinks and the
  // exchange runs again, sized anew. At the smallest size it runs at most
  // kExchangesAtMin times before the NoReplyError stands, so the resends
  // stay bounded. Returns what `exchange` returns.
  template <typename Exchange>
  auto Run(ProtocolClient& client, Exchange&& exchange) {
    for (int at_min = 0;;) {
      const uint64_t resends = client.stats().resends;
      try {
        auto result = exchange(bytes_);
        Observe(client.stats().resends == resends);
        return result;
      } catch (const NoReplyError&) {
        if (bytes_ == kMinBytes && ++at_min == kExchangesAtMin) throw;
        Observe(false);
      }
    }
  }

 private:
  // At 64 bytes a link damaging 3e-3 of its bytes loses about one frame in
  // four: three exchanges of `attempts` sends each make losing one rare.
  static constexpr int kExchangesAtMin = 3;
  static constexpr int kCleanBeforeGrowing = 16;

  void Observe(bool clean) {
    if (!clean) {
      bytes_ = std::max(kMinBytes, bytes_ / 2 / kMinBytes * kMinBytes);
      clean_ = 0;
    } else if (bytes_ < max_ && ++clean_ == kCleanBeforeGrowing) {
      bytes_ = std::min(max_, bytes_ * 2);
      clean_ = 0;
    }
  }

  uint32_t max_;
  uint32_t bytes_;
  int clean_ = 0;
};

}  // namespace qmc::host::flash
