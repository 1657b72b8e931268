// A program as the board: /bin/sh -c COMMAND runs with its stdin and stdout
// on one end of a socket pair, and the link is the other end; its stderr
// passes through. qmc-fw-emu's link is stdin/stdout, so `exec:qmc-fw-emu
// --nvm DIR` flashes the emulated board through the same protocol code as a
// UART does.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <string>

#include "host/flash/port.h"

namespace qmc::host::flash {

class ExecPort final : public Port {
 public:
  // Starts the program; throws PortError when it cannot be started.
  // `bytes_per_second` is the pace the program's link is known to carry (a
  // board behind an emulated UART), 0 when unknown (pipes: as fast as the
  // program answers).
  explicit ExecPort(const std::string& command, uint32_t bytes_per_second = 0);
  ~ExecPort() override;
  ExecPort(const ExecPort&) = delete;
  ExecPort& operator=(const ExecPort&) = delete;

  void Write(std::span<const uint8_t> data) override;
  size_t Read(std::span<uint8_t> out, std::chrono::milliseconds timeout) override;
  void Purge() override;
  uint32_t bytes_per_second() const override { return bytes_per_second_; }
  std::string Describe() const override { return "exec:" + command_; }

  // The program's process (and process group) id: tests kill it to cut the
  // board's power.
  pid_t pid() const { return pid_; }

  // Ends the program: closes its stdin (end of input, which ends the
  // firmware), waits up to `grace`, then kills its process group. Returns
  // its wait status. Later calls return the same status.
  int Close(std::chrono::milliseconds grace);

 private:
  // Reaps the program if it has exited within `wait`; true when it has.
  bool Reap(std::chrono::milliseconds wait);
  [[noreturn]] void ThrowClosed(const char* what);

  std::string command_;
  uint32_t bytes_per_second_;
  int fd_ = -1;
  pid_t pid_ = -1;
  bool reaped_ = false;
  int wait_status_ = 0;
};

}  // namespace qmc::host::flash
