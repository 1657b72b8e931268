#include "host/flash/reset_sequence.h"

#include <thread>

#include "host/checkpoint.h"

namespace qmc::host::flash {
namespace {

using std::chrono::milliseconds;

// esptool's timings: 100 ms in reset, then 50 ms for the boot pin to be sampled.
constexpr milliseconds kResetPulse{100};
constexpr milliseconds kBootSample{50};

std::vector<LineStep> Steps(std::string_view name, std::string_view option) {
  if (name == "no_reset") return {};
  if (name == "hard_reset") return {{false, true, kResetPulse}, {false, false, milliseconds(0)}};
  if (name == "default_reset" && option == "--before") {
    return {{false, true, kResetPulse}, {true, false, kBootSample}, {false, false, milliseconds(0)}};
  }
  throw InputError(std::string(option) + " " + std::string(name) + ": unknown reset sequence");
}

}  // namespace

std::vector<LineStep> BeforeResetSteps(std::string_view name) { return Steps(name, "--before"); }
std::vector<LineStep> AfterResetSteps(std::string_view name) { return Steps(name, "--after"); }

void CheckCanReset(const Port& port, const std::vector<LineStep>& steps, std::string_view option) {
  if (steps.empty() || port.has_modem_lines()) return;
  throw InputError(port.Describe() + ": " + std::string(option) +
                   " needs DTR/RTS, which this port cannot drive (only tty and ftdi:// ports can)");
}

void RunResetSteps(Port& port, const std::vector<LineStep>& steps) {
  for (const LineStep& step : steps) {
    port.SetModemLines(step.dtr, step.rts);
    std::this_thread::sleep_for(step.hold);
  }
}

}  // namespace qmc::host::flash
