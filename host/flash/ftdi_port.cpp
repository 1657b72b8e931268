#include "host/flash/ftdi_port.h"

#include <ftdi.h>
#include <libusb.h>

#include <algorithm>
#include <cstdio>
#include <memory>
#include <thread>

#include "host/checkpoint.h"
#include "host/flash/write_all.h"

namespace qmc::host::flash {
namespace {

using Clock = std::chrono::steady_clock;

// The chip sends what it holds after this many ms of quiet; 1-2 ms keeps a
// request/reply protocol from waiting 16 ms (the default) per reply.
constexpr unsigned char kLatencyMs = 2;
// Between empty polls of the chip while waiting for a reply.
constexpr std::chrono::microseconds kPollPause{500};
// A bridge that takes no byte for this long is gone or wedged.
constexpr std::chrono::milliseconds kWriteStall{2000};

std::string UsbId(uint16_t vendor, uint16_t product) {
  char text[16];
  std::snprintf(text, sizeof text, "%04x:%04x", vendor, product);
  return text;
}

std::string PortName(uint16_t vendor, uint16_t product, const std::string& serial, char interface) {
  std::string name = "ftdi://" + UsbId(vendor, product);
  if (!serial.empty()) name += "/" + serial;
  if (interface != 0) {
    name += ':';
    name += interface;
  }
  return name;
}

struct FtdiFree {
  void operator()(ftdi_context* ftdi) const { ftdi_free(ftdi); }
};

// The most interfaces any plugged-in vendor:product device has (its USB
// configuration says, without opening it); 0 when none is plugged in.
int MostInterfaces(ftdi_context* ftdi, uint16_t vendor, uint16_t product) {
  ftdi_device_list* list = nullptr;
  if (ftdi_usb_find_all(ftdi, &list, vendor, product) < 0) return 0;
  int most = 0;
  for (ftdi_device_list* node = list; node != nullptr; node = node->next) {
    libusb_config_descriptor* config = nullptr;
    if (libusb_get_config_descriptor(node->dev, 0, &config) != 0) continue;
    most = std::max<int>(most, config->bNumInterfaces);
    libusb_free_config_descriptor(config);
  }
  ftdi_list_free(&list);
  return most;
}

}  // namespace

void CheckFtdiInterface(const std::string& port, char interface, int interfaces) {
  if (interface == 0 || interface - 'A' < interfaces) return;
  std::string letters;
  for (int i = 0; i < interfaces && i < 4; ++i) letters += static_cast<char>('A' + i);
  throw InputError(port + ": the device has no interface " + std::string(1, interface) + " (it has " +
                   std::to_string(interfaces) + ": " + letters + ")");
}

FtdiPort::FtdiPort(uint16_t vendor, uint16_t product, const std::string& serial, char interface, uint32_t baud)
    : name_(PortName(vendor, product, serial, interface)), baud_(baud) {
  ftdi_ = ftdi_new();
  if (ftdi_ == nullptr) throw PortError(name_ + ": libftdi1 cannot start (libusb unavailable)");
  if (interface != 0) {
    // Before opening: libftdi1 would only say it cannot claim the interface.
    const int interfaces = MostInterfaces(ftdi_, vendor, product);
    if (interfaces > 0) {
      try {
        CheckFtdiInterface(name_, interface, interfaces);
      } catch (...) {
        ftdi_free(ftdi_);
        throw;
      }
    }
    if (ftdi_set_interface(ftdi_, static_cast<ftdi_interface>(INTERFACE_A + (interface - 'A'))) < 0) {
      FailOpening("cannot select the interface");
    }
  }
  if (ftdi_usb_open_desc(ftdi_, vendor, product, nullptr, serial.empty() ? nullptr : serial.c_str()) < 0) {
    FailOpening("cannot open");
  }
  open_ = true;
  if (ftdi_set_baudrate(ftdi_, static_cast<int>(baud)) < 0) FailOpening("cannot set the baud rate");
  if (ftdi_set_line_property(ftdi_, BITS_8, STOP_BIT_1, NONE) < 0) FailOpening("cannot set 8N1");
  if (ftdi_setflowctrl(ftdi_, SIO_DISABLE_FLOW_CTRL) < 0) FailOpening("cannot disable flow control");
  if (ftdi_set_latency_timer(ftdi_, kLatencyMs) < 0) FailOpening("cannot set the latency timer");
  if (ftdi_tcioflush(ftdi_) < 0) FailOpening("cannot purge");
}

FtdiPort::~FtdiPort() {
  if (open_) ftdi_usb_close(ftdi_);
  ftdi_free(ftdi_);
}

void FtdiPort::FailOpening(const char* what) {
  const std::string reason = ftdi_get_error_string(ftdi_);
  // The destructor does not run for a throwing constructor: release here.
  if (open_) ftdi_usb_close(ftdi_);
  ftdi_free(ftdi_);
  throw PortError(name_ + ": " + what + ": " + reason);
}

void FtdiPort::Write(std::span<const uint8_t> data) {
  WriteAll(
      data, Describe(), kWriteStall,
      [this](std::span<const uint8_t> rest) { return ftdi_write_data(ftdi_, rest.data(), static_cast<int>(rest.size())); },
      [this] { return std::string(ftdi_get_error_string(ftdi_)); });
}

size_t FtdiPort::Read(std::span<uint8_t> out, std::chrono::milliseconds timeout) {
  const Clock::time_point deadline = Clock::now() + timeout;
  for (;;) {
    const int n = ftdi_read_data(ftdi_, out.data(), static_cast<int>(out.size()));
    if (n < 0) throw PortError(Describe() + ": read failed: " + ftdi_get_error_string(ftdi_));
    if (n > 0) return static_cast<size_t>(n);
    if (Clock::now() >= deadline) return 0;
    std::this_thread::sleep_for(kPollPause);
  }
}

void FtdiPort::Purge() {
  if (ftdi_tcioflush(ftdi_) < 0) throw PortError(Describe() + ": purge failed: " + ftdi_get_error_string(ftdi_));
}

void FtdiPort::SetModemLines(bool dtr, bool rts) {
  if (ftdi_setdtr_rts(ftdi_, dtr ? 1 : 0, rts ? 1 : 0) < 0) {
    throw PortError(Describe() + ": cannot set DTR/RTS: " + ftdi_get_error_string(ftdi_));
  }
}

void FtdiPort::SetBaud(uint32_t baud) {
  if (ftdi_set_baudrate(ftdi_, static_cast<int>(baud)) < 0) {
    throw PortError(Describe() + ": cannot set " + std::to_string(baud) + " baud: " + ftdi_get_error_string(ftdi_));
  }
  baud_ = baud;
}

std::vector<FtdiDevice> ListFtdiDevices() {
  std::unique_ptr<ftdi_context, FtdiFree> ftdi(ftdi_new());
  if (!ftdi) throw PortError("libftdi1 cannot start (libusb unavailable)");
  ftdi_device_list* list = nullptr;
  // Vendor and product 0: every product id libftdi1 knows as FTDI's.
  if (ftdi_usb_find_all(ftdi.get(), &list, 0, 0) < 0) {
    throw PortError(std::string("cannot list USB devices: ") + ftdi_get_error_string(ftdi.get()));
  }
  std::vector<FtdiDevice> devices;
  for (ftdi_device_list* node = list; node != nullptr; node = node->next) {
    libusb_device_descriptor descriptor{};
    libusb_get_device_descriptor(node->dev, &descriptor);
    char manufacturer[128] = "", description[128] = "", serial[128] = "";
    // Strings need the device opened; without permission they stay empty.
    ftdi_usb_get_strings(ftdi.get(), node->dev, manufacturer, sizeof manufacturer, description, sizeof description,
                         serial, sizeof serial);
    devices.push_back({descriptor.idVendor, descriptor.idProduct, manufacturer, description, serial});
  }
  ftdi_list_free(&list);
  return devices;
}

}  // namespace qmc::host::flash
