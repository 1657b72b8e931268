// Console input: lines from the link, assembled in a fixed buffer.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "hal/hal.h"

namespace qmc::firmware {

// The longest line kept (a prompt and its options); the tokenizer's
// workspace is sized for it.
inline constexpr size_t kMaxLineBytes = 1024;

class LineReader {
 public:
  struct Line {
    std::string_view text;  // without the line end ("\n" or "\r\n")
    bool too_long = false;  // the line was longer than kMaxLineBytes; text is empty
  };

  explicit LineReader(hal::ByteLink& link) : link_(link) {}

  // Waits for the next line. False once the link has closed and nothing is
  // left; a last line without a line end still counts.
  bool Next(Line& line);

 private:
  static constexpr uint32_t kPollUs = 100000;

  hal::ByteLink& link_;
  char line_[kMaxLineBytes];
  uint8_t input_[256];
  size_t input_begin_ = 0;
  size_t input_end_ = 0;
  bool closed_ = false;
};

}  // namespace qmc::firmware
