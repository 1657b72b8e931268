#include <algorithm>
#include <bit>
#include <cmath>
#include <functional>

#include "host/quantize.h"

namespace qmc::host {
namespace {

// Appends, in ascending order, the k largest-|w| positions of [begin, end);
// equal magnitudes by position, so the choice is deterministic. |w| is
// compared as its bits (sign cleared), which order as the magnitudes do for
// finite weights: the k-th largest key is found by selection, then every
// position above it is taken and, of those at it, the first ones.
void TakeLargest(const float* w, uint32_t begin, uint32_t end, uint32_t k, std::vector<uint32_t>& out) {
  if (k == 0) return;
  const auto magnitude = [w](uint32_t i) { return std::bit_cast<uint32_t>(w[i]) & 0x7FFFFFFFu; };
  std::vector<uint32_t> keys(end - begin);
  for (uint32_t i = begin; i < end; ++i) keys[i - begin] = magnitude(i);
  std::nth_element(keys.begin(), keys.begin() + (k - 1), keys.end(), std::greater<>());
  const uint32_t kth = keys[k - 1];
  uint32_t above = 0;
  for (uint32_t i = begin; i < end; ++i) above += magnitude(i) > kth ? 1u : 0u;
  uint32_t at_kth = k - above;  // how many of the positions at the k-th key to take
  for (uint32_t i = begin; i < end; ++i) {
    const uint32_t key = magnitude(i);
    if (key > kth) {
      out.push_back(i);
    } else if (key == kth && at_kth > 0) {
      out.push_back(i);
      --at_kth;
    }
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
