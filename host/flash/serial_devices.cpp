#include "host/flash/serial_devices.h"

#include <algorithm>
#include <charconv>
#include <fstream>
#include <system_error>

namespace qmc::host::flash {
namespace {

namespace fs = std::filesystem;

// A sysfs attribute's first line ("" when absent).
std::string Attribute(const fs::path& dir, const char* name) {
  std::ifstream in(dir / name);
  std::string line;
  std::getline(in, line);
  return line;
}

bool ParseHex(const std::string& text, uint16_t& value) {
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value, 16);
  return error == std::errc() && end == text.data() + text.size() && !text.empty();
}

SerialDevice Describe(const fs::path& tty, const std::string& name) {
  SerialDevice device;
  device.path = "/dev/" + name;
  std::error_code error;
  // The tty's device: the usb-serial port (ttyUSB) or the USB interface (ttyACM);
  // the interface and then the USB device are among its parents.
  fs::path dir = fs::canonical(tty / "device", error);
  if (error) return device;
  for (; dir.has_relative_path(); dir = dir.parent_path()) {
    if (device.interface < 0 && fs::exists(dir / "bInterfaceNumber", error)) {
      uint16_t number = 0;
      if (ParseHex(Attribute(dir, "bInterfaceNumber"), number)) device.interface = number;
    }
    if (fs::exists(dir / "idVendor", error)) {
      device.usb = ParseHex(Attribute(dir, "idVendor"), device.vendor) &&
                   ParseHex(Attribute(dir, "idProduct"), device.product);
      device.serial = Attribute(dir, "serial");
      device.manufacturer = Attribute(dir, "manufacturer");
      device.description = Attribute(dir, "product");
      break;
    }
  }
  return device;
}

}  // namespace

std::vector<SerialDevice> ListSerialDevices(const fs::path& sysfs) {
  std::vector<std::string> names;
  std::error_code error;
  for (fs::directory_iterator it(sysfs / "class" / "tty", error), end; !error && it != end; it.increment(error)) {
    const std::string name = it->path().filename().string();
    if (name.starts_with("ttyUSB") || name.starts_with("ttyACM")) names.push_back(name);
  }
  std::sort(names.begin(), names.end());
  std::vector<SerialDevice> devices;
  for (const std::string& name : names) devices.push_back(Describe(sysfs / "class" / "tty" / name, name));
  return devices;
}

}  // namespace qmc::host::flash
