// The AN547's link to the host: a CMSDK APB UART, polled. It holds one
// received byte and has no FIFO: under QEMU the next byte waits on the host
// side until the firmware reads this one; on the board a byte arriving
// before then is lost (overrun), so a host sends a line only while the
// firmware waits for one.
#pragma once

#include <cstdint>

#include "hal/hal.h"

namespace qmc::hal::an547 {

class CmsdkUart final : public ByteLink {
 public:
  // Enables transmit and receive at `baud`; `clock` bounds the waits.
  CmsdkUart(uintptr_t base, Clock& clock, uint32_t baud = 115200);

  // Never reports `closed`: a UART has no end of stream.
  Transfer Read(std::span<uint8_t> out, uint32_t timeout_us) override;
  Transfer Write(std::span<const uint8_t> data, uint32_t timeout_us) override;

 private:
  uintptr_t base_;
  Clock& clock_;
};

}  // namespace qmc::hal::an547
