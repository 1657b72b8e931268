// `qmc run`: generate text from an image on the host with the same engine,
// tokenizer and sampler the firmware runs, the way llama2.c's generate() does.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/engine.h"
#include "common/image_reader.h"
#include "common/sampler.h"
#include "common/tokenizer.h"
#include "host/atomic_file.h"
#include "host/checkpoint.h"
#include "host/cli/commands.h"
#include "host/image_summary.h"
#include "host/large_buffer.h"

namespace qmc::cli {
namespace {

struct RunArgs {
  std::string image;
  std::string prompt;
  uint32_t steps = 256;
  uint32_t context = 0;
  float temperature = 1.0f;
  float topp = 0.9f;
  std::optional<uint64_t> seed;
  std::string kv;
};

[[noreturn]] void FailImage(const std::string& path, const Status& status) {
  std::fprintf(stderr, "qmc run: %s: %s\n", path.c_str(), host::DescribeStatus(status).c_str());
  throw CommandFailed{kExitBadImage};
}

void RunRun(const RunArgs& args) {
  const std::vector<uint8_t> bytes = host::ReadWholeFile(args.image);
  const Result<image::ImageView> opened = image::ImageView::OpenFile(bytes);
  if (!opened.ok()) FailImage(args.image, opened.status());
  const image::ImageView& view = opened.value();
  if (const Status s = view.Validate(); !s.ok()) FailImage(args.image, s);
  const image::ModelConfig& config = view.model();
  const uint32_t context = ServedContext(config, args.context);
  if (context == 0) {
    throw host::InputError("--ctx " + std::to_string(args.context) + " exceeds the model's context of " +
                           std::to_string(config.seq_len) + " positions");
  }
  // As run.c: 0 or more than the context means the whole context.
  const uint32_t steps = args.steps == 0 || args.steps > context ? context : args.steps;
  const uint64_t seed = args.seed.value_or(static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count()));

  std::vector<uint8_t> tokenizer_memory(Tokenizer::WorkspaceBytes(view, args.prompt.size()));
  Tokenizer tokenizer;
  if (const Status s = tokenizer.Init(view, tokenizer_memory, args.prompt.size()); !s.ok()) FailImage(args.image, s);
  std::vector<uint32_t> prompt(tokenizer.MaxTokens(args.prompt.size()));
  const Result<uint32_t> prompt_count = tokenizer.Encode(args.prompt, tokenizer.add_bos(), false, prompt);
  if (!prompt_count.ok()) FailImage(args.image, prompt_count.status());
  if (prompt_count.value() == 0) {  // an empty prompt, and no BOS added
    prompt[0] = tokenizer.StartToken();
    if (prompt[0] == Tokenizer::kNoToken) {
      throw host::InputError("empty prompt and the tokenizer has no BOS or EOS to start from");
    }
  }
  const uint32_t prompt_tokens = std::max(prompt_count.value(), 1u);

  const KvFormat kv_format = KvFormatNamed(args.kv);
  const std::string positions = std::to_string(context) + " positions";
  std::vector<uint8_t> arena = host::LargeBuffer(Engine::ArenaBytes(config, view.detail(), context),
                                                 "the engine's arena for " + positions),
                       kv = host::LargeBuffer(Engine::KvBytes(config, view.detail(), context, kv_format),
                                              "the KV cache of " + positions + " (--ctx)");
  Engine engine;
  if (const Status s = engine.Init(view, arena, kv, kv_format); !s.ok()) FailImage(args.image, s);
  std::vector<uint8_t> sampler_memory(Sampler::WorkspaceBytes(config.vocab_size));
  Sampler sampler;
  if (const Status s = sampler.Init(config.vocab_size, args.temperature, args.topp, seed, sampler_memory); !s.ok()) {
    throw host::InputError(s.what);
  }

  // Prompt tokens are forced, then sampled ones follow; the model's end of text ends it.
  std::chrono::steady_clock::time_point start;
  uint32_t token = prompt[0];
  uint32_t pos = 0;
  while (pos < steps) {
    const float* logits = engine.Forward(token, pos);
    const uint32_t next = pos + 1 < prompt_tokens ? prompt[pos + 1] : sampler.Sample(logits);
    ++pos;
    if (tokenizer.EndsText(next)) break;
    const std::string_view piece = tokenizer.Display(token, next);
    std::fwrite(piece.data(), 1, piece.size(), stdout);
    std::fflush(stdout);
    token = next;
    if (pos == 1) start = std::chrono::steady_clock::now();  // the first step warms up
  }
  std::printf("\n");

  if (pos > 1) {
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::fprintf(stderr, "achieved tok/s: %f\n", (pos - 1) / seconds);
  }
  std::fprintf(stderr, "qmc run: %u positions (%u prompt tokens), seed %llu; arena %zu bytes (high water %zu), "
               "KV cache %zu bytes (%s, %u positions), tokenizer %zu bytes, sampler %zu bytes\n",
               pos, prompt_tokens, static_cast<unsigned long long>(seed), arena.size(),
               engine.arena().high_water(), kv.size(), args.kv.c_str(), engine.context(), tokenizer_memory.size(),
               sampler_memory.size());
}

}  // namespace

void AddRunCommand(CLI::App& app) {
  auto args = std::make_shared<RunArgs>();
  CLI::App* cmd = app.add_subcommand("run", "Generate text from an image on the host with the firmware's "
                                            "engine, as llama2.c's run does.");
  cmd->add_option("image", args->image, "the QMC image file")->required();
  cmd->add_option("-p,--prompt", args->prompt, "text to start from (encoded with BOS when the model adds one; echoed)");
  cmd->add_option("-n,--steps", args->steps, "positions to run, prompt included; 0 = the whole context")
      ->default_val(256);
  cmd->add_option("--ctx", args->context, "context length: the positions the KV cache is sized for; "
                                          "0 = min(the model's, 2048)")
      ->default_val(0);
  cmd->add_option("-t,--temperature", args->temperature, "0 = greedy (argmax)")
      ->check(CLI::NonNegativeNumber)
      ->default_val(1.0);
  cmd->add_option("--top-p", args->topp, "nucleus sampling threshold; 0 or 1 samples from the whole distribution")
      ->check(CLI::Range(0.0, 1.0))
      ->default_val(0.9);
  cmd->add_option("--seed", args->seed, "sampler seed (default: the current time, printed on stderr)")
      ->check(CLI::Range(uint64_t{1}, UINT64_MAX));
  AddKvFormatOption(cmd, args->kv);
  cmd->footer("Text goes to stdout as it is produced; tok/s and memory sizes to stderr. Exits 3 for an invalid image.");
  cmd->callback([args] { RunRun(*args); });
}

}  // namespace qmc::cli
