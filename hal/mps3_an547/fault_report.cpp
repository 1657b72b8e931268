// The fault reporter: names the exception, prints the fault status and
// address registers and the faulting PC and LR over UART0, then halts, so
// a crash on the board (or under QEMU) says where it happened:
//
//   qmc-fw: fault: UsageFault (STKOF) CFSR=0x00100000 HFSR=0x00000000
//     MMFAR=0xe000edf8 BFAR=0xe000edf8 PC=0x00001234 LR=0x00005679
//
// (one line). It writes the UART registers directly, with no timeout:
// nothing else can be trusted after a fault.
#include <cstdint>
#include <string_view>

#include "hal/mps3_an547/registers.h"
#include "hal/mps3_an547/startup.h"

namespace qmc::hal::an547 {
namespace {

void Put(std::string_view text) {
  for (char c : text) {
    while ((Register(kUart0 + kUartState) & kUartStateTxFull) != 0) {
    }
    Register(kUart0 + kUartData) = static_cast<uint8_t>(c);
  }
}

void PutHex(uint32_t value) {
  char digits[10] = {'0', 'x'};
  for (int i = 0; i < 8; ++i) digits[2 + i] = "0123456789abcdef"[(value >> (28 - 4 * i)) & 0xFu];
  Put({digits, sizeof digits});
}

const char* ExceptionName(uint32_t number) {
  switch (number) {
    case 2: return "NMI";
    case 3: return "HardFault";
    case 4: return "MemManage";
    case 5: return "BusFault";
    case 6: return "UsageFault";
    case 7: return "SecureFault";
    case 11: return "SVCall";
    case 12: return "DebugMonitor";
    case 14: return "PendSV";
  }
  return "exception";
}

// The CFSR's cause bits (Armv8-M ARM, B3.2: MMFSR, BFSR, UFSR).
struct CauseBit {
  uint32_t bit;
  const char* name;
};
constexpr CauseBit kCauses[] = {
    {0, "IACCVIOL"},  {1, "DACCVIOL"},    {3, "MUNSTKERR"}, {4, "MSTKERR"},     {5, "MLSPERR"},
    {8, "IBUSERR"},   {9, "PRECISERR"},   {10, "IMPRECISERR"}, {11, "UNSTKERR"}, {12, "STKERR"},
    {13, "LSPERR"},   {16, "UNDEFINSTR"}, {17, "INVSTATE"}, {18, "INVPC"},      {19, "NOCP"},
    {20, "STKOF"},    {24, "UNALIGNED"},  {25, "DIVBYZERO"},
};

}  // namespace
}  // namespace qmc::hal::an547

// Called by Fault_Handler on a fresh stack with the stacked PC and LR.
extern "C" [[noreturn, gnu::used]] void ReportFault(uint32_t stacked_pc, uint32_t stacked_lr) {
  using namespace qmc::hal::an547;
  uint32_t ipsr;
  __asm volatile("mrs %0, ipsr" : "=r"(ipsr));
  const uint32_t cfsr = Register(kCfsr);
  // The UART may not be set up yet (a fault before main's); enabling twice is harmless.
  Register(kUart0 + kUartBaudDiv) = kApbHz / 115200;
  Register(kUart0 + kUartCtrl) = kUartCtrlTxEnable | kUartCtrlRxEnable;
  Put("\nqmc-fw: fault: ");
  Put(ExceptionName(ipsr & 0x1FFu));
  bool any_cause = false;
  for (const CauseBit& cause : kCauses) {
    if ((cfsr >> cause.bit & 1u) == 0) continue;
    Put(any_cause ? " " : " (");
    Put(cause.name);
    any_cause = true;
  }
  if (any_cause) Put(")");
  Put(" CFSR=");
  PutHex(cfsr);
  Put(" HFSR=");
  PutHex(Register(kHfsr));
  Put(" MMFAR=");
  PutHex(Register(kMmfar));
  Put(" BFAR=");
  PutHex(Register(kBfar));
  Put(" PC=");
  PutHex(stacked_pc);
  Put(" LR=");
  PutHex(stacked_lr);
  Put("\n");
  Halt();
}

// Takes the stacked PC and LR from the exception frame (on the stack
// EXC_RETURN.SPSEL names), then moves to the top of the main stack with the
// limit lifted, so the report runs even after a stack overflow.
extern "C" [[gnu::naked]] void Fault_Handler() {
  __asm volatile(
      "tst lr, #4\n\t"
      "ite eq\n\t"
      "mrseq r2, msp\n\t"
      "mrsne r2, psp\n\t"
      "ldr r0, [r2, #24]\n\t"
      "ldr r1, [r2, #20]\n\t"
      "movs r2, #0\n\t"
      "msr msplim, r2\n\t"
      "ldr r2, =__stack_top\n\t"
      "mov sp, r2\n\t"
      "b ReportFault\n\t"
      ".ltorg");
}
