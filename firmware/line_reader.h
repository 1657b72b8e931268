// Console input: lines from the link, assembled in a fixed buffer.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "firmware/link_input.h"

namespace qmc::firmware {

// The longest line kept (a prompt and its options); the tokenizer's
// workspace is sized for it.
inline constexpr size_t kMaxLineBytes = 1024;

// The byte that hands the link to the flash server: SLIP's END, which never
// occurs in UTF-8 text.
inline constexpr uint8_t kFlashHandOver = 0xC0;

class LineReader {
 public:
  enum class Event {
    kLine,    // `line` holds the next line
    kFlash,   // the next input byte is kFlashHandOver, left unread for the flash server
    kClosed,  // the link has closed and nothing is left
  };
  struct Line {
    std::string_view text;  // without the line end ("\n" or "\r\n")
    bool too_long = false;  // the line was longer than kMaxLineBytes; text is empty
  };

  explicit LineReader(LinkInput& input) : input_(input) {}

  // Waits for the next line; a last line without a line end still counts. The
  // part of a line read before a hand-over byte is dropped.
  Event Next(Line& line);

 private:
  static constexpr uint32_t kPollUs = 100000;

  LinkInput& input_;
  char line_[kMaxLineBytes];
};

}  // namespace qmc::firmware
