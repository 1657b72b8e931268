// `qmc devices`: the FTDI USB-UARTs a board may hang off, as ftdi:// ports.
#include <cstdio>

#include "host/cli/commands.h"
#include "host/flash/ftdi_port.h"

namespace qmc::cli {
namespace {

void RunDevices() {
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

}  // namespace

void AddDevicesCommand(CLI::App& app) {
  CLI::App* cmd = app.add_subcommand(
      "devices", "List the FTDI USB-UARTs libftdi1 finds, as ports for qmc flash --port (serial devices such as "
                 "/dev/ttyUSB0 are used by path).");
  cmd->footer("Prints one ftdi://VID:PID/SERIAL port per device, or \"no FTDI devices found\". Exit code 0 either "
              "way.\nWithout permission to open a device its strings (and serial) stay empty: add a udev rule.");
  cmd->callback(RunDevices);
}

}  // namespace qmc::cli
