// Per-block compression for DATA: zlib raw deflate (no header, window bits
// -15), which the device's freestanding inflater (common/inflate.h) reads.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

struct z_stream_s;

namespace qmc::host::flash {

class BlockDeflater {
 public:
  BlockDeflater();
  ~BlockDeflater();
  BlockDeflater(const BlockDeflater&) = delete;
  BlockDeflater& operator=(const BlockDeflater&) = delete;

  // The raw-deflate stream of `block`, or empty when it would not be
  // smaller than the block (then the block goes raw).
  std::vector<uint8_t> Compress(std::span<const uint8_t> block);

 private:
  z_stream_s* stream_;
};

}  // namespace qmc::host::flash
