// The installed package: `cmake --install` into a temporary prefix lays out
// the executables, profiles, docs and CMake package; the consumer project
// tests/consumer finds it and packs an image with qmc_add_image, which
// repacks exactly when an input, the flags or qmc change (Ninja and Make);
// a missing checkpoint stops the configure; CPack builds a .deb.
#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <set>

#include "tests/cli_runner.h"

namespace qmc {
namespace {

namespace fs = std::filesystem;
using testing::FreshTestDir;
using testing::Slurp;

const fs::path kShared = QMC_SHARED_DIR;
const fs::path kSource = QMC_SOURCE_DIR;

std::string Q(const fs::path& path) { return "'" + path.string() + "'"; }

struct ShellRun {
  int exit_code;
  std::string out;  // stdout and stderr
};

ShellRun Sh(const std::string& command, const fs::path& log) {
  const int status = std::system((command + " >" + Q(log) + " 2>&1").c_str());
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, Slurp(log)};
}

// Installs the build tree into `prefix`.
void Install(const fs::path& prefix, const fs::path& dir) {
  const ShellRun run = Sh(std::string(CMAKE_COMMAND) + " --install " + Q(QMC_BUILD_DIR) + " --prefix " + Q(prefix),
                     dir / "install.log");
  ASSERT_EQ(run.exit_code, 0) << run.out;
}

// Configures tests/consumer in `build` against `prefix`; `defines` are more -D flags.
ShellRun ConfigureConsumer(const fs::path& prefix, const fs::path& build, const std::string& generator,
                      const std::string& defines) {
  return Sh(std::string(CMAKE_COMMAND) + " -S " + Q(kSource / "tests/consumer") + " -B " + Q(build) + " -G " +
                Q(generator) + " -DCMAKE_PREFIX_PATH=" + Q(prefix) + " " + defines,
            build.parent_path() / "configure.log");
}

ShellRun Build(const fs::path& build) {
  return Sh(std::string(CMAKE_COMMAND) + " --build " + Q(build), build.parent_path() / "build.log");
}

fs::file_time_type MTime(const fs::path& path) { return fs::last_write_time(path); }

// Sets a file's mtime to now, as an edit would.
void Touch(const fs::path& path) { fs::last_write_time(path, fs::file_time_type::clock::now()); }

TEST(CmakePackage, InstallLaysOutTheTree) {
  const fs::path dir = FreshTestDir("cmake_package_"), prefix = dir / "prefix";
  Install(prefix, dir);
  for (const char* exe : {"bin/qmc", "bin/qmc-fw-emu"}) {
    EXPECT_TRUE(fs::is_regular_file(prefix / exe)) << exe;
    EXPECT_NE(fs::status(prefix / exe).permissions() & fs::perms::owner_exec, fs::perms::none) << exe;
  }
  for (const char* file : {"qmcConfig.cmake", "qmcConfigVersion.cmake", "qmcTargets.cmake", "QmcAddImage.cmake"}) {
    EXPECT_TRUE(fs::is_regular_file(prefix / "lib/cmake/qmc" / file)) << file;
  }
  // Every shipped profile and doc, byte for byte.
  size_t profiles = 0, docs = 0;
  for (const auto& entry : fs::recursive_directory_iterator(kSource / "hal/profiles")) {
    if (!entry.is_regular_file()) continue;
    const fs::path installed = prefix / "share/qmc/profiles" / fs::relative(entry.path(), kSource / "hal/profiles");
    EXPECT_EQ(Slurp(installed), Slurp(entry.path())) << installed;
    ++profiles;
  }
  for (const auto& entry : fs::directory_iterator(kSource / "docs")) {
    EXPECT_EQ(Slurp(prefix / "share/doc/qmc" / entry.path().filename()), Slurp(entry.path())) << entry.path();
    ++docs;
  }
  EXPECT_GT(profiles, 2u);
  EXPECT_GT(docs, 2u);
  EXPECT_EQ(Slurp(prefix / "share/doc/qmc/README.md"), Slurp(kSource / "README.md"));
  // The cross build's firmware image, when there is one.
  const fs::path elf = QMC_INSTALL_M55_ELF;
  EXPECT_EQ(fs::exists(prefix / "share/qmc/firmware/qmc-fw-m55.elf"), fs::exists(elf));
  if (fs::exists(elf)) EXPECT_EQ(Slurp(prefix / "share/qmc/firmware/qmc-fw-m55.elf"), Slurp(elf));
  // The installed qmc runs on its own.
  const ShellRun help = Sh(Q(prefix / "bin/qmc") + " inspect --help", dir / "help.log");
  EXPECT_EQ(help.exit_code, 0) << help.out;
}

// Checkpoint and tokenizer copied into the test directory, so the test can touch them.
struct Inputs {
  fs::path checkpoint, tokenizer;
};
Inputs CopyStories(const fs::path& dir) {
  fs::create_directories(dir / "models");
  fs::copy_file(kShared / "models/stories260K.bin", dir / "models/stories260K.bin");
  fs::copy_file(kShared / "models/tok512.bin", dir / "models/tok512.bin");
  return {dir / "models/stories260K.bin", dir / "models/tok512.bin"};
}

// Builds the consumer with `generator`, then checks when it repacks.
void ExpectRepacksExactlyWhenNeeded(const std::string& generator) {
  const fs::path dir = FreshTestDir("cmake_package_"), prefix = dir / "prefix", build = dir / "consumer";
  Install(prefix, dir);
  const Inputs in = CopyStories(dir);
  const std::string defines = "-DQMC_CHECKPOINT=" + Q(in.checkpoint) + " -DQMC_TOKENIZER=" + Q(in.tokenizer);
  ShellRun run = ConfigureConsumer(prefix, build, generator, defines + " -DQMC_PRESET=paper-3mlc");
  ASSERT_EQ(run.exit_code, 0) << run.out;
  run = Build(build);
  ASSERT_EQ(run.exit_code, 0) << run.out;
  const fs::path image = build / "model.qmc";
  ASSERT_TRUE(fs::exists(image));
  // The installed qmc packed it, and accepts it.
  const std::string package = Slurp(build / "package.txt");
  EXPECT_NE(package.find("qmc=" + (prefix / "bin/qmc").string() + "\n"), std::string::npos) << package;
  EXPECT_NE(package.find("image=" + image.string() + "\n"), std::string::npos) << package;
  EXPECT_NE(package.find("profiles=" + (prefix / "share/qmc/profiles").string() + "\n"), std::string::npos) << package;
  const ShellRun inspect = Sh(Q(prefix / "bin/qmc") + " inspect " + Q(image), dir / "inspect.log");
  EXPECT_EQ(inspect.exit_code, 0) << inspect.out;
  EXPECT_NE(inspect.out.find("preset paper-3mlc"), std::string::npos) << inspect.out;
  // The same bytes as qmc pack by hand.
  const auto by_hand = testing::Qmc("pack " + Q(in.checkpoint) + " --tokenizer " + Q(in.tokenizer) +
                                        " --preset paper-3mlc -q -o " + Q(dir / "by-hand.qmc"),
                                    dir);
  ASSERT_EQ(by_hand.exit_code, 0) << by_hand.err;
  EXPECT_TRUE(Slurp(image) == Slurp(dir / "by-hand.qmc"));

  // Each step: a change, a build, and whether the image was written again
  // (a Makefile generator deletes an image whose command changed when it
  // regenerates; Ninja keeps it until the build).
  const auto repacked = [&](const char* what, const std::function<void()>& change) {
    const fs::file_time_type before = MTime(image);
    change();
    const ShellRun build_run = Build(build);
    EXPECT_EQ(build_run.exit_code, 0) << what << "\n" << build_run.out;
    return !fs::exists(image) || MTime(image) != before;
  };
  const auto nothing = [] {};
  const auto configure = [&](const std::string& flags) {
    return [&, flags] {
      const ShellRun r = ConfigureConsumer(prefix, build, generator, defines + " " + flags);
      ASSERT_EQ(r.exit_code, 0) << r.out;
    };
  };
  if (generator == "Ninja") {
    const ShellRun dry = Sh(std::string(QMC_NINJA) + " -C " + Q(build) + " -n", dir / "dry.log");
    EXPECT_NE(dry.out.find("no work to do"), std::string::npos) << dry.out;
  }
  EXPECT_FALSE(repacked("nothing changed", nothing));
  EXPECT_TRUE(repacked("checkpoint touched", [&] { Touch(in.checkpoint); }));
  EXPECT_FALSE(repacked("nothing changed after the checkpoint", nothing));
  EXPECT_TRUE(repacked("tokenizer touched", [&] { Touch(in.tokenizer); }));
  EXPECT_TRUE(repacked("qmc touched", [&] { Touch(prefix / "bin/qmc"); }));
  EXPECT_FALSE(repacked("nothing changed after qmc", nothing));
  // Flags: a reconfigure with the same flags repacks nothing, new ones repack.
  EXPECT_FALSE(repacked("reconfigured, same flags", configure("-DQMC_PRESET=paper-3mlc")));
  const std::string before = Slurp(image);
  EXPECT_TRUE(repacked("preset changed", configure("-DQMC_PRESET=paper-2mlc")));
  EXPECT_NE(Slurp(image), before);
  EXPECT_TRUE(repacked("options changed", configure("-DQMC_PRESET=paper-2mlc \"-DQMC_OPTIONS=--embedding;fp16\"")));
  EXPECT_FALSE(repacked("nothing changed after the options", nothing));
}

TEST(CmakePackage, ConsumerRepacksExactlyWhenNeededNinja) {
  if (std::string(QMC_NINJA).empty()) GTEST_SKIP() << "ninja is not installed";
  ExpectRepacksExactlyWhenNeeded("Ninja");
}

TEST(CmakePackage, ConsumerRepacksExactlyWhenNeededMake) { ExpectRepacksExactlyWhenNeeded("Unix Makefiles"); }

// A HuggingFace directory: the depfile names its files, so touching the
// weights inside it repacks.
TEST(CmakePackage, ConsumerRepacksWhenAFileInsideADirectoryChanges) {
  const fs::path dir = FreshTestDir("cmake_package_"), prefix = dir / "prefix", build = dir / "consumer";
  Install(prefix, dir);
  fs::create_directories(dir / "kjv");
  for (const char* file : {"config.json", "model.safetensors"}) {
    fs::copy_file(kShared / "models/kjv6M-hf" / file, dir / "kjv" / file);
  }
  ShellRun run = ConfigureConsumer(prefix, build, std::string(QMC_NINJA).empty() ? "Unix Makefiles" : "Ninja",
                              "-DQMC_CHECKPOINT=" + Q(dir / "kjv") + " -DQMC_TOKENIZER=" +
                                  Q(kShared / "models/kjv_tok2048.bin") + " \"-DQMC_OPTIONS=--scheme;rtn;--bits;4\"");
  ASSERT_EQ(run.exit_code, 0) << run.out;
  run = Build(build);
  ASSERT_EQ(run.exit_code, 0) << run.out;
  const fs::file_time_type first = MTime(build / "model.qmc");
  run = Build(build);
  EXPECT_EQ(MTime(build / "model.qmc"), first) << "repacked with nothing changed";
  Touch(dir / "kjv/model.safetensors");
  run = Build(build);
  ASSERT_EQ(run.exit_code, 0) << run.out;
  EXPECT_NE(MTime(build / "model.qmc"), first) << "not repacked after the weights changed";
}

TEST(CmakePackage, MissingCheckpointIsAConfigureError) {
  const fs::path dir = FreshTestDir("cmake_package_"), prefix = dir / "prefix";
  Install(prefix, dir);
  const fs::path missing = dir / "no-such-model.bin";
  const ShellRun run = ConfigureConsumer(prefix, dir / "consumer", "Unix Makefiles", "-DQMC_CHECKPOINT=" + Q(missing));
  EXPECT_NE(run.exit_code, 0);
  EXPECT_NE(run.out.find("qmc_add_image(model_image): checkpoint " + missing.string() + " does not exist"),
            std::string::npos)
      << run.out;
  EXPECT_FALSE(fs::exists(dir / "consumer/build.ninja"));
  EXPECT_FALSE(fs::exists(dir / "consumer/Makefile"));
}

TEST(CmakePackage, CpackBuildsADeb) {
  const fs::path dir = FreshTestDir("cmake_package_");
  const auto start = std::chrono::steady_clock::now();
  const ShellRun run = Sh(std::string(CPACK_COMMAND) + " -G DEB --config " + Q(fs::path(QMC_BUILD_DIR) / "CPackConfig.cmake") +
                         " -B " + Q(dir),
                     dir / "cpack.log");
  ASSERT_EQ(run.exit_code, 0) << run.out;
  std::printf("cpack -G DEB took %.1f s\n", std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  fs::path deb;
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (entry.path().extension() == ".deb") deb = entry.path();
  }
  ASSERT_FALSE(deb.empty()) << run.out;
  const ShellRun contents = Sh("dpkg-deb -c " + Q(deb), dir / "contents.log");
  ASSERT_EQ(contents.exit_code, 0) << contents.out;
  for (const char* file : {"./usr/bin/qmc\n", "./usr/bin/qmc-fw-emu\n", "./usr/lib/cmake/qmc/qmcConfig.cmake\n",
                           "./usr/share/qmc/profiles/boards/paper-soc.json\n", "./usr/share/doc/qmc/README.md\n"}) {
    EXPECT_NE(contents.out.find(file), std::string::npos) << file << contents.out;
  }
  const ShellRun depends = Sh("dpkg-deb -f " + Q(deb) + " Depends", dir / "depends.log");
  ASSERT_EQ(depends.exit_code, 0) << depends.out;
  for (const char* library : {"zlib1g", "libftdi1", "libstdc++6"}) {
    EXPECT_NE(depends.out.find(library), std::string::npos) << library << ": " << depends.out;
  }
}

}  // namespace
}  // namespace qmc
