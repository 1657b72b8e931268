#include "host/flash/port_url.h"

#include <charconv>

#include "host/checkpoint.h"
#include "host/flash/exec_port.h"
#include "host/flash/ftdi_port.h"
#include "host/flash/tty_port.h"

namespace qmc::host::flash {
namespace {

constexpr std::string_view kExecScheme = "exec:";
constexpr std::string_view kFtdiScheme = "ftdi://";

uint16_t ParseUsbId(std::string_view text, std::string_view url, const char* what) {
  unsigned value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value, 16);
  if (text.empty() || text.size() > 4 || error != std::errc() || end != text.data() + text.size()) {
    throw InputError("port " + std::string(url) + ": the " + what + " id must be 1 to 4 hex digits, got '" +
                     std::string(text) + "'");
  }
  return static_cast<uint16_t>(value);
}

}  // namespace

PortUrl ParsePortUrl(std::string_view url) {
  PortUrl parsed;
  if (url.starts_with(kExecScheme)) {
    parsed.kind = PortUrl::Kind::kExec;
    parsed.command = std::string(url.substr(kExecScheme.size()));
    if (parsed.command.find_first_not_of(" \t") == std::string::npos) {
      throw InputError("port " + std::string(url) + ": exec: needs a command");
    }
    return parsed;
  }
  if (url.starts_with(kFtdiScheme)) {
    parsed.kind = PortUrl::Kind::kFtdi;
    // VID:PID, then /SERIAL, then :IF; the interface is after the serial,
    // or (without one) after a second colon.
    std::string_view ids = url.substr(kFtdiScheme.size());
    std::string_view interface;
    const size_t slash = ids.find('/');
    if (slash != std::string_view::npos) {
      std::string_view serial = ids.substr(slash + 1);
      ids = ids.substr(0, slash);
      if (const size_t colon = serial.rfind(':'); colon != std::string_view::npos) {
        interface = serial.substr(colon + 1);
        serial = serial.substr(0, colon);
      }
      if (serial.empty()) throw InputError("port " + std::string(url) + ": empty serial number after '/'");
      parsed.serial = std::string(serial);
    }
    const size_t colon = ids.find(':');
    if (colon == std::string_view::npos) {
      throw InputError("port " + std::string(url) + ": expected ftdi://VID:PID[/SERIAL][:A|B|C|D], e.g. ftdi://0403:6001");
    }
    std::string_view product = ids.substr(colon + 1);
    if (const size_t second = product.find(':'); second != std::string_view::npos) {
      if (slash != std::string_view::npos) {
        throw InputError("port " + std::string(url) + ": the interface goes after the serial number (VID:PID/SERIAL:IF)");
      }
      interface = product.substr(second + 1);
      product = product.substr(0, second);
    }
    parsed.vendor = ParseUsbId(ids.substr(0, colon), url, "vendor");
    parsed.product = ParseUsbId(product, url, "product");
    if (interface.data() != nullptr) {
      if (interface.size() != 1 || interface[0] < 'A' || interface[0] > 'D') {
        throw InputError("port " + std::string(url) + ": the interface must be A, B, C or D, got '" +
                         std::string(interface) + "'");
      }
      parsed.interface = interface[0];
    }
    return parsed;
  }
  if (url.empty()) throw InputError("port: empty; give exec:COMMAND, ftdi://VID:PID[/SERIAL][:IF] or a tty path");
  if (url.find("://") != std::string_view::npos) {
    throw InputError("port " + std::string(url) + ": unknown scheme; give exec:COMMAND, "
                     "ftdi://VID:PID[/SERIAL][:IF] or a tty path");
  }
  parsed.path = std::string(url);
  return parsed;
}

std::unique_ptr<Port> OpenPort(const PortUrl& url, std::optional<uint32_t> baud) {
  constexpr uint32_t kDefaultBaud = 115200;
  switch (url.kind) {
    case PortUrl::Kind::kExec:
      return std::make_unique<ExecPort>(url.command, baud.has_value() ? *baud / 10 : 0);
    case PortUrl::Kind::kFtdi:
      return std::make_unique<FtdiPort>(url.vendor, url.product, url.serial, url.interface, baud.value_or(kDefaultBaud));
    case PortUrl::Kind::kTty:
      return std::make_unique<TtyPort>(url.path, baud.value_or(kDefaultBaud));
  }
  throw PortError("unknown port kind");
}

}  // namespace qmc::host::flash
