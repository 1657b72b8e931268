// Reproducible images: the same inputs and flags give the same bytes from
// any directory, by relative or absolute paths, at any time and on any
// number of threads; and an image holds no path it was packed from.
#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "host/checkpoint.h"
#include "host/pack.h"
#include "host/pack_presets.h"
#include "tests/cli_runner.h"

namespace qmc {
namespace {

namespace fs = std::filesystem;
using testing::FreshTestDir;
using testing::Slurp;

const fs::path kShared = QMC_SHARED_DIR;

std::string Q(const fs::path& path) { return "'" + path.string() + "'"; }

// Packs in `cwd`; returns the image's bytes.
std::string PackIn(const fs::path& cwd, const std::string& args, const fs::path& output) {
  const std::string command =
      "cd " + Q(cwd) + " && " + QMC_CLI + " pack " + args + " -q -o " + Q(output) + " >out.txt 2>err.txt";
  EXPECT_EQ(std::system(command.c_str()), 0) << command << "\n" << Slurp(cwd / "err.txt");
  return Slurp(cwd / output);
}

// The bytes of no path, nor any directory name of one, appear in the image.
void ExpectNoPaths(const std::string& image, const std::vector<fs::path>& paths) {
  for (const fs::path& path : paths) {
    for (const fs::path& part : fs::absolute(path)) {
      const std::string name = part.string();
      if (name.size() < 6) continue;  // short names ("work", "tmp") occur by chance in weights
      EXPECT_EQ(image.find(name), std::string::npos) << name << " is inside the image";
    }
  }
}

// Two directories, one by relative paths (and a symlinked checkpoint), one
// by absolute paths, a second apart: the same bytes.
void ExpectSameBytesFromTwoDirectories(const std::string& preset_args, const fs::path& checkpoint,
                                       const fs::path& tokenizer, const std::string& extra = "") {
  const fs::path a = FreshTestDir("pack_repro_a_") / "work dir", b = FreshTestDir("pack_repro_b_");
  fs::create_directories(a);
  fs::create_directories(b / "out");
  fs::create_symlink(checkpoint, a / checkpoint.filename());
  const auto start = std::chrono::steady_clock::now();
  const std::string first = PackIn(a,
                                   checkpoint.filename().string() + " --tokenizer " +
                                       fs::relative(tokenizer, a).string() + " " + preset_args + extra,
                                   "image.qmc");
  // A timestamp with one-second resolution would differ now.
  std::this_thread::sleep_until(start + std::chrono::milliseconds(1100));
  const std::string second = PackIn(fs::path(QMC_SOURCE_DIR),
                                    Q(checkpoint) + " --tokenizer " + Q(tokenizer) + " " + preset_args + extra,
                                    b / "out/other-name.qmc");
  ASSERT_FALSE(first.empty());
  EXPECT_EQ(first.size(), second.size());
  EXPECT_TRUE(first == second) << "the images differ";
  ExpectNoPaths(first, {a, b, checkpoint, tokenizer});
}

TEST(PackReproducible, Llama2cPaper3Mlc) {
  ExpectSameBytesFromTwoDirectories("--preset paper-3mlc", kShared / "models/stories260K.bin",
                                    kShared / "models/tok512.bin");
}

TEST(PackReproducible, HuggingFaceDirectoryRtn) {
  ExpectSameBytesFromTwoDirectories("--scheme rtn --bits 4 --group 64", kShared / "models/kjv6M-hf",
                                    kShared / "models/kjv_tok2048.bin");
}

// Calibration runs the model on worker threads; its statistics are merged
// in window order.
TEST(PackReproducible, CalibratedGptq) {
  ExpectSameBytesFromTwoDirectories("--scheme gptq --bits 3", kShared / "models/stories260K.bin",
                                    kShared / "models/tok512.bin",
                                    " --calib-tokens 1024 --calib " + Q(kShared / "data/kjv-valid.txt"));
}

// The thread count: PackImage on 1, 2 and 3 threads gives the same bytes
// (the CLI runs one per core).
TEST(PackReproducible, ThreadCountDoesNotMatter) {
  const host::QuantOptions options = host::FindPreset("paper-3mlc")->options;
  std::vector<uint8_t> images[3];
  for (unsigned threads = 1; threads <= 3; ++threads) {
    host::Checkpoint checkpoint = host::LoadCheckpoint(kShared / "models/stories260K.bin");
    checkpoint.tokenizer = host::LoadTokenizerFile(kShared / "models/tok512.bin", checkpoint.config.vocab_size);
    images[threads - 1] = host::PackImage(host::SourceOf(std::move(checkpoint)), options, {}, threads);
  }
  EXPECT_FALSE(images[0].empty());
  EXPECT_TRUE(images[0] == images[1]);
  EXPECT_TRUE(images[0] == images[2]);
}

}  // namespace
}  // namespace qmc
