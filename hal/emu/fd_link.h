// The emu's byte link: a pair of file descriptors (qmc-fw-emu uses stdin and
// stdout, so a pipe, a pty or a terminal plays the host's UART).
#pragma once

#include "hal/hal.h"

namespace qmc::hal::emu {

class FdLink final : public ByteLink {
 public:
  FdLink(int in_fd, int out_fd) : in_fd_(in_fd), out_fd_(out_fd) {}

  // End of file on `in_fd` closes the link.
  Transfer Read(std::span<uint8_t> out, uint32_t timeout_us) override;
  // A broken pipe closes it (SIGPIPE must be ignored).
  Transfer Write(std::span<const uint8_t> data, uint32_t timeout_us) override;

 private:
  int in_fd_;
  int out_fd_;
};

}  // namespace qmc::hal::emu
