#include "host/flash/fd_io.h"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "host/flash/port.h"

namespace qmc::host::flash {
namespace {

using Clock = std::chrono::steady_clock;

[[noreturn]] void ThrowErrno(const char* what) { throw PortError(std::string(what) + ": " + std::strerror(errno)); }

// Waits until `fd` is ready for `events` (or has hung up) or `deadline`
// passes; false on timeout.
bool PollUntil(int fd, short events, Clock::time_point deadline) {
  for (;;) {
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now());
    pollfd p{fd, events, 0};
    const int n = poll(&p, 1, static_cast<int>(std::max<int64_t>(0, left.count())));
    if (n > 0) return true;
    if (n == 0) return false;
    if (errno != EINTR) ThrowErrno("poll");
  }
}

bool IsHangUp(int error) { return error == EIO || error == ECONNRESET || error == EPIPE; }

}  // namespace

std::optional<size_t> ReadFd(int fd, std::span<uint8_t> out, std::chrono::milliseconds timeout) {
  const Clock::time_point deadline = Clock::now() + timeout;
  for (;;) {
    const ssize_t n = read(fd, out.data(), out.size());
    if (n > 0) return static_cast<size_t>(n);
    if (n == 0 || IsHangUp(errno)) return std::nullopt;
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) ThrowErrno("read");
    if (!PollUntil(fd, POLLIN, deadline)) return 0;
  }
}

WriteEnd WriteFd(int fd, std::span<const uint8_t> data, std::chrono::milliseconds stall, bool is_socket) {
  Clock::time_point deadline = Clock::now() + stall;
  while (!data.empty()) {
    const ssize_t n = is_socket ? send(fd, data.data(), data.size(), MSG_NOSIGNAL) : write(fd, data.data(), data.size());
    if (n > 0) {
      data = data.subspan(static_cast<size_t>(n));
      deadline = Clock::now() + stall;
    } else if (n < 0 && IsHangUp(errno)) {
      return WriteEnd::kClosed;
    } else if (n == 0 || errno == EAGAIN || errno == EWOULDBLOCK) {
      if (!PollUntil(fd, POLLOUT, deadline)) return WriteEnd::kStalled;
    } else if (errno != EINTR) {
      ThrowErrno("write");
    }
  }
  return WriteEnd::kDone;
}

}  // namespace qmc::host::flash
