// `qmc pack --depfile`: the depfile names the image and every file pack
// read, as absolute paths a build tool can stat. Each case checks the list
// against the files the test knows it gave, and, where strace runs, against
// the files the process actually opened for reading.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "tests/cli_runner.h"

namespace qmc {
namespace {

namespace fs = std::filesystem;
using testing::FreshTestDir;
using testing::Slurp;

const fs::path kShared = QMC_SHARED_DIR;

struct Depfile {
  std::string target;
  std::vector<std::string> inputs;
};

// Make's reading: backslash-newline joins lines; "\ " and "\#" are a space
// and a hash inside a word; "$$" is a dollar.
Depfile ParseDepfile(const std::string& text) {
  std::vector<std::string> words(1);
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '\\' && i + 1 < text.size() && (text[i + 1] == ' ' || text[i + 1] == '#')) {
      words.back() += text[++i];
    } else if (c == '\\' && i + 1 < text.size() && text[i + 1] == '\n') {
      ++i;
      if (!words.back().empty()) words.emplace_back();
    } else if (c == '$' && i + 1 < text.size() && text[i + 1] == '$') {
      words.back() += text[++i];
    } else if (c == ' ' || c == '\n') {
      if (!words.back().empty()) words.emplace_back();
    } else {
      words.back() += c;
    }
  }
  if (words.back().empty()) words.pop_back();
  Depfile depfile;
  if (words.empty() || words[0].back() != ':') return depfile;
  depfile.target = words[0].substr(0, words[0].size() - 1);
  depfile.inputs.assign(words.begin() + 1, words.end());
  return depfile;
}

std::string Quote(const fs::path& path) { return "'" + path.string() + "'"; }

bool StraceWorks() {
  static const bool works = std::system("strace -o /dev/null true >/dev/null 2>&1") == 0;
  return works;
}

// Regular files opened read-only, from an strace log (-f -e trace=open,openat),
// absolute; system files (libraries, locales, /proc, /sys) left out.
std::set<std::string> OpenedForReading(const fs::path& log, const fs::path& cwd) {
  std::set<std::string> files;
  std::istringstream lines(Slurp(log));
  for (std::string line; std::getline(lines, line);) {
    const size_t call = line.find("open");
    const size_t quote = line.find('"', call);
    if (call == std::string::npos || quote == std::string::npos) continue;
    const size_t end = line.find('"', quote + 1);
    const std::string flags = line.substr(end);
    if (line.find(" = -1") != std::string::npos || flags.find("O_WRONLY") != std::string::npos ||
        flags.find("O_RDWR") != std::string::npos || flags.find("O_CREAT") != std::string::npos) {
      continue;
    }
    const fs::path path = (cwd / line.substr(quote + 1, end - quote - 1)).lexically_normal();
    bool system = false;
    for (const char* prefix : {"/usr/", "/lib", "/etc/", "/proc/", "/sys/", "/dev/"}) {
      system |= path.string().rfind(prefix, 0) == 0;
    }
    if (!system && fs::is_regular_file(path)) files.insert(path.string());
  }
  return files;
}

// Runs `qmc pack ARGS -o OUTPUT --depfile DEPFILE` in `cwd` (under strace
// when it can) and checks the depfile: its target is the output, its inputs
// are `expected` in any order (absolute, as the test names them), and equal
// the files the process opened for reading.
void ExpectDepfile(const fs::path& cwd, const std::string& args, const fs::path& output, const fs::path& depfile,
                   std::set<std::string> expected) {
  const fs::path log = cwd / "strace.log";
  // LeakSanitizer cannot run under ptrace: a sanitized qmc leaves leak checks to the other tests.
  const std::string tracer =
      StraceWorks() ? "ASAN_OPTIONS=detect_leaks=0 strace -f -e trace=open,openat -o " + Quote(log) + " " : "";
  const std::string command = "cd " + Quote(cwd) + " && " + tracer + QMC_CLI + " pack " + args + " -q -o " +
                              Quote(output) + " --depfile " + Quote(depfile) + " >out.txt 2>err.txt";
  ASSERT_EQ(std::system(command.c_str()), 0) << command << "\n" << Slurp(cwd / "err.txt");
  const Depfile parsed = ParseDepfile(Slurp(cwd / depfile));
  EXPECT_EQ(parsed.target, (cwd / output).lexically_normal().string());
  const std::set<std::string> listed(parsed.inputs.begin(), parsed.inputs.end());
  EXPECT_EQ(listed.size(), parsed.inputs.size()) << "a file is listed twice";
  EXPECT_EQ(listed, expected);
  for (const std::string& input : parsed.inputs) EXPECT_TRUE(fs::path(input).is_absolute()) << input;
  if (StraceWorks()) {
    EXPECT_EQ(listed, OpenedForReading(log, cwd)) << "the depfile differs from what pack opened";
  } else {
    std::printf("strace cannot run here: the depfile is checked against the expected list only\n");
  }
}

std::string Abs(const fs::path& path) { return fs::absolute(path).lexically_normal().string(); }

TEST(PackDepfile, Llama2cCheckpointAndTokenizerByRelativePath) {
  const fs::path dir = FreshTestDir("pack_depfile_");
  const fs::path model = fs::relative(kShared / "models/stories260K.bin", dir);
  const fs::path tokenizer = fs::relative(kShared / "models/tok512.bin", dir);
  ExpectDepfile(dir, model.string() + " --tokenizer " + tokenizer.string() + " --preset paper-3mlc", "out.qmc",
                "out.qmc.d", {Abs(dir / model), Abs(dir / tokenizer)});  // fs::relative went through symlinks
}

// A HuggingFace directory: config.json and the weights, not the other files beside them.
TEST(PackDepfile, HuggingFaceDirectoryListsTheFilesRead) {
  const fs::path dir = FreshTestDir("pack_depfile_");
  const fs::path hf = dir / "kjv";
  fs::create_directories(hf);
  fs::create_symlink(kShared / "models/kjv6M-hf/config.json", hf / "config.json");
  fs::create_symlink(kShared / "models/kjv6M-hf/model.safetensors", hf / "model.safetensors");
  fs::create_symlink(kShared / "models/kjv6M-hf/model.safetensors", hf / "unused.safetensors");
  std::ofstream(hf / "README.md") << "not read\n";
  ExpectDepfile(dir, "kjv --tokenizer " + Abs(kShared / "models/kjv_tok2048.bin") + " --scheme f32", dir / "o.qmc",
                dir / "o.qmc.d",
                {Abs(hf / "config.json"), Abs(hf / "model.safetensors"), Abs(kShared / "models/kjv_tok2048.bin")});
}

// Sharded weights: the index and the shards its weight_map names, not a
// shard it does not name.
TEST(PackDepfile, ShardedDirectoryListsIndexAndShards) {
  const fs::path dir = FreshTestDir("pack_depfile_");
  const fs::path hf = dir / "sharded";
  fs::create_directories(hf);
  const fs::path weights = kShared / "models/kjv6M-hf/model.safetensors";
  fs::create_symlink(kShared / "models/kjv6M-hf/config.json", hf / "config.json");
  for (const char* shard : {"model-1.safetensors", "model-2.safetensors", "model-3.safetensors"}) {
    fs::create_symlink(weights, hf / shard);
  }
  // Both named shards hold every tensor (they are the same file); the index
  // takes alternate tensors from each.
  const std::string bytes = Slurp(weights);
  uint64_t header_size;
  std::memcpy(&header_size, bytes.data(), 8);
  const nlohmann::json header = nlohmann::json::parse(bytes.substr(8, header_size));
  nlohmann::json map;
  int i = 0;
  for (const auto& [tensor, entry] : header.items()) {
    if (tensor != "__metadata__") map[tensor] = ++i % 2 ? "model-1.safetensors" : "model-2.safetensors";
  }
  std::ofstream(hf / "model.safetensors.index.json") << nlohmann::json{{"weight_map", map}}.dump();
  ExpectDepfile(dir, "sharded --tokenizer " + Abs(kShared / "models/kjv_tok2048.bin") + " --scheme f32", "o.qmc",
                "o.qmc.d",
                {Abs(hf / "config.json"), Abs(hf / "model.safetensors.index.json"), Abs(hf / "model-1.safetensors"),
                 Abs(hf / "model-2.safetensors"), Abs(kShared / "models/kjv_tok2048.bin")});
}

// A tokenizer.json beside the config brings its tokenizer_config.json.
TEST(PackDepfile, SyntheticConfigWithTokenizerJson) {
  const fs::path dir = FreshTestDir("pack_depfile_");
  const fs::path model = dir / "tiny";
  fs::create_directories(model);
  std::ofstream(model / "config.json") << R"({"model_type": "llama", "hidden_size": 64, "intermediate_size": 128,
    "num_hidden_layers": 1, "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 32001,
    "max_position_embeddings": 64, "rms_norm_eps": 1e-5, "tie_word_embeddings": true})";
  const fs::path hymba = kShared / "models/paper/hymba-1.5b-base";
  fs::create_symlink(hymba / "tokenizer.json", model / "tokenizer.json");
  fs::create_symlink(hymba / "tokenizer_config.json", model / "tokenizer_config.json");
  ExpectDepfile(dir, "--synthetic tiny/config.json --scheme f32", "o.qmc", "o.qmc.d",
                {Abs(model / "config.json"), Abs(model / "tokenizer.json"), Abs(model / "tokenizer_config.json")});
}

// Calibration text and a device profile file are inputs too.
TEST(PackDepfile, CalibrationTextAndDeviceProfile) {
  const fs::path dir = FreshTestDir("pack_depfile_");
  const fs::path device = fs::path(QMC_SOURCE_DIR) / "hal/profiles/devices/nvmexplorer-worst-level.json";
  const fs::path text = kShared / "data/kjv-valid.txt";
  ExpectDepfile(dir,
                testing::Stories260K() + " --preset paper-3mlc --gptq --calib " + text.string() +
                    " --calib-tokens 512 --device " + device.string(),
                "o.qmc", "o.qmc.d",
                {Abs(kShared / "models/stories260K.bin"), Abs(kShared / "models/tok512.bin"), Abs(text), Abs(device)});
}

// Spaces and a hash in paths are escaped so Make and Ninja read them back.
TEST(PackDepfile, EscapesSpacesInPaths) {
  const fs::path dir = FreshTestDir("pack_depfile_");
  fs::create_directories(dir / "my models #1");
  fs::create_symlink(kShared / "models/stories260K.bin", dir / "my models #1/stories 260K.bin");
  ExpectDepfile(dir,
                "'my models #1/stories 260K.bin' --tokenizer " + Abs(kShared / "models/tok512.bin") + " --scheme f32",
                dir / "my models #1/out image.qmc", dir / "o.qmc.d",
                {Abs(dir / "my models #1/stories 260K.bin"), Abs(kShared / "models/tok512.bin")});
  EXPECT_NE(Slurp(dir / "o.qmc.d").find("my\\ models\\ \\#1/out\\ image.qmc:"), std::string::npos);
}

// No depfile is written when the pack fails.
TEST(PackDepfile, NoneAfterAFailedPack) {
  const fs::path dir = FreshTestDir("pack_depfile_");
  const auto run = testing::Qmc("pack " + (dir / "missing.bin").string() + " -o " + (dir / "o.qmc").string() +
                                    " --depfile " + (dir / "o.qmc.d").string(),
                                dir);
  EXPECT_NE(run.exit_code, 0);
  EXPECT_FALSE(fs::exists(dir / "o.qmc.d"));
  EXPECT_FALSE(fs::exists(dir / "o.qmc"));
}

}  // namespace
}  // namespace qmc
