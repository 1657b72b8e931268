// The AN547 clock: SysTick counting processor clock cycles (32 MHz),
// widened to 64 bits by counting its wraps in the SysTick exception.
//
// Why SysTick and not DWT CYCCNT: QEMU 7.2 does not model the DWT (its
// registers read as zero), while its SysTick counts the processor clock
// from QEMU's virtual clock. So on real silicon Cycles() is core cycles; under
// QEMU it is virtual nanoseconds × 0.032, which with `-icount shift=0`
// (one virtual nanosecond per guest instruction, as toolchain/qemu-m55.sh
// runs it) makes instructions = Cycles() × 31.25.
#pragma once

#include "hal/hal.h"

namespace qmc::hal::an547 {

class SysTickClock final : public Clock {
 public:
  // Starts SysTick, which then runs for good; call once, before any reading.
  void Start();

  uint64_t Micros() override;
  uint64_t Cycles() override;
};

}  // namespace qmc::hal::an547

// The SysTick exception (the vector table's entry 15): counts one wrap.
extern "C" void SysTick_Handler();
