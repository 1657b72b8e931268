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
    std::string_view rest = url.substr(kFtdiScheme.size());
    const size_t slash = rest.find('/');
    if (slash != std::string_view::npos) {
      parsed.serial = std::string(rest.substr(slash + 1));
      if (parsed.serial.empty()) throw InputError("port " + std::string(url) + ": empty serial number after '/'");
      rest = rest.substr(0, slash);
    }
    const size_t colon = rest.find(':');
    if (colon == std::string_view::npos) {
      throw InputError("port " + std::string(url) + ": expected ftdi://VID:PID[/SERIAL], e.g. ftdi://0403:6001");
    }
    parsed.vendor = ParseUsbId(rest.substr(0, colon), url, "vendor");
    parsed.product = ParseUsbId(rest.substr(colon + 1), url, "product");
    return parsed;
  }
  if (url.empty()) throw InputError("port: empty; give exec:COMMAND, ftdi://VID:PID[/SERIAL] or a tty path");
  if (url.find("://") != std::string_view::npos) {
    throw InputError("port " + std::string(url) + ": unknown scheme; give exec:COMMAND, ftdi://VID:PID[/SERIAL] "
                     "or a tty path");
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
      return std::make_unique<FtdiPort>(url.vendor, url.product, url.serial, baud.value_or(kDefaultBaud));
    case PortUrl::Kind::kTty:
      return std::make_unique<TtyPort>(url.path, baud.value_or(kDefaultBaud));
  }
  throw PortError("unknown port kind");
}

}  // namespace qmc::host::flash
