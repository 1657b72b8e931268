// The link's input, buffered once for both of its readers: the console's
// LineReader and the flash server. Sharing one buffer is what makes the
// hand-over exact: the console stops in front of a 0xC0 byte and the server
// starts with it, and bytes after the server's last frame are the console's
// again; nothing read ahead is lost on either side.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "hal/hal.h"

namespace qmc::firmware {

class LinkInput {
 public:
  explicit LinkInput(hal::ByteLink& link) : link_(link) {}

  // The bytes read but not consumed; when there are none, waits up to
  // `timeout_us` for more. Empty on a timeout or once the link has closed.
  std::span<const uint8_t> Peek(uint32_t timeout_us);
  // Drops the first `n` bytes Peek returned.
  void Consume(size_t n) { begin_ += n; }
  // The link has closed and every byte has been consumed.
  bool done() const { return closed_ && begin_ == end_; }

 private:
  hal::ByteLink& link_;
  uint8_t buffer_[256];
  size_t begin_ = 0;
  size_t end_ = 0;
  bool closed_ = false;
};

}  // namespace qmc::firmware
