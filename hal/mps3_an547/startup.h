// Reset and exception entry of every Cortex-M55 program on the AN547
// (firmware/m55_main.cpp, target test programs): the vector table, the
// reset handler and the fault reporter live in startup.cpp and
// fault_report.cpp; a program supplies `int main()`, which the reset
// handler calls once the C++ environment stands (.data copied, .bss zeroed,
// FPU and Helium enabled, constructors run).
#pragma once

namespace qmc::hal::an547 {

// Stops the CPU for good (a program that has nothing left to do).
[[noreturn]] void Halt();

}  // namespace qmc::hal::an547

extern "C" {
[[noreturn]] void Reset_Handler();
// Every exception but reset and SysTick: reports over UART0 and halts.
void Fault_Handler();
}
