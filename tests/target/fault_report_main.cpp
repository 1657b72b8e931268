// fault-report-m55: commits the fault a byte on UART0 names, so
// tests/m55_fault_report_test.cpp can check what the fault reporter
// (hal/mps3_an547/fault_report.cpp) says about it:
//   b  a load from unmapped memory (a precise BusFault)
//   s  unbounded recursion (a UsageFault: the stack hits MSPLIM)
//   u  an undefined instruction (a UsageFault)
// The faulting functions have C names so the test finds them in the ELF.
#include <cstdint>
#include <string_view>

#include "hal/mps3_an547/cmsdk_uart.h"
#include "hal/mps3_an547/registers.h"
#include "hal/mps3_an547/startup.h"
#include "hal/mps3_an547/systick_clock.h"

extern "C" {

[[gnu::noinline]] uint32_t FaultLoadUnmapped() {
  return *reinterpret_cast<volatile uint32_t*>(uintptr_t{0xF0000000});  // nothing is mapped there
}

[[gnu::noinline]] uint32_t FaultRecurse(uint32_t depth) {
  volatile uint32_t frame[64];  // 256 bytes a call: the 64 KiB stack lasts some 250 calls
  frame[0] = depth;
  return depth == UINT32_MAX ? 0 : FaultRecurse(depth + 1) + frame[0];  // the end is never reached
}

[[gnu::noinline]] void FaultUndefined() { __asm volatile("udf #0"); }
}

int main() {
  qmc::hal::an547::SysTickClock clock;
  clock.Start();
  qmc::hal::an547::CmsdkUart uart(qmc::hal::an547::kUart0, clock);
  constexpr std::string_view kReady = "fault-report: ready\n";
  uart.Write({reinterpret_cast<const uint8_t*>(kReady.data()), kReady.size()}, 1000000);
  uint8_t command = 0;
  while (uart.Read({&command, 1}, 1000000).bytes == 0) {
  }
  volatile uint32_t sink = 0;
  if (command == 'b') sink = FaultLoadUnmapped();
  if (command == 's') sink = FaultRecurse(0);
  if (command == 'u') FaultUndefined();
  static_cast<void>(sink);
  qmc::hal::an547::Halt();
}
