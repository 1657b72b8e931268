// The kernel-equality check on the Cortex-M55 under QEMU (MPS3 AN547): the
// target program tests/target/kernel_equality_main.cpp holds the Helium and
// the scalar kernel to the reference on every tensor of an image placed in
// the NVM windows, for images of every layout — the same check
// (tests/kernel_equality) matvec_kernels_test runs on the host. The program
// is built by the ctest fixture m55_firmware (the m55 preset).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <regex>
#include <string>
#include <vector>

#include "host/pack.h"
#include "tests/cli_runner.h"
#include "tests/random_checkpoint.h"

namespace qmc {
namespace {

namespace fs = std::filesystem;
using image::Quantizer;

// linker/mps3_an547.ld's window bases, where QEMU loads the NVM files.
constexpr const char* kWindowLoads[][2] = {
    {"mram.bin", "0x60000000"}, {"reram.bin", "0x64000000"}, {"dram.bin", "0x68000000"}};

// Runs the target program on QEMU until it prints its verdict (or faults,
// or `timeout` passes), then stops QEMU: a halted M55 never exits by itself.
// Returns what it printed.
std::string RunOnQemu(const fs::path& nvm, std::chrono::seconds timeout) {
  std::vector<std::string> args = {"qemu-system-arm", "-M",       "mps3-an547", "-display", "none", "-monitor",
                                   "none",            "-serial",  "stdio",      "-icount",  "shift=0",
                                   "-kernel",         QMC_KERNEL_EQUALITY_ELF};
  for (const auto& [file, base] : kWindowLoads) {
    args.push_back("-device");
    args.push_back("loader,file=" + (nvm / file).string() + ",addr=" + base + ",force-raw=on");
  }
  int out[2];
  if (pipe(out) != 0) return "pipe failed";
  const pid_t pid = fork();
  if (pid == 0) {
    dup2(out[1], STDOUT_FILENO);
    dup2(out[1], STDERR_FILENO);
    close(out[0]);
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    execvp(argv[0], argv.data());
    _exit(127);
  }
  close(out[1]);
  std::string printed;
  const std::regex done(R"(kernel-equality: (PASS|FAIL)[^\n]*\n|qmc-fw: fault:[^\n]*\n)");
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!std::regex_search(printed, done) && std::chrono::steady_clock::now() < deadline) {
    pollfd p{out[0], POLLIN, 0};
    if (poll(&p, 1, 200) <= 0) continue;
    char buffer[4096];
    const ssize_t n = read(out[0], buffer, sizeof buffer);
    if (n <= 0) break;  // QEMU is gone
    printed.append(buffer, static_cast<size_t>(n));
  }
  kill(pid, SIGTERM);
  waitpid(pid, nullptr, 0);
  close(out[0]);
  return printed;
}

class KernelEqualityM55 : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(fs::exists(QMC_KERNEL_EQUALITY_ELF))
        << QMC_KERNEL_EQUALITY_ELF << " is missing: the m55_firmware fixture builds it";
    dir_ = testing::FreshTestDir("qmc_kernel_equality_m55_");
  }
  void TearDown() override { fs::remove_all(dir_); }

  // Packs, places in NVM files and checks on the M55; the program's verdict
  // must be PASS over every tensor of the image.
  void ExpectPassOnTarget(const host::Checkpoint& checkpoint, const host::QuantOptions& options,
                          const std::string& label) {
    SCOPED_TRACE(label);
    const host::PackedModel packed = host::PackModel(checkpoint, options);
    const fs::path image = dir_ / "image.qmc", nvm = dir_ / "nvm";
    std::ofstream(image, std::ios::binary)
        .write(reinterpret_cast<const char*>(packed.image.data()), static_cast<std::streamsize>(packed.image.size()));
    fs::remove_all(nvm);
    const testing::CliRun written = testing::Qmc("nvm write " + image.string() + " " + nvm.string(), dir_);
    ASSERT_EQ(written.exit_code, 0) << written.err;

    const std::string printed = RunOnQemu(nvm, std::chrono::seconds(120));
    const std::string verdict = "kernel-equality: PASS " + std::to_string(packed.tensors.size()) + " tensors\n";
    EXPECT_NE(printed.find(verdict), std::string::npos) << printed;
    // One line per tensor, each with both kernels' figures.
    const std::regex tensor_line(R"(kernel-equality: \S+ \d+x\d+ helium=[0-9.]+ scalar=[0-9.]+ cycles )");
    const auto lines = std::distance(std::sregex_iterator(printed.begin(), printed.end(), tensor_line), {});
    EXPECT_EQ(static_cast<size_t>(lines), packed.tensors.size()) << printed;
  }

  fs::path dir_;
};

host::QuantOptions Options(Quantizer quantizer, uint32_t bits, uint32_t cell_bits, uint32_t group_size,
                           double outlier_ratio) {
  host::QuantOptions options;
  options.quantizer = quantizer;
  options.bits = bits;
  options.cell_bits = cell_bits;
  options.group_size = group_size;
  options.outlier_ratio = outlier_ratio;
  return options;
}

// Odd shapes, as on the host: width 97 (no multiple of 4, 8 or the group),
// width 1 and single-row tensors (hidden 1), partial groups (40), outliers.
TEST_F(KernelEqualityM55, EveryCellLayoutEqualsTheReferenceOnTheTarget) {
  const host::Checkpoint shapes[] = {testing::RandomCheckpoint(97, 40, 5), testing::RandomCheckpoint(97, 1, 6)};
  for (uint32_t bits = 2; bits <= 4; ++bits) {
    for (uint32_t cell_bits = 1; cell_bits <= 3; ++cell_bits) {
      for (const host::Checkpoint& checkpoint : shapes) {
        ExpectPassOnTarget(checkpoint, Options(Quantizer::kQmc, bits, cell_bits, 40, 0.02),
                           "qmc b" + std::to_string(bits) + "c" + std::to_string(cell_bits) + " hidden " +
                               std::to_string(checkpoint.config.hidden_dim));
      }
    }
  }
}

TEST_F(KernelEqualityM55, DenseAndMxInt4EqualTheReferenceOnTheTarget) {
  const host::Checkpoint checkpoint = testing::RandomCheckpoint(97, 40, 7);
  ExpectPassOnTarget(checkpoint, Options(Quantizer::kF32, 3, 3, 64, 0.0), "f32");
  ExpectPassOnTarget(checkpoint, Options(Quantizer::kFp16, 3, 3, 64, 0.0), "fp16");
  for (uint32_t cell_bits = 1; cell_bits <= 3; ++cell_bits) {
    ExpectPassOnTarget(checkpoint, Options(Quantizer::kMxInt4, 4, cell_bits, 32, 0.0),
                       "mxint4 cells " + std::to_string(cell_bits));
  }
}

host::QuantOptions SplitOptions(uint32_t cell_bits, uint32_t group_size) {
  host::QuantOptions options;
  options.bits = 3;
  options.cell_bits = cell_bits;
  options.group_size = group_size;
  options.outlier_bits = 5;
  options.outlier_ratio = 0.3;
  return options;
}

// The paper's split scheme: 3-bit inliers in 3- and 2-bit cells per channel
// (rows enter the tensor-wide streams mid-word), and per group of 40
// inliers; 5-bit outliers, rho 0.3; odd widths as above.
TEST_F(KernelEqualityM55, SplitEqualsTheReferenceOnTheTarget) {
  const host::Checkpoint shapes[] = {testing::RandomCheckpoint(97, 40, 8), testing::RandomCheckpoint(97, 1, 9)};
  for (const host::Checkpoint& checkpoint : shapes) {
    const std::string hidden = " hidden " + std::to_string(checkpoint.config.hidden_dim);
    ExpectPassOnTarget(checkpoint, SplitOptions(3, host::kPerChannel), "split b3c3 per channel" + hidden);
    ExpectPassOnTarget(checkpoint, SplitOptions(2, host::kPerChannel), "split b3c2 per channel" + hidden);
    ExpectPassOnTarget(checkpoint, SplitOptions(3, 40), "split b3c3 group 40" + hidden);
  }
}

// Trained weights: stories260K in the default qmc layout (3-bit codes, 3-bit cells).
TEST_F(KernelEqualityM55, Stories260KEqualsTheReferenceOnTheTarget) {
  const fs::path shared = QMC_SHARED_DIR;
  if (!fs::exists(shared / "models/stories260K.bin")) GTEST_SKIP() << "../shared/models is missing";
  host::Checkpoint checkpoint = host::LoadLlama2c(shared / "models/stories260K.bin");
  checkpoint.tokenizer = host::LoadTokenizerFile(shared / "models/tok512.bin", checkpoint.config.vocab_size);
  ExpectPassOnTarget(checkpoint, Options(Quantizer::kQmc, 3, 3, 64, 0.005), "stories260K qmc b3c3");
}

}  // namespace
}  // namespace qmc
