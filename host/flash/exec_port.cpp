#include "host/flash/exec_port.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <thread>

#include "host/flash/fd_io.h"

namespace qmc::host::flash {
namespace {

// A program that takes no input for this long is not a working board.
constexpr std::chrono::seconds kWriteStall{20};

std::string DescribeWaitStatus(int status) {
  if (WIFEXITED(status)) return "exited with status " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return std::string("killed by signal ") + strsignal(WTERMSIG(status));
  return "stopped";
}

}  // namespace

ExecPort::ExecPort(const std::string& command, uint32_t bytes_per_second)
    : command_(command), bytes_per_second_(bytes_per_second) {
  int fds[2];
  // SOCK_CLOEXEC: no later child (another port's program) holds this link open.
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) {
    throw PortError(Describe() + ": socketpair: " + std::strerror(errno));
  }
  pid_ = fork();
  if (pid_ < 0) {
    const int error = errno;
    close(fds[0]);
    close(fds[1]);
    throw PortError(Describe() + ": fork: " + std::strerror(error));
  }
  if (pid_ == 0) {
    // Its own process group, so Close() ends the shell and what it started.
    setpgid(0, 0);
    dup2(fds[1], STDIN_FILENO);
    dup2(fds[1], STDOUT_FILENO);
    execl("/bin/sh", "sh", "-c", command.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  setpgid(pid_, pid_);  // in the parent too, so a kill right after fork already reaches the group
  close(fds[1]);
  fd_ = fds[0];
  fcntl(fd_, F_SETFL, fcntl(fd_, F_GETFL) | O_NONBLOCK);
}

ExecPort::~ExecPort() { Close(std::chrono::milliseconds(2000)); }

bool ExecPort::Reap(std::chrono::milliseconds wait) {
  const auto deadline = std::chrono::steady_clock::now() + wait;
  while (!reaped_) {
    const pid_t done = waitpid(pid_, &wait_status_, WNOHANG);
    if (done == pid_ || (done < 0 && errno != EINTR)) {
      reaped_ = true;
    } else if (std::chrono::steady_clock::now() >= deadline) {
      break;
    } else {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }
  return reaped_;
}

void ExecPort::ThrowClosed(const char* what) {
  const std::string how = Reap(std::chrono::milliseconds(500)) ? " (" + DescribeWaitStatus(wait_status_) + ")" : "";
  throw PortError(Describe() + ": " + what + how);
}

int ExecPort::Close(std::chrono::milliseconds grace) {
  if (fd_ < 0) return wait_status_;
  shutdown(fd_, SHUT_WR);
  if (!Reap(grace)) {
    kill(-pid_, SIGKILL);
    while (waitpid(pid_, &wait_status_, 0) < 0 && errno == EINTR) {
    }
    reaped_ = true;
  }
  close(fd_);
  fd_ = -1;
  return wait_status_;
}

void ExecPort::Write(std::span<const uint8_t> data) {
  if (fd_ < 0) throw PortError(Describe() + ": closed");
  switch (WriteFd(fd_, data, kWriteStall, /*is_socket=*/true)) {
    case WriteEnd::kDone:
      return;
    case WriteEnd::kClosed:
      ThrowClosed("the program closed the link");
    case WriteEnd::kStalled:
      throw PortError(Describe() + ": the program stopped reading its input");
  }
}

size_t ExecPort::Read(std::span<uint8_t> out, std::chrono::milliseconds timeout) {
  if (fd_ < 0) throw PortError(Describe() + ": closed");
  const std::optional<size_t> n = ReadFd(fd_, out, timeout);
  if (!n) ThrowClosed("the program closed the link");
  return *n;
}

void ExecPort::Purge() {
  uint8_t sink[4096];
  while (Read(sink, std::chrono::milliseconds(0)) > 0) {
  }
}

}  // namespace qmc::host::flash
