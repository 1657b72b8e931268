// CRC-32 (IEEE 802.3, reflected, poly 0xEDB88320) — the same value zlib's
// crc32() gives, so host and device agree on every checksum.
#pragma once

#include <cstddef>
#include <cstdint>

namespace qmc {

// Continues a running CRC: Crc32(b, Crc32(a)) == Crc32(a ++ b). Start with 0.
uint32_t Crc32(const void* data, size_t size, uint32_t crc = 0);

}  // namespace qmc
