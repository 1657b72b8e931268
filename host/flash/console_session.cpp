#include "host/flash/console_session.h"

#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <optional>
#include <vector>

#include "common/slip_frame.h"

namespace qmc::host::flash {
namespace {

using Clock = std::chrono::steady_clock;

// How long one turn waits for the board before looking at the input again.
constexpr std::chrono::milliseconds kTurn{20};

void WriteOut(int fd, std::span<const uint8_t> bytes) {
  while (!bytes.empty()) {
    const ssize_t n = write(fd, bytes.data(), bytes.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) throw PortError(std::string("console output: ") + std::strerror(errno));
    bytes = bytes.subspan(static_cast<size_t>(n));
  }
}

// What `fd` has now, without waiting; nullopt at its end.
std::optional<std::vector<uint8_t>> ReadInput(int fd) {
  pollfd p{fd, POLLIN, 0};
  if (poll(&p, 1, 0) <= 0) return std::vector<uint8_t>();
  std::vector<uint8_t> bytes(4096);
  const ssize_t n = read(fd, bytes.data(), bytes.size());
  if (n < 0 && (errno == EINTR || errno == EAGAIN)) return std::vector<uint8_t>();
  if (n <= 0) return std::nullopt;
  bytes.resize(static_cast<size_t>(n));
  std::erase(bytes, qmc::flash::kSlipEnd);
  return bytes;
}

}  // namespace

ConsoleEnd RunConsole(Port& port, std::span<const uint8_t> already, const ConsoleOptions& options) {
  WriteOut(options.output_fd, already);
  bool input_open = true;
  Clock::time_point last_activity = Clock::now();
  std::vector<uint8_t> buffer(4096);
  for (;;) {
    if (input_open) {
      const std::optional<std::vector<uint8_t>> typed = ReadInput(options.input_fd);
      if (!typed) {
        input_open = false;
        last_activity = Clock::now();
      } else if (!typed->empty()) {
        port.Write(*typed);
      }
    }
    size_t n = 0;
    try {
      n = port.Read(buffer, kTurn);
    } catch (const PortError&) {
      // A program on pipes ends its link when it exits; a UART never does.
      if (!input_open) return ConsoleEnd::kLinkClosed;
      throw;
    }
    if (n > 0) {
      WriteOut(options.output_fd, std::span(buffer).first(n));
      last_activity = Clock::now();
    } else if (!input_open && Clock::now() - last_activity >= options.linger) {
      return ConsoleEnd::kInputDone;
    }
  }
}

}  // namespace qmc::host::flash
