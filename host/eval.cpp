#include "host/eval.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <mutex>
#include <stdexcept>
#include <thread>

#include "common/matvec.h"
#include "common/tokenizer.h"
#include "host/checkpoint.h"
#include "host/image_summary.h"
#include "host/large_buffer.h"

namespace qmc::host {
namespace {

std::span<const uint8_t> TokenizerBytes(const image::ImageView& image) {
  for (uint32_t i = 0; i < image.section_count(); ++i) {
    if (image.section(i).kind == static_cast<uint8_t>(image::SectionKind::kTokenizer)) return image.section_bytes(i);
  }
  return {};
}

// sum_i p_i (log p_i - log q_i) for p = softmax(reference), q = softmax(logits).
double KlDivergence(const float* reference, const float* logits, uint32_t n) {
  const double log_z_ref = LogPartition(reference, n), log_z = LogPartition(logits, n);
  double kl = 0.0;
  for (uint32_t i = 0; i < n; ++i) {
    const double log_p = reference[i] - log_z_ref, log_q = logits[i] - log_z;
    kl += std::exp(log_p) * (log_p - log_q);
  }
  return kl;
}


// The token every window starts from (Tokenizer::StartToken).
uint32_t WindowStart(const image::ImageView& image) {
  std::vector<uint8_t> workspace(Tokenizer::WorkspaceBytes(image, 0));
  Tokenizer tokenizer;
  if (const Status s = tokenizer.Init(image, workspace, 0); !s.ok()) throw InputError(DescribeStatus(s));
  if (tokenizer.StartToken() == Tokenizer::kNoToken) {
    throw InputError("the tokenizer has no BOS or EOS to start a window from");
  }
  return tokenizer.StartToken();
}

uint32_t Argmax(const float* logits, uint32_t n) {
  return static_cast<uint32_t>(std::max_element(logits, logits + n) - logits);
}

// An engine with its own memory, for one worker thread, running a window
// EvalBatch tokens at a time.
class Runner {
 public:
  Runner(const image::ImageView& image, uint32_t positions, KvFormat kv, uint32_t batch)
      : batch_(batch != 0 ? std::min(batch, positions) : EvalBatch(image.model(), positions)),
        arena_(LargeBuffer(Engine::ArenaBytes(image.model(), image.detail(), positions, batch_),
                           "the engine's arena for " + std::to_string(positions) + " positions")),
        kv_(LargeBuffer(Engine::KvBytes(image.model(), image.detail(), positions, kv, batch_),
                        "the KV cache of " + std::to_string(positions) + " positions (--ctx)")) {
    if (const Status s = engine_.Init(image, arena_, kv_, kv, batch_); !s.ok()) throw InputError(DescribeStatus(s));
  }
  uint32_t batch() const { return batch_; }
  // Logits of `count` (at most batch()) tokens from position `pos`, a row each.
  const float* Forward(const uint32_t* tokens, uint32_t count, uint32_t pos) {
    const float* logits = engine_.Forward(tokens, count, pos);
    if (logits == nullptr) throw std::logic_error("engine refused a checked token or position");
    return logits;
  }

 private:
  uint32_t batch_;
  std::vector<uint8_t> arena_;
  std::vector<uint8_t> kv_;
  Engine engine_;
};

struct WindowSums {
  double nll = 0.0;
  double kl = 0.0;
  size_t agree = 0;
};

}  // namespace

double LogPartition(const float* logits, uint32_t n) {
  const double max = *std::max_element(logits, logits + n);
  double sum = 0.0;
  for (uint32_t i = 0; i < n; ++i) sum += std::exp(static_cast<double>(logits[i]) - max);
  return max + std::log(sum);
}

uint32_t EvalBatch(const image::ModelConfig& config, uint32_t positions) {
  const uint32_t fit = std::max<uint32_t>(16, (4u << 20) / config.vocab_size);
  return std::min(positions, fit);
}

namespace {

// A tokenizer for encoding `text` chunk by chunk: its chunk ends, and its
// workspace, sized for the longest chunk.
struct ChunkedEncoder {
  ChunkedEncoder(std::span<const uint8_t> section, uint32_t vocab_size, std::string_view text, size_t chunk_bytes) {
    if (chunk_bytes == 0) throw std::invalid_argument("EncodeText: chunk_bytes is 0");
    Init(section, vocab_size, std::min(text.size(), chunk_bytes));
    for (size_t start = 0; start < text.size();) {
      const std::string_view rest = text.substr(start);
      size_t length = rest.size();
      for (size_t limit = chunk_bytes; limit < rest.size(); limit *= 2) {
        // Past the workspace, NFC could not check a break (BreakBefore).
        if (limit > capacity) Init(section, vocab_size, std::min(rest.size(), 2 * limit));
        if (const size_t p = tokenizer.BreakBefore(rest, limit); p != 0) {
          length = p;
          break;
        }
      }
      ends.push_back(start + length);
      longest = std::max(longest, length);
      start += length;
    }
    if (longest > capacity) Init(section, vocab_size, longest);
  }

  void Init(std::span<const uint8_t> section, uint32_t vocab_size, size_t max_text) {
    workspace.assign(Tokenizer::WorkspaceBytes(section, vocab_size, max_text), 0);
    if (const Status s = tokenizer.Init(section, vocab_size, workspace, max_text); !s.ok())
      throw InputError(DescribeStatus(s));
    capacity = max_text;
  }

  std::vector<uint8_t> workspace;
  Tokenizer tokenizer;
  size_t capacity = 0;
  std::vector<size_t> ends;
  size_t longest = 0;
};

}  // namespace

std::vector<uint32_t> EncodeText(std::span<const uint8_t> section, uint32_t vocab_size, std::string_view text,
                                 size_t chunk_bytes) {
  ChunkedEncoder encoder(section, vocab_size, text, chunk_bytes);
  std::vector<uint32_t> tokens, chunk_tokens(encoder.tokenizer.MaxTokens(encoder.longest));
  for (size_t i = 0, start = 0; i < encoder.ends.size(); start = encoder.ends[i++]) {
    const std::string_view chunk = text.substr(start, encoder.ends[i] - start);
    const Result<uint32_t> count = i == 0 ? encoder.tokenizer.Encode(chunk, false, false, chunk_tokens)
                                          : encoder.tokenizer.EncodeContinuation(chunk, false, chunk_tokens);
    if (!count.ok()) throw InputError(DescribeStatus(count.status()));
    tokens.insert(tokens.end(), chunk_tokens.begin(), chunk_tokens.begin() + count.value());
  }
  return tokens;
}

std::vector<uint32_t> EncodeText(const image::ImageView& image, std::string_view text, size_t chunk_bytes) {
  const std::span<const uint8_t> section = TokenizerBytes(image);
  if (section.empty()) throw InputError(DescribeStatus(Error(StatusCode::kMissing, "image has no tokenizer section")));
  return EncodeText(section, image.model().vocab_size, text, chunk_bytes);
}

std::vector<size_t> EncodeChunkEnds(std::span<const uint8_t> section, uint32_t vocab_size, std::string_view text,
                                    size_t chunk_bytes) {
  return ChunkedEncoder(section, vocab_size, text, chunk_bytes).ends;
}

size_t EncodeWorkspaceBytes(std::span<const uint8_t> section, uint32_t vocab_size, std::string_view text,
                            size_t chunk_bytes) {
  return ChunkedEncoder(section, vocab_size, text, chunk_bytes).workspace.size();
}

EvalResult Evaluate(const image::ImageView& image, const image::ImageView* reference, std::span<const uint32_t> tokens,
                    const EvalOptions& options) {
  const image::ModelConfig& config = image.model();
  const uint32_t vocab = config.vocab_size;
  const uint32_t context = ServedContext(config, options.context);
  if (context == 0) {
    throw InputError("--ctx " + std::to_string(options.context) + " exceeds the model's context of " +
                     std::to_string(config.seq_len) + " positions");
  }
  if (context < 2) throw InputError("the context leaves no room after the start token");
  const uint32_t window = context - 1;
  if (options.max_tokens != 0 && tokens.size() > options.max_tokens) tokens = tokens.first(options.max_tokens);
  if (tokens.empty()) throw InputError("no tokens to score");
  for (const uint32_t t : tokens) {
    if (t >= vocab) throw InputError("token " + std::to_string(t) + " is outside the vocabulary");
  }
  if (reference != nullptr) {
    const std::span<const uint8_t> ours = TokenizerBytes(image), theirs = TokenizerBytes(*reference);
    if (reference->model().vocab_size != vocab || !std::equal(ours.begin(), ours.end(), theirs.begin(), theirs.end())) {
      throw InputError("the reference image has another tokenizer");
    }
    if (reference->model().seq_len < context) throw InputError("the reference image's context is shorter");
  }

  const uint32_t start = WindowStart(image);
  const size_t windows = (tokens.size() + window - 1) / window;
  const unsigned hardware = std::max(1u, std::thread::hardware_concurrency());
  const size_t threads = std::min<size_t>(windows, options.threads != 0 ? options.threads : hardware);
  // The kernel is chosen lazily on first use; choose it before the workers race for it.
  ActiveMatVecKernel();
  // Engines are set up before any thread starts, so Init failures surface here.
  std::vector<Runner> runners, reference_runners;
  for (size_t i = 0; i < threads; ++i) {
    runners.emplace_back(image, window, options.kv, options.batch);
    if (reference != nullptr) reference_runners.emplace_back(*reference, window, KvFormat::kF32, options.batch);
  }

  // Per-window sums, added in window order afterwards: the same result for any thread count.
  std::vector<WindowSums> sums(windows);
  std::vector<std::vector<uint32_t>> inputs(threads);  // per worker: the window's input tokens
  std::atomic<size_t> next_window{0};
  std::mutex progress_mutex;
  size_t scored = 0;
  auto work = [&](size_t worker) {
    Runner& runner = runners[worker];
    Runner* ref_runner = reference != nullptr ? &reference_runners[worker] : nullptr;
    for (size_t w; (w = next_window++) < windows;) {
      const std::span<const uint32_t> targets = tokens.subspan(w * window, std::min<size_t>(window, tokens.size() - w * window));
      WindowSums& s = sums[w];
      inputs[worker].assign(1, start);
      inputs[worker].insert(inputs[worker].end(), targets.begin(), targets.end() - 1);
      for (uint32_t pos = 0; pos < targets.size(); pos += runner.batch()) {
        const auto count = static_cast<uint32_t>(std::min<size_t>(runner.batch(), targets.size() - pos));
        const float* logits = runner.Forward(inputs[worker].data() + pos, count, pos);
        const float* ref_logits = ref_runner != nullptr ? ref_runner->Forward(inputs[worker].data() + pos, count, pos) : nullptr;
        for (uint32_t t = 0; t < count; ++t) {
          const float* row = logits + static_cast<size_t>(t) * vocab;
          s.nll += LogPartition(row, vocab) - row[targets[pos + t]];
          if (ref_logits != nullptr) {
            const float* ref_row = ref_logits + static_cast<size_t>(t) * vocab;
            s.kl += KlDivergence(ref_row, row, vocab);
            s.agree += Argmax(ref_row, vocab) == Argmax(row, vocab) ? 1 : 0;
          }
        }
      }
      if (options.progress) {
        const std::lock_guard lock(progress_mutex);
        scored += targets.size();
        options.progress(scored, tokens.size());
      }
    }
  };
  std::vector<std::thread> pool;
  std::exception_ptr failure;
  std::mutex failure_mutex;
  for (size_t i = 0; i < threads; ++i) {
    pool.emplace_back([&, i] {
      try {
        work(i);
      } catch (...) {
        const std::lock_guard lock(failure_mutex);
        failure = std::current_exception();
      }
    });
  }
  for (std::thread& t : pool) t.join();
  if (failure) std::rethrow_exception(failure);

  WindowSums total;
  for (const WindowSums& s : sums) {
    total.nll += s.nll;
    total.kl += s.kl;
    total.agree += s.agree;
  }
  EvalResult result;
  result.tokens = tokens.size();
  const double n = static_cast<double>(result.tokens);
  result.nll = total.nll / n;
  result.ppl = std::exp(result.nll);
  if (reference != nullptr) {
    result.kl = total.kl / n;
    result.top1 = static_cast<double>(total.agree) / n;
  }
  return result;
}

}  // namespace qmc::host
