#include "host/task_eval.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <limits>
#include <mutex>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>

#include "common/matvec.h"
#include "common/tokenizer.h"
#include "host/checkpoint.h"
#include "host/eval.h"
#include "host/image_summary.h"
#include "host/large_buffer.h"

namespace qmc::host {
namespace {

const float* Checked(const float* logits) {
  if (logits == nullptr) throw std::logic_error("engine refused a checked token or position");
  return logits;
}

// Runs `tokens` at positions 0.. to fill the cache, a batch at a time;
// their logits are not needed.
void Prefill(Engine& engine, std::span<const uint32_t> tokens) {
  for (uint32_t pos = 0; pos < tokens.size(); pos += engine.batch()) {
    const auto count = static_cast<uint32_t>(std::min<size_t>(engine.batch(), tokens.size() - pos));
    Checked(engine.Forward(tokens.data() + pos, count, pos));
  }
}

// The sum of log p(tokens[i] | tokens[0..i)) over i >= first_scored >= 1,
// with positions 0..first_scored-2 already in the cache: runs
// tokens[first_scored-1 .. size-2] at their positions, a batch at a time.
double LogLikelihood(Engine& engine, std::span<const uint32_t> tokens, uint32_t first_scored) {
  const uint32_t vocab = engine.config().vocab_size;
  double sum = 0.0;
  for (uint32_t pos = first_scored - 1; pos + 1 < tokens.size(); pos += engine.batch()) {
    const auto count = static_cast<uint32_t>(std::min<size_t>(engine.batch(), tokens.size() - 1 - pos));
    const float* logits = Checked(engine.Forward(tokens.data() + pos, count, pos));
    for (uint32_t t = 0; t < count; ++t) {
      const float* row = logits + static_cast<size_t>(t) * vocab;
      sum += row[tokens[pos + t + 1]] - LogPartition(row, vocab);
    }
  }
  return sum;
}

// Whether positions past the ones a sequence needs can be run again over a
// shared prefix: not for a recurrent (SSM) state, which has taken in the
// previous choice, nor for a sliding window's ring, whose slots the previous
// choice may have overwritten.
bool CacheRewinds(const image::ModelDetail& detail) { return detail.ssm_inner == 0 && detail.attn_window == 0; }

uint32_t Argmax(const std::vector<double>& scores) {
  uint32_t best = 0;
  for (uint32_t i = 1; i < scores.size(); ++i) {
    if (scores[i] > scores[best]) best = i;  // strictly: ties keep the lowest index
  }
  return best;
}

// sqrt(p (1 - p) / (n - 1)): the sample standard deviation of n 0/1 outcomes over sqrt(n).
double MeanStderr(double p, size_t n) {
  if (n < 2) return std::numeric_limits<double>::quiet_NaN();
  return std::sqrt(p * (1.0 - p) / static_cast<double>(n - 1));
}

// An engine and a tokenizer with their own memory, for one worker thread.
class Worker {
 public:
  Worker(const image::ImageView& image, uint32_t positions, KvFormat kv, size_t max_text)
      : batch_(EvalBatch(image.model(), positions)),
        arena_(LargeBuffer(Engine::ArenaBytes(image.model(), image.detail(), positions, batch_),
                           "the engine's arena for " + std::to_string(positions) + " positions")),
        kv_(LargeBuffer(Engine::KvBytes(image.model(), image.detail(), positions, kv, batch_),
                        "the KV cache of " + std::to_string(positions) + " positions")),
        workspace_(Tokenizer::WorkspaceBytes(image, max_text)) {
    if (const Status s = engine_.Init(image, arena_, kv_, kv, batch_); !s.ok()) throw InputError(DescribeStatus(s));
    if (const Status s = tokenizer_.Init(image, workspace_, max_text); !s.ok()) throw InputError(DescribeStatus(s));
  }

  Engine& engine() { return engine_; }
  const Tokenizer& tokenizer() const { return tokenizer_; }

  std::vector<uint32_t> Encode(std::string_view text) {
    std::vector<uint32_t> tokens(tokenizer_.MaxTokens(text.size()));
    const Result<uint32_t> count = tokenizer_.Encode(text, false, false, tokens);
    if (!count.ok()) throw InputError(DescribeStatus(count.status()));
    tokens.resize(count.value());
    return tokens;
  }

 private:
  uint32_t batch_;
  std::vector<uint8_t> arena_;
  std::vector<uint8_t> kv_;
  std::vector<uint8_t> workspace_;
  Engine engine_;
  Tokenizer tokenizer_;
};

// The sequence every choice of an item continues (the start token and the
// context's tokens kept), and each choice's tokens.
struct ItemTokens {
  std::vector<uint32_t> prefix;
  std::vector<std::vector<uint32_t>> choices;
};

ItemTokens EncodeItem(Worker& worker, const TaskItem& item, uint32_t start, uint32_t context) {
  // lm-eval's _encode_pair: the context's trailing whitespace belongs to the choices.
  const size_t last = item.context.find_last_not_of(" \t\n\r\f\v");
  const std::string_view full(item.context);
  const std::string_view trimmed = full.substr(0, last == std::string::npos ? 0 : last + 1);
  const std::string_view moved = full.substr(trimmed.size());

  const std::vector<uint32_t> context_tokens = worker.Encode(trimmed);
  ItemTokens out;
  size_t longest = 0;
  for (size_t c = 0; c < item.choices.size(); ++c) {
    const std::string continuation = std::string(moved) + item.choices[c];
    const std::vector<uint32_t> whole = worker.Encode(std::string(trimmed) + continuation);
    std::vector<uint32_t> tokens;
    if (whole.size() > context_tokens.size() &&
        std::equal(context_tokens.begin(), context_tokens.end(), whole.begin())) {
      tokens.assign(whole.begin() + static_cast<ptrdiff_t>(context_tokens.size()), whole.end());
    } else {
      tokens = worker.Encode(continuation);
    }
    if (1 + tokens.size() > context) {
      throw InputError(item.where + ": choice " + std::to_string(c) + " is " + std::to_string(tokens.size()) +
                       " tokens, too many for a context of " + std::to_string(context) + " positions");
    }
    longest = std::max(longest, tokens.size());
    out.choices.push_back(std::move(tokens));
  }
  // Left-truncate once, for the longest choice, so every choice sees the same context.
  const size_t keep = std::min(context_tokens.size(), context - 1 - longest);
  out.prefix.push_back(start);
  out.prefix.insert(out.prefix.end(), context_tokens.end() - static_cast<ptrdiff_t>(keep), context_tokens.end());
  return out;
}

ItemScore ScoreItem(Worker& worker, const TaskItem& item, uint32_t start, uint32_t context, bool rewinds) {
  const ItemTokens tokens = EncodeItem(worker, item, start, context);
  const auto first_scored = static_cast<uint32_t>(tokens.prefix.size());
  const std::span<const uint32_t> prefix(tokens.prefix);
  ItemScore score;
  std::vector<uint32_t> sequence;
  for (size_t c = 0; c < tokens.choices.size(); ++c) {
    // The prefix runs once per item when the cache allows; its last token
    // runs with each choice, as the first of them is predicted from it.
    if (c == 0 || !rewinds) Prefill(worker.engine(), prefix.first(first_scored - 1));
    sequence.assign(tokens.prefix.begin(), tokens.prefix.end());
    sequence.insert(sequence.end(), tokens.choices[c].begin(), tokens.choices[c].end());
    score.loglikelihood.push_back(LogLikelihood(worker.engine(), sequence, first_scored));
  }
  std::vector<double> per_byte(item.choices.size());
  for (size_t c = 0; c < item.choices.size(); ++c) {
    per_byte[c] = score.loglikelihood[c] / static_cast<double>(item.choices[c].size());
  }
  score.choice = Argmax(score.loglikelihood);
  score.choice_norm = Argmax(per_byte);
  return score;
}

}  // namespace

TaskResult EvaluateTask(const image::ImageView& image, std::span<const TaskItem> items, const TaskOptions& options) {
  const uint32_t context = ServedContext(image.model(), options.context);
  if (context == 0) {
    throw InputError("--ctx " + std::to_string(options.context) + " exceeds the model's context of " +
                     std::to_string(image.model().seq_len) + " positions");
  }
  if (context < 2) throw InputError("the context leaves no room after the start token");
  if (options.limit != 0 && items.size() > options.limit) items = items.first(options.limit);
  if (items.empty()) throw InputError("no items to score");

  size_t max_text = 0;
  for (const TaskItem& item : items) {
    size_t longest = 0;
    for (const std::string& choice : item.choices) longest = std::max(longest, choice.size());
    max_text = std::max(max_text, item.context.size() + longest);
  }
  const unsigned hardware = std::max(1u, std::thread::hardware_concurrency());
  const size_t threads = std::min<size_t>(items.size(), options.threads != 0 ? options.threads : hardware);
  // The kernel is chosen lazily on first use; choose it before the workers race for it.
  ActiveMatVecKernel();
  // Engines and tokenizers are set up before any thread starts, so Init failures surface here.
  std::vector<Worker> workers;
  workers.reserve(threads);
  for (size_t i = 0; i < threads; ++i) workers.emplace_back(image, context, options.kv, max_text);
  const uint32_t start = workers.front().tokenizer().StartToken();
  if (start == Tokenizer::kNoToken) throw InputError("the tokenizer has no BOS or EOS to start a sequence from");
  const bool rewinds = CacheRewinds(image.detail());

  // Per-item scores, counted in item order afterwards: the same result for any thread count.
  TaskResult result;
  result.scores.resize(items.size());
  std::atomic<size_t> next_item{0};
  std::mutex progress_mutex;
  size_t scored = 0;
  std::exception_ptr failure;
  std::mutex failure_mutex;
  std::vector<std::thread> pool;
  for (size_t w = 0; w < threads; ++w) {
    pool.emplace_back([&, w] {
      try {
        for (size_t i; (i = next_item++) < items.size();) {
          result.scores[i] = ScoreItem(workers[w], items[i], start, context, rewinds);
          if (options.progress) {
            const std::lock_guard lock(progress_mutex);
            options.progress(++scored, items.size());
          }
        }
      } catch (...) {
        const std::lock_guard lock(failure_mutex);
        if (!failure) failure = std::current_exception();
        next_item = items.size();  // the others stop too
      }
    });
  }
  for (std::thread& t : pool) t.join();
  if (failure) std::rethrow_exception(failure);

  size_t right = 0, right_norm = 0;
  for (size_t i = 0; i < items.size(); ++i) {
    right += result.scores[i].choice == items[i].gold ? 1 : 0;
    right_norm += result.scores[i].choice_norm == items[i].gold ? 1 : 0;
  }
  result.items = items.size();
  result.acc = static_cast<double>(right) / static_cast<double>(result.items);
  result.acc_norm = static_cast<double>(right_norm) / static_cast<double>(result.items);
  result.acc_stderr = MeanStderr(result.acc, result.items);
  result.acc_norm_stderr = MeanStderr(result.acc_norm, result.items);
  return result;
}

}  // namespace qmc::host
