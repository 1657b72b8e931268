#include "firmware/line_reader.h"

namespace qmc::firmware {

LineReader::Event LineReader::Next(Line& line) {
  size_t length = 0;
  bool overflow = false;
  for (;;) {
    const std::span<const uint8_t> bytes = input_.Peek(kPollUs);
    for (size_t i = 0; i < bytes.size(); ++i) {
      const char c = static_cast<char>(bytes[i]);
      if (bytes[i] == kFlashHandOver) {
        input_.Consume(i);
        return Event::kFlash;
      }
      if (c == '\n') {
        input_.Consume(i + 1);
        if (!overflow && length > 0 && line_[length - 1] == '\r') --length;
        line = {overflow ? std::string_view() : std::string_view(line_, length), overflow};
        return Event::kLine;
      }
      if (length < kMaxLineBytes) {
        line_[length++] = c;
      } else {
        overflow = true;
      }
    }
    input_.Consume(bytes.size());
    if (input_.done()) {
      if (length == 0 && !overflow) return Event::kClosed;
      line = {overflow ? std::string_view() : std::string_view(line_, length), overflow};
      return Event::kLine;
    }
  }
}

}  // namespace qmc::firmware
