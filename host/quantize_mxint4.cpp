#include <algorithm>
#include <cmath>

#include "common/quant_layout.h"
#include "host/quantize.h"

namespace qmc::host {

// The OCP MX recipe: the shared exponent is floor(log2(amax)) less the
// element's largest exponent (INT4 read as s1.2 fixed point: 2), so the
// largest element lands in [4, 8) and is clipped to 7 when it rounds to 8.
MxCodes QuantizeMxInt4(const Tensor& tensor) {
  const uint32_t blocks = quant::GroupsPerRow(tensor.cols, quant::kMxBlock);
  MxCodes out;
  out.codes.resize(tensor.data.size());
  out.scales.resize(static_cast<size_t>(tensor.rows) * blocks);
  for (uint32_t r = 0; r < tensor.rows; ++r) {
    for (uint32_t b = 0; b < blocks; ++b) {
      const uint32_t first = b * quant::kMxBlock;
      const uint32_t n = std::min(quant::kMxBlock, tensor.cols - first);
      const float* w = tensor.data.data() + static_cast<size_t>(r) * tensor.cols + first;
      float amax = 0.0f;
      for (uint32_t i = 0; i < n; ++i) amax = std::max(amax, std::fabs(w[i]));
      int biased = 0;
      if (amax > 0.0f) {
        int exponent = 0;
        std::frexp(amax, &exponent);  // amax = m * 2^exponent, m in [0.5, 1)
        biased = std::clamp(exponent - 1 - 2 + quant::kMxScaleBias, 0, 254);
      }
      const auto e8m0 = static_cast<uint8_t>(biased);
      out.scales[static_cast<size_t>(r) * blocks + b] = e8m0;
      const float scale = quant::E8M0ToFloat(e8m0);
      for (uint32_t i = 0; i < n; ++i) {
        const int q = static_cast<int>(std::clamp(std::nearbyint(w[i] / scale), -8.0f, 7.0f));
        out.codes[static_cast<size_t>(r) * tensor.cols + first + i] = static_cast<uint8_t>(q & 0xF);
      }
    }
  }
  return out;
}

}  // namespace qmc::host
