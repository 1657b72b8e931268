// bench/power_cut_campaign on a small sample, so CI keeps it: every scenario
// (cuts in full and delta flashes and in the commit record, the first flash
// onto a blank board, killed boards and killed flashers) runs, no trial
// breaks a rule, and the tally adds up.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <regex>
#include <string>

#include "tests/cli_runner.h"

namespace {

namespace fs = std::filesystem;
using qmc::testing::Slurp;

TEST(PowerCutCampaign, ASmallSampleKeepsEveryBoardBootable) {
  if (!fs::exists(fs::path(QMC_SHARED_DIR) / "models/stories260K.bin")) GTEST_SKIP() << "../shared/models is missing";
  const fs::path dir = qmc::testing::FreshTestDir("qmc_power_cut_");
  const fs::path out = dir / "out.txt", err = dir / "err.txt";
  constexpr int kTrials = 30;
  const int status = std::system((std::string(QMC_POWER_CUT_CAMPAIGN) + " --trials " + std::to_string(kTrials) +
                                  " --seed 7 --recover-every 5 >" + out.string() + " 2>" + err.string())
                                     .c_str());
  const std::string report = Slurp(out);
  std::printf("%s", report.c_str());
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << Slurp(err);
  EXPECT_EQ(Slurp(err), "");  // a broken rule is reported there

  std::smatch m;
  ASSERT_TRUE(std::regex_search(report, m,
                                std::regex("power-cut campaign: (\\d+) trials, seed 7, \\d+ s: old (\\d+), new (\\d+), "
                                           "no image (\\d+), re-flashed (\\d+), violations (\\d+)")))
      << report;
  EXPECT_EQ(std::stoi(m[1]), kTrials);
  EXPECT_EQ(std::stoi(m[2]) + std::stoi(m[3]) + std::stoi(m[4]), kTrials);
  EXPECT_GT(std::stoi(m[2]), 0);  // some faults came before the commit
  EXPECT_GT(std::stoi(m[5]), 0);
  EXPECT_EQ(std::stoi(m[6]), 0);
  // Every scenario ran its share.
  for (const char* scenario : {"full", "delta", "commit", "blank", "kill-board", "kill-flasher"}) {
    EXPECT_TRUE(std::regex_search(report, std::regex(std::string("\\| ") + scenario + " \\| 5 \\|"))) << scenario;
  }
  fs::remove_all(dir);
}

}  // namespace
