// qmc memsim: a model (an image, or a configuration and the pack flags) on
// one or more boards: bits and cells per weight, bytes per token per window,
// energy, latency and area, against FP16 and INT4 on LPDDR5 and the
// eMEMs-like boards. The model is host/memsim.h; docs/memory-model.md.
#include <cmath>
#include <cstdio>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "common/image_reader.h"
#include "host/atomic_file.h"
#include "host/board_profile.h"
#include "host/cli/commands.h"
#include "host/cli/scheme_options.h"
#include "host/image_summary.h"
#include "host/memsim.h"
#include "host/memsim_plot.h"
#include "host/memsim_report.h"
#include "host/model_layout.h"

namespace qmc::cli {
namespace {

using nlohmann::json;

struct MemsimArgs {
  std::string input;
  SchemeArgs scheme;
  std::string tokenizer;
  std::vector<std::string> boards;
  std::string baseline_board = "orin-lpddr5";
  std::vector<std::string> emems_boards;
  std::optional<uint32_t> context;
  std::optional<uint32_t> prompt;
  std::optional<uint32_t> generate;
  std::string kv = "fp16";
  bool json = false;
  bool csv = false;
  bool search = false;
  std::string plot_dir;
};

bool IsImage(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  char magic[4] = {};
  in.read(magic, 4);
  return in.gcount() == 4 && std::string(magic, 4) == "QMCI";
}

host::Workload MakeWorkload(const MemsimArgs& args, const host::ModelShape& shape) {
  host::Workload w;
  w.kv = KvFormatNamed(args.kv);
  if (args.prompt || args.generate) {
    if (args.context) throw CLI::ValidationError("--context and --prompt/--generate are two workloads: pass one");
    w.mode = host::Workload::kRun;
    w.prompt = args.prompt.value_or(0);
    w.generate = args.generate.value_or(0);
    if (w.prompt + w.generate == 0) throw CLI::ValidationError("--prompt + --generate must be at least 1 token");
  } else {
    w.context = args.context.value_or(std::min<uint32_t>(512, shape.max_positions));
  }
  return w;
}

void RunMemsim(const MemsimArgs& args) {
  std::vector<host::ModelLayout> subjects;
  host::ModelShape shape;
  if (IsImage(args.input)) {
    if (args.scheme.AnyGiven() || !args.tokenizer.empty()) {
      throw CLI::ValidationError("an image's scheme is its own: scheme flags and --tokenizer apply to a model config");
    }
    const std::vector<uint8_t> bytes = host::ReadWholeFile(args.input);
    const Result<image::ImageView> view = image::ImageView::OpenFile(bytes);
    if (!view.ok() || !view.value().Validate().ok()) {
      std::fprintf(stderr, "qmc memsim: %s: %s\n", args.input.c_str(),
                   host::DescribeStatus(view.ok() ? view.value().Validate() : view.status()).c_str());
      throw CommandFailed{kExitBadImage};
    }
    subjects.push_back(host::LayOutImage(view.value()));
    shape = subjects.back().shape;
    shape.source = args.input;
    subjects.back().shape.source = args.input;
  } else {
    shape = host::LoadModelShape(args.input);
    if (!args.tokenizer.empty()) shape.tokenizer = host::LoadTokenizerFile(args.tokenizer, shape.vocab_size);
    const host::QuantOptions options = ResolveOptions(args.scheme);
    subjects.push_back(host::LayOutModel(shape, options, DescribeScheme(options)));
  }
  const host::Workload workload = MakeWorkload(args, shape);

  std::vector<host::BoardProfile> boards;
  for (const std::string& b : args.boards.empty() ? std::vector<std::string>{"paper-soc"} : args.boards) {
    boards.push_back(host::LoadBoardProfile(b));
  }
  // The references: FP16 and INT4 (rtn, 4 bits, groups of 64) on the LPDDR5 baseline, INT4 on each eMEMs-like board.
  host::QuantOptions fp16;
  fp16.quantizer = image::Quantizer::kFp16;
  host::QuantOptions int4;
  int4.quantizer = image::Quantizer::kRtn;
  int4.bits = 4;
  int4.cell_bits = 2;
  const host::ModelLayout fp16_layout = host::LayOutModel(shape, fp16, "fp16");
  const host::ModelLayout int4_layout = host::LayOutModel(shape, int4, "int4");
  const host::BoardProfile baseline = host::LoadBoardProfile(args.baseline_board);
  std::vector<host::Reference> references;
  references.push_back({"fp16", baseline.name, host::Simulate(fp16_layout, baseline, workload)});
  references.push_back({"int4", baseline.name, host::Simulate(int4_layout, baseline, workload)});
  for (const std::string& b : args.emems_boards.empty() ? std::vector<std::string>{"emems-reram", "emems-mram"}
                                                          : args.emems_boards) {
    const host::BoardProfile emems = host::LoadBoardProfile(b);
    references.push_back({"int4", emems.name, host::Simulate(int4_layout, emems, workload)});
  }

  host::MemsimReport report;
  report.shape = &shape;
  report.matrix_weights = subjects.front().matrix_weights;
  report.workload = workload;
  report.references = references;
  for (const host::ModelLayout& layout : subjects) {
    for (const host::BoardProfile& board : boards) {
      report.results.push_back({layout.scheme, board.name, board.description, host::Simulate(layout, board, workload),
                                &layout});
    }
  }
  if (args.search) {
    for (const host::ModelLayout& layout : subjects) {
      for (const host::BoardProfile& board : boards) {
        if (!board.search) continue;
        const host::SearchChoice choice = host::SearchDesign(layout, board, workload);
        report.searches.push_back(choice);
        const host::BoardProfile chosen = host::WithChoice(board, choice);
        report.results.push_back({layout.scheme, chosen.name,
                                  "the design search's choice: " + std::to_string(choice.mram_channels) + " " +
                                      choice.mram_memory + " channels x " + std::to_string(choice.reram_arrays) + " " +
                                      choice.reram_memory + " arrays",
                                  host::Simulate(layout, chosen, workload), &layout});
      }
    }
    if (report.searches.empty()) throw host::InputError("--search: no board given has design_search parameters");
  }
  std::vector<std::string> plots;
  if (!args.plot_dir.empty()) {
    const host::BoardProfile emems = host::LoadBoardProfile(
        args.emems_boards.empty() ? std::string("emems-reram") : args.emems_boards.front());
    plots = host::WritePlots(args.plot_dir, {&shape, &boards.front(), &baseline, &emems, workload});
  }
  if (args.json) {
    std::printf("%s\n", host::ReportJson(report).dump(2).c_str());
  } else if (args.csv) {
    std::fputs(host::ReportCsv(report).c_str(), stdout);
  } else {
    std::fputs(host::ReportText(report).c_str(), stdout);
  }
  for (const std::string& plot : plots) std::fprintf(stderr, "qmc memsim: wrote %s\n", plot.c_str());
}

}  // namespace

void AddMemsimCommand(CLI::App& app) {
  auto args = std::make_shared<MemsimArgs>();
  CLI::App* cmd = app.add_subcommand(
      "memsim",
      "Simulate the memory system: a model (an image, or a config plus pack's scheme flags) on boards - bits and cells "
      "per weight, bytes per token per window, energy, latency, area - against FP16 and INT4 on LPDDR5 and the "
      "eMEMs-like boards (docs/memory-model.md).");
  cmd->add_option("input", args->input,
                  "a QMC image; or a model: a HuggingFace config.json or directory (llama, qwen2, phi, hymba), or a "
                  "checkpoint qmc pack reads (its configuration and tokenizer are used; no weights are quantized)")
      ->required();
  AddSchemeOptions(cmd, args->scheme);
  cmd->add_option("--tokenizer", args->tokenizer,
                  "tokenizer.bin or tokenizer.json the image would embed (its bytes count in MRAM)");
  std::string boards = "board profile: a built-in name (";
  for (const std::string& b : host::BuiltInBoards()) boards += b + ", ";
  boards += "the files in hal/profiles/boards/) or a JSON file; repeat for a side-by-side [default: paper-soc]";
  cmd->add_option("--board", args->boards, boards);
  cmd->add_option("--baseline-board", args->baseline_board,
                  "the board FP16 and INT4 weights run on for the ratios")
      ->capture_default_str();
  cmd->add_option("--emems-board", args->emems_boards,
                  "eMEMs-like boards INT4 weights run on for the ratios (repeatable) [default: emems-reram, emems-mram]");
  cmd->add_option("--context", args->context,
                  "workload: one token decoded attending to N positions, its own included "
                  "[default: 512, or the model's context if shorter]")
      ->check(CLI::Range(1u, 1u << 24));
  cmd->add_option("--prompt", args->prompt,
                  "workload: a run of N prompt tokens then --generate tokens from position 0, figures averaged over "
                  "its forward passes (as qmc-fw-emu's stats line)");
  cmd->add_option("--generate", args->generate, "workload: tokens generated after --prompt");
  AddKvFormatOption(cmd, args->kv)->default_val("fp16");
  cmd->add_flag("--search", args->search,
                "the paper's design search (Eq. 4) on each board with design_search parameters: MRAM channels x "
                "ReRAM arrays within the power budget, the lowest latency kept; its choice is printed and added as a "
                "board BOARD+search");
  cmd->add_option("--plot", args->plot_dir,
                  "write gnuplot plots (PNG and SVG, with their .dat and .gp) into DIR: energy, latency and capacity "
                  "per scheme normalized to FP16 (schemes-paper, schemes-allin), across rho 0.1-0.5 (rho-sweep), "
                  "bytes per token by window (traffic); QMC on the first --board");
  cmd->add_flag("--json", args->json, "print the results as JSON");
  cmd->add_flag("--csv", args->csv, "print one CSV row per scheme, board and accounting");
  cmd->footer(
      "Examples: qmc memsim ../shared/models/paper/hymba-1.5b-base/config.json --preset paper-3mlc\n"
      "          qmc memsim out/stories260K.qmc --board paper-soc --board emems-reram --context 256");
  cmd->callback([args] { RunMemsim(*args); });
}

}  // namespace qmc::cli
