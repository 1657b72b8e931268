// End-to-end test support: a scratch directory per test, and running the qmc
// binary as a user would, capturing exit code, stdout and stderr.
#pragma once

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

namespace qmc::testing {

// A new, empty directory named for the running test, so tests that ctest runs
// in parallel never share one.
inline std::filesystem::path FreshTestDir(const std::string& prefix) {
  const std::filesystem::path dir = std::filesystem::path(::testing::TempDir()) /
                                    (prefix + std::to_string(::getpid()) + "_" +
                                     ::testing::UnitTest::GetInstance()->current_test_info()->name());
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

// A whole file's bytes ("" when it cannot be read).
inline std::string Slurp(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// The shipped default model as `qmc pack` takes it: checkpoint and tokenizer.
inline std::string Stories260K() {
  const std::filesystem::path shared = QMC_SHARED_DIR;
  return (shared / "models/stories260K.bin").string() + " --tokenizer " + (shared / "models/tok512.bin").string();
}

// Runs qmc with `args`; stdout and stderr go through files in `dir`.
struct CliRun {
  int exit_code;
  std::string out;
  std::string err;
};

inline CliRun Qmc(const std::string& args, const std::filesystem::path& dir) {
  const std::string out = (dir / "stdout.txt").string(), err = (dir / "stderr.txt").string();
  const int status = std::system((std::string(QMC_CLI) + " " + args + " >" + out + " 2>" + err).c_str());
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, Slurp(out), Slurp(err)};
}

// Packs `pack_args` (a checkpoint, its tokenizer, options) into `image` and
// returns what `qmc run` generates from it greedily for `prompt` over
// `steps` positions; a failure of either command fails the test.
inline std::string PackAndGenerate(const std::string& pack_args, const std::filesystem::path& image,
                                   const std::string& prompt, int steps, const std::filesystem::path& dir) {
  const CliRun pack = Qmc("pack " + pack_args + " -q -o " + image.string(), dir);
  EXPECT_EQ(pack.exit_code, 0) << pack.err;
  const CliRun run = Qmc("run " + image.string() + " -p '" + prompt + "' -n " + std::to_string(steps) + " -t 0", dir);
  EXPECT_EQ(run.exit_code, 0) << run.err;
  return run.out;
}

}  // namespace qmc::testing
