#include "hal/mps3_an547/systick_clock.h"

#include "hal/mps3_an547/registers.h"

namespace qmc::hal::an547 {
namespace {

// SysTick's counter has 24 bits: at 32 MHz it wraps every 0.52 s.
constexpr uint32_t kPeriod = 1u << 24;

volatile uint32_t g_wraps = 0;

}  // namespace

void SysTickClock::Start() {
  Register(kSysTickRvr) = kPeriod - 1;
  Register(kSysTickCvr) = 0;  // any write clears the counter
  Register(kSysTickCsr) = kSysTickEnable | kSysTickInterrupt | kSysTickProcessorClock;
}

uint64_t SysTickClock::Micros() { return Cycles() / (kCpuHz / 1000000u); }

uint64_t SysTickClock::Cycles() {
  for (;;) {
    const uint32_t wraps = g_wraps;
    const uint32_t down = Register(kSysTickCvr);
    const bool wrap_pending = (Register(kIcsr) & kIcsrPendStSet) != 0;
    if (g_wraps != wraps) continue;  // the handler ran between the reads
    uint64_t cycles = uint64_t{wraps} * kPeriod + (kPeriod - 1 - down);
    // The counter wrapped but the handler has not run yet (exceptions are
    // masked, or about to be taken): a value read after the reload belongs
    // to the next period.
    if (wrap_pending && down >= kPeriod / 2) cycles += kPeriod;
    return cycles;
  }
}

}  // namespace qmc::hal::an547

extern "C" void SysTick_Handler() { qmc::hal::an547::g_wraps = qmc::hal::an547::g_wraps + 1; }
