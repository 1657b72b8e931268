// binary16 -> binary32 for inner loops: the same values as qmc::HalfToFloat
// without its normalisation loop or branches, so a compiler can vectorise it.
// Subnormal halves go through an exact integer conversion rather than a
// multiply of a subnormal float, so a flush-to-zero FPU (Cortex-M) agrees.
#pragma once

#include <bit>
#include <cstdint>

namespace qmc::kernels {

constexpr float FastHalfToFloat(uint16_t h) {
  const uint32_t magnitude = h & 0x7FFFu;
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  // Rebias the exponent (15 -> 127); Inf and NaN get an all-ones exponent.
  const uint32_t normal = (magnitude << 13) + 0x38000000u + (magnitude >= 0x7C00u ? 0x38000000u : 0u);
  const float subnormal = static_cast<float>(static_cast<int32_t>(magnitude)) * 0x1p-24f;  // zero too
  const uint32_t is_subnormal = 0u - static_cast<uint32_t>(magnitude < 0x0400u);  // all ones or zero
  return std::bit_cast<float>(sign | (std::bit_cast<uint32_t>(subnormal) & is_subnormal) | (normal & ~is_subnormal));
}

}  // namespace qmc::kernels
