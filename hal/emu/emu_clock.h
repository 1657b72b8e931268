// The emu's clock: CLOCK_MONOTONIC, and the host CPU's cycle counter.
#pragma once

#include "hal/hal.h"

namespace qmc::hal::emu {

class EmuClock final : public Clock {
 public:
  uint64_t Micros() override;
  // x86 TSC or the Arm generic timer; nanoseconds where neither exists.
  uint64_t Cycles() override;
};

}  // namespace qmc::hal::emu
