// Timed reads and writes on a non-blocking file descriptor: what the exec
// and tty ports share.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>

namespace qmc::host::flash {

// Waits up to `timeout` for input and reads what is there; nullopt when the
// other end has closed (end of file, hang-up). Throws PortError on other
// failures.
std::optional<size_t> ReadFd(int fd, std::span<uint8_t> out, std::chrono::milliseconds timeout);

enum class WriteEnd { kDone, kClosed, kStalled };

// Writes every byte unless the other end closes or takes nothing for
// `stall`. Sockets are written with send(MSG_NOSIGNAL), so a closed peer is
// kClosed rather than a SIGPIPE.
WriteEnd WriteFd(int fd, std::span<const uint8_t> data, std::chrono::milliseconds stall, bool is_socket);

}  // namespace qmc::host::flash
