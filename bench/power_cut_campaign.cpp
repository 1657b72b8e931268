// Power-cut campaign on the emulated board (issue 14, item 3): many random
// faults during flashing, each on a fresh copy of a board, through the same
// mechanisms as tests/flash_e2e_test.cpp — qmc-fw-emu --power-cut-after
// BYTES (the write crossing the budget stores only the bytes before it,
// then the board's process ends) and SIGKILL of the board's process group
// or of the `qmc flash` process. After every fault the board is read back
// over the flash protocol (READ) and run on a prompt: it must boot the old
// image or the new one byte for byte, never a mix, and generate that
// image's greedy text; a flash reported good must have left the new image,
// and a cut before the commit record was written whole the old one. The
// only board allowed to boot nothing is one that was blank before its
// first flash; it must say so and wait for a flash. Every --recover-every
// trials the interrupted flash is then run again to the end, which must
// boot the new image.
//
//   power_cut_campaign [--trials N] [--seed S] [--recover-every K] [--keep]
//
// Scenarios, in turn: full (a different image over the committed one),
// delta (one tensor changed), commit (cuts among the last bytes written:
// the boot record and the 32-byte commit record), blank (the first flash
// onto a blank board), kill-board (SIGKILL of qmc-fw-emu mid-flash) and
// kill-flasher (SIGKILL of `qmc flash`). Prints one markdown row per
// scenario and a summary line; exits 1 if any trial broke a rule.
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "host/atomic_file.h"
#include "host/flash/exec_port.h"
#include "host/flash/flasher.h"
#include "host/flash/image_readback.h"
#include "tests/board_console.h"
#include "tests/perturbed_checkpoint.h"

namespace {

namespace fs = std::filesystem;
using namespace qmc::host::flash;
using Clock = std::chrono::steady_clock;

const fs::path kShared = QMC_SHARED_DIR;
const std::string kPrompt = "Once upon a time";
constexpr int kSteps = 24;

std::string Slurp(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

int Shell(const std::string& command) {
  const int status = std::system(command.c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// An image under test: its bytes and what `qmc run` generates from it greedily.
struct Image {
  fs::path path;
  std::string bytes, text;
};

Image Pack(const fs::path& dir, const fs::path& checkpoint, const std::string& options, const std::string& name) {
  Image im;
  im.path = dir / name;
  const std::string tokenizer = " --tokenizer " + (kShared / "models/tok512.bin").string();
  if (Shell(std::string(QMC_CLI) + " pack " + checkpoint.string() + tokenizer + " -q " + options + " -o " +
            im.path.string() + " >/dev/null") != 0) {
    throw std::runtime_error("qmc pack failed for " + name);
  }
  const fs::path out = dir / (name + ".txt");
  if (Shell(std::string(QMC_CLI) + " run " + im.path.string() + " -p '" + kPrompt + "' -n " + std::to_string(kSteps) +
            " -t 0 >" + out.string() + " 2>/dev/null") != 0) {
    throw std::runtime_error("qmc run failed for " + name);
  }
  im.bytes = Slurp(im.path);
  im.text = Slurp(out);
  return im;
}

// What the board says and generates for kPrompt: the text between its ready
// banner and its stats line, as `qmc run` prints it; "" and the console
// when it booted nothing.
struct Console {
  int exit_code;
  std::string text, all;
};

Console RunBoard(const fs::path& nvm, const fs::path& dir) {
  const fs::path in = dir / "prompt.txt", out = dir / "console.txt";
  std::ofstream(in) << "steps=" << kSteps << " " << kPrompt << "\n";
  Console c;
  c.exit_code = Shell("timeout 120 " + qmc::testing::EmuCommand(nvm) + " <" + in.string() + " >" + out.string() + " 2>/dev/null");
  c.all = Slurp(out);
  c.text = qmc::testing::GeneratedText(c.all);
  return c;
}

// Flashes in-process through `port`; true when FlashImage reported success.
bool FlashThrough(Port& port, const Image& image) {
  const std::span<const uint8_t> bytes(reinterpret_cast<const uint8_t*>(image.bytes.data()), image.bytes.size());
  const qmc::Result<qmc::image::ImageView> view = qmc::image::ImageView::OpenFile(bytes);
  try {
    ProtocolClient client(port, 6);
    FlashImage(client, bytes, view.value(), FlashOptions{});
    return true;
  } catch (const qmc::host::IoError&) {  // PortError, DeviceError: the fault ended the flash
    return false;
  }
}

struct Uncut {
  uint64_t writes;  // bytes the flash writes to the board's windows: sections, boot record, commit record
  Clock::duration in_process, cli;
};

// The committed image read back over the link: "" when the board has none,
// nullopt when it does not answer.
std::optional<std::string> ReadBack(const fs::path& nvm) {
  ExecPort port(qmc::testing::EmuCommand(nvm));
  try {
    ProtocolClient client(port, 6);
    const std::vector<uint8_t> image = ReadBackImage(client);
    return std::string(image.begin(), image.end());
  } catch (const NoImageError&) {
    return std::string();
  } catch (const qmc::host::IoError&) {
    return std::nullopt;
  }
}

// Whether process `pid` (not our child) has ended: gone, or a zombie.
bool Ended(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string pid_field, name, state;
  return !(stat >> pid_field >> name >> state) || state == "Z";
}

enum Scenario { kFull, kDelta, kCommit, kBlank, kKillBoard, kKillFlasher, kScenarios };
const char* const kScenarioNames[kScenarios] = {"full", "delta", "commit", "blank", "kill-board", "kill-flasher"};

struct Tally {
  int trials = 0, old_image = 0, new_image = 0, no_image = 0, reported_ok = 0, recovered = 0, violations = 0;
};

class Campaign {
 public:
  Campaign(const fs::path& dir, uint64_t seed, int recover_every)
      : dir_(dir), rng_(seed), recover_every_(recover_every) {
    const fs::path perturbed = dir_ / "perturbed.bin";
    qmc::testing::WritePerturbedCheckpoint(kShared / "models/stories260K.bin", perturbed);
    a_ = Pack(dir_, kShared / "models/stories260K.bin", "--scheme qmc --bits 3", "a.qmc");
    b_ = Pack(dir_, perturbed, "--scheme qmc --bits 3", "b.qmc");
    c_ = Pack(dir_, kShared / "models/stories260K.bin", "--scheme rtn --bits 4", "c.qmc");
    if (a_.text == c_.text || a_.text == b_.text) throw std::runtime_error("the images generate the same text");
    pristine_ = dir_ / "pristine";
    blank_ = dir_ / "blank";
    fs::create_directories(pristine_);
    fs::create_directories(blank_);
    if (Shell(std::string(QMC_CLI) + " nvm write " + a_.path.string() + " " + pristine_.string() + " >/dev/null") != 0) {
      throw std::runtime_error("qmc nvm write failed");
    }
    full_ = Measure(pristine_, c_);
    delta_ = Measure(pristine_, b_);
    first_ = Measure(blank_, a_);
  }

  void Trial(int index) {
    const Scenario scenario = static_cast<Scenario>(index % kScenarios);
    const bool from_blank = scenario == kBlank;
    const Image& old_image = a_;
    const Image& new_image = scenario == kDelta ? b_ : scenario == kBlank ? a_ : (index / kScenarios) % 2 ? b_ : c_;
    const Uncut& uncut = scenario == kDelta ? delta_ : scenario == kBlank ? first_ : &new_image == &b_ ? delta_ : full_;
    const fs::path nvm = Copy(from_blank ? blank_ : pristine_);
    uint64_t budget = 0;
    bool cut = false, ok = false;
    std::string what;
    switch (scenario) {
      case kFull:
      case kDelta:
      case kBlank:
        cut = true;
        budget = rng_() % (uncut.writes + 1);
        break;
      case kCommit:  // the boot record's tail, the commit record, and just past it
        cut = true;
        budget = uncut.writes - 96 + rng_() % 104;
        break;
      default:
        break;
    }
    if (cut) {
      what = "cut after " + std::to_string(budget) + " of " + std::to_string(uncut.writes) + " bytes";
      ExecPort port(qmc::testing::EmuCommand(nvm, "--power-cut-after " + std::to_string(budget)));
      ok = FlashThrough(port, new_image);
    } else if (scenario == kKillBoard) {
      const auto delay = std::chrono::duration_cast<std::chrono::microseconds>(uncut.in_process) * (rng_() % 1000) / 1000;
      what = "board killed after " + std::to_string(delay.count()) + " us";
      ExecPort port(qmc::testing::EmuCommand(nvm));
      std::thread killer([&port, delay] {
        std::this_thread::sleep_for(delay);
        kill(-port.pid(), SIGKILL);
      });
      ok = FlashThrough(port, new_image);
      killer.join();
    } else {
      const auto delay = std::chrono::duration_cast<std::chrono::microseconds>(uncut.cli) * (rng_() % 1000) / 1000;
      what = "flasher killed after " + std::to_string(delay.count()) + " us";
      ok = KillFlasherAfter(nvm, new_image, delay);
    }

    Tally& t = tally_[scenario];
    ++t.trials;
    t.reported_ok += ok;
    const std::optional<std::string> read = ReadBack(nvm);
    const std::string booted = read.value_or("");
    const Console console = RunBoard(nvm, dir_);
    auto violation = [&](const std::string& rule) {
      ++t.violations;
      std::fprintf(stderr, "trial %d (%s, %s): %s\n", index, kScenarioNames[scenario], what.c_str(), rule.c_str());
    };
    if (!read) {
      violation("the board's flash server does not answer a read");
    } else if (booted.empty()) {
      ++t.no_image;
      if (!from_blank) violation("the board boots nothing");
      if (console.exit_code != 3 || console.all.find("waiting for a flash") == std::string::npos) {
        violation("a board without an image does not say so");
      }
    } else if (booted == new_image.bytes) {
      ++t.new_image;
      if (cut && budget < uncut.writes - 32) violation("the new image boots without a whole commit record");
      if (console.text != new_image.text) violation("the new image generates other text");
    } else if (booted == old_image.bytes && !from_blank) {
      ++t.old_image;
      if (ok) violation("a flash reported good left the old image");
      if (console.text != old_image.text) violation("the old image generates other text");
    } else {
      violation("the board boots an image it was never given (" + std::to_string(booted.size()) + " bytes)");
    }
    if (ok && booted != new_image.bytes) violation("a flash reported good did not leave the new image");

    // Resuming the flash must end in the new image (every K-th trial of each scenario).
    if (recover_every_ > 0 && t.trials % recover_every_ == 0 && booted != new_image.bytes) {
      bool resumed;
      {
        ExecPort port(qmc::testing::EmuCommand(nvm));
        resumed = FlashThrough(port, new_image);
      }
      if (resumed && ReadBack(nvm) == new_image.bytes && RunBoard(nvm, dir_).text == new_image.text) {
        ++t.recovered;
      } else {
        violation("flashing again after the fault does not boot the new image");
      }
    }
  }

  int Report(int trials, uint64_t seed, double seconds) const {
    std::printf("| scenario | trials | boot old | boot new | no image, waits for a flash | flash reported good | "
                "re-flashed after | rule broken |\n|---|---|---|---|---|---|---|---|\n");
    Tally all;
    for (int s = 0; s < kScenarios; ++s) {
      const Tally& t = tally_[s];
      std::printf("| %s | %d | %d | %d | %d | %d | %d | %d |\n", kScenarioNames[s], t.trials, t.old_image, t.new_image,
                  t.no_image, t.reported_ok, t.recovered, t.violations);
      all.trials += t.trials, all.old_image += t.old_image, all.new_image += t.new_image;
      all.no_image += t.no_image, all.reported_ok += t.reported_ok, all.recovered += t.recovered;
      all.violations += t.violations;
    }
    std::printf("\nuncut flash writes: full %llu bytes, delta %llu, first onto a blank board %llu\n",
                static_cast<unsigned long long>(full_.writes), static_cast<unsigned long long>(delta_.writes),
                static_cast<unsigned long long>(first_.writes));
    std::printf("power-cut campaign: %d trials, seed %llu, %.0f s: old %d, new %d, no image %d, re-flashed %d, "
                "violations %d\n",
                trials, static_cast<unsigned long long>(seed), seconds, all.old_image, all.new_image, all.no_image,
                all.recovered, all.violations);
    return all.violations == 0 ? 0 : 1;
  }

 private:
  // An uncut flash of `image` onto a copy of `board`: the bytes it writes and how long it takes.
  Uncut Measure(const fs::path& board, const Image& image) {
    Uncut u{};
    fs::path nvm = Copy(board);
    const std::span<const uint8_t> bytes(reinterpret_cast<const uint8_t*>(image.bytes.data()), image.bytes.size());
    const auto start = Clock::now();
    {
      ExecPort port(qmc::testing::EmuCommand(nvm));
      ProtocolClient client(port, 6);
      const FlashSummary s =
          FlashImage(client, bytes, qmc::image::ImageView::OpenFile(bytes).value(), FlashOptions{});
      u.writes = s.sent + s.copied + 32;
    }
    u.in_process = Clock::now() - start;
    nvm = Copy(board);
    const auto cli_start = Clock::now();
    if (!Flasher(nvm, image).second) throw std::runtime_error("qmc flash failed on an uncut board");
    u.cli = Clock::now() - cli_start;
    return u;
  }

  // `qmc flash` as a child process: its pid and, once waited for, whether it
  // succeeded. The board's shell writes the board's pid to board_pid_.
  std::pair<pid_t, bool> Flasher(const fs::path& nvm, const Image& image, bool wait = true) {
    fs::remove(board_pid_);
    const std::string port = "exec:echo $$ >" + board_pid_.string() + "; exec " + qmc::testing::EmuCommand(nvm);
    const pid_t pid = fork();
    if (pid == 0) {
      const int null = open("/dev/null", O_WRONLY);
      dup2(null, STDOUT_FILENO);
      dup2(null, STDERR_FILENO);
      execl(QMC_CLI, QMC_CLI, "flash", image.path.c_str(), "--port", port.c_str(), static_cast<char*>(nullptr));
      _exit(127);
    }
    if (!wait) return {pid, false};
    int status = 0;
    waitpid(pid, &status, 0);
    return {pid, WIFEXITED(status) && WEXITSTATUS(status) == 0};
  }

  bool KillFlasherAfter(const fs::path& nvm, const Image& image, std::chrono::microseconds delay) {
    const pid_t pid = Flasher(nvm, image, false).first;
    std::this_thread::sleep_for(delay);
    kill(pid, SIGKILL);
    int status = 0;
    waitpid(pid, &status, 0);
    // The board sees its link close and ends; wait until it has let go of the window files.
    pid_t board = 0;
    std::ifstream(board_pid_) >> board;
    for (int i = 0; board > 0 && i < 1000 && !Ended(board); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    return WIFEXITED(status) && WEXITSTATUS(status) == 0;
  }

  // A fresh copy of a board's window files (sparse: mostly holes).
  fs::path Copy(const fs::path& from) {
    const fs::path to = dir_ / "nvm";
    fs::remove_all(to);
    if (Shell("cp -r --sparse=always " + from.string() + " " + to.string()) != 0) {
      throw std::runtime_error("cannot copy " + from.string());
    }
    return to;
  }

  fs::path dir_, pristine_, blank_, board_pid_ = dir_ / "board.pid";
  std::mt19937_64 rng_;
  int recover_every_;
  Image a_, b_, c_;
  Uncut full_{}, delta_{}, first_{};
  Tally tally_[kScenarios];
};

}  // namespace

int main(int argc, char** argv) {
  int trials = 1000, recover_every = 10;
  uint64_t seed = 1;
  bool keep = false;
  CLI::App app{"Power-cut campaign on the emulated board: random cuts and kills while flashing; every trial must "
               "boot the old or the new image and generate its text."};
  app.add_option("--trials", trials, "trials, spread over the six scenarios in turn")->default_val(1000)->check(CLI::PositiveNumber);
  app.add_option("--seed", seed, "seed of the cut points and kill times")->default_val(1);
  app.add_option("--recover-every", recover_every, "re-flash to the end after every K-th trial (0: never)")
      ->default_val(10)
      ->check(CLI::NonNegativeNumber);
  app.add_flag("--keep", keep, "keep the work directory");
  CLI11_PARSE(app, argc, argv);
  if (!fs::exists(kShared / "models/stories260K.bin")) {
    std::fprintf(stderr, "power_cut_campaign: %s is missing\n", (kShared / "models/stories260K.bin").c_str());
    return 2;
  }
  const fs::path dir = fs::temp_directory_path() / ("qmc_power_cut_campaign_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  int status = 1;
  try {
    const auto start = Clock::now();
    Campaign campaign(dir, seed, recover_every);
    for (int i = 0; i < trials; ++i) campaign.Trial(i);
    status = campaign.Report(trials, seed, std::chrono::duration<double>(Clock::now() - start).count());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "power_cut_campaign: %s\n", e.what());
  }
  if (!keep) fs::remove_all(dir);
  return status;
}
