// USB serial devices (/dev/ttyUSB*, /dev/ttyACM*) as sysfs describes them:
// the USB vendor:product id, serial number and strings of the device each
// tty hangs off, and the interface (the UART of a multi-port chip). The
// sysfs root is a parameter so a test can build a fake tree.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace qmc::host::flash {

struct SerialDevice {
  std::string path;  // "/dev/ttyUSB0"
  bool usb = false;  // the ids below were found
  uint16_t vendor = 0;
  uint16_t product = 0;
  std::string serial;        // empty when the device has none
  std::string manufacturer;  // USB strings, empty when absent
  std::string description;
  int interface = -1;  // bInterfaceNumber, -1 when unknown
};

// The ttyUSB* and ttyACM* devices under `sysfs`/class/tty, sorted by name.
// A missing or unreadable tree is no devices, not an error.
std::vector<SerialDevice> ListSerialDevices(const std::filesystem::path& sysfs = "/sys");

}  // namespace qmc::host::flash
