// Reset sequences on DTR/RTS before and after a command talks to a board,
// named as esptool names them (docs/protocol.md, "Reset lines"). Boards
// wired esptool-style have RTS on the reset pin (asserted: held in reset)
// and DTR on a boot-select pin; a QMC firmware needs no reset to reach its
// flash server (a SLIP END hands the link over), so both default to none.
#pragma once

#include <chrono>
#include <string>
#include <string_view>
#include <vector>

#include "host/flash/port.h"

namespace qmc::host::flash {

// One state of the lines, held for `hold` before the next.
struct LineStep {
  bool dtr = false;  // true: asserted
  bool rts = false;
  std::chrono::milliseconds hold{0};
  bool operator==(const LineStep&) const = default;
};

// --before: no_reset, hard_reset (an RTS pulse: the firmware restarts) or
// default_reset (esptool's classic: DTR held through the RTS pulse, into
// the boot ROM on boards whose DTR selects it).
inline constexpr const char* kBeforeResets[] = {"no_reset", "hard_reset", "default_reset"};
// --after: no_reset or hard_reset (an RTS pulse once the command is done).
inline constexpr const char* kAfterResets[] = {"no_reset", "hard_reset"};

// The steps a --before or --after name stands for (none for no_reset).
// Throws InputError for a name not listed above.
std::vector<LineStep> BeforeResetSteps(std::string_view name);
std::vector<LineStep> AfterResetSteps(std::string_view name);

// Throws InputError when `steps` is not empty and the port cannot drive
// DTR/RTS: checked before anything is sent, so nothing is half-done.
void CheckCanReset(const Port& port, const std::vector<LineStep>& steps, std::string_view option);

// Drives the lines through `steps`. Throws PortError when the device refuses.
void RunResetSteps(Port& port, const std::vector<LineStep>& steps);

}  // namespace qmc::host::flash
