// The firmware end to end on the emu board, as a user runs it: `qmc pack`,
// `qmc nvm write`, then qmc-fw-emu with prompts on stdin. Greedy text must
// be byte-identical to `qmc run` for every scheme.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <regex>
#include <string>
#include <vector>

#include "common/engine.h"
#include "common/image_reader.h"
#include "host/atomic_file.h"
#include "tests/board_console.h"
#include "tests/cli_runner.h"

namespace {

namespace fs = std::filesystem;

const fs::path kShared = QMC_SHARED_DIR;

using qmc::testing::CliRun;
using qmc::testing::Qmc;
using qmc::testing::Slurp;

void FlipByte(const fs::path& file, std::streamoff offset) {
  std::fstream f(file, std::ios::in | std::ios::out | std::ios::binary);
  f.seekg(offset);
  const char byte = static_cast<char>(f.get() ^ 0x5A);
  f.seekp(offset);
  f.put(byte);
}

// What the firmware printed after the "ready" banner: one text per prompt
// line (the text ends where its stats line starts) and the stats lines'
// numbers.
struct Session {
  std::vector<std::string> texts;
  std::vector<std::map<std::string, double>> stats;
};

Session Parse(const std::string& out) {
  Session session;
  for (qmc::testing::BoardAnswer& answer : qmc::testing::BoardAnswers(out)) {
    session.texts.push_back(std::move(answer.text));
    session.stats.push_back(std::move(answer.stats));
  }
  return session;
}

class FirmwareEmu : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fs::exists(kShared / "models/stories260K.bin")) GTEST_SKIP() << "../shared/models is missing";
    dir_ = qmc::testing::FreshTestDir("qmc_fw_emu_");
  }
  void TearDown() override { fs::remove_all(dir_); }

  // Packs stories260K with `scheme` (or the paper-* preset) and returns the image path.
  fs::path Pack(const std::string& scheme) {
    const fs::path image = dir_ / (scheme + ".qmc");
    const std::string flags = scheme.rfind("paper-", 0) == 0 ? "--preset " + scheme : "--scheme " + scheme;
    const CliRun r = Qmc("pack " + qmc::testing::Stories260K() + " -q " + flags + " -o " + image.string(), dir_);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return image;
  }

  fs::path Flash(const fs::path& image, const std::string& name) {
    const fs::path nvm = dir_ / name;
    const CliRun r = Qmc("nvm write " + image.string() + " " + nvm.string(), dir_);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return nvm;
  }

  // Runs the firmware with `input` on its link; bounded by `timeout`.
  CliRun Firmware(const fs::path& nvm, const std::string& input, const std::string& options = "") {
    const fs::path in = dir_ / "link_in.txt", out = dir_ / "link_out.txt", err = dir_ / "fw_err.txt";
    std::ofstream(in, std::ios::binary) << input;
    const std::string command = "timeout 120 " QMC_FW_EMU " --nvm " + nvm.string() + " " + options + " <" +
                                in.string() + " >" + out.string() + " 2>" + err.string();
    const int status = std::system(command.c_str());
    return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, Slurp(out), Slurp(err)};
  }

  std::string RunOnHost(const fs::path& image, const std::string& args) {
    const CliRun r = Qmc("run " + image.string() + " " + args, dir_);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return r.out;
  }

  double WindowBytes(const fs::path& image, const char* window) {
    const CliRun r = Qmc("inspect --json " + image.string(), dir_);
    return nlohmann::json::parse(r.out)["bytes_by_window"][window].get<double>();
  }

  // The packed code blobs' bytes (ReRAM), without the sections' alignment padding.
  double CodeBytes(const fs::path& image) {
    const CliRun r = Qmc("inspect --json " + image.string(), dir_);
    const nlohmann::json summary = nlohmann::json::parse(r.out);
    double bytes = 0;
    for (const auto& t : summary["tensors"]) {
      if (t["cell_bits"].get<int>() != 0) bytes += t["bytes"]["data"].get<double>();
    }
    return bytes;
  }

  fs::path dir_;
};

TEST_F(FirmwareEmu, GreedyTextMatchesQmcRunForEveryScheme) {
  for (const std::string scheme : {"f32", "fp16", "rtn", "qmc", "mxint4", "paper-3mlc", "paper-2mlc"}) {
    SCOPED_TRACE(scheme);
    const fs::path image = Pack(scheme);
    const fs::path nvm = Flash(image, "nvm_" + scheme);
    const CliRun fw = Firmware(nvm, "Once upon a time\nsteps=100 The little dog\n");
    ASSERT_EQ(fw.exit_code, 0) << fw.out << fw.err;
    const Session session = Parse(fw.out);
    ASSERT_EQ(session.texts.size(), 2u) << fw.out;
    EXPECT_EQ(session.texts[0] + "\n", RunOnHost(image, "-p 'Once upon a time' -n 256 -t 0"));
    EXPECT_EQ(session.texts[1] + "\n", RunOnHost(image, "-p 'The little dog' -n 100 -t 0"));

    // Weights are read once per token from where the image put them.
    const std::map<std::string, double>& stats = session.stats[0];
    EXPECT_EQ(stats.at("positions"), 256);
    EXPECT_GT(stats.at("tok/s"), 0);
    EXPECT_GT(stats.at("mram_read/token"), 0);  // norms (and scales, outliers)
    const bool dense = scheme == "f32" || scheme == "fp16";
    if (dense) {
      EXPECT_EQ(stats.at("reram_read/token"), 0);
      EXPECT_GE(stats.at("dram_read/token"), WindowBytes(image, "dram"));
    } else {
      EXPECT_GE(stats.at("reram_read/token"), CodeBytes(image));
      EXPECT_LT(stats.at("reram_read/token"), CodeBytes(image) * 1.01);  // plus one embedding row
    }
    EXPECT_GT(stats.at("dram_written/token"), 0);  // the KV cache
  }
}

TEST_F(FirmwareEmu, SamplingOptionsMatchQmcRun) {
  const fs::path image = Pack("qmc");
  const CliRun fw = Firmware(Flash(image, "nvm"), "steps=40 temp=0.8 topp=0.95 seed=5 kv=fp16 Once\n");
  ASSERT_EQ(fw.exit_code, 0) << fw.err;
  const Session session = Parse(fw.out);
  ASSERT_EQ(session.texts.size(), 1u) << fw.out;
  EXPECT_EQ(session.texts[0] + "\n", RunOnHost(image, "-p Once -n 40 -t 0.8 --top-p 0.95 --seed 5 --kv fp16"));
  EXPECT_EQ(session.stats[0].at("seed"), 5);
  EXPECT_EQ(session.stats[0].at("positions"), 40);
}

// --ctx reserves the KV cache for the context served (not the model's
// seq_len); a line's ctx= runs a shorter one and cannot ask for more.
TEST_F(FirmwareEmu, ContextSizesTheKvCache) {
  const fs::path nvm = Flash(Pack("rtn"), "nvm");
  const CliRun fw = Firmware(nvm, "steps=0 Once\nctx=16 steps=0 Once\nctx=33 Once\n", "--ctx 32");
  const Session session = Parse(fw.out);
  ASSERT_EQ(session.stats.size(), 2u) << fw.out;
  const std::vector<uint8_t> bytes = qmc::host::ReadWholeFile(dir_ / "rtn.qmc");
  const qmc::image::ImageView view = qmc::image::ImageView::OpenFile(bytes).value();
  EXPECT_EQ(session.stats[0].at("positions"), 32);
  EXPECT_EQ(session.stats[0].at("kv"), static_cast<double>(qmc::Engine::KvBytes(view.model(), view.detail(), 32)));
  EXPECT_EQ(session.stats[1].at("positions"), 16);
  EXPECT_EQ(session.stats[1].at("kv"), static_cast<double>(qmc::Engine::KvBytes(view.model(), view.detail(), 16)));
  EXPECT_NE(fw.out.find("qmc-fw: error: ctx=33 exceeds the served context of 32"), std::string::npos) << fw.out;
  EXPECT_EQ(RunOnHost(dir_ / "rtn.qmc", "-p Once -n 0 --ctx 16 -t 0"), session.texts[1] + "\n");
  const CliRun too_long = Firmware(nvm, "Once\n", "--ctx 100000");
  EXPECT_NE(too_long.out.find("image rejected: the context asked for exceeds the model's"), std::string::npos)
      << too_long.out;
}

TEST_F(FirmwareEmu, ABadOptionIsReportedAndTheConsoleGoesOn) {
  const fs::path nvm = Flash(Pack("rtn"), "nvm");
  const CliRun fw = Firmware(nvm, "temp=warm Once\nsteps=10 Once");  // the last line has no line end
  EXPECT_EQ(fw.exit_code, 0);
  EXPECT_NE(fw.out.find("qmc-fw: error: temp= takes a number"), std::string::npos) << fw.out;
  const Session session = Parse(fw.out);
  ASSERT_EQ(session.stats.size(), 1u) << fw.out;
  EXPECT_EQ(session.stats[0].at("positions"), 10);
}

TEST_F(FirmwareEmu, ACorruptSectionIsRejectedAndNothingRuns) {
  const fs::path nvm = Flash(Pack("qmc"), "nvm");
  FlipByte(nvm / "reram.bin", 100);  // inside the inlier codes
  const CliRun fw = Firmware(nvm, "Once upon a time\n");
  EXPECT_EQ(fw.exit_code, 3) << fw.err;
  EXPECT_NE(fw.out.find("qmc-fw: image rejected: section"), std::string::npos) << fw.out;
  EXPECT_NE(fw.out.find("section CRC mismatch; waiting for a flash"), std::string::npos) << fw.out;
  EXPECT_NE(fw.out.find("qmc-fw: no image to run"), std::string::npos) << fw.out;
  EXPECT_EQ(fw.out.find("stats"), std::string::npos) << fw.out;
}

TEST_F(FirmwareEmu, ACorruptBootRecordIsRejected) {
  const fs::path nvm = Flash(Pack("qmc"), "nvm");
  FlipByte(nvm / "mram.bin", 4096 + 40);  // the model config, in the header (slot 0 starts after the commit area)
  const CliRun fw = Firmware(nvm, "Once\n");
  EXPECT_EQ(fw.exit_code, 3);
  EXPECT_NE(fw.out.find("qmc-fw: image rejected: header CRC mismatch"), std::string::npos) << fw.out;
}

TEST_F(FirmwareEmu, AnEmptyNvmDirectoryHasNoImage) {
  const fs::path nvm = dir_ / "blank";
  fs::create_directories(nvm);
  const CliRun fw = Firmware(nvm, "Once\n");
  EXPECT_EQ(fw.exit_code, 3);
  EXPECT_NE(fw.out.find("qmc-fw: no image: MRAM holds no valid commit record"), std::string::npos) << fw.out;
  EXPECT_EQ(fs::file_size(nvm / "mram.bin"), 8u << 20);  // a blank board now
}

TEST_F(FirmwareEmu, ReramNoiseChangesTextReproduciblyAndLeavesNvmAlone) {
  const fs::path image = Pack("qmc");
  const fs::path nvm = Flash(image, "nvm");
  const std::string prompt = "steps=120 Once upon a time\n";
  auto text = [&](const std::string& options) {
    const Session session = Parse(Firmware(nvm, prompt, options).out);
    EXPECT_EQ(session.texts.size(), 1u);
    return session.texts.empty() ? std::string() : session.texts[0];
  };
  const std::string exact = text("");
  const std::string noisy = text("--noise program --reram-sigma 0.5 --noise-seed 1");
  EXPECT_NE(noisy, exact);
  EXPECT_EQ(text("--noise program --reram-sigma 0.5 --noise-seed 1"), noisy);
  EXPECT_NE(text("--noise program --reram-sigma 0.5 --noise-seed 2"), noisy);
  EXPECT_EQ(text("--noise program --reram-sigma 0"), exact);
  EXPECT_EQ(exact + "\n", RunOnHost(image, "-p 'Once upon a time' -n 120 -t 0"));  // the files are unchanged

  // Weights in DRAM see no ReRAM noise.
  const fs::path dense = Flash(Pack("f32"), "nvm_f32");
  const Session a = Parse(Firmware(dense, prompt).out);
  const Session b = Parse(Firmware(dense, prompt, "--noise read --reram-sigma 0.5").out);
  ASSERT_EQ(a.texts.size(), 1u);
  EXPECT_EQ(a.texts, b.texts);
}

// --device and --noise: programming errors are the same for every prompt
// and every run; read errors differ from prompt to prompt, and a run with
// the same seed repeats them. The chosen model is on stderr.
TEST_F(FirmwareEmu, DeviceProfileWithReadAndProgramNoise) {
  const fs::path image = Pack("qmc");
  const fs::path nvm = Flash(image, "nvm");
  const fs::path device = dir_ / "leaky.json";
  std::ofstream(device) << R"({"name": "leaky", "reram": {"1": {"p_down": 0.02, "p_up": 0.01},
    "2": {"p_down": 0.02, "p_up": 0.01}, "3": {"p_down": 0.02, "p_up": 0.01}}, "mram": {"bit_error_rate": 0}})";
  const std::string prompts = "steps=80 Once upon a time\nsteps=80 Once upon a time\nsteps=80 Once upon a time\n";
  auto session = [&](const std::string& options) {
    const CliRun fw = Firmware(nvm, prompts, options);
    EXPECT_EQ(fw.exit_code, 0) << fw.err;
    const Session s = Parse(fw.out);
    EXPECT_EQ(s.texts.size(), 3u) << fw.out;
    return std::make_pair(s.texts, fw.err);
  };
  const std::vector<std::string> exact = session("").first;
  ASSERT_EQ(exact.size(), 3u);
  EXPECT_EQ(exact[0] + "\n", RunOnHost(image, "-p 'Once upon a time' -n 80 -t 0"));

  const auto [program, program_err] = session("--noise program --device " + device.string() + " --noise-seed 4");
  ASSERT_EQ(program.size(), 3u);
  EXPECT_NE(program[0], exact[0]);
  EXPECT_EQ(program[1], program[0]);
  EXPECT_EQ(program[2], program[0]);
  EXPECT_EQ(session("--noise program --device " + device.string() + " --noise-seed 4").first, program);
  EXPECT_NE(program_err.find("qmc-fw-emu: noise program"), std::string::npos) << program_err;
  EXPECT_NE(program_err.find("\"leaky\""), std::string::npos) << program_err;

  const auto [read, read_err] = session("--noise read --device " + device.string() + " --noise-seed 4");
  ASSERT_EQ(read.size(), 3u);
  EXPECT_NE(read[0], exact[0]);
  EXPECT_NE(read[1], read[0]);
  EXPECT_NE(read[2], read[1]);
  EXPECT_EQ(session("--noise read --device " + device.string() + " --noise-seed 4").first, read);
  EXPECT_NE(read_err.find("qmc-fw-emu: noise read"), std::string::npos) << read_err;

  // The built-in default profile is used without --device; off is exact.
  const auto [builtin, builtin_err] = session("--noise read");
  EXPECT_NE(builtin_err.find("(built in)"), std::string::npos) << builtin_err;
  EXPECT_EQ(session("--noise off").first, exact);
  EXPECT_EQ(session("--noise off").second, "");
}

// MRAM bit errors reach what an inference reads there (scales, norms,
// outliers): the text changes with no ReRAM errors at all.
TEST_F(FirmwareEmu, MramBitErrorsChangeTheText) {
  const fs::path nvm = Flash(Pack("qmc"), "nvm");
  const fs::path device = dir_ / "mram.json";
  std::ofstream(device) << R"({"name": "mram only", "reram": {"1": {"p_down": 0, "p_up": 0},
    "2": {"p_down": 0, "p_up": 0}, "3": {"p_down": 0, "p_up": 0}}, "mram": {"bit_error_rate": 0.002}})";
  const std::string prompt = "steps=80 Once upon a time\n";
  const Session exact = Parse(Firmware(nvm, prompt).out);
  const Session noisy = Parse(Firmware(nvm, prompt, "--noise program --device " + device.string()).out);
  ASSERT_EQ(exact.texts.size(), 1u);
  ASSERT_EQ(noisy.texts.size(), 1u);
  EXPECT_NE(noisy.texts[0], exact.texts[0]);
}

TEST_F(FirmwareEmu, NoiseOptionsAreChecked) {
  const fs::path nvm = dir_ / "blank";
  fs::create_directories(nvm);
  CliRun fw = Firmware(nvm, "", "--reram-sigma 0.5");  // no --noise: nothing would use it
  EXPECT_EQ(fw.exit_code, 2);
  EXPECT_NE(fw.err.find("--reram-sigma needs --noise read or --noise program"), std::string::npos) << fw.err;
  fw = Firmware(nvm, "", "--noise loud");
  EXPECT_EQ(fw.exit_code, 2) << fw.err;

  const fs::path device = dir_ / "bad.json";
  std::ofstream(device) << R"({"name": "bad", "reram": {"1": {"p_down": 0, "p_up": 0}, "2": {"p_down": 0, "p_up": 0},
    "3": {"p_down": 0.7, "p_up": 0.7}}, "mram": {"bit_error_rate": 0}})";
  fw = Firmware(nvm, "", "--noise read --device " + device.string());
  EXPECT_EQ(fw.exit_code, 1);
  EXPECT_EQ(fw.err, "qmc-fw-emu: " + device.string() + ": reram.3: p_down + p_up = 1.4 exceeds 1\n");
}

TEST_F(FirmwareEmu, NvmWriteReplacesAnImageAndRefusesAnInvalidOne) {
  const fs::path rtn = Pack("rtn"), qmc = Pack("qmc");
  const fs::path nvm = Flash(rtn, "nvm");
  Flash(qmc, "nvm");
  const std::string expected = RunOnHost(qmc, "-p Once -n 50 -t 0");
  Session session = Parse(Firmware(nvm, "steps=50 Once\n").out);
  ASSERT_EQ(session.texts.size(), 1u);
  EXPECT_EQ(session.texts[0] + "\n", expected);

  const fs::path truncated = dir_ / "truncated.qmc";
  std::string bytes = Slurp(rtn);
  bytes.resize(bytes.size() - 1);
  std::ofstream(truncated, std::ios::binary) << bytes;
  const CliRun r = Qmc("nvm write " + truncated.string() + " " + nvm.string(), dir_);
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_NE(r.err.find("shorter than the image size"), std::string::npos) << r.err;
  session = Parse(Firmware(nvm, "steps=50 Once\n").out);  // the committed image is untouched
  ASSERT_EQ(session.texts.size(), 1u);
  EXPECT_EQ(session.texts[0] + "\n", expected);
}

}  // namespace
