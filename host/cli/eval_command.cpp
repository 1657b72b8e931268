// `qmc eval`: perplexity of an image on a text file, and optionally how far
// its next-token distributions are from a reference image's (host/eval.h);
// or, with --task, its accuracy on multiple-choice items (host/task_eval.h).
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/image_reader.h"
#include "host/atomic_file.h"
#include "host/checkpoint.h"
#include "host/cli/commands.h"
#include "host/eval.h"
#include "host/image_summary.h"
#include "host/task_eval.h"
#include "host/task_file.h"

namespace qmc::cli {
namespace {

struct EvalArgs {
  std::string image;
  std::string text;
  std::string task;
  std::string reference;
  std::string kv;
  size_t max_tokens = 0;
  size_t limit = 0;
  uint32_t context = 0;
  unsigned threads = 0;
  bool json = false;
};

// An image file held in memory and validated; exits 3 when it is not valid.
struct LoadedImage {
  std::vector<uint8_t> bytes;
  image::ImageView view;
};

std::unique_ptr<LoadedImage> LoadImage(const std::string& path) {
  auto loaded = std::make_unique<LoadedImage>();
  loaded->bytes = host::ReadWholeFile(path);
  const Result<image::ImageView> opened = image::ImageView::OpenFile(loaded->bytes);
  const Status status = opened.ok() ? opened.value().Validate() : opened.status();
  if (!status.ok()) {
    std::fprintf(stderr, "qmc eval: %s: %s\n", path.c_str(), host::DescribeStatus(status).c_str());
    throw CommandFailed{kExitBadImage};
  }
  loaded->view = opened.value();
  return loaded;
}

// A standard error as text: undefined (NaN) for a single item.
std::string Stderr(double value) {
  if (std::isnan(value)) return "n/a";
  char text[32];
  std::snprintf(text, sizeof text, "%.4f", value);
  return text;
}

void RunTask(const EvalArgs& args) {
  const std::unique_ptr<LoadedImage> image = LoadImage(args.image);
  const std::vector<host::TaskItem> items = host::ReadTaskFile(args.task);
  host::TaskOptions options;
  options.kv = KvFormatNamed(args.kv);
  options.context = args.context;
  options.limit = args.limit;
  options.threads = args.threads;
  if (isatty(STDERR_FILENO) != 0) {
    options.progress = [](size_t scored, size_t total) {
      std::fprintf(stderr, "\rqmc eval: %zu/%zu items", scored, total);
      if (scored == total) std::fputc('\n', stderr);
    };
  }
  const auto start = std::chrono::steady_clock::now();
  const host::TaskResult r = host::EvaluateTask(image->view, items, options);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

  if (args.json) {
    // NaN (one item's standard error) prints as null.
    const nlohmann::ordered_json out = {{"items", r.items},
                                        {"acc", r.acc},
                                        {"acc_stderr", r.acc_stderr},
                                        {"acc_norm", r.acc_norm},
                                        {"acc_norm_stderr", r.acc_norm_stderr}};
    std::printf("%s\n", out.dump(2).c_str());
  } else {
    std::printf("%s: acc %.4f +- %s, acc_norm %.4f +- %s over %zu items\n", args.image.c_str(), r.acc,
                Stderr(r.acc_stderr).c_str(), r.acc_norm, Stderr(r.acc_norm_stderr).c_str(), r.items);
  }
  std::fprintf(stderr, "qmc eval: %zu of %zu items scored in %.2f s\n", r.items, items.size(), seconds);
}

void RunEval(const EvalArgs& args) {
  if (!args.task.empty()) {
    RunTask(args);
    return;
  }
  const std::unique_ptr<LoadedImage> image = LoadImage(args.image);
  const std::unique_ptr<LoadedImage> reference = args.reference.empty() ? nullptr : LoadImage(args.reference);
  const std::vector<uint8_t> text = host::ReadWholeFile(args.text);
  const std::vector<uint32_t> tokens =
      host::EncodeText(image->view, std::string_view(reinterpret_cast<const char*>(text.data()), text.size()));

  host::EvalOptions options;
  options.kv = KvFormatNamed(args.kv);
  options.max_tokens = args.max_tokens;
  options.context = args.context;
  options.threads = args.threads;
  if (isatty(STDERR_FILENO) != 0) {
    options.progress = [](size_t scored, size_t total) {
      std::fprintf(stderr, "\rqmc eval: %zu/%zu tokens", scored, total);
      if (scored == total) std::fputc('\n', stderr);
    };
  }
  const auto start = std::chrono::steady_clock::now();
  const host::EvalResult r =
      host::Evaluate(image->view, reference ? &reference->view : nullptr, tokens, options);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

  if (args.json) {
    nlohmann::json out = {{"nll", r.nll}, {"ppl", r.ppl}, {"tokens", r.tokens}};
    if (r.kl) out["kl"] = *r.kl;
    if (r.top1) out["top1"] = *r.top1;
    std::printf("%s\n", out.dump(2).c_str());
  } else {
    std::printf("%s: nll %.6f nats/token, ppl %.4f over %zu tokens\n", args.image.c_str(), r.nll, r.ppl, r.tokens);
    if (r.kl) {
      std::printf("vs %s: mean KL %.6g nats/token, top-1 agreement %.4f\n", args.reference.c_str(), *r.kl, *r.top1);
    }
  }
  std::fprintf(stderr, "qmc eval: %zu of %zu text tokens scored in %.2f s (%.1f tokens/s%s)\n", r.tokens,
               tokens.size(), seconds, static_cast<double>(r.tokens) / seconds,
               reference ? ", reference included" : "");
}

}  // namespace

void AddEvalCommand(CLI::App& app) {
  auto args = std::make_shared<EvalArgs>();
  CLI::App* cmd = app.add_subcommand(
      "eval", "Perplexity of an image on a text (mean NLL in nats/token and exp of it); with --reference also "
              "the mean KL(reference || image) of the next-token distributions and top-1 agreement. With --task, "
              "its accuracy on multiple-choice items instead.");
  cmd->add_option("image", args->image, "the QMC image file")->required();
  CLI::Option* text = cmd->add_option("--text", args->text, "UTF-8 text to score");
  CLI::Option* task = cmd->add_option("--task", args->task,
                                      "multiple-choice items to score instead (JSON lines: context, choices, gold; "
                                      "docs/task-format.md, qmc convert-task)");
  text->excludes(task);
  cmd->add_option("--reference", args->reference,
                  "image to compare against (same tokenizer; runs with an f32 KV cache), e.g. the f32 image")
      ->excludes(task);
  AddKvFormatOption(cmd, args->kv);
  cmd->add_option("--max-tokens", args->max_tokens, "score only the text's first N tokens; 0 = all")
      ->default_val(0)
      ->excludes(task);
  cmd->add_option("--limit", args->limit, "with --task: score only the first N items; 0 = all")
      ->default_val(0)
      ->excludes(text);
  cmd->add_option("--ctx", args->context, "context length: positions per window, the start token included; "
                                          "0 = min(the model's, 2048)")
      ->default_val(0);
  cmd->add_option("--threads", args->threads, "windows (items) evaluated in parallel; 0 = one per hardware "
                                              "thread (the numbers do not depend on it)")
      ->default_val(0);
  cmd->add_flag("--json", args->json,
                "print JSON: nll, ppl, tokens, and kl, top1 with --reference; with --task items, acc, acc_stderr, "
                "acc_norm, acc_norm_stderr");
  cmd->footer(
      "Protocol: the whole text is encoded with the image's tokenizer (no BOS added) and cut into\n"
      "consecutive, non-overlapping windows of ctx - 1 tokens (the last may be shorter). Each window\n"
      "runs from position 0 on a fresh KV cache, prefixed with BOS (llama2.c: token 1; a tokenizer without\n"
      "one: its EOS), so every token is scored exactly once, predicted from it and the tokens before it.\n"
      "A token's NLL is -log softmax(logits)[token], computed stably in double; nll is the mean over the\n"
      "scored tokens, ppl exp(nll). KL and top-1 are means over the same positions:\n"
      "KL(p_ref || p) = sum p_ref (log p_ref - log p), top-1 the fraction of positions where both argmaxes agree.\n"
      "--task: each choice's log-likelihood given its context, as lm-evaluation-harness scores it; acc picks\n"
      "the highest, acc_norm the highest per byte of the choice (docs/task-format.md). Exits 1 naming FILE:LINE\n"
      "for a bad item.\n"
      "Results go to stdout; progress (on a terminal) and tokens/s to stderr. Exits 3 for an invalid image.");
  cmd->callback([args, text, task] {
    if (text->count() == 0 && task->count() == 0) throw CLI::ValidationError("give --text FILE or --task FILE");
    RunEval(*args);
  });
}

}  // namespace qmc::cli
