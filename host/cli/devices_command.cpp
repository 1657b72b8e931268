// `qmc devices`: the ports a board may hang off: FTDI USB-UARTs as ftdi://
// ports (libftdi1), and USB serial devices (/dev/ttyUSB*, /dev/ttyACM*)
// with the USB ids sysfs gives for them.
#include <cstdio>
#include <memory>
#include <string>

#include "host/cli/commands.h"
#include "host/flash/ftdi_port.h"
#include "host/flash/serial_devices.h"

namespace qmc::cli {
namespace {

void PrintFtdiDevices() {
  std::vector<host::flash::FtdiDevice> devices;
  try {
    devices = host::flash::ListFtdiDevices();
  } catch (const host::flash::PortError& e) {
    // No USB at all (a container, no permission to enumerate) means no devices, not a failure.
    std::printf("no FTDI devices found (%s)\n", e.what());
    return;
  }
  if (devices.empty()) {
    std::printf("no FTDI devices found\n");
    return;
  }
  for (const host::flash::FtdiDevice& d : devices) {
    std::printf("ftdi://%04x:%04x%s%s  %s %s\n", d.vendor, d.product, d.serial.empty() ? "" : "/",
                d.serial.c_str(), d.manufacturer.c_str(), d.description.c_str());
  }
}

void PrintSerialDevices(const std::string& sysfs) {
  const std::vector<host::flash::SerialDevice> devices = host::flash::ListSerialDevices(sysfs);
  if (devices.empty()) {
    std::printf("no USB serial devices found\n");
    return;
  }
  for (const host::flash::SerialDevice& d : devices) {
    if (!d.usb) {
      std::printf("%s  (no USB ids in sysfs)\n", d.path.c_str());
      continue;
    }
    std::string extra;
    if (!d.serial.empty()) extra += " serial " + d.serial;
    if (d.interface >= 0) extra += " interface " + std::to_string(d.interface);
    std::string strings = d.manufacturer;
    if (!d.description.empty()) strings += (strings.empty() ? "" : " ") + d.description;
    std::printf("%s  %04x:%04x%s%s%s\n", d.path.c_str(), d.vendor, d.product, extra.c_str(),
                strings.empty() ? "" : "  ", strings.c_str());
  }
}

}  // namespace

void AddDevicesCommand(CLI::App& app) {
  auto sysfs = std::make_shared<std::string>("/sys");
  CLI::App* cmd = app.add_subcommand(
      "devices", "List the ports a board may hang off: the FTDI USB-UARTs libftdi1 finds (as ftdi:// ports) and "
                 "the USB serial devices /dev/ttyUSB* and /dev/ttyACM* with their USB VID:PID, serial number and "
                 "interface from sysfs.");
  cmd->add_option("--sysfs", *sysfs, "where sysfs is mounted (for containers and tests)")->default_val("/sys");
  cmd->footer("Prints one ftdi://VID:PID/SERIAL port per FTDI device and one line per serial device, or \"no ... "
              "found\".\nExit code 0 either way. Without permission to open an FTDI device its strings (and "
              "serial) stay\nempty: add a udev rule. An FTDI chip with its kernel driver bound shows as both; "
              "interface N of\nthe tty is letter A+N in an ftdi:// URL.");
  cmd->callback([sysfs] {
    PrintFtdiDevices();
    PrintSerialDevices(*sysfs);
  });
}

}  // namespace qmc::cli
