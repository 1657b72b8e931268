// A terminal on a board's console: what arrives on `input` (stdin: prompt
// lines) goes to the board, what the board sends (banners, streamed text,
// stats lines) goes to `output` (stdout) as it comes. 0xC0 bytes are not
// passed on: on the link that byte hands the console to the flash server.
#pragma once

#include <chrono>
#include <cstdint>
#include <span>
#include <string>

#include "host/flash/port.h"

namespace qmc::host::flash {

struct ConsoleOptions {
  int input_fd = 0;
  int output_fd = 1;
  // After the input ends, keep showing the board's output until it has been
  // quiet this long (the answer to the last prompt is still streaming).
  std::chrono::milliseconds linger{3000};
};

// How the session ended.
enum class ConsoleEnd { kInputDone, kLinkClosed };

// Relays until the input has ended and the board has been quiet for
// `linger`, or the link closes. `already`: console bytes read before the
// session began (what followed a flash's RUN reply), shown first. Throws
// PortError when the link fails other than by closing.
ConsoleEnd RunConsole(Port& port, std::span<const uint8_t> already, const ConsoleOptions& options);

}  // namespace qmc::host::flash
