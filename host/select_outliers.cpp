#include <algorithm>
#include <cmath>

#include "host/quantize.h"

namespace qmc::host {
namespace {

// Largest |w| first; equal magnitudes by position, so the choice is deterministic.
void TakeLargest(const float* w, uint32_t begin, uint32_t end, uint32_t k, std::vector<uint32_t>& out) {
  if (k == 0) return;
  std::vector<uint32_t> idx(end - begin);
  for (uint32_t i = begin; i < end; ++i) idx[i - begin] = i;
  auto larger = [w](uint32_t a, uint32_t b) {
    const float fa = std::fabs(w[a]), fb = std::fabs(w[b]);
    return fa != fb ? fa > fb : a < b;
  };
  std::nth_element(idx.begin(), idx.begin() + (k - 1), idx.end(), larger);
  out.insert(out.end(), idx.begin(), idx.begin() + k);
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
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace qmc::host
