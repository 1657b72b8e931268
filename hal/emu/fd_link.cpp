#include "hal/emu/fd_link.h"

#include <poll.h>
#include <unistd.h>

#include <cerrno>

namespace qmc::hal::emu {
namespace {

// Waits for `events` on `fd`; false on a timeout. Errors and hang-ups count
// as ready so the following read or write reports them.
bool Wait(int fd, short events, uint32_t timeout_us) {
  pollfd p{fd, events, 0};
  const int timeout_ms = static_cast<int>((timeout_us + 999u) / 1000u);
  for (;;) {
    const int n = ::poll(&p, 1, timeout_ms);
    if (n >= 0) return n > 0;
    if (errno != EINTR) return true;
  }
}

}  // namespace

ByteLink::Transfer FdLink::Read(std::span<uint8_t> out, uint32_t timeout_us) {
  if (!Wait(in_fd_, POLLIN, timeout_us)) return {};
  for (;;) {
    const ssize_t n = ::read(in_fd_, out.data(), out.size());
    if (n > 0) return {static_cast<size_t>(n), false};
    if (n < 0 && (errno == EINTR)) continue;
    if (n < 0 && errno == EAGAIN) return {};
    return {0, true};  // end of file or a dead descriptor
  }
}

ByteLink::Transfer FdLink::Write(std::span<const uint8_t> data, uint32_t timeout_us) {
  size_t done = 0;
  while (done < data.size()) {
    if (!Wait(out_fd_, POLLOUT, timeout_us)) return {done, false};
    const ssize_t n = ::write(out_fd_, data.data() + done, data.size() - done);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (n <= 0) return {done, true};
    done += static_cast<size_t>(n);
  }
  return {done, false};
}

}  // namespace qmc::hal::emu
