// `qmc pack` / `qmc inspect` end to end, as a build pipeline runs them.
#include <gtest/gtest.h>

#include <sys/wait.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <unistd.h>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "tests/cli_runner.h"
#include "host/atomic_file.h"

namespace {

namespace fs = std::filesystem;

const fs::path kShared = QMC_SHARED_DIR;

using qmc::testing::CliRun;
using qmc::testing::Qmc;

class PackCli : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fs::exists(kShared / "models/stories260K.bin")) GTEST_SKIP() << "../shared/models is missing";
    dir_ = qmc::testing::FreshTestDir("qmc_pack_cli_");
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string Stories() const {
    return qmc::testing::Stories260K();
  }

  // Only the captured stdout/stderr remain: no image, no temporary file.
  void ExpectNoOutputLeft() const {
    for (const auto& entry : fs::directory_iterator(dir_)) {
      const std::string name = entry.path().filename().string();
      EXPECT_TRUE(name == "stdout.txt" || name == "stderr.txt" || name.rfind("input", 0) == 0)
          << "left behind: " << name;
    }
  }

  // A failing pack: exit 1, one line on stderr naming `word`, nothing written.
  void ExpectBadInput(const std::string& checkpoint_args, const std::string& word) {
    const CliRun r = Qmc("pack " + checkpoint_args + " -o " + (dir_ / "out.qmc").string(), dir_);
    EXPECT_EQ(r.exit_code, 1) << r.err;
    EXPECT_NE(r.err.find(word), std::string::npos) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    EXPECT_FALSE(fs::exists(dir_ / "out.qmc"));
    ExpectNoOutputLeft();
  }

  fs::path dir_;
};

TEST_F(PackCli, PacksAndInspectsWithStableJsonKeys) {
  const fs::path image = dir_ / "s.qmc";
  const CliRun pack = Qmc("pack " + Stories() + " -o " + image.string() + " --scheme qmc --bits 3 --outlier-ratio 0.01", dir_);
  ASSERT_EQ(pack.exit_code, 0) << pack.err;
  const CliRun inspect = Qmc("inspect --json " + image.string(), dir_);
  ASSERT_EQ(inspect.exit_code, 0) << inspect.err;
  const nlohmann::json j = nlohmann::json::parse(inspect.out);
  for (const char* key : {"bits_per_weight", "bytes_by_window", "outlier_fraction", "tensors", "sections"}) {
    EXPECT_TRUE(j.contains(key)) << key;
  }
  for (const char* window : {"sram", "mram", "reram", "dram"}) EXPECT_TRUE(j["bytes_by_window"].contains(window));
  EXPECT_NEAR(j["outlier_fraction"].get<double>(), 0.01, 1e-4);
  // 3-bit codes in 3-bit cells: 3.2 bits, 3.5 with word padding of 64-wide rows; scale+zero 0.5;
  // outliers 0.32 plus 0.5 of u32 row starts on 64-wide rows.
  EXPECT_GT(j["bits_per_weight"].get<double>(), 3.5);
  EXPECT_LT(j["bits_per_weight"].get<double>(), 5.0);
  EXPECT_EQ(j["bytes_by_window"]["dram"].get<int>(), 0);
  EXPECT_EQ(j["tensors"].size(), 47u);  // embedding + 5 layers x 9 + final norm; shared classifier
  EXPECT_EQ(j["tensors"][0]["name"], "token_embd.weight");

  const CliRun text = Qmc("inspect " + image.string(), dir_);
  EXPECT_EQ(text.exit_code, 0);
  EXPECT_NE(text.out.find("bits/weight"), std::string::npos);
}

TEST_F(PackCli, SameInputAndFlagsGiveIdenticalBytes) {
  for (const char* name : {"a.qmc", "b.qmc"}) {
    ASSERT_EQ(Qmc("pack -q " + Stories() + " -o " + (dir_ / name).string() + " --scheme rtn --bits 4", dir_).exit_code, 0);
  }
  EXPECT_EQ(qmc::host::ReadWholeFile(dir_ / "a.qmc"), qmc::host::ReadWholeFile(dir_ / "b.qmc"));
}

TEST_F(PackCli, EverySchemePacks) {
  for (const char* scheme : {"qmc", "rtn", "mxint4", "fp16", "f32"}) {
    const fs::path image = dir_ / (std::string(scheme) + ".qmc");
    const CliRun r = Qmc("pack -q --json " + Stories() + " -o " + image.string() + " --scheme " + scheme, dir_);
    ASSERT_EQ(r.exit_code, 0) << scheme << ": " << r.err;
    const nlohmann::json j = nlohmann::json::parse(r.out);
    EXPECT_EQ(j["quantizer"], scheme);
    const bool dense = std::string(scheme) == "fp16" || std::string(scheme) == "f32";
    EXPECT_EQ(j["bytes_by_window"]["dram"].get<int>() > 0, dense) << scheme;
    EXPECT_EQ(j["bytes_by_window"]["reram"].get<int>() > 0, !dense) << scheme;
  }
}

TEST_F(PackCli, PacksTheHuggingFaceDirectory) {
  const CliRun r = Qmc("pack -q " + (kShared / "models/kjv6M-hf").string() + " --tokenizer " +
                        (kShared / "models/kjv_tok2048.bin").string() + " -o " + (dir_ / "k.qmc").string(),
                    dir_);
  EXPECT_EQ(r.exit_code, 0) << r.err;
}

TEST_F(PackCli, TruncatedCheckpoint) {
  const std::vector<uint8_t> bytes = qmc::host::ReadWholeFile(kShared / "models/stories260K.bin");
  std::ofstream(dir_ / "input.bin", std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()), 500000);
  ExpectBadInput((dir_ / "input.bin").string() + " --tokenizer " + (kShared / "models/tok512.bin").string(), "trunc");
}

TEST_F(PackCli, NanWeight) {
  std::vector<uint8_t> bytes = qmc::host::ReadWholeFile(kShared / "models/stories260K.bin");
  const float nan = NAN;
  std::memcpy(bytes.data() + 28 + 4 * 1000, &nan, 4);  // inside token_embd
  std::ofstream(dir_ / "input.bin", std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  ExpectBadInput((dir_ / "input.bin").string() + " --tokenizer " + (kShared / "models/tok512.bin").string(), "non-finite");
}

TEST_F(PackCli, MissingTokenizer) {
  ExpectBadInput((kShared / "models/stories260K.bin").string(), "tokenizer");
}

TEST_F(PackCli, TokenizerTooSmallForTheVocabulary) {
  ExpectBadInput((kShared / "models/kjv6M.bin").string() + " --tokenizer " + (kShared / "models/tok512.bin").string(),
                 "tokenizer");
}

// A copy of the HF directory whose config.json or safetensors header is edited.
class HfCli : public PackCli {
 protected:
  fs::path CopyHf(const std::string& config_text, const std::string& safetensors_header) {
    const fs::path hf = dir_ / "input-hf";
    fs::create_directories(hf);
    std::ofstream(hf / "config.json") << config_text;
    const std::vector<uint8_t> st = qmc::host::ReadWholeFile(kShared / "models/kjv6M-hf/model.safetensors");
    uint64_t n;
    std::memcpy(&n, st.data(), 8);
    std::ofstream out(hf / "model.safetensors", std::ios::binary);
    const std::string header = safetensors_header.empty() ? std::string(st.begin() + 8, st.begin() + 8 + n) : safetensors_header;
    const uint64_t length = header.size();
    out.write(reinterpret_cast<const char*>(&length), 8);
    out.write(header.data(), static_cast<std::streamsize>(header.size()));
    out.write(reinterpret_cast<const char*>(st.data() + 8 + n), static_cast<std::streamsize>(st.size() - 8 - n));
    return hf;
  }
  std::string Config() const {
    std::ifstream in(kShared / "models/kjv6M-hf/config.json");
    return std::string(std::istreambuf_iterator<char>(in), {});
  }
  nlohmann::json Header() const {
    const std::vector<uint8_t> st = qmc::host::ReadWholeFile(kShared / "models/kjv6M-hf/model.safetensors");
    uint64_t n;
    std::memcpy(&n, st.data(), 8);
    return nlohmann::json::parse(std::string(st.begin() + 8, st.begin() + 8 + n));
  }
  std::string Args(const fs::path& hf) const {
    return hf.string() + " --tokenizer " + (kShared / "models/kjv_tok2048.bin").string();
  }
};

TEST_F(HfCli, MalformedConfigJson) {
  ExpectBadInput(Args(CopyHf("{\"hidden_size\": 288,", "")), "config.json");
}

TEST_F(HfCli, ShapeMismatch) {
  nlohmann::json config = nlohmann::json::parse(Config());
  config["intermediate_size"] = 700;
  ExpectBadInput(Args(CopyHf(config.dump(), "")), "shape");
}

TEST_F(HfCli, MissingTensor) {
  nlohmann::json header = Header();
  header.erase("model.norm.weight");
  ExpectBadInput(Args(CopyHf(Config(), header.dump())), "model.norm.weight");
}

TEST_F(HfCli, MalformedSafetensorsHeader) {
  ExpectBadInput(Args(CopyHf(Config(), "{\"model.embed_tokens.weight\": {\"dtype\": ")), "safetensors");
}

TEST_F(PackCli, WrongMagicGguf) {
  std::ofstream(dir_ / "input.gguf", std::ios::binary) << "GGUX" << std::string(100, '\0');
  ExpectBadInput((dir_ / "input.gguf").string() + " --tokenizer " + (kShared / "models/tok512.bin").string(), "");
}

TEST_F(PackCli, InspectRejectsACorruptImage) {
  const fs::path image = dir_ / "s.qmc";
  ASSERT_EQ(Qmc("pack -q " + Stories() + " -o " + image.string(), dir_).exit_code, 0);
  std::vector<uint8_t> bytes = qmc::host::ReadWholeFile(image);
  bytes[bytes.size() - 3] ^= 0x40;  // inside the last section
  std::ofstream(image, std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  const CliRun r = Qmc("inspect " + image.string(), dir_);
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_NE(r.err.find("CRC"), std::string::npos) << r.err;
  EXPECT_NE(r.out.find("BAD"), std::string::npos);
  bytes[0] = 'X';
  std::ofstream(image, std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  EXPECT_EQ(Qmc("inspect " + image.string(), dir_).exit_code, 3);
}

TEST_F(PackCli, UsageErrorsExitTwo) {
  EXPECT_EQ(Qmc("pack", dir_).exit_code, 2);
  EXPECT_EQ(Qmc("pack " + Stories() + " -o x.qmc --bits 7", dir_).exit_code, 2);
  EXPECT_EQ(Qmc("pack " + Stories() + " -o x.qmc --scheme gptq9", dir_).exit_code, 2);
  EXPECT_EQ(Qmc("--help", dir_).exit_code, 0);
}

}  // namespace

namespace {

class PresetCli : public PackCli {
 protected:
  nlohmann::json PackAndInspect(const std::string& flags) {
    const fs::path image = dir_ / "p.qmc";
    const CliRun pack = Qmc("pack " + Stories() + " -o " + image.string() + " " + flags, dir_);
    EXPECT_EQ(pack.exit_code, 0) << pack.err;
    const CliRun inspect = Qmc("inspect --json " + image.string(), dir_);
    EXPECT_EQ(inspect.exit_code, 0) << inspect.err;
    return nlohmann::json::parse(inspect.out);
  }

  // A usage error: exit 2, naming both flags, nothing written.
  void ExpectUsageError(const std::string& flags, const std::string& first, const std::string& second) {
    const CliRun r = Qmc("pack " + Stories() + " -o " + (dir_ / "out.qmc").string() + " " + flags, dir_);
    EXPECT_EQ(r.exit_code, 2) << r.err;
    EXPECT_NE(r.err.find(first), std::string::npos) << r.err;
    EXPECT_NE(r.err.find(second), std::string::npos) << r.err;
    EXPECT_FALSE(fs::exists(dir_ / "out.qmc"));
  }
};

// The paper's split: ρ 0.3 at 5 bits and 3-bit inliers is 0.7·3 + 0.3·5 =
// 3.6 value bits; all-in adds the bitmap (1 bit), the u32 row starts and two
// fp16 pairs per 64-wide row (0.5 + 1.0), and the embedding's 512-wide rows less.
TEST_F(PresetCli, PaperPresetsWriteTheSplitLayout) {
  for (const auto& [preset, cells] : {std::pair{"paper-3mlc", 3}, std::pair{"paper-2mlc", 2}}) {
    const nlohmann::json j = PackAndInspect(std::string("--preset ") + preset);
    EXPECT_EQ(j["preset"], preset);
    EXPECT_EQ(j["inlier_bits"], 3);
    EXPECT_EQ(j["outlier_bits"], 5);
    EXPECT_EQ(j["cell_bits"], cells);
    EXPECT_NEAR(j["outlier_fraction"].get<double>(), 0.3, 1e-3);
    EXPECT_NEAR(j["value_bits_per_weight"].get<double>(), 3.6, 2e-3);
    EXPECT_GT(j["bits_per_weight"].get<double>(), 3.6 + 1.0);
    EXPECT_LT(j["bits_per_weight"].get<double>(), 3.6 + 1.0 + 2.0);
    EXPECT_EQ(j["tensors"][2]["scheme"], "split");  // blk.0.attn_q.weight
    EXPECT_EQ(j["tensors"][2]["group_size"], 64);   // per channel: one inlier group per 64-wide row
  }
  const nlohmann::json exact = PackAndInspect("--preset exact-outliers");
  EXPECT_EQ(exact["outlier_bits"], 16);
  EXPECT_EQ(exact["tensors"][2]["scheme"], "group-affine");
  EXPECT_NEAR(exact["outlier_fraction"].get<double>(), 0.005, 1e-4);
}

TEST_F(PresetCli, ExplicitFlagsOverrideAPreset) {
  const nlohmann::json j = PackAndInspect("--preset paper-3mlc --outlier-ratio 0.1 --outlier-bits 6 --group 32");
  EXPECT_NEAR(j["outlier_fraction"].get<double>(), 0.1, 1e-3);
  EXPECT_EQ(j["outlier_bits"], 6);
  EXPECT_EQ(j["tensors"][2]["group_size"], 32);
  EXPECT_NEAR(j["value_bits_per_weight"].get<double>(), 0.9 * 3 + 0.1 * 6, 2e-3);
  // Without a preset, --outlier-bits alone selects the split layout.
  const nlohmann::json plain = PackAndInspect("--scheme qmc --outlier-ratio 0.2 --outlier-bits 4 --group channel");
  EXPECT_EQ(plain["tensors"][2]["scheme"], "split");
  EXPECT_EQ(plain["preset"], "");
}

// --noise-aware on picks a smaller inlier step than plain MSE under the
// profile's error rates, so the image differs; off matches an explicit off.
TEST_F(PresetCli, NoiseAwareScalesDependOnTheProfile) {
  const fs::path on = dir_ / "on.qmc", off = dir_ / "off.qmc";
  ASSERT_EQ(Qmc("pack " + Stories() + " -o " + on.string() + " --preset paper-3mlc", dir_).exit_code, 0);
  ASSERT_EQ(Qmc("pack " + Stories() + " -o " + off.string() + " --preset paper-3mlc --noise-aware off", dir_).exit_code, 0);
  EXPECT_NE(qmc::testing::Slurp(on), qmc::testing::Slurp(off));
}

TEST_F(PresetCli, ContradictingFlagsAreUsageErrorsNamingBoth) {
  ExpectUsageError("--preset paper-3mlc --scheme rtn", "--preset paper-3mlc", "--scheme rtn");
  ExpectUsageError("--preset paper-2mlc --cell-bits 3", "--preset paper-2mlc", "--cell-bits 3");
  ExpectUsageError("--preset paper-3mlc --outlier-bits fp16", "--preset paper-3mlc", "--outlier-bits fp16");
  ExpectUsageError("--preset exact-outliers --outlier-bits 5", "--preset exact-outliers", "--outlier-bits 5");
  ExpectUsageError("--preset paper-3mlc --outlier-ratio 0.95", "--outlier-ratio", "0.95");
  ExpectUsageError("--preset paper-3mlc --outlier-ratio -0.1", "--outlier-ratio", "-0.1");
}

TEST_F(PresetCli, BadDeviceProfilesNameTheKey) {
  const fs::path profile = dir_ / "input-profile.json";
  auto write = [&](const std::string& text) { std::ofstream(profile) << text; };
  const std::string good_modes = R"("1": {"p_down": 0.001, "p_up": 0.001}, "2": {"p_down": 0.01, "p_up": 0.01})";
  write(R"({"name": "x", "reram": {)" + good_modes + R"(}, "mram": {"bit_error_rate": 0}})");
  ExpectBadInput(Stories() + " --preset paper-3mlc --device " + profile.string(), "\"3\"");
  write(R"({"name": "x", "reram": {)" + good_modes + R"(, "3": {"p_down": 1.5, "p_up": 0}}, "mram": {"bit_error_rate": 0}})");
  ExpectBadInput(Stories() + " --preset paper-3mlc --device " + profile.string(), "p_down");
  write(R"({"name": "x", "reram": {)" + good_modes + R"(, "3": {"p_down": 0.1, "p_up": 0.1}}, "mram": {"bit_error_rate": 0}, "colour": 1})");
  ExpectBadInput(Stories() + " --preset paper-3mlc --device " + profile.string(), "colour");
}

}  // namespace

namespace {

// A missing input file is an I/O error (exit 4, README) whichever argument
// names it: one line naming the file, nothing written.
TEST_F(PackCli, AMissingFileExitsFourWhicheverArgumentNamesIt) {
  const std::string absent = (dir_ / "absent").string();
  const std::string model = (kShared / "models/stories260K.bin").string();
  const std::string tokenizer = (kShared / "models/tok512.bin").string();
  const std::string image = (dir_ / "image.qmc").string();
  ASSERT_EQ(Qmc("pack " + Stories() + " -o " + image, dir_).exit_code, 0);
  const std::string out = " -o " + (dir_ / "out.qmc").string();
  const std::string cases[] = {
      "pack " + absent + " --tokenizer " + tokenizer + out,
      "pack " + model + " --tokenizer " + absent + out,
      "pack " + model + " --tokenizer " + absent + ".json" + out,
      "pack " + absent + "-hf" + out,
      "pack --synthetic " + absent + ".json" + out,
      "pack " + Stories() + " --scheme gptq --calib " + absent + out,
      "pack " + Stories() + " --noise-aware on --device " + absent + out,
      "inspect " + absent,
      "run " + absent + " -n 1",
      "eval " + absent + " --text " + tokenizer,
      "eval " + image + " --text " + absent,
      "tokenize --tokenizer " + absent + " --text " + tokenizer,
      "tokenize " + image + " --text " + absent,
      "memsim " + absent,
      "nvm write " + absent + " " + (dir_ / "nvm").string(),
  };
  fs::create_directories(absent + "-hf");  // a directory without config.json
  for (const std::string& args : cases) {
    const CliRun r = Qmc(args, dir_);
    EXPECT_EQ(r.exit_code, 4) << args << "\n" << r.err;
    EXPECT_NE(r.err.find("cannot open"), std::string::npos) << args << "\n" << r.err;
    EXPECT_NE(r.err.find(absent), std::string::npos) << args << "\n" << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << args << "\n" << r.err;
    EXPECT_FALSE(fs::exists(dir_ / "out.qmc")) << args;
  }
}

}  // namespace
