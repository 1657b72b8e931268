#include "hal/mps3_an547/cmsdk_uart.h"

#include "hal/mps3_an547/registers.h"

namespace qmc::hal::an547 {

CmsdkUart::CmsdkUart(uintptr_t base, Clock& clock, uint32_t baud) : base_(base), clock_(clock) {
  // 16 is the smallest divider the CMSDK UART allows (QEMU ignores smaller ones).
  const uint32_t divider = kApbHz / baud;
  Register(base_ + kUartBaudDiv) = divider < 16 ? 16 : divider;
  Register(base_ + kUartCtrl) = kUartCtrlTxEnable | kUartCtrlRxEnable;
}

ByteLink::Transfer CmsdkUart::Read(std::span<uint8_t> out, uint32_t timeout_us) {
  const uint64_t start = clock_.Micros();
  size_t got = 0;
  while (got < out.size()) {
    if ((Register(base_ + kUartState) & kUartStateRxFull) != 0) {
      out[got++] = static_cast<uint8_t>(Register(base_ + kUartData));
    } else if (got > 0 || clock_.Micros() - start >= timeout_us) {
      break;  // return what has arrived rather than wait for a full buffer
    }
  }
  return {got, false};
}

ByteLink::Transfer CmsdkUart::Write(std::span<const uint8_t> data, uint32_t timeout_us) {
  const uint64_t start = clock_.Micros();
  size_t sent = 0;
  while (sent < data.size()) {
    if ((Register(base_ + kUartState) & kUartStateTxFull) == 0) {
      Register(base_ + kUartData) = data[sent++];
    } else if (clock_.Micros() - start >= timeout_us) {
      break;
    }
  }
  return {sent, false};
}

}  // namespace qmc::hal::an547
