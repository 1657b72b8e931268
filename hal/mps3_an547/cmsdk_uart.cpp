#include "hal/mps3_an547/cmsdk_uart.h"

#include <atomic>
#include <string_view>

#include "hal/mps3_an547/registers.h"

namespace qmc::hal::an547 {
namespace {

static_assert((kUartRxRingBytes & (kUartRxRingBytes - 1)) == 0, "free-running indices need a power of two");

// One writer each way (the interrupt advances head, Read advances tail), so
// no lock: indices run free and wrap modulo 2^32.
struct RxRing {
  uint8_t bytes[kUartRxRingBytes];
  std::atomic<uint32_t> head{0};
  std::atomic<uint32_t> tail{0};
  std::atomic<uint32_t> dropped{0};   // bytes that found the ring full
  std::atomic<uint32_t> overruns{0};  // the UART lost a byte before the interrupt ran
};

RxRing g_rx;

void PutText(CmsdkUart& uart, std::string_view text) {
  uart.Write({reinterpret_cast<const uint8_t*>(text.data()), text.size()}, 1000000);
}

void PutUint(CmsdkUart& uart, uint32_t value) {
  char digits[11];
  size_t n = 0;
  do {
    digits[sizeof digits - 1 - n++] = static_cast<char>('0' + value % 10);
    value /= 10;
  } while (value != 0);
  PutText(uart, {digits + sizeof digits - n, n});
}

}  // namespace

CmsdkUart::CmsdkUart(uintptr_t base, Clock& clock, uint32_t baud) : base_(base), clock_(clock), baud_(baud) {
  // 16 is the smallest divider the CMSDK UART allows (QEMU ignores smaller ones).
  const uint32_t divider = kApbHz / baud;
  Register(base_ + kUartBaudDiv) = divider < 16 ? 16 : divider;
  Register(base_ + kUartCtrl) = kUartCtrlTxEnable | kUartCtrlRxEnable | kUartCtrlRxInterrupt;
  Register(kNvicIser + 4 * (kUart0RxIrq / 32)) = 1u << (kUart0RxIrq % 32);
}

ByteLink::Transfer CmsdkUart::Read(std::span<uint8_t> out, uint32_t timeout_us) {
  ReportLoss();
  const uint64_t start = clock_.Micros();
  for (;;) {
    const uint32_t tail = g_rx.tail.load(std::memory_order_relaxed);
    const uint32_t available = g_rx.head.load(std::memory_order_acquire) - tail;
    if (available > 0) {
      const size_t n = available < out.size() ? available : out.size();
      for (size_t i = 0; i < n; ++i) out[i] = g_rx.bytes[(tail + i) % kUartRxRingBytes];
      g_rx.tail.store(tail + static_cast<uint32_t>(n), std::memory_order_release);
      return {n, false};
    }
    if (clock_.Micros() - start >= timeout_us) return {0, false};
    // Sleep until an interrupt (a byte, or SysTick's wrap within 0.52 s).
    // With interrupts masked, one that arrives after the check above still
    // ends the WFI, so no byte waits for the next wake-up.
    __asm volatile("cpsid i" ::: "memory");
    if (g_rx.head.load(std::memory_order_acquire) == tail) __asm volatile("wfi");
    __asm volatile("cpsie i" ::: "memory");
  }
}

bool CmsdkUart::SetBaud(uint32_t baud) {
  const uint32_t divider = baud == 0 ? 0 : kApbHz / baud;
  if (divider < 16) return false;
  // The transmit buffer empties into the shifter: then one character time
  // (10 bits at the old rate) for the last byte to leave.
  while ((Register(base_ + kUartState) & kUartStateTxFull) != 0) {
  }
  const uint64_t start = clock_.Micros();
  while (clock_.Micros() - start < 10'000'000ull / baud_ + 1) {
  }
  Register(base_ + kUartBaudDiv) = divider;
  baud_ = baud;
  return true;
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

void CmsdkUart::ReportLoss() {
  const uint32_t dropped = g_rx.dropped.load(std::memory_order_relaxed);
  const uint32_t overruns = g_rx.overruns.load(std::memory_order_relaxed);
  if (dropped != dropped_reported_) {
    PutText(*this, "qmc-fw: error: link: lost ");
    PutUint(*this, dropped - dropped_reported_);
    PutText(*this, " received bytes (receive buffer of ");
    PutUint(*this, kUartRxRingBytes);
    PutText(*this, " bytes full)\n");
    dropped_reported_ = dropped;
  }
  if (overruns != overruns_reported_) {
    PutText(*this, "qmc-fw: error: link: receiver overrun ");
    PutUint(*this, overruns - overruns_reported_);
    PutText(*this, " times (a byte arrived before the last was read)\n");
    overruns_reported_ = overruns;
  }
}

}  // namespace qmc::hal::an547

extern "C" void UART0_RX_Handler() {
  using namespace qmc::hal::an547;
  // Cleared first: a byte that lands while the loop runs raises it again.
  Register(kUart0 + kUartIntStatus) = kUartIntRx;
  if ((Register(kUart0 + kUartState) & kUartStateRxOverrun) != 0) {
    Register(kUart0 + kUartState) = kUartStateRxOverrun;
    g_rx.overruns.fetch_add(1, std::memory_order_relaxed);
  }
  while ((Register(kUart0 + kUartState) & kUartStateRxFull) != 0) {
    const auto byte = static_cast<uint8_t>(Register(kUart0 + kUartData));
    const uint32_t head = g_rx.head.load(std::memory_order_relaxed);
    if (head - g_rx.tail.load(std::memory_order_acquire) == kUartRxRingBytes) {
      g_rx.dropped.fetch_add(1, std::memory_order_relaxed);
      continue;
    }
    g_rx.bytes[head % kUartRxRingBytes] = byte;
    g_rx.head.store(head + 1, std::memory_order_release);
  }
}
