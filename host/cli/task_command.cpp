// `qmc convert-task`: a public multiple-choice benchmark file (HellaSwag,
// ARC, BoolQ) as the task items `qmc eval --task` scores (host/task_convert.h).
#include <cstdio>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "host/atomic_file.h"
#include "host/cli/commands.h"
#include "host/task_convert.h"

namespace qmc::cli {
namespace {

struct ConvertTaskArgs {
  std::string from;
  std::string input;
  std::string output;
};

void RunConvertTask(const ConvertTaskArgs& args) {
  static const std::map<std::string, host::TaskSource> kSources = {
      {"hellaswag", host::TaskSource::kHellaSwag}, {"arc", host::TaskSource::kArc}, {"boolq", host::TaskSource::kBoolQ}};
  const std::vector<uint8_t> bytes = host::ReadWholeFile(args.input);
  const std::vector<host::TaskItem> items = host::ConvertTask(
      kSources.at(args.from), std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()), args.input);
  const std::string text = host::FormatTaskItems(items);
  host::WriteFileAtomically(args.output, std::vector<uint8_t>(text.begin(), text.end()));
  std::fprintf(stderr, "qmc convert-task: %zu items written to %s\n", items.size(), args.output.c_str());
}

}  // namespace

void AddConvertTaskCommand(CLI::App& app) {
  auto args = std::make_shared<ConvertTaskArgs>();
  CLI::App* cmd = app.add_subcommand(
      "convert-task", "Convert a public multiple-choice benchmark file into the task items qmc eval --task scores, "
                      "with lm-evaluation-harness's prompts.");
  cmd->add_option("--from", args->from, "the source's format")
      ->required()
      ->check(CLI::IsMember({"hellaswag", "arc", "boolq"}));
  cmd->add_option("input", args->input, "the source file (JSON lines)")->required();
  cmd->add_option("-o,--output", args->output, "the task file to write (JSON lines)")->required();
  cmd->footer(
      "Sources, as they ship:\n"
      "  hellaswag  hellaswag_val.jsonl (rowanz/hellaswag): activity_label, ctx_a, ctx_b, endings, label\n"
      "  arc        ARC-Easy/ARC-Challenge *.jsonl (allenai): question.stem, question.choices[].text/label, "
      "answerKey\n"
      "  boolq      BoolQ dev.jsonl (question, passage, answer true/false) or SuperGLUE's (label 0/1)\n"
      "docs/task-format.md gives the prompts. Exits 1 naming FILE:LINE for a line it cannot convert.");
  cmd->callback([args] { RunConvertTask(*args); });
}

}  // namespace qmc::cli
