#include "hal/mps3_an547/startup.h"

#include <cstddef>
#include <cstdint>
#include <utility>

#include "hal/mps3_an547/cmsdk_uart.h"
#include "hal/mps3_an547/registers.h"
#include "hal/mps3_an547/stack_usage.h"
#include "hal/mps3_an547/systick_clock.h"

int main();

// Defined by linker/mps3_an547.ld.
extern "C" {
extern uint32_t __stack_limit[], __stack_top[];
extern uint32_t __data_start[], __data_end[], __data_load[], __bss_start[], __bss_end[];
extern void (*__preinit_array_start[])(), (*__preinit_array_end[])();
extern void (*__init_array_start[])(), (*__init_array_end[])();
}

namespace qmc::hal::an547 {
namespace {

// The Armv8-M vector table: the initial stack pointer, the system
// exceptions 1-15, then the external interrupts up to the one the firmware
// enables, UART0's receive (kUart0RxIrq). The others are never enabled; should
// one fire, the fault reporter names it.
struct VectorTable {
  uint32_t* initial_sp;
  void (*handlers[15])();
  void (*interrupts[kUart0RxIrq + 1])();
};

template <size_t... I>
constexpr VectorTable MakeVectorTable(std::index_sequence<I...>) {
  return {
      __stack_top,
      {
          Reset_Handler,
          Fault_Handler,  // NMI
          Fault_Handler,  // HardFault
          Fault_Handler,  // MemManage
          Fault_Handler,  // BusFault
          Fault_Handler,  // UsageFault
          Fault_Handler,  // SecureFault
          nullptr, nullptr, nullptr,
          Fault_Handler,  // SVCall
          Fault_Handler,  // DebugMonitor
          nullptr,
          Fault_Handler,  // PendSV
          SysTick_Handler,
      },
      {(I == kUart0RxIrq ? UART0_RX_Handler : Fault_Handler)...},
  };
}

[[gnu::section(".vectors"), gnu::used]] constinit const VectorTable kVectorTable =
    MakeVectorTable(std::make_index_sequence<kUart0RxIrq + 1>());

}  // namespace

void Halt() {
  __asm volatile("cpsid i" ::: "memory");
  for (;;) __asm volatile("wfi");
}

}  // namespace qmc::hal::an547

extern "C" void Reset_Handler() {
  using namespace qmc::hal::an547;
  // Before any floating-point or vector instruction: the FPU and Helium.
  Register(kCpacr) = Register(kCpacr) | kCpacrFpuAndMve;
  __asm volatile("dsb\n\tisb" ::: "memory");
  // A stack overflow faults (UsageFault STKOF) instead of overwriting .bss.
  __asm volatile("msr msplim, %0" ::"r"(__stack_limit));
  Register(kShcsr) = Register(kShcsr) | kShcsrFaultsEnabled;

  for (uint32_t *from = __data_load, *to = __data_start; to < __data_end;) *to++ = *from++;
  for (uint32_t* word = __bss_start; word < __bss_end;) *word++ = 0;
  PaintStack();
  for (auto* init = __preinit_array_start; init < __preinit_array_end; ++init) (*init)();
  for (auto* init = __init_array_start; init < __init_array_end; ++init) (*init)();

  main();
  Halt();
}
