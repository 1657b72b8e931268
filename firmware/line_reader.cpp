#include "firmware/line_reader.h"

namespace qmc::firmware {

bool LineReader::Next(Line& line) {
  size_t length = 0;
  bool overflow = false;
  for (;;) {
    while (input_begin_ < input_end_) {
      const char c = static_cast<char>(input_[input_begin_++]);
      if (c == '\n') {
        if (!overflow && length > 0 && line_[length - 1] == '\r') --length;
        line = {overflow ? std::string_view() : std::string_view(line_, length), overflow};
        return true;
      }
      if (length < kMaxLineBytes) {
        line_[length++] = c;
      } else {
        overflow = true;
      }
    }
    if (closed_) {
      if (length == 0 && !overflow) return false;
      line = {overflow ? std::string_view() : std::string_view(line_, length), overflow};
      return true;
    }
    const hal::ByteLink::Transfer got = link_.Read(input_, kPollUs);
    input_begin_ = 0;
    input_end_ = got.bytes;
    closed_ = got.closed;
  }
}

}  // namespace qmc::firmware
