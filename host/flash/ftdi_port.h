// An FTDI USB-UART through libftdi1 (no kernel driver, no tty): opened by
// vendor:product id, optionally serial number and interface (the UART of a
// multi-port chip), raw 8N1 at a baud rate, a short latency timer so small
// replies are not held back. DTR and RTS are driven for reset sequences.
#pragma once

#include <string>
#include <vector>

#include "host/flash/port.h"

struct ftdi_context;

namespace qmc::host::flash {

class FtdiPort final : public Port {
 public:
  // `interface`: 'A'..'D', or 0 for A. Throws InputError when every such
  // device lacks the interface, PortError when none opens or it cannot be
  // configured.
  FtdiPort(uint16_t vendor, uint16_t product, const std::string& serial, char interface, uint32_t baud);
  ~FtdiPort() override;
  FtdiPort(const FtdiPort&) = delete;
  FtdiPort& operator=(const FtdiPort&) = delete;

  void Write(std::span<const uint8_t> data) override;
  size_t Read(std::span<uint8_t> out, std::chrono::milliseconds timeout) override;
  void Purge() override;
  // 8N1: ten bits on the wire per byte.
  uint32_t bytes_per_second() const override { return baud_ / 10; }
  std::string Describe() const override { return name_ + " at " + std::to_string(baud_) + " baud"; }
  bool has_modem_lines() const override { return true; }
  void SetModemLines(bool dtr, bool rts) override;
  void SetBaud(uint32_t baud) override;

 private:
  // For the constructor: releases the device and the context, then throws.
  [[noreturn]] void FailOpening(const char* what);

  std::string name_;
  uint32_t baud_;
  ftdi_context* ftdi_ = nullptr;
  bool open_ = false;
};

struct FtdiDevice {
  uint16_t vendor;
  uint16_t product;
  std::string manufacturer;
  std::string description;
  std::string serial;
};

// Throws InputError when `interface` ('A'..'D') is past the `interfaces`
// a device has: the check FtdiPort makes before it opens one.
void CheckFtdiInterface(const std::string& port, char interface, int interfaces);

// FTDI devices on the USB buses (libftdi1's known FTDI product ids). Throws
// PortError when USB cannot be searched at all.
std::vector<FtdiDevice> ListFtdiDevices();

}  // namespace qmc::host::flash
