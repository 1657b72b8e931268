#include "host/flash/deflate_block.h"

#include <zlib.h>

#include <stdexcept>

namespace qmc::host::flash {

BlockDeflater::BlockDeflater() : stream_(new z_stream{}) {
  // Level 9: the link, not the host's CPU, is what limits a flash.
  if (deflateInit2(stream_, 9, Z_DEFLATED, -15, 9, Z_DEFAULT_STRATEGY) != Z_OK) {
    delete stream_;
    throw std::runtime_error("zlib: deflateInit2 failed");
  }
}

BlockDeflater::~BlockDeflater() {
  deflateEnd(stream_);
  delete stream_;
}

std::vector<uint8_t> BlockDeflater::Compress(std::span<const uint8_t> block) {
  if (block.empty()) return {};
  deflateReset(stream_);
  // One byte short of the block: a stream that does not fit is not worth sending.
  std::vector<uint8_t> out(block.size() - 1);
  stream_->next_in = const_cast<Bytef*>(block.data());
  stream_->avail_in = static_cast<uInt>(block.size());
  stream_->next_out = out.data();
  stream_->avail_out = static_cast<uInt>(out.size());
  if (deflate(stream_, Z_FINISH) != Z_STREAM_END) return {};
  out.resize(out.size() - stream_->avail_out);
  return out;
}

}  // namespace qmc::host::flash
