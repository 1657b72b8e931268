// qmc memsim: board profiles (shipped ones parse, bad ones fail naming the
// field), the layout of a model config equal to what qmc pack + inspect
// give for the real checkpoints, and the QMC paper's memory-system numbers
// reproduced from Hymba's config (docs/memory-model.md).
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <nlohmann/json.hpp>
#include <string>

#include "host/board_profile.h"
#include "host/design_search.h"
#include "host/pack_presets.h"
#include "host/checkpoint.h"
#include "host/memsim.h"
#include "host/model_layout.h"
#include "host/model_shapes.h"
#include "tests/cli_runner.h"

namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using qmc::testing::CliRun;
using qmc::testing::Qmc;

const fs::path kShared = QMC_SHARED_DIR;
const fs::path kSource = QMC_SOURCE_DIR;

std::string ReadText(const fs::path& p) { return qmc::testing::Slurp(p); }

// ---- Board profiles

TEST(BoardProfiles, EveryShippedProfileParsesAndIsBuiltIn) {
  std::vector<std::string> files;
  for (const auto& entry : fs::directory_iterator(kSource / "hal/profiles/boards")) {
    files.push_back(entry.path().stem().string());
    const qmc::host::BoardProfile from_file = qmc::host::LoadBoardProfile(entry.path().string());
    const qmc::host::BoardProfile built_in = qmc::host::LoadBoardProfile(entry.path().stem().string());
    EXPECT_EQ(from_file.name, entry.path().stem().string()) << "a profile's name is its file's";
    EXPECT_EQ(built_in.memories.size(), from_file.memories.size());
    for (uint32_t w = 1; w < 4; ++w) EXPECT_GE(from_file.window_memory[w], 0);
  }
  std::sort(files.begin(), files.end());
  std::vector<std::string> built_in = qmc::host::BuiltInBoards();
  std::sort(built_in.begin(), built_in.end());
  EXPECT_EQ(files, built_in);
}

TEST(BoardProfiles, ThePaperSocHasTable1) {
  const qmc::host::BoardProfile b = qmc::host::LoadBoardProfile("paper-soc");
  const qmc::host::Memory& mram = b.WindowMemory(qmc::image::Window::kMram);
  const qmc::host::Memory& reram = b.WindowMemory(qmc::image::Window::kReram);
  const qmc::host::Memory& dram = b.WindowMemory(qmc::image::Window::kDram);
  EXPECT_EQ(mram.read_energy_pj_per_bit(1), 1.0);
  EXPECT_EQ(mram.bandwidth_gib_s(1), 36.57);
  EXPECT_EQ(mram.access_latency_ns, 3.5);
  EXPECT_EQ(mram.density_mbit_per_mm2(1), 66);
  EXPECT_EQ(mram.placement, "on-package");
  EXPECT_DOUBLE_EQ(mram.link.bytes_per_s, 64e9 * 64 / 8);  // UCIe 64 GT/s x 64
  EXPECT_EQ(reram.read_energy_pj_per_bit(3), 1.56);
  EXPECT_EQ(reram.bandwidth_gib_s(3), 1.8);
  EXPECT_EQ(reram.density_mbit_per_mm2(3), 30.1);
  EXPECT_EQ(reram.placement, "off-chip");
  EXPECT_DOUBLE_EQ(reram.link.bytes_per_s, 3.3e9 * 64);  // 3.3 GHz x 64 B
  EXPECT_EQ(dram.read_energy_pj_per_bit(1), 3.5);
  EXPECT_EQ(dram.bandwidth_gib_s(1), 186.26);
  EXPECT_EQ(dram.access_latency_ns, 1.7);
  EXPECT_EQ(dram.density_mbit_per_mm2(1), 209.9);
  EXPECT_GE(b.cdc_cycles, 2);
  EXPECT_LE(b.cdc_cycles, 4);
}

// The paper SoC's profile with one edit; the error must name `field`.
void ExpectRejected(const std::function<void(json&)>& edit, const std::string& field) {
  json profile = json::parse(ReadText(kSource / "hal/profiles/boards/paper-soc.json"));
  edit(profile);
  try {
    qmc::host::ParseBoardProfile(profile.dump(), "edited.json");
    ADD_FAILURE() << "accepted; expected an error naming " << field;
  } catch (const qmc::host::InputError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find(field), std::string::npos) << what;
    EXPECT_EQ(what.find('\n'), std::string::npos) << what;
  }
}

TEST(BoardProfiles, BadProfilesNameTheField) {
  ExpectRejected([](json& p) { p["memories"]["reram"].erase("read_energy_pj_per_bit"); },
                 "memories.reram.read_energy_pj_per_bit is missing");
  ExpectRejected([](json& p) { p["memories"]["mram"]["bandwidth_gib_s"] = -1; },
                 "memories.mram.bandwidth_gib_s is -1");
  ExpectRejected([](json& p) { p["memories"]["lpddr5"]["access_latency_ns"] = -0.5; },
                 "memories.lpddr5.access_latency_ns is -0.5");
  ExpectRejected([](json& p) { p["memories"]["mram"]["speed"] = 3; }, "memories.mram.speed is not a known key");
  ExpectRejected([](json& p) { p["windows"]["reram"] = "rram"; }, "windows.reram names memory 'rram'");
  ExpectRejected([](json& p) { p["storage"] = "flash"; }, "storage names memory 'flash'");
  ExpectRejected([](json& p) { p["memories"]["reram"]["density_mbit_per_mm2"].erase("2"); },
                 "memories.reram.density_mbit_per_mm2.2 is missing");
  ExpectRejected([](json& p) { p["memories"]["mram"]["units"] = 0; }, "memories.mram.units is 0");
  ExpectRejected([](json& p) { p["memories"]["mram"]["link"].erase("energy_pj_per_bit"); },
                 "memories.mram.link.energy_pj_per_bit is missing");
  ExpectRejected([](json& p) { p["sync"].erase("cdc_cycles"); }, "sync.cdc_cycles is missing");
  ExpectRejected([](json& p) { p["design_search"]["power_budget_w"] = -5; }, "design_search.power_budget_w is -5");
  ExpectRejected([](json& p) { p.erase("windows"); }, "windows is missing");
  ExpectRejected([](json& p) { p["emu_window_mib"]["dram"] = 4096; }, "emu_window_mib.dram is 4096");
  ExpectRejected([](json& p) { p["emu_window_mib"]["flash"] = 1; }, "emu_window_mib.flash is not a known key");
}

class MemsimCli : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fs::exists(kShared / "models/stories260K.bin")) GTEST_SKIP() << "../shared/models is missing";
    dir_ = qmc::testing::FreshTestDir("qmc_memsim_");
  }
  void TearDown() override { fs::remove_all(dir_); }
  // exit 1 and one line on stderr naming `word`.
  void ExpectBadInput(const std::string& args, const std::string& word) {
    const CliRun r = Qmc("memsim " + args, dir_);
    EXPECT_EQ(r.exit_code, 1) << r.err;
    EXPECT_NE(r.err.find(word), std::string::npos) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  }
  fs::path dir_;
};

TEST_F(MemsimCli, ABadProfileOrConfigIsOneLineAndExit1) {
  const std::string config = (kShared / "models/kjv6M-hf/config.json").string();
  json profile = json::parse(ReadText(kSource / "hal/profiles/boards/paper-soc.json"));
  profile["memories"]["mram"]["read_energy_pj_per_bit"] = -1;
  std::ofstream(dir_ / "negative.json") << profile.dump();
  ExpectBadInput(config + " --board " + (dir_ / "negative.json").string(), "memories.mram.read_energy_pj_per_bit");
  profile = json::parse(ReadText(kSource / "hal/profiles/boards/paper-soc.json"));
  profile["windows"]["mram"] = "sram";
  std::ofstream(dir_ / "unknown.json") << profile.dump();
  ExpectBadInput(config + " --board " + (dir_ / "unknown.json").string(), "names memory 'sram'");
  ExpectBadInput(config + " --board no-such-board", "no-such-board");
  std::ofstream(dir_ / "config.json") << R"({"model_type": "gpt2", "hidden_size": 64})";
  ExpectBadInput((dir_ / "config.json").string(), "model_type");
  std::ofstream(dir_ / "config.json") << R"({"model_type": "llama", "hidden_size": 64})";
  ExpectBadInput((dir_ / "config.json").string(), "intermediate_size");
  std::ofstream(dir_ / "config.json") << R"({"model_type": "hymba", "hidden_size": -4})";
  ExpectBadInput((dir_ / "config.json").string(), "hidden_size");
}

TEST_F(MemsimCli, TextJsonAndCsv) {
  const std::string config = (kShared / "models/kjv6M-hf/config.json").string() + " --preset paper-3mlc";
  CliRun r = Qmc("memsim " + config, dir_);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (const char* word : {"paper-3mlc on paper-soc", "bits/w", "cells/w", "energy per token", "latency per token",
                           "fp16 @ orin-lpddr5", "int4 @ emems-reram", "area"}) {
    EXPECT_NE(r.out.find(word), std::string::npos) << word << "\n" << r.out;
  }
  r = Qmc("memsim " + config + " --json --board paper-soc --board emems-reram", dir_);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json j = json::parse(r.out);
  ASSERT_EQ(j["results"].size(), 2u);
  EXPECT_EQ(j["results"][1]["board"], "emems-reram");
  EXPECT_TRUE(j["results"][0]["paper"]["ratios"].contains("fp16 @ orin-lpddr5"));
  r = Qmc("memsim " + config + " --csv", dir_);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  // A header, then paper and all-in rows for the subject and the four references.
  EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 1 + 2 * 5) << r.out;
  EXPECT_EQ(r.out.rfind("scheme,board,role,accounting,", 0), 0u);
  // Two workloads at once, and scheme flags for an image (whose scheme is its own), are usage errors.
  EXPECT_EQ(Qmc("memsim " + (kShared / "models/kjv6M-hf/config.json").string() + " --context 4 --prompt 3", dir_).exit_code, 2);
  ASSERT_EQ(Qmc("pack " + qmc::testing::Stories260K() + " -q -o " + (dir_ / "s.qmc").string(), dir_).exit_code, 0);
  EXPECT_EQ(Qmc("memsim " + (dir_ / "s.qmc").string() + " --preset paper-3mlc", dir_).exit_code, 2);
  r = Qmc("memsim " + (dir_ / "s.qmc").string() + " --context 64", dir_);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("qmc on paper-soc"), std::string::npos) << r.out;
}

// ---- The layout of a config is the bytes packing lays out.

struct LayoutCase {
  const char* model;  // checkpoint args for qmc pack (and memsim's input + --tokenizer)
  const char* flags;
};

std::string Checkpoint(const std::string& model) {
  if (model == "stories260K") return (kShared / "models/stories260K.bin").string();
  return (kShared / "models/kjv6M-hf").string();
}
std::string Tokenizer(const std::string& model) {
  return (kShared / (model == "stories260K" ? "models/tok512.bin" : "models/kjv_tok2048.bin")).string();
}

void PrintTo(const LayoutCase& c, std::ostream* os) { *os << c.model << " " << c.flags; }

class MemsimLayout : public ::testing::TestWithParam<LayoutCase> {};

TEST_P(MemsimLayout, EqualsPackAndInspect) {
  if (!fs::exists(kShared / "models/stories260K.bin")) GTEST_SKIP() << "../shared/models is missing";
  const fs::path dir = qmc::testing::FreshTestDir("qmc_memsim_layout_");
  const LayoutCase c = GetParam();
  const std::string model = Checkpoint(c.model), tokenizer = " --tokenizer " + Tokenizer(c.model);
  const fs::path image = dir / "model.qmc";
  CliRun r = Qmc("pack " + model + tokenizer + " -q --json " + c.flags + " -o " + image.string(), dir);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json packed = json::parse(r.out);
  // From the config alone (the checkpoint's; for kjv6M-hf the config.json).
  r = Qmc("memsim " + model + tokenizer + " --json " + c.flags, dir);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json modelled = json::parse(r.out)["results"][0];
  // From the image.
  r = Qmc("memsim " + image.string() + " --json", dir);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json measured = json::parse(r.out)["results"][0];
  for (const json* m : {&modelled, &measured}) {
    for (const char* w : {"mram", "reram", "dram"}) {
      EXPECT_EQ((*m)["bytes_by_window"][w], packed["bytes_by_window"][w]) << w;
    }
    EXPECT_DOUBLE_EQ((*m)["matrix_bits_per_weight"].get<double>(), packed["bits_per_weight"].get<double>());
    EXPECT_DOUBLE_EQ((*m)["value_bits_per_weight"].get<double>(), packed["value_bits_per_weight"].get<double>());
    EXPECT_DOUBLE_EQ((*m)["outlier_fraction"].get<double>(), packed["outlier_fraction"].get<double>());
  }
  // Stored bits per window agree exactly in both accountings; bytes per
  // token up to the embedding row (real outlier positions vs spread evenly).
  for (const char* a : {"paper", "all_in"}) {
    for (const char* w : {"mram", "reram", "dram"}) {
      EXPECT_DOUBLE_EQ(modelled[a]["windows"][w]["bits_per_weight"].get<double>(),
                       measured[a]["windows"][w]["bits_per_weight"].get<double>())
          << a << " " << w;
      EXPECT_NEAR(modelled[a]["windows"][w]["read_bytes_per_token"].get<double>(),
                  measured[a]["windows"][w]["read_bytes_per_token"].get<double>(), 40.0)
          << a << " " << w;
    }
  }
  fs::remove_all(dir);
}

INSTANTIATE_TEST_SUITE_P(
    Schemes, MemsimLayout,
    ::testing::Values(LayoutCase{"stories260K", "--scheme f32"}, LayoutCase{"stories260K", "--scheme fp16"},
                      LayoutCase{"stories260K", "--scheme rtn"}, LayoutCase{"stories260K", "--scheme qmc"},
                      LayoutCase{"stories260K", "--scheme mxint4"}, LayoutCase{"stories260K", "--preset paper-3mlc"},
                      LayoutCase{"stories260K", "--preset paper-2mlc"},
                      LayoutCase{"stories260K", "--scheme rtn --bits 4 --group channel"},
                      LayoutCase{"stories260K", "--scheme qmc --outlier-balance row --embedding fp16"},
                      LayoutCase{"stories260K", "--scheme qmc --outlier-bits 6 --outlier-ratio 0.1 --group 32 --cell-bits 2"},
                      LayoutCase{"kjv6M", "--scheme f32"}, LayoutCase{"kjv6M", "--scheme fp16"},
                      LayoutCase{"kjv6M", "--scheme rtn"}, LayoutCase{"kjv6M", "--scheme qmc"},
                      LayoutCase{"kjv6M", "--scheme mxint4"}, LayoutCase{"kjv6M", "--preset paper-3mlc"},
                      LayoutCase{"kjv6M", "--preset paper-2mlc"}),
    [](const ::testing::TestParamInfo<LayoutCase>& info) {
      std::string name = std::string(info.param.model) + "_" + info.param.flags;
      for (char& ch : name) {
        if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
      }
      return name;
    });

// ---- The paper's numbers, from Hymba's config on the paper's SoC.

json Hymba(const std::string& flags, fs::path dir) {
  const CliRun r = Qmc("memsim " + (kShared / "models/paper/hymba-1.5b-base/config.json").string() + " --json " + flags, dir);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return json::parse(r.out);
}

TEST(MemsimTargets, HymbaOnThePaperSocReproducesThePapersRatios) {
  if (!fs::exists(kShared / "models/paper/hymba-1.5b-base/config.json")) GTEST_SKIP() << "../shared/models/paper is missing";
  const fs::path dir = qmc::testing::FreshTestDir("qmc_memsim_targets_");
  const json mlc3 = Hymba("--preset paper-3mlc", dir);
  const json mlc2 = Hymba("--preset paper-2mlc", dir);
  // N: every linear layer's weights and the tied embedding once (docs/memory-model.md).
  EXPECT_EQ(mlc3["model"]["matrix_weights"], 1519924800u);
  const json& p3 = mlc3["results"][0]["paper"];
  const json& p2 = mlc2["results"][0]["paper"];
  const json& vs_fp16_3 = p3["ratios"]["fp16 @ orin-lpddr5"];
  const json& vs_fp16_2 = p2["ratios"]["fp16 @ orin-lpddr5"];
  EXPECT_NEAR(vs_fp16_3["memory"].get<double>(), 4.44, 0.005);     // 16 / 3.6
  EXPECT_NEAR(vs_fp16_2["memory"].get<double>(), 4.44, 0.005);
  EXPECT_NEAR(vs_fp16_3["cells"].get<double>(), 7.27, 0.005);      // 16 / 2.2
  EXPECT_NEAR(vs_fp16_2["cells"].get<double>(), 6.27, 0.005);      // 16 / 2.55
  EXPECT_NEAR(vs_fp16_3["cells_with_storage"].get<double>(), 14.54, 0.01);  // 32 / 2.2, LPDDR5 + Flash
  EXPECT_NEAR(vs_fp16_3["transfers"].get<double>(), 7.62, 0.005);  // 16 / 2.1: only ReRAM is off-chip
  EXPECT_NEAR(vs_fp16_2["transfers"].get<double>(), 7.62, 0.005);
  // Areas: ReRAM 0.7 x 3 x N / 30.1 Mb/mm2, MRAM 0.3 x 5 x N / 66 Mb/mm2 (Mb = 2^20 bits).
  double reram = 0, total = p3["area_mm2"].get<double>();
  for (const json& m : p3["memories"]) {
    if (m["name"] == "reram") reram = m["area_mm2"].get<double>();
  }
  EXPECT_NEAR(reram, 100.65, 100.65 * 0.01);
  EXPECT_NEAR(total, 133.66, 133.66 * 0.01);
  // What docs/memory-model.md reports for energy and latency with the shipped profiles.
  EXPECT_NEAR(vs_fp16_3["energy"].get<double>(), 10.72, 0.01);
  EXPECT_NEAR(vs_fp16_3["latency"].get<double>(), 7.50, 0.01);
  // Against INT4 in one off-chip NVM (eMEMs-like): 4 / 2.2 memory cells, 4 / 2.1 latency.
  const json& vs_emems = p3["ratios"]["int4 @ emems-reram"];
  EXPECT_NEAR(vs_emems["cells"].get<double>(), 1.82, 0.005);
  EXPECT_NEAR(vs_emems["latency"].get<double>(), 1.90, 0.005);
  fs::remove_all(dir);
}

// The data-free shapes of the paper's other models: the published parameter counts.
TEST(ModelShapes, ThePapersModelsHaveTheirPublishedSizes) {
  if (!fs::exists(kShared / "models/paper")) GTEST_SKIP() << "../shared/models/paper is missing";
  struct Case {
    const char* dir;
    uint64_t matrix_weights;
  };
  // Linear layers plus the embedding (once when tied); norms and biases excluded.
  const Case cases[] = {{"qwen2.5-1.5b-instruct", 1543569408u},
                        {"llama-3.2-3b", 3212574720u},
                        {"phi-1_5", 1417674752u},
                        {"hymba-1.5b-base", 1519924800u}};
  for (const Case& c : cases) {
    const qmc::host::ModelShape s = qmc::host::LoadModelShape(kShared / "models/paper" / c.dir / "config.json");
    EXPECT_EQ(s.MatrixWeights(), c.matrix_weights) << c.dir;
  }
  const qmc::host::ModelShape hymba = qmc::host::LoadModelShape(kShared / "models/paper/hymba-1.5b-base/config.json");
  int owners = 0, global = 0;
  for (const auto& a : hymba.attention) {
    owners += a.owns_cache;
    global += a.window == 0;
  }
  EXPECT_EQ(owners, 17);  // ARCHITECTURES.md: 17 layers own a cache
  EXPECT_EQ(global, 3);
  EXPECT_EQ(hymba.state_elements, 32u * (3200u * 3u + 3200u * 16u));
}

}  // namespace

namespace {

// ---- The design search (Eq. 4).

TEST(MemsimSearch, KeepsTheFastestConfigurationWithinTheBudget) {
  if (!fs::exists(kShared / "models/paper/hymba-1.5b-base/config.json")) GTEST_SKIP() << "../shared/models/paper is missing";
  using namespace qmc::host;
  const ModelShape shape = LoadModelShape(kShared / "models/paper/hymba-1.5b-base/config.json");
  QuantOptions options = FindPreset("paper-3mlc")->options;
  const ModelLayout layout = LayOutModel(shape, options, "paper-3mlc");
  const BoardProfile board = LoadBoardProfile("paper-soc");
  const Workload workload;
  const SearchChoice choice = SearchDesign(layout, board, workload);
  ASSERT_TRUE(choice.found);
  EXPECT_LE(choice.power_w, board.search->power_budget_w);
  EXPECT_DOUBLE_EQ(choice.power_w, SearchPower(board, layout, choice.mram_channels, choice.reram_arrays));
  // What docs/memory-model.md and the shipped profile say.
  EXPECT_EQ(choice.mram_channels, 5u);
  EXPECT_EQ(choice.reram_arrays, 102u);
  // Every configuration within the budget is no faster.
  BoardProfile trial = board;
  for (uint32_t c = board.search->mram_channels_min; c <= board.search->mram_channels_max; ++c) {
    for (uint32_t a = board.search->reram_arrays_min; a <= board.search->reram_arrays_max; a += 7) {
      if (SearchPower(board, layout, c, a) > board.search->power_budget_w) continue;
      trial.memories[board.window_memory[1]].units = c;
      trial.memories[board.window_memory[2]].units = a;
      EXPECT_GE(Simulate(layout, trial, workload).all_in.latency_s, choice.latency_s * (1 - 1e-9)) << c << " x " << a;
    }
  }
  EXPECT_NEAR(Simulate(layout, WithChoice(board, choice), workload).all_in.latency_s, choice.latency_s, 1e-15);
}

}  // namespace

namespace {

// ---- --plot: PNG and SVG through gnuplot (skipped only where gnuplot is absent).

TEST_F(MemsimCli, PlotsArePngAndSvg) {
  if (std::system("command -v gnuplot >/dev/null 2>&1") != 0) GTEST_SKIP() << "gnuplot is not installed";
  const fs::path plots = dir_ / "plots";
  const CliRun r = Qmc("memsim " + (kShared / "models/kjv6M-hf").string() + " --preset paper-3mlc --plot " + plots.string(), dir_);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (const char* stem : {"schemes-paper", "schemes-allin", "rho-sweep", "traffic"}) {
    const std::string png = qmc::testing::Slurp(plots / (std::string(stem) + ".png"));
    ASSERT_GT(png.size(), 1000u) << stem;
    EXPECT_EQ(png.substr(1, 3), "PNG") << stem;
    EXPECT_NE(qmc::testing::Slurp(plots / (std::string(stem) + ".svg")).find("<svg"), std::string::npos) << stem;
    EXPECT_NE(r.err.find(std::string(stem) + ".png"), std::string::npos) << r.err;
  }
  // The rho sweep runs 0.1 .. 0.5; latency, normalized, is below FP16's everywhere.
  std::ifstream sweep(plots / "rho-sweep.dat");
  std::string line;
  int rows = 0;
  while (std::getline(sweep, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream fields(line);
    double rho, energy, latency;
    fields >> rho >> energy >> latency;
    EXPECT_LT(latency, 1.0) << line;
    ++rows;
  }
  EXPECT_EQ(rows, 9);
}

}  // namespace
