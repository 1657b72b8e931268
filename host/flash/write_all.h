// A port's write loop: a driver call may take part of the data, or none
// (libftdi's ftdi_write_data returns 0 when its USB transfer moves nothing);
// the loop writes the rest, and gives up with a PortError when the device
// takes no byte for `stall` rather than spinning for ever.
#pragma once

#include <chrono>
#include <cstdint>
#include <span>
#include <string>
#include <thread>

#include "host/flash/port.h"

namespace qmc::host::flash {

// `write(data)` returns the bytes it took (0 when none), or a negative
// number on failure, whose message `error()` gives.
template <typename Write, typename Error>
void WriteAll(std::span<const uint8_t> data, const std::string& name, std::chrono::milliseconds stall, Write write,
              Error error) {
  using Clock = std::chrono::steady_clock;
  Clock::time_point last_progress = Clock::now();
  while (!data.empty()) {
    const int n = write(data);
    if (n < 0) throw PortError(name + ": write failed: " + error());
    if (n > 0) {
      data = data.subspan(static_cast<size_t>(n) < data.size() ? static_cast<size_t>(n) : data.size());
      last_progress = Clock::now();
      continue;
    }
    if (Clock::now() - last_progress >= stall) {
      throw PortError(name + ": write stalled: the device took no byte for " + std::to_string(stall.count()) +
                      " ms, " + std::to_string(data.size()) + " bytes unsent");
    }
    std::this_thread::sleep_for(std::chrono::microseconds(500));
  }
}

}  // namespace qmc::host::flash
