// qmc-fw-emu: the firmware as a Linux process on the emulated board. The
// link is stdin/stdout; the NVM windows are files in --nvm DIR (written by
// `qmc nvm write` or flashed over the link); read noise is the emu's
// (hal/emu/cell_noise.h); --power-cut-after injects a power loss.
#include <CLI/CLI.hpp>
#include <csignal>
#include <cstdio>
#include <optional>
#include <string>
#include <unistd.h>

#include "firmware/firmware.h"
#include "hal/emu/cell_noise.h"
#include "hal/emu/emu_board.h"
#include "hal/emu/emu_clock.h"
#include "hal/emu/fd_link.h"

int main(int argc, char** argv) {
  std::string nvm;
  qmc::hal::emu::ReadNoise noise;
  std::optional<uint64_t> power_cut_after;
  CLI::App app{"qmc-fw-emu: the QMC firmware on an emulated board (link: stdin/stdout; NVM: window files).\n"
               "Each stdin line is a prompt, optionally after steps=N temp=T topp=P seed=S kv=f32|fp16|int8.\n"
               "A 0xC0 byte hands the link to the flash server (SLIP frames, docs/protocol.md) until RUN or RESET."};
  app.add_option("--nvm", nvm, "directory of the board's window files (mram.bin, reram.bin, dram.bin; blank ones "
                               "are created)")
      ->required()
      ->check(CLI::ExistingDirectory);
  app.add_option("--reram-sigma", noise.reram_sigma,
                 "ReRAM read noise sigma/delta: each cell reads one level off with p = erfc(1/(2*sqrt(2)*sigma))")
      ->check(CLI::Range(0.0, 10.0))
      ->default_val(0.0);
  app.add_option("--mram-ber", noise.mram_ber, "MRAM bit-error rate of in-place data reads")
      ->check(CLI::Range(0.0, 1.0))
      ->default_val(0.0);
  app.add_option("--noise-seed", noise.seed, "seed of the read-noise draws (same seed, same errors)")->default_val(1);
  app.add_option("--power-cut-after", power_cut_after,
                 "fault injection: lose power after BYTES bytes written to the window files (MRAM, ReRAM, DRAM) "
                 "from the start, e.g. by the flash server: the write that crosses the budget stores only the "
                 "bytes up to it, then the process exits at once with status 137")
      ->type_name("BYTES");
  app.footer("Exits 0 when stdin ends after an image was served, 3 when there was no valid image, 1 when the NVM "
             "directory cannot be used, 2 for a command line that does not parse, 137 on an injected power cut.");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }

  std::signal(SIGPIPE, SIG_IGN);  // a closed stdout ends the link, not the process
  try {
    qmc::hal::emu::EmuBoard board(nvm, noise);
    if (power_cut_after) board.CutPowerAfter(*power_cut_after);
    if (noise.reram_sigma > 0.0 || noise.mram_ber > 0.0) {
      std::fprintf(stderr, "qmc-fw-emu: read noise: ReRAM sigma/delta %g (p = %.6g per cell), MRAM BER %g, seed %llu\n",
                   noise.reram_sigma, qmc::hal::emu::LevelErrorProbability(noise.reram_sigma), noise.mram_ber,
                   static_cast<unsigned long long>(noise.seed));
    }
    qmc::hal::emu::FdLink link(STDIN_FILENO, STDOUT_FILENO);
    qmc::hal::emu::EmuClock clock;
    return qmc::firmware::Run(board.info(), link, clock);
  } catch (const qmc::hal::emu::EmuError& e) {
    std::fprintf(stderr, "qmc-fw-emu: %s\n", e.what());
    return 1;
  }
}
