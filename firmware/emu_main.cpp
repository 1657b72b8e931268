// qmc-fw-emu: the firmware as a Linux process on the emulated board. The
// link is stdin/stdout; the NVM windows are files in --nvm DIR (written by
// `qmc nvm write` or flashed over the link); read errors follow a device
// profile (docs/device-model.md, hal/emu/cell_noise.h), MRAM reads through
// SECDED on request (hal/emu/secded.h); --age drifts the stored ReRAM cells
// (hal/emu/retention.h); --power-cut-after injects a power loss.
#include <CLI/CLI.hpp>
#include <csignal>
#include <cstdio>
#include <map>
#include <optional>
#include <string>
#include <unistd.h>

#include "common/slot_layout.h"
#include "firmware/boot.h"
#include "firmware/firmware.h"
#include "hal/emu/cell_noise.h"
#include "hal/emu/device_profile.h"
#include "hal/emu/emu_board.h"
#include "hal/emu/emu_clock.h"
#include "hal/emu/fd_link.h"
#include "hal/emu/retention.h"

namespace {

using qmc::hal::emu::NoiseKind;

// The chosen model, on one line of stderr.
void PrintNoise(const qmc::hal::emu::ReadNoise& noise, const std::string& origin) {
  const qmc::hal::emu::DeviceProfile& d = noise.device;
  std::fprintf(stderr,
               "qmc-fw-emu: noise %s, seed %llu: device \"%s\" (%s): ReRAM p_down/p_up per read 1-bit %.3g/%.3g, "
               "2-bit %.3g/%.3g, 3-bit %.3g/%.3g; MRAM bit-error rate %.3g%s\n",
               noise.kind == NoiseKind::kRead ? "read (a new draw per read pass)" : "program (fixed per cell)",
               static_cast<unsigned long long>(noise.seed), d.name.c_str(), origin.c_str(), d.reram[0].p_down,
               d.reram[0].p_up, d.reram[1].p_down, d.reram[1].p_up, d.reram[2].p_down, d.reram[2].p_up, d.mram_ber,
               d.mram_secded ? ", through SECDED (72,64)" : "");
}

// --age: drifts the ReRAM cells of the image in each slot, on one line of stderr.
void Age(qmc::hal::emu::EmuBoard& board, const qmc::hal::emu::ReadNoise& noise, double hours) {
  std::fprintf(stderr, "qmc-fw-emu: retention: %g hours on device \"%s\":", hours, noise.device.name.c_str());
  qmc::hal::MemoryWindow& reram = board.window(qmc::hal::WindowKind::kReram);
  for (uint32_t slot = 0; slot < qmc::nvm::kSlotCount; ++slot) {
    qmc::image::ImageView view;
    if (!qmc::firmware::MapSlotImage(board.info(), slot, view).ok()) continue;
    const uint64_t moved = qmc::hal::emu::AgeImageCells(board.window(qmc::hal::WindowKind::kReram),
                                                        qmc::nvm::SlotsOf(reram.kind(), reram.size()).offset[slot],
                                                        view, noise.device, hours, noise.seed);
    std::fprintf(stderr, " slot %u: %llu cells moved;", slot, static_cast<unsigned long long>(moved));
  }
  std::fprintf(stderr, "\n");
}

}  // namespace

int main(int argc, char** argv) {
  std::string nvm;
  std::string device;
  std::string board_profile;
  NoiseKind noise_kind = NoiseKind::kOff;
  std::optional<double> reram_sigma, mram_ber;
  uint64_t seed = 1;
  std::optional<uint64_t> power_cut_after;
  std::optional<double> age_hours;
  std::string mram_ecc;
  qmc::firmware::FirmwareOptions firmware_options;
  CLI::App app{"qmc-fw-emu: the QMC firmware on an emulated board (link: stdin/stdout; NVM: window files).\n"
               "Each stdin line is a prompt, optionally after steps=N ctx=N temp=T topp=P seed=S kv=f32|fp16|int8.\n"
               "A 0xC0 byte hands the link to the flash server (SLIP frames, docs/protocol.md) until RUN or RESET."};
  app.add_option("--nvm", nvm, "directory of the board's window files (mram.bin, reram.bin, dram.bin; blank ones "
                               "are created)")
      ->required()
      ->check(CLI::ExistingDirectory);
  app.add_option("--ctx", firmware_options.context,
                 "context the console serves: KV cache room reserved in DRAM at boot (a line's ctx= may ask for "
                 "less); 0 = min(the model's, 2048)")
      ->default_val(0);
  app.add_option("--board", board_profile,
                 "board profile JSON (hal/profiles/boards/) whose emu_window_mib gives the windows' sizes (sparse "
                 "files; the NVM directory must have been made with the same sizes) [default: SRAM 2, MRAM 8, ReRAM "
                 "64, DRAM 64 MiB]")
      ->type_name("FILE");
  const std::map<std::string, NoiseKind> kinds{
      {"off", NoiseKind::kOff}, {"read", NoiseKind::kRead}, {"program", NoiseKind::kProgram}};
  app.add_option("--noise", noise_kind,
                 "NVM errors (docs/device-model.md): off (exact reads), read (read errors: a new draw for every "
                 "console prompt and boot) or program (programming errors: fixed per cell, the same on every "
                 "read and boot); the stored files stay exact either way")
      ->transform(CLI::CheckedTransformer(kinds, CLI::ignore_case))
      ->default_str("off");
  CLI::Option* device_option =
      app.add_option("--device", device,
                     "device profile JSON giving the error rates (docs/device-model.md) [default: the built-in "
                     "hal/profiles/devices/default.json]")
          ->type_name("FILE");
  CLI::Option* sigma_option =
      app.add_option("--reram-sigma", reram_sigma,
                     "override the profile's ReRAM rates with the Gaussian model sigma/delta = S: every cell mode "
                     "reads one level off with p = erfc(1/(2*sqrt(2)*S)), half down, half up")
          ->check(CLI::Range(0.0, 10.0))
          ->type_name("S");
  CLI::Option* ber_option =
      app.add_option("--mram-ber", mram_ber, "override the profile's MRAM bit-error rate")
          ->check(CLI::Range(0.0, 1.0))
          ->type_name("B");
  CLI::Option* ecc_option =
      app.add_option("--mram-ecc", mram_ecc,
                     "override the profile's MRAM ECC: none, or secded (Hamming(72,64) over every 64-bit word: "
                     "single errors corrected, double ones detected; counts on stderr at exit)")
          ->check(CLI::IsMember({"none", "secded"}))
          ->type_name("none|secded");
  CLI::Option* age_option =
      app.add_option("--age", age_hours,
                     "retention: before booting, drift the stored ReRAM cells of the image in each slot by HOURS "
                     "with the device profile's drift_per_hour rates (the window file changes, as the part would; "
                     "the seed is --noise-seed)")
          ->check(CLI::Range(0.0, 1e9))
          ->type_name("HOURS");
  CLI::Option* seed_option =
      app.add_option("--noise-seed", seed, "seed of the error draws (same seed, same errors)")->default_val(1);
  app.add_option("--power-cut-after", power_cut_after,
                 "fault injection: lose power after BYTES bytes written to the window files (MRAM, ReRAM, DRAM) "
                 "from the start, e.g. by the flash server: the write that crosses the budget stores only the "
                 "bytes up to it, then the process exits at once with status 137")
      ->type_name("BYTES");
  app.footer("Exits 0 when stdin ends after an image was served, 3 when there was no valid image, 1 when the NVM "
             "directory or the device profile cannot be used, 2 for a command line that does not parse, 137 on an "
             "injected power cut.");
  try {
    app.parse(argc, argv);
    if (noise_kind == NoiseKind::kOff) {
      for (const CLI::Option* option : {device_option, sigma_option, ber_option, seed_option, ecc_option}) {
        if (option->count() == 0 || (age_option->count() > 0 && (option == device_option || option == seed_option))) {
          continue;
        }
        throw CLI::ValidationError(option->get_name() + " needs --noise read or --noise program");
      }
    }
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }

  std::signal(SIGPIPE, SIG_IGN);  // a closed stdout ends the link, not the process
  qmc::hal::emu::ReadNoise noise{noise_kind, {}, seed};
  if (noise_kind != NoiseKind::kOff || age_hours) {
    std::string origin = device.empty() ? "built in" : device;
    try {
      noise.device = device.empty() ? qmc::hal::emu::DefaultDeviceProfile() : qmc::hal::emu::LoadDeviceProfile(device);
    } catch (const qmc::hal::emu::ProfileError& e) {
      std::fprintf(stderr, "qmc-fw-emu: %s\n", e.what());
      return 1;
    }
    if (reram_sigma) {
      for (qmc::hal::emu::LevelErrors& mode : noise.device.reram) mode = qmc::hal::emu::SymmetricLevelErrors(*reram_sigma);
      char sigma[32];
      std::snprintf(sigma, sizeof sigma, "%g", *reram_sigma);
      origin += std::string(", ReRAM rates from --reram-sigma ") + sigma;
    }
    if (mram_ber) {
      noise.device.mram_ber = *mram_ber;
      origin += ", MRAM rate from --mram-ber";
    }
    if (!mram_ecc.empty()) {
      noise.device.mram_secded = mram_ecc == "secded";
      origin += ", MRAM ECC from --mram-ecc";
    }
    if (noise_kind != NoiseKind::kOff) PrintNoise(noise, origin);
  }
  try {
    qmc::hal::emu::WindowSizes sizes;
    if (!board_profile.empty()) sizes = qmc::hal::emu::LoadWindowSizes(board_profile);
    qmc::hal::emu::EmuBoard board(nvm, noise, sizes);
    if (age_hours) Age(board, noise, *age_hours);
    if (power_cut_after) board.CutPowerAfter(*power_cut_after);
    qmc::hal::emu::FdLink link(STDIN_FILENO, STDOUT_FILENO);
    qmc::hal::emu::EmuClock clock;
    const int code = qmc::firmware::Run(board.info(), link, clock, firmware_options);
    if (noise_kind != NoiseKind::kOff && noise.device.mram_secded && noise.device.mram_ber > 0.0) {
      const qmc::hal::emu::SecdedCounts& c = board.window(qmc::hal::WindowKind::kMram).secded_counts();
      std::fprintf(stderr, "qmc-fw-emu: MRAM SECDED: %llu words decoded, %llu corrected, %llu uncorrectable "
                   "(detected), %llu silently wrong\n", static_cast<unsigned long long>(c.words),
                   static_cast<unsigned long long>(c.corrected), static_cast<unsigned long long>(c.uncorrectable),
                   static_cast<unsigned long long>(c.silent));
    }
    return code;
  } catch (const qmc::hal::emu::EmuError& e) {
    std::fprintf(stderr, "qmc-fw-emu: %s\n", e.what());
    return 1;
  }
}
