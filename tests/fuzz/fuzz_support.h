// What the libFuzzer targets share: scratch files for the readers that take
// a path, and the flash target's board size. A host reader may throw
// host::InputError on bad input; any other exception escapes
// LLVMFuzzerTestOneInput, aborts, and is a finding.
#pragma once

#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <span>
#include <string>

namespace qmc::fuzz {

// The flash server target's board: every window this many MiB (fuzz_seeds
// captures its flashing stream from a board of the same sizes), so that
// creating a board for every input stays cheap.
inline constexpr uint32_t kFlashBoardWindowMib = 1;

// A directory of this process's own, qmc-fuzz-PID in /dev/shm where there is
// one (no disk I/O per input). libFuzzer ends without running atexit
// handlers, so each fuzzer removes the directories of fuzzers no longer running.
inline const std::filesystem::path& ScratchDir() {
  static const std::filesystem::path dir = [] {
    namespace fs = std::filesystem;
    const fs::path base = fs::is_directory("/dev/shm") ? fs::path("/dev/shm") : fs::temp_directory_path();
    const std::string prefix = "qmc-fuzz-";
    std::error_code ignored;
    for (const fs::directory_entry& entry : fs::directory_iterator(base, ignored)) {
      const std::string name = entry.path().filename().string();
      if (name.rfind(prefix, 0) != 0) continue;
      const long pid = std::strtol(name.c_str() + prefix.size(), nullptr, 10);
      if (pid > 0 && kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH) fs::remove_all(entry.path(), ignored);
    }
    fs::path d = base / (prefix + std::to_string(getpid()));
    fs::create_directories(d);
    return d;
  }();
  return dir;
}

// Writes `bytes` to `name` in the scratch directory and returns its path.
inline std::filesystem::path WriteScratch(const std::string& name, std::span<const uint8_t> bytes) {
  const std::filesystem::path path = ScratchDir() / name;
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  return path;
}

}  // namespace qmc::fuzz
