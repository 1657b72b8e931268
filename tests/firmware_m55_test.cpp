// The firmware on the Cortex-M55 under QEMU (MPS3 AN547), run as a user
// runs it (toolchain/qemu-m55.sh), held to the same firmware on the emu
// board: for every scheme, greedy text must be byte-identical and the
// per-token traffic the firmware counts must agree. The image is built by
// the ctest fixture m55_common_freestanding (the m55 preset).
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <string>

#include <nlohmann/json.hpp>

#include "tests/board_console.h"
#include "tests/cli_runner.h"

namespace {

namespace fs = std::filesystem;

const fs::path kShared = QMC_SHARED_DIR;

using qmc::testing::CliRun;
using qmc::testing::Qmc;
using qmc::testing::Slurp;

// What the firmware answered to one console line: the text between the
// "ready" banner and the stats line, and the stats line's numbers.
struct Answer {
  bool complete = false;
  std::string text;
  std::map<std::string, double> stats;
};

Answer Parse(const std::string& out) {
  const std::vector<qmc::testing::BoardAnswer> answers = qmc::testing::BoardAnswers(out);
  if (answers.empty()) return {};
  return {true, answers[0].text, answers[0].stats};
}

class FirmwareM55 : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fs::exists(kShared / "models/stories260K.bin")) GTEST_SKIP() << "../shared/models is missing";
    ASSERT_TRUE(fs::exists(QMC_M55_ELF)) << QMC_M55_ELF << " is missing: the m55_common_freestanding fixture builds it";
    dir_ = qmc::testing::FreshTestDir("qmc_fw_m55_");
  }
  void TearDown() override { fs::remove_all(dir_); }

  fs::path Pack(const std::string& scheme) {
    const fs::path image = dir_ / (scheme + ".qmc");
    const std::string flags = scheme.rfind("paper-", 0) == 0 ? "--preset " + scheme : "--scheme " + scheme;
    const CliRun r = Qmc("pack " + qmc::testing::Stories260K() + " -q " + flags + " -o " + image.string(), dir_);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return image;
  }

  CliRun OnEmu(const fs::path& image, const std::string& line) {
    const fs::path nvm = dir_ / "nvm";
    fs::remove_all(nvm);
    const CliRun flashed = Qmc("nvm write " + image.string() + " " + nvm.string(), dir_);
    EXPECT_EQ(flashed.exit_code, 0) << flashed.err;
    const fs::path in = dir_ / "emu_in.txt", out = dir_ / "emu_out.txt", err = dir_ / "emu_err.txt";
    std::ofstream(in, std::ios::binary) << line << "\n";
    const int status = std::system(("timeout 120 " QMC_FW_EMU " --nvm " + nvm.string() + " <" + in.string() + " >" +
                                    out.string() + " 2>" + err.string())
                                       .c_str());
    return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, Slurp(out), Slurp(err)};
  }

  CliRun OnQemu(const fs::path& image, const std::string& line) {
    const fs::path out = dir_ / "qemu_out.txt", err = dir_ / "qemu_err.txt";
    const std::string command = "QMC=" QMC_CLI " QMC_M55_ELF=" QMC_M55_ELF " QMC_QEMU_TIMEOUT=300 " QMC_QEMU_M55 " " +
                                image.string() + " '" + line + "' >" + out.string() + " 2>" + err.string();
    const int status = std::system(command.c_str());
    return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, Slurp(out), Slurp(err)};
  }

  fs::path dir_;
};

TEST_F(FirmwareM55, GreedyTextMatchesTheEmuForEveryScheme) {
  // 128 steps take QEMU 2-5 s per scheme here (it emulates every instruction).
  const std::string line = "steps=128 temp=0 Once upon a time";
  for (const std::string scheme : {"f32", "fp16", "rtn", "qmc", "mxint4", "paper-3mlc", "paper-2mlc"}) {
    SCOPED_TRACE(scheme);
    const fs::path image = Pack(scheme);
    const CliRun emu = OnEmu(image, line);
    ASSERT_EQ(emu.exit_code, 0) << emu.out << emu.err;
    const CliRun qemu = OnQemu(image, line);
    ASSERT_EQ(qemu.exit_code, 0) << qemu.out << qemu.err;
    const Answer on_emu = Parse(emu.out), on_qemu = Parse(qemu.out);
    ASSERT_TRUE(on_emu.complete) << emu.out;
    ASSERT_TRUE(on_qemu.complete) << qemu.out;

    EXPECT_EQ(on_qemu.text, on_emu.text);
    EXPECT_GT(on_qemu.text.size(), std::string("Once upon a time").size());  // it generated something
    EXPECT_EQ(on_qemu.stats.at("positions"), 128);
    // The same firmware counts the same traffic and carves the same arena on both boards.
    for (const char* key : {"prompt_tokens", "mram_read/token", "reram_read/token", "dram_read/token",
                            "dram_written/token", "sram_used", "kv"}) {
      EXPECT_EQ(on_qemu.stats.at(key), on_emu.stats.at(key)) << key;
    }
    // Only the AN547 can tell its stack depth; the stack is 64 KiB (linker/mps3_an547.ld).
    EXPECT_EQ(on_emu.stats.count("stack_hw"), 0u);
    EXPECT_GT(on_qemu.stats.at("stack_hw"), 0);
    EXPECT_LT(on_qemu.stats.at("stack_hw"), 64 * 1024);
    EXPECT_GT(on_qemu.stats.at("cycles/token"), 0);
    EXPECT_NE(qemu.out.find("qemu-m55: instructions/token="), std::string::npos) << qemu.out;
  }
}

// Phi and Hymba in miniature (their real configs with tiny widths, seeded
// synthetic weights, stories260K's 512-token llama2.c vocabulary): the M55 gives the emu's
// greedy text. The Hymba covers its meta tokens, SSM, sliding window (past
// it) and a KV-sharing group.
TEST_F(FirmwareM55, PhiAndHymbaMatchTheEmu) {
  using nlohmann::json;
  auto read_config = [](const std::string& model) {
    std::ifstream in(kShared / "models/paper" / model / "config.json");
    return json::parse(in);
  };
  json phi = read_config("phi-1_5");
  phi.update({{"hidden_size", 64}, {"intermediate_size", 128}, {"num_hidden_layers", 2}, {"num_attention_heads", 4},
              {"vocab_size", 512}, {"max_position_embeddings", 128}});
  json hymba = read_config("hymba-1.5b-base");
  hymba.update({{"hidden_size", 64}, {"intermediate_size", 96}, {"num_hidden_layers", 4}, {"num_attention_heads", 4},
                {"num_key_value_heads", 2}, {"v_head_dim", 32}, {"mamba_dt_rank", 8}, {"mamba_d_state", 4},
                {"num_memory_tokens", 4}, {"sliding_window", 8}, {"global_attn_idx", {0, 3}},
                {"kv_reuse_group", {{1, 2}}}, {"layer_type", {"h", "h", "h", "h"}}, {"vocab_size", 512},
                {"max_position_embeddings", 128}, {"orig_max_position_embeddings", 64}});
  hymba.erase("conv_dim");
  const std::string line = "steps=40 temp=0 Once upon a time";
  for (const auto& [name, config] : {std::pair{"phi", phi}, std::pair{"hymba", hymba}}) {
    for (const std::string flags : {"--scheme f32", "--preset paper-3mlc"}) {
      SCOPED_TRACE(std::string(name) + " " + flags);
      const fs::path config_file = dir_ / (std::string(name) + ".json"), image = dir_ / (std::string(name) + ".qmc");
      std::ofstream(config_file) << config.dump();
      const CliRun packed = Qmc("pack --synthetic " + config_file.string() + " --seed 3 --tokenizer " +
                                    (kShared / "models/tok512.bin").string() + " -q " + flags + " -o " + image.string(),
                                dir_);
      ASSERT_EQ(packed.exit_code, 0) << packed.err;
      const CliRun emu = OnEmu(image, line), qemu = OnQemu(image, line);
      ASSERT_EQ(emu.exit_code, 0) << emu.out << emu.err;
      ASSERT_EQ(qemu.exit_code, 0) << qemu.out << qemu.err;
      const Answer on_emu = Parse(emu.out), on_qemu = Parse(qemu.out);
      ASSERT_TRUE(on_emu.complete) << emu.out;
      ASSERT_TRUE(on_qemu.complete) << qemu.out;
      EXPECT_EQ(on_qemu.text, on_emu.text);
      EXPECT_GT(on_qemu.text.size(), std::string("Once upon a time").size());
      EXPECT_EQ(on_qemu.stats.at("positions"), on_emu.stats.at("positions"));
      for (const char* key : {"mram_read/token", "reram_read/token", "dram_read/token", "sram_used", "kv"}) {
        EXPECT_EQ(on_qemu.stats.at(key), on_emu.stats.at(key)) << key;
      }
    }
  }
}

TEST_F(FirmwareM55, AConsoleErrorStopsTheRunner) {
  const CliRun qemu = OnQemu(Pack("rtn"), "temp=warm Once");
  EXPECT_EQ(qemu.exit_code, 1) << qemu.out << qemu.err;
  EXPECT_NE(qemu.out.find("qmc-fw: error: temp= takes a number"), std::string::npos) << qemu.out;
  EXPECT_EQ(qemu.out.find("qmc-fw: stats"), std::string::npos) << qemu.out;
}

}  // namespace
