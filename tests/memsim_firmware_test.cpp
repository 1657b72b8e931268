// Measured agrees with modelled: for both real models and every scheme, the
// bytes per token per window `qmc memsim IMAGE --prompt P --generate G`
// predicts (common/tensor_traffic.h, one definition) equal what qmc-fw-emu's
// stats line reports over the same run. The one term a model of the run
// cannot know is which embedding rows the tokens pick: memsim counts the
// mean row; the test adds the difference the run's actual tokens make
// (zero for schemes whose rows all read the same bytes).
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <regex>
#include <string>
#include <vector>

#include "common/engine.h"
#include "common/tensor_traffic.h"
#include "host/eval.h"
#include "tests/board_console.h"
#include "tests/cli_runner.h"
#include "tests/firmware_tokens.h"

namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using qmc::testing::CliRun;
using qmc::testing::GreedyTokens;
using qmc::testing::Qmc;

const fs::path kShared = QMC_SHARED_DIR;

struct RunCase {
  const char* model;
  const char* flags;
};

void PrintTo(const RunCase& c, std::ostream* os) { *os << c.model << " " << c.flags; }

// The stats line of the board's first answer.
std::map<std::string, double> Stats(const std::string& out) {
  const std::vector<qmc::testing::BoardAnswer> answers = qmc::testing::BoardAnswers(out);
  return answers.empty() ? std::map<std::string, double>() : answers[0].stats;
}

class MemsimMeasured : public ::testing::TestWithParam<RunCase> {};

TEST_P(MemsimMeasured, PredictedBytesPerTokenAreTheFirmwaresCounts) {
  if (!fs::exists(kShared / "models/stories260K.bin")) GTEST_SKIP() << "../shared/models is missing";
  const fs::path dir = qmc::testing::FreshTestDir("qmc_memsim_fw_");
  const RunCase c = GetParam();
  const bool stories = std::string(c.model) == "stories260K";
  const std::string checkpoint = stories ? (kShared / "models/stories260K.bin").string() + " --tokenizer " +
                                               (kShared / "models/tok512.bin").string()
                                         : (kShared / "models/kjv6M-hf").string() + " --tokenizer " +
                                               (kShared / "models/kjv_tok2048.bin").string();
  const std::string prompt = stories ? "Once upon a time" : "And the LORD said";
  const uint32_t steps = 24;
  const fs::path image = dir / "model.qmc", nvm = dir / "nvm";
  CliRun r = Qmc("pack " + checkpoint + " -q " + c.flags + " -o " + image.string(), dir);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = Qmc("nvm write " + image.string() + " " + nvm.string(), dir);
  ASSERT_EQ(r.exit_code, 0) << r.err;

  // Measured: the firmware on the emu board.
  std::ofstream(dir / "in.txt") << "steps=" << steps << " " << prompt << "\n";
  const std::string command = "timeout 120 " QMC_FW_EMU " --nvm " + nvm.string() + " <" + (dir / "in.txt").string() +
                              " >" + (dir / "out.txt").string() + " 2>" + (dir / "err.txt").string();
  ASSERT_EQ(std::system(command.c_str()), 0) << qmc::testing::Slurp(dir / "err.txt");
  const std::map<std::string, double> stats = Stats(qmc::testing::Slurp(dir / "out.txt"));
  ASSERT_FALSE(stats.empty()) << qmc::testing::Slurp(dir / "out.txt");
  const auto positions = static_cast<uint32_t>(stats.at("positions"));
  const auto prompt_tokens = static_cast<uint32_t>(std::min(stats.at("prompt_tokens"), stats.at("positions")));

  // Modelled: memsim on the image, the same run (f32 KV cache, the console's default).
  r = Qmc("memsim " + image.string() + " --json --kv f32 --prompt " + std::to_string(prompt_tokens) + " --generate " +
              std::to_string(positions - prompt_tokens),
          dir);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json windows = json::parse(r.out)["results"][0]["all_in"]["windows"];

  // The run's embedding rows against the mean row memsim counts.
  const std::string bytes = qmc::testing::Slurp(image);
  const std::vector<uint8_t> file(bytes.begin(), bytes.end());
  const qmc::image::ImageView view = qmc::image::ImageView::OpenFile(file).value();
  ASSERT_TRUE(view.Validate().ok());
  const std::vector<uint32_t> tokens = GreedyTokens(view, prompt, steps);
  ASSERT_EQ(tokens.size(), positions);
  const qmc::image::TensorEntry embedding = view.tensor(view.FindTensor("token_embd.weight"));
  qmc::ReadCounter all_rows, run_rows;
  for (uint32_t row = 0; row < embedding.rows; ++row) qmc::AddRowTraffic(view, embedding, row, 1, all_rows);
  for (uint32_t token : tokens) qmc::AddRowTraffic(view, embedding, token, 1, run_rows);

  const char* names[] = {"sram", "mram", "reram", "dram"};
  for (uint32_t w = 1; w < 4; ++w) {
    const double mean_row = static_cast<double>(all_rows.read[w]) / embedding.rows;
    const double correction = static_cast<double>(run_rows.read[w]) / positions - mean_row;
    const double predicted = windows[names[w]]["read_bytes_per_token"].get<double>();
    const double measured = stats.at(std::string(names[w]) + "_read/token");  // rounded to a byte
    EXPECT_NEAR(predicted + correction, measured, 0.5 + 1e-6) << names[w] << ": correction " << correction;
    if (all_rows.read[w] % embedding.rows == 0) {
      EXPECT_NEAR(predicted, measured, 0.5 + 1e-6) << names[w] << ": every row reads the same bytes";
    }
  }
  EXPECT_NEAR(windows["dram"]["written_bytes_per_token"].get<double>(), stats.at("dram_written/token"), 0.5 + 1e-6);
  fs::remove_all(dir);
}

INSTANTIATE_TEST_SUITE_P(
    Schemes, MemsimMeasured,
    ::testing::Values(RunCase{"stories260K", "--scheme f32"}, RunCase{"stories260K", "--scheme fp16"},
                      RunCase{"stories260K", "--scheme rtn"}, RunCase{"stories260K", "--scheme qmc"},
                      RunCase{"stories260K", "--scheme mxint4"}, RunCase{"stories260K", "--preset paper-3mlc"},
                      RunCase{"stories260K", "--preset paper-2mlc"}, RunCase{"kjv6M", "--scheme f32"},
                      RunCase{"kjv6M", "--scheme fp16"}, RunCase{"kjv6M", "--scheme rtn"},
                      RunCase{"kjv6M", "--scheme qmc"}, RunCase{"kjv6M", "--scheme mxint4"},
                      RunCase{"kjv6M", "--preset paper-3mlc"}, RunCase{"kjv6M", "--preset paper-2mlc"}),
    [](const ::testing::TestParamInfo<RunCase>& info) {
      std::string name = std::string(info.param.model) + "_" + (std::string(info.param.flags).substr(
                                                                    std::string(info.param.flags).find(' ') + 1));
      for (char& ch : name) {
        if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
      }
      return name;
    });

}  // namespace

namespace {

// The emu board takes its window sizes from a board profile: sparse files
// of those sizes, written by qmc nvm write --board and booted by
// qmc-fw-emu --board; a board of other sizes refuses them.
TEST(EmuBoardProfile, WindowSizesComeFromTheBoardProfile) {
  if (!fs::exists(kShared / "models/stories260K.bin")) GTEST_SKIP() << "../shared/models is missing";
  const fs::path dir = qmc::testing::FreshTestDir("qmc_emu_profile_");
  const fs::path image = dir / "model.qmc";
  CliRun r = Qmc("pack " + qmc::testing::Stories260K() + " -q --preset paper-3mlc -o " + image.string(), dir);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const fs::path profile = fs::path(QMC_SOURCE_DIR) / "hal/profiles/boards/paper-soc.json";
  const json sizes = json::parse(qmc::testing::Slurp(profile))["emu_window_mib"];
  const fs::path nvm = dir / "nvm";
  r = Qmc("nvm write " + image.string() + " " + nvm.string() + " --board " + profile.string(), dir);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (const char* w : {"mram", "reram", "dram"}) {
    const fs::path file = nvm / (std::string(w) + ".bin");
    EXPECT_EQ(fs::file_size(file), sizes[w].get<uint64_t>() << 20) << w;
    struct stat st {};
    ASSERT_EQ(::stat(file.c_str(), &st), 0);
    EXPECT_LT(static_cast<uint64_t>(st.st_blocks) * 512, (sizes[w].get<uint64_t>() << 20) / 64) << w << " is not sparse";
  }
  auto run = [&](const std::string& options) {
    std::ofstream(dir / "in.txt") << "steps=8 Once upon a time\n";
    const std::string command = "timeout 60 " QMC_FW_EMU " --nvm " + nvm.string() + " " + options + " <" +
                                (dir / "in.txt").string() + " >" + (dir / "out.txt").string() + " 2>" +
                                (dir / "err.txt").string();
    const int status = std::system(command.c_str());
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  };
  EXPECT_EQ(run("--board " + profile.string()), 0) << qmc::testing::Slurp(dir / "err.txt");
  EXPECT_EQ(Stats(qmc::testing::Slurp(dir / "out.txt")).at("positions"), 8);
  // The default board's windows are other sizes: refused, naming the file.
  EXPECT_EQ(run(""), 1);
  EXPECT_NE(qmc::testing::Slurp(dir / "err.txt").find("mram.bin"), std::string::npos);
  // A bad size is one line naming the key.
  json bad = json::parse(qmc::testing::Slurp(profile));
  bad["emu_window_mib"]["dram"] = 4096;
  std::ofstream(dir / "bad.json") << bad.dump();
  r = Qmc("nvm write " + image.string() + " " + (dir / "nvm2").string() + " --board " + (dir / "bad.json").string(), dir);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("emu_window_mib.dram"), std::string::npos) << r.err;
  fs::remove_all(dir);
}

}  // namespace
