#include <algorithm>
#include <bit>
#include <cmath>
#include <functional>
#include <utility>

#include "host/quantize.h"

namespace qmc::host {
namespace {

// Ranges this long select through a histogram of the keys' top 15 bits.
constexpr uint32_t kHistogramFrom = 1u << 16;
constexpr uint32_t kBucketShift = 16;

// The k-th largest of the keys of [begin, end) (1 ≤ k ≤ end − begin), and
// how many keys are above it. A large range histograms the keys' top bits
// first, so selection only runs over the keys sharing the k-th one's bucket.
template <typename Key>
std::pair<uint32_t, uint32_t> KthLargest(Key key, uint32_t begin, uint32_t end, uint32_t k) {
  std::vector<uint32_t> keys;
  uint32_t above = 0, rank = k;
  if (end - begin < kHistogramFrom) {
    keys.resize(end - begin);
    for (uint32_t i = begin; i < end; ++i) keys[i - begin] = key(i);
  } else {
    std::vector<uint32_t> count(1u << (31 - kBucketShift), 0u);  // keys are below 2^31
    for (uint32_t i = begin; i < end; ++i) ++count[key(i) >> kBucketShift];
    uint32_t bucket = static_cast<uint32_t>(count.size()) - 1u;
    for (; above + count[bucket] < k; --bucket) above += count[bucket];
    rank = k - above;
    keys.reserve(count[bucket]);
    for (uint32_t i = begin; i < end; ++i) {
      if (key(i) >> kBucketShift == bucket) keys.push_back(key(i));
    }
  }
  std::nth_element(keys.begin(), keys.begin() + (rank - 1), keys.end(), std::greater<>());
  const uint32_t kth = keys[rank - 1];
  for (uint32_t v : keys) above += v > kth ? 1u : 0u;
  return {kth, above};
}

// Appends, in ascending order, the k largest-|w| positions of [begin, end);
// equal magnitudes by position, so the choice is deterministic. |w| is
// compared as its bits (sign cleared), which order as the magnitudes do for
// finite weights: every position above the k-th largest key is taken and,
// of those at it, the first ones.
void TakeLargest(const float* w, uint32_t begin, uint32_t end, uint32_t k, std::vector<uint32_t>& out) {
  if (k == 0) return;
  const auto magnitude = [w](uint32_t i) { return std::bit_cast<uint32_t>(w[i]) & 0x7FFFFFFFu; };
  const auto [kth, above] = KthLargest(magnitude, begin, end, k);
  uint32_t at_kth = k - above;  // how many of the positions at the k-th key to take
  // Written without branches: a position is taken about as often as not at large ratios.
  size_t at = out.size();
  out.resize(at + k);
  uint32_t* taken = out.data();
  for (uint32_t i = begin; i < end && at < out.size(); ++i) {
    const uint32_t key = magnitude(i);
    const bool tie = key == kth && at_kth > 0;
    taken[at] = i;
    at += (key > kth || tie) ? 1u : 0u;
    at_kth -= tie ? 1u : 0u;
  }
}

}  // namespace

std::vector<uint32_t> SelectOutliers(const Tensor& tensor, double ratio, OutlierBalance balance) {
  const auto n = static_cast<uint32_t>(tensor.data.size());
  const auto count = static_cast<uint32_t>(std::llround(ratio * n));
  std::vector<uint32_t> out;
  out.reserve(count);
  if (balance == OutlierBalance::kTensor) {
    TakeLargest(tensor.data.data(), 0, n, count, out);
  } else {
    // Spread the same total over the rows; the first count % rows rows take one more.
    const uint32_t per_row = count / tensor.rows, extra = count % tensor.rows;
    for (uint32_t r = 0; r < tensor.rows; ++r) {
      const uint32_t k = std::min(per_row + (r < extra ? 1u : 0u), tensor.cols);
      TakeLargest(tensor.data.data(), r * tensor.cols, (r + 1) * tensor.cols, k, out);
    }
  }
  return out;  // ascending: each range's positions are, and the ranges are in order
}

}  // namespace qmc::host
