// The paper's four models at their real widths on the emulated board, one
// layer deep: `qmc pack --synthetic CONFIG --synthetic-layers 1` (every
// dimension the config gives but the layer count), `qmc inspect`, `qmc nvm
// write` onto the paper-scale board, and greedy text from qmc-fw-emu equal
// to `qmc run`'s. The full-depth models are bench/paper_scale.sh's: hours
// of packing for ctest.
#include <gtest/gtest.h>

#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "tests/board_console.h"
#include "tests/cli_runner.h"

namespace {

namespace fs = std::filesystem;
using qmc::testing::CliRun;
using qmc::testing::Qmc;

const fs::path kShared = QMC_SHARED_DIR;
const fs::path kBoard = fs::path(QMC_SOURCE_DIR) / "hal/profiles/boards/paper-scale.json";

class PaperScale : public ::testing::TestWithParam<const char*> {
 protected:
  void SetUp() override {
    config_ = kShared / "models/paper" / GetParam() / "config.json";
    if (!fs::exists(config_)) GTEST_SKIP() << config_ << " is missing";
    dir_ = qmc::testing::FreshTestDir("qmc_paper_scale_");
  }
  void TearDown() override {
    if (!dir_.empty()) fs::remove_all(dir_);
  }

  fs::path config_, dir_;
};

TEST_P(PaperScale, OneFullWidthLayerRunsOnTheEmulatedBoardAsOnTheHost) {
  const fs::path image = dir_ / "model.qmc", nvm = dir_ / "nvm";
  // The vocab x dim embedding is most of a one-layer model; kept fp16 it
  // needs no scale search, which keeps this pack to seconds. The layer's
  // matrices are quantized as usual, by the tokenizer.json beside the config.
  CliRun r = Qmc("pack -q --synthetic " + config_.string() + " --synthetic-layers 1 --seed 1 --embedding fp16 -o " +
                     image.string(),
                 dir_);
  ASSERT_EQ(r.exit_code, 0) << r.err;

  r = Qmc("inspect --json " + image.string(), dir_);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const nlohmann::json summary = nlohmann::json::parse(r.out);
  const nlohmann::json config = nlohmann::json::parse(qmc::testing::Slurp(config_));
  EXPECT_EQ(summary["model"]["n_layers"].get<uint32_t>(), 1u);
  EXPECT_EQ(summary["model"]["dim"].get<uint32_t>(), config["hidden_size"].get<uint32_t>());
  EXPECT_EQ(summary["model"]["hidden_dim"].get<uint32_t>(), config["intermediate_size"].get<uint32_t>());
  EXPECT_EQ(summary["model"]["vocab_size"].get<uint32_t>(), config["vocab_size"].get<uint32_t>());

  r = Qmc("nvm write " + image.string() + " " + nvm.string() + " --board " + kBoard.string(), dir_);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string prompt = "The capital of France is";
  std::ofstream(dir_ / "in.txt") << "steps=8 " << prompt << "\n";
  const std::string command = "timeout 300 " QMC_FW_EMU " --nvm " + nvm.string() + " --board " + kBoard.string() +
                              " <" + (dir_ / "in.txt").string() + " >" + (dir_ / "fw_out.txt").string() + " 2>" +
                              (dir_ / "fw_err.txt").string();
  ASSERT_EQ(std::system(command.c_str()), 0) << qmc::testing::Slurp(dir_ / "fw_err.txt");
  const std::string firmware = qmc::testing::Slurp(dir_ / "fw_out.txt");

  r = Qmc("run " + image.string() + " -p '" + prompt + "' -n 8 -t 0", dir_);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(qmc::testing::GeneratedText(firmware), r.out) << firmware;
}

INSTANTIATE_TEST_SUITE_P(Models, PaperScale,
                         ::testing::Values("llama-3.2-3b", "qwen2.5-1.5b-instruct", "phi-1_5", "hymba-1.5b-base"),
                         [](const ::testing::TestParamInfo<const char*>& info) {
                           std::string name = info.param;
                           for (char& c : name) {
                             if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
                           }
                           return name;
                         });

}  // namespace
