// The emu board's window sizes from a board profile's "emu_window_mib".
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "hal/emu/emu_board.h"

namespace qmc::hal::emu {

WindowSizes LoadWindowSizes(const std::filesystem::path& board_profile) {
  const std::string origin = board_profile.string();
  std::ifstream in(board_profile, std::ios::binary);
  if (!in) throw EmuError(origin + ": cannot open the board profile");
  std::ostringstream text;
  text << in.rdbuf();
  nlohmann::json profile;
  try {
    profile = nlohmann::json::parse(text.str());
  } catch (const nlohmann::json::exception&) {
    throw EmuError(origin + ": malformed JSON");
  }
  WindowSizes sizes;
  if (!profile.is_object() || !profile.contains("emu_window_mib")) return sizes;
  const nlohmann::json& mib = profile["emu_window_mib"];
  if (!mib.is_object()) throw EmuError(origin + ": emu_window_mib is not an object");
  const char* const names[] = {"sram", "mram", "reram", "dram"};
  for (const auto& [key, value] : mib.items()) {
    uint32_t w = 0;
    while (w < kWindowCount && key != names[w]) ++w;
    if (w == kWindowCount) throw EmuError(origin + ": emu_window_mib." + key + " is not a known key");
    if (!value.is_number_unsigned() || value.get<uint64_t>() < 1 || value.get<uint64_t>() > kMaxWindowMib) {
      throw EmuError(origin + ": emu_window_mib." + key + " is " + value.dump() + ", expected 1.." +
                     std::to_string(kMaxWindowMib) + " MiB");
    }
    sizes.bytes[w] = static_cast<size_t>(value.get<uint64_t>()) << 20;
  }
  return sizes;
}

}  // namespace qmc::hal::emu
