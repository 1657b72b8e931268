// The AN547's link to the host: a CMSDK APB UART. It holds one received
// byte and has no FIFO: on the board a byte arriving before the previous one
// is read is lost (overrun). So reception is interrupt-driven: the receive
// interrupt moves every byte into a ring buffer as it arrives, whatever the
// firmware is doing (generating, writing NVM), and Read takes bytes from the
// ring. A byte that finds the ring full is dropped and counted, as is a
// hardware overrun; the next Read reports the loss on the link as a line
//
//   qmc-fw: error: link: lost N received bytes (receive buffer of 16384 bytes full)
//
// rather than pass on a silently damaged stream. Transmission is polled.
// Under QEMU the UART never overruns (it holds further input back until the
// byte is read), but the ring fills and drops as on the board.
#pragma once

#include <cstddef>
#include <cstdint>

#include "hal/hal.h"

namespace qmc::hal::an547 {

// What the ring holds: a console line many times over, or a few flash
// frames (a DATA frame is at most 8.3 KiB on the wire).
inline constexpr size_t kUartRxRingBytes = 16384;

class CmsdkUart final : public ByteLink {
 public:
  // Enables transmit, and receive through the interrupt, at `baud`; `clock`
  // bounds the waits. `base` must be UART0's: its receive interrupt is the
  // one the vector table routes to the ring (UART0_RX_Handler).
  CmsdkUart(uintptr_t base, Clock& clock, uint32_t baud = 115200);

  // Never reports `closed`: a UART has no end of stream. Sleeps (WFI) while
  // the ring is empty.
  Transfer Read(std::span<uint8_t> out, uint32_t timeout_us) override;
  Transfer Write(std::span<const uint8_t> data, uint32_t timeout_us) override;
  uint32_t baud() const override { return baud_; }
  // The flash protocol's BAUD: a new divider once the last byte written has
  // left; false (no change) for a rate above APB/16.
  bool SetBaud(uint32_t baud) override;

 private:
  // Says on the link how many bytes were lost since it last said so.
  void ReportLoss();

  uintptr_t base_;
  Clock& clock_;
  uint32_t baud_;
  uint32_t dropped_reported_ = 0;
  uint32_t overruns_reported_ = 0;
};

}  // namespace qmc::hal::an547

// UART0's receive interrupt (external interrupt kUart0RxIrq): drains the
// UART into the ring.
extern "C" void UART0_RX_Handler();
