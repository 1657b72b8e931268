#include "firmware/link_input.h"

namespace qmc::firmware {

std::span<const uint8_t> LinkInput::Peek(uint32_t timeout_us) {
  if (begin_ == end_ && !closed_) {
    const hal::ByteLink::Transfer got = link_.Read(buffer_, timeout_us);
    begin_ = 0;
    end_ = got.bytes;
    closed_ = got.closed;
  }
  return {buffer_ + begin_, end_ - begin_};
}

}  // namespace qmc::firmware
