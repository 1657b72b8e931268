// libFuzzer target: the inflater (common/inflate.h) against zlib on
// arbitrary streams. The first two input bytes give the output capacity
// (0..65535); the rest is the raw deflate stream. Both decoders must accept
// the same streams and produce the same bytes, and the inflater must stay
// inside its output (sized exactly, so ASan sees a write past it).
#include <zlib.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <vector>

#include "common/inflate.h"

namespace {

// zlib's raw inflate, accepting only a stream that ends exactly at its final block.
std::optional<std::vector<uint8_t>> ZlibInflate(const uint8_t* data, size_t size, size_t capacity) {
  z_stream z{};
  if (inflateInit2(&z, -15) != Z_OK) std::abort();
  std::vector<uint8_t> out(capacity + 1);  // never an empty buffer; the extra byte is not offered
  z.next_in = const_cast<Bytef*>(data);
  z.avail_in = static_cast<uInt>(size);
  z.next_out = out.data();
  z.avail_out = static_cast<uInt>(capacity);
  const int rc = inflate(&z, Z_FINISH);
  const size_t produced = capacity - z.avail_out;
  const uInt unused = z.avail_in;
  inflateEnd(&z);
  if (rc != Z_STREAM_END || unused != 0) return std::nullopt;
  out.resize(produced);
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const size_t capacity = data[0] | static_cast<size_t>(data[1]) << 8;
  std::vector<uint8_t> out(capacity);
  const qmc::Result<size_t> ours = qmc::Inflate({data + 2, size - 2}, out);
  const std::optional<std::vector<uint8_t>> theirs = ZlibInflate(data + 2, size - 2, capacity);
  if (ours.ok() != theirs.has_value()) std::abort();
  // std::equal, not memcmp: both outputs may be empty vectors with null data (fuzz_campaign found it).
  if (theirs && (ours.value() != theirs->size() || !std::equal(theirs->begin(), theirs->end(), out.begin()))) {
    std::abort();
  }
  return 0;
}
