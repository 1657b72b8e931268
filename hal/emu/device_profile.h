// A device profile: how often the emulated memories read a stored value
// wrong, per ReRAM cell mode and for MRAM. One JSON file per device
// (docs/device-model.md is the format and says where every number of the
// shipped profiles comes from); hal/profiles/devices/default.json is
// compiled into the binary, so DefaultDeviceProfile() and that file are one
// definition.
//
// Host-only (exceptions, the standard library): the emulator and the host
// tools read profiles; the firmware never does.
#pragma once

#include <cstdint>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <string_view>

namespace qmc::hal::emu {

// One read of one ReRAM cell: with p_down it senses the level below the
// stored one, with p_up the level above, else the stored level. A cell at
// the lowest level never reads lower and one at the highest never higher
// (docs/device-model.md).
struct LevelErrors {
  double p_down = 0.0;
  double p_up = 0.0;
};

struct DeviceProfile {
  std::string name;
  LevelErrors reram[3];   // index cell_bits - 1
  // Retention: per hour since a cell was programmed, the rate at which it
  // drifts one level down (p_down) or up (p_up) for good (hal/emu/retention.h).
  LevelErrors drift_per_hour[3];
  double mram_ber = 0.0;     // per bit of an MRAM read
  bool mram_secded = false;  // MRAM words carry Hamming(72,64) SECDED (hal/emu/secded.h)
  const LevelErrors& Mode(uint32_t cell_bits) const { return reram[cell_bits - 1]; }
};

// A profile that cannot be used; what() is one line naming the file and the key.
class ProfileError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Reads and checks a profile file. Throws ProfileError.
DeviceProfile LoadDeviceProfile(const std::filesystem::path& file);

// Parses profile JSON text; `origin` names it in error messages. Throws ProfileError.
DeviceProfile ParseDeviceProfile(std::string_view json, std::string_view origin);

// hal/profiles/devices/default.json as built into the binary.
DeviceProfile DefaultDeviceProfile();

// The Gaussian read-noise model (hal/emu/cell_noise.h) as a profile: every
// ReRAM mode reads one level off with p = erfc(1/(2√2·σ/Δ)), half of it down
// and half up; MRAM flips bits at `mram_ber`.
DeviceProfile SymmetricProfile(double sigma_over_delta, double mram_ber);

}  // namespace qmc::hal::emu
