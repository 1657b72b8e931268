// The memory-mapped registers the AN547 backend touches: the Cortex-M55's
// System Control Block and SysTick (Armv8-M Architecture Reference Manual,
// B11), and the AN547's UART0 (CMSDK APB UART, Arm DDI 0479). No CMSIS
// headers in Debian, and these few addresses are all the backend needs.
#pragma once

#include <cstdint>

namespace qmc::hal::an547 {

inline volatile uint32_t& Register(uintptr_t address) { return *reinterpret_cast<volatile uint32_t*>(address); }

// System Control Block.
inline constexpr uintptr_t kIcsr = 0xE000ED04;   // interrupt control and state
inline constexpr uintptr_t kShcsr = 0xE000ED24;  // system handler control and state
inline constexpr uintptr_t kCfsr = 0xE000ED28;   // configurable fault status (MMFSR | BFSR << 8 | UFSR << 16)
inline constexpr uintptr_t kHfsr = 0xE000ED2C;   // HardFault status
inline constexpr uintptr_t kMmfar = 0xE000ED34;  // MemManage fault address
inline constexpr uintptr_t kBfar = 0xE000ED38;   // BusFault address
inline constexpr uintptr_t kCpacr = 0xE000ED88;  // coprocessor access control
inline constexpr uint32_t kIcsrPendStSet = 1u << 26;
// MemManage, BusFault, UsageFault and SecureFault report as themselves, not as HardFault.
inline constexpr uint32_t kShcsrFaultsEnabled = (1u << 16) | (1u << 17) | (1u << 18) | (1u << 19);
// CP10 and CP11 full access: the FPU and, on the M55, Helium (MVE).
inline constexpr uint32_t kCpacrFpuAndMve = 0xFu << 20;

// NVIC: interrupt set-enable, 32 interrupts a register.
inline constexpr uintptr_t kNvicIser = 0xE000E100;

// SysTick.
inline constexpr uintptr_t kSysTickCsr = 0xE000E010;  // control and status
inline constexpr uintptr_t kSysTickRvr = 0xE000E014;  // reload value
inline constexpr uintptr_t kSysTickCvr = 0xE000E018;  // current value
inline constexpr uint32_t kSysTickEnable = 1u << 0;
inline constexpr uint32_t kSysTickInterrupt = 1u << 1;
inline constexpr uint32_t kSysTickProcessorClock = 1u << 2;

// UART0, the one QEMU connects to the first -serial (its Secure alias: the
// firmware runs Secure).
inline constexpr uintptr_t kUart0 = 0x59303000;
inline constexpr uintptr_t kUartData = 0x00;
inline constexpr uintptr_t kUartState = 0x04;
inline constexpr uintptr_t kUartCtrl = 0x08;
inline constexpr uintptr_t kUartIntStatus = 0x0C;  // read: status; write 1s: clear
inline constexpr uintptr_t kUartBaudDiv = 0x10;
inline constexpr uint32_t kUartStateTxFull = 1u << 0;
inline constexpr uint32_t kUartStateRxFull = 1u << 1;
inline constexpr uint32_t kUartStateRxOverrun = 1u << 3;  // write 1: clear
inline constexpr uint32_t kUartCtrlTxEnable = 1u << 0;
inline constexpr uint32_t kUartCtrlRxEnable = 1u << 1;
inline constexpr uint32_t kUartCtrlRxInterrupt = 1u << 3;
inline constexpr uint32_t kUartIntRx = 1u << 1;
// UART0's receive interrupt (AN547 interrupt map; QEMU's hw/arm/mps2-tz.c
// wires UART0 to 33 receive, 34 transmit, 43 combined).
inline constexpr uint32_t kUart0RxIrq = 33;

// Clocks of the AN547 image: the CPU (and so SysTick) at 32 MHz, the APB
// peripherals (the UARTs) at 25 MHz.
inline constexpr uint32_t kCpuHz = 32000000;
inline constexpr uint32_t kApbHz = 25000000;

}  // namespace qmc::hal::an547
