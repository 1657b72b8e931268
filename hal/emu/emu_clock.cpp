#include "hal/emu/emu_clock.h"

#include <time.h>

namespace qmc::hal::emu {
namespace {

uint64_t MonotonicNanos() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

}  // namespace

uint64_t EmuClock::Micros() { return MonotonicNanos() / 1000u; }

uint64_t EmuClock::Cycles() {
#if defined(__x86_64__) || defined(__i386__)
  return __builtin_ia32_rdtsc();
#elif defined(__aarch64__)
  uint64_t ticks;
  asm volatile("mrs %0, cntvct_el0" : "=r"(ticks));
  return ticks;
#else
  return MonotonicNanos();
#endif
}

}  // namespace qmc::hal::emu
