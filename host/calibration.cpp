#include "host/calibration.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstring>
#include <exception>
#include <mutex>
#include <thread>

#include "common/engine.h"
#include "common/image_reader.h"
#include "common/matvec.h"
#include "common/tokenizer.h"
#include "host/eval.h"
#include "host/image_summary.h"
#include "host/pack.h"

namespace qmc::host {
namespace {

// Tokens per engine call (as qmc eval's): weights read once per batch.
constexpr uint32_t kBatch = 64;

// Refuses text the tokenizer cannot read: when most tokens are lone
// non-ASCII bytes (byte fallback), the text is in another alphabet.
void CheckAlphabet(const image::ImageView& image, const std::vector<uint32_t>& tokens) {
  std::vector<uint8_t> workspace(Tokenizer::WorkspaceBytes(image, 0));
  Tokenizer tokenizer;
  if (const Status s = tokenizer.Init(image, workspace, 0); !s.ok()) throw InputError(DescribeStatus(s));
  size_t unknown = 0;
  for (size_t i = 0; i < tokens.size(); ++i) {
    const std::string_view bytes = tokenizer.Decode(i == 0 ? Tokenizer::kNoToken : tokens[i - 1], tokens[i]);
    if (bytes.size() == 1 && static_cast<uint8_t>(bytes[0]) >= 0x80) ++unknown;
  }
  if (unknown * 2 > tokens.size()) {
    throw InputError("the calibration text is not in the model tokenizer's alphabet: " +
                     std::to_string(unknown * 100 / tokens.size()) + "% of its tokens are unknown bytes");
  }
}

// The sums of one input over some tokens: XᵀX (lower triangle) and Σ|x|.
struct Sums {
  uint32_t width = 0;
  uint64_t tokens = 0;
  std::vector<double> xtx;
  std::vector<double> abs;
};

// What one worker gathers from one window: per distinct input, its sums;
// per tensor, which input it reads.
class WindowStats {
 public:
  explicit WindowStats(const image::ImageView& image) : image_(image), input_of_(image.tensor_count(), kNone) {}

  void Clear() {
    for (Sums& s : sums_) {
      s.tokens = 0;
      std::fill(s.xtx.begin(), s.xtx.end(), 0.0);
      std::fill(s.abs.begin(), s.abs.end(), 0.0);
    }
    distinct_ = 0;
    std::fill(input_of_.begin(), input_of_.end(), kNone);
    last_ = {};
  }

  // Engine::InputObserver. q, k and v (and gate and up) read the same rows
  // one after another: an input equal to the previous product's shares its sums.
  static void Observe(void* context, uint32_t tensor, const float* in, size_t stride, uint32_t count) {
    static_cast<WindowStats*>(context)->Add(tensor, in, stride, count);
  }

  size_t distinct() const { return distinct_; }
  const Sums& sums(size_t input) const { return sums_[input]; }
  size_t input_of(uint32_t tensor) const { return input_of_[tensor]; }
  static constexpr size_t kNone = static_cast<size_t>(-1);

 private:
  void Add(uint32_t tensor, const float* in, size_t stride, uint32_t count) {
    const uint32_t width = image_.tensor(tensor).cols;
    rows_.resize(static_cast<size_t>(count) * width);
    for (uint32_t t = 0; t < count; ++t) std::memcpy(&rows_[static_cast<size_t>(t) * width], in + t * stride, width * 4u);
    if (last_.input != kNone && last_.width == width && last_.rows == rows_) {
      // The previous product's rows: k and v after q, every batch of the window.
      if (input_of_[tensor] == kNone) input_of_[tensor] = last_.input;
      return;
    }
    if (input_of_[tensor] == kNone) {
      if (distinct_ == sums_.size()) sums_.emplace_back();
      Sums& s = sums_[distinct_];
      if (s.width != width) {
        s.width = width;
        s.xtx.assign(static_cast<size_t>(width) * width, 0.0);
        s.abs.assign(width, 0.0);
      }
      input_of_[tensor] = distinct_++;
    }
    Accumulate(sums_[input_of_[tensor]], count);
    last_.input = input_of_[tensor];
    last_.width = width;
    last_.rows.swap(rows_);
  }

  // XᵀX over the rows, lower triangle, in blocks of 4 x 8 entries summed in
  // float over the (at most one batch of) rows: a register tile the
  // compiler vectorises, each row's 8 values loaded once for 4 products.
  void Accumulate(Sums& s, uint32_t count) {
    const uint32_t width = s.width;
    const uint32_t padded = (width + 7) / 8 * 8;
    padded_.assign(static_cast<size_t>(count) * padded, 0.0f);
    for (uint32_t t = 0; t < count; ++t) {
      const float* x = &rows_[static_cast<size_t>(t) * width];
      float* out = &padded_[static_cast<size_t>(t) * padded];
      for (uint32_t i = 0; i < width; ++i) {
        out[i] = x[i];
        s.abs[i] += x[i] < 0.0f ? -x[i] : x[i];
      }
    }
    for (uint32_t i0 = 0; i0 < width; i0 += 4) {
      const uint32_t rows = std::min(4u, width - i0);
      for (uint32_t j0 = 0; j0 < i0 + rows; j0 += 8) {
        float tile[4][8] = {};
        for (uint32_t t = 0; t < count; ++t) {
          const float* x = &padded_[static_cast<size_t>(t) * padded];
          for (uint32_t a = 0; a < 4; ++a) {
            const float xi = i0 + a < width ? x[i0 + a] : 0.0f;
            for (uint32_t k = 0; k < 8; ++k) tile[a][k] += xi * x[j0 + k];
          }
        }
        for (uint32_t a = 0; a < rows; ++a) {
          double* row = &s.xtx[static_cast<size_t>(i0 + a) * width];
          for (uint32_t k = 0; k < 8 && j0 + k <= i0 + a; ++k) row[j0 + k] += tile[a][k];
        }
      }
    }
    s.tokens += count;
  }

  const image::ImageView& image_;
  std::vector<Sums> sums_;  // the first distinct_ are this window's
  size_t distinct_ = 0;
  std::vector<size_t> input_of_;
  struct {
    size_t input = kNone;
    uint32_t width = 0;
    std::vector<float> rows;
  } last_;
  std::vector<float> rows_, padded_;
};

}  // namespace

Calibration CollectCalibration(const Checkpoint& checkpoint, std::string_view text, const CalibrationOptions& options) {
  QuantOptions f32;
  f32.quantizer = image::Quantizer::kF32;
  const std::vector<uint8_t> bytes = PackModel(checkpoint, f32).image;
  const image::ImageView image = image::ImageView::OpenFile(bytes).value();
  const image::ModelConfig& config = image.model();
  const uint32_t context = ServedContext(config, options.context);
  if (context < 2) throw InputError("the calibration context leaves no room after the start token");
  const uint32_t window = context - 1;

  std::vector<uint32_t> tokens = EncodeText(image, text);
  const size_t wanted = options.tokens != 0 ? options.tokens : kDefaultCalibrationWindows * window;
  if (tokens.size() > wanted) tokens.resize(wanted);
  if (tokens.size() < window) {
    throw InputError("the calibration text holds " + std::to_string(tokens.size()) +
                     " tokens, less than one window of " + std::to_string(window));
  }
  CheckAlphabet(image, tokens);
  const size_t windows = tokens.size() / window;  // whole windows only
  std::vector<uint8_t> workspace(Tokenizer::WorkspaceBytes(image, 0));
  Tokenizer tokenizer;
  if (const Status s = tokenizer.Init(image, workspace, 0); !s.ok()) throw InputError(DescribeStatus(s));
  if (tokenizer.StartToken() == Tokenizer::kNoToken) throw InputError("the tokenizer has no BOS or EOS to start a window from");
  const uint32_t start = tokenizer.StartToken();

  // The running totals, one per distinct input, in the order the first
  // window met them; windows are added strictly in text order.
  std::vector<Sums> totals;
  std::vector<size_t> total_of(image.tensor_count(), WindowStats::kNone);
  size_t merged = 0;
  std::mutex mutex;
  std::condition_variable turn;
  std::atomic<size_t> next{0};
  std::exception_ptr failure;

  ActiveMatVecKernel();  // chosen before the workers race for it
  const unsigned hardware = std::max(1u, std::thread::hardware_concurrency());
  const size_t threads = std::min<size_t>(windows, options.threads != 0 ? options.threads : hardware);
  auto work = [&] {
    const uint32_t batch = std::min(window, kBatch);
    std::vector<uint8_t> arena(Engine::ArenaBytes(config, image.detail(), window, batch));
    std::vector<uint8_t> kv(Engine::KvBytes(config, image.detail(), window, KvFormat::kF32, batch));
    Engine engine;
    if (const Status s = engine.Init(image, arena, kv, KvFormat::kF32, batch); !s.ok()) throw InputError(DescribeStatus(s));
    WindowStats stats(image);
    engine.Observe(&WindowStats::Observe, &stats);
    std::vector<uint32_t> inputs;
    for (size_t w; (w = next++) < windows;) {
      stats.Clear();
      inputs.assign(1, start);
      inputs.insert(inputs.end(), tokens.begin() + static_cast<ptrdiff_t>(w * window),
                    tokens.begin() + static_cast<ptrdiff_t>((w + 1) * window - 1));
      for (uint32_t pos = 0; pos < window; pos += batch) {
        const uint32_t count = std::min(batch, window - pos);
        if (engine.Forward(inputs.data() + pos, count, pos) == nullptr) throw std::logic_error("engine refused a window");
      }
      std::unique_lock lock(mutex);
      turn.wait(lock, [&] { return merged == w || failure; });
      if (failure) return;
      if (w == 0) {
        for (uint32_t t = 0; t < image.tensor_count(); ++t) total_of[t] = stats.input_of(t);
        for (size_t i = 0; i < stats.distinct(); ++i) totals.push_back(stats.sums(i));
      } else {
        for (size_t i = 0; i < stats.distinct(); ++i) {
          const Sums& s = stats.sums(i);
          Sums& total = totals[i];
          for (size_t k = 0; k < s.xtx.size(); ++k) total.xtx[k] += s.xtx[k];
          for (size_t k = 0; k < s.abs.size(); ++k) total.abs[k] += s.abs[k];
          total.tokens += s.tokens;
        }
      }
      ++merged;
      if (options.progress) options.progress(merged * window, windows * window);
      turn.notify_all();
    }
  };
  std::vector<std::thread> pool;
  for (size_t i = 0; i < threads; ++i) {
    pool.emplace_back([&] {
      try {
        work();
      } catch (...) {
        const std::lock_guard lock(mutex);
        if (!failure) failure = std::current_exception();
        turn.notify_all();
      }
    });
  }
  for (std::thread& t : pool) t.join();
  if (failure) std::rethrow_exception(failure);

  // Every window runs the same products in the same order, so the inputs
  // line up window to window; each total becomes its InputStats.
  std::vector<std::shared_ptr<const InputStats>> stats(totals.size());
  for (size_t i = 0; i < totals.size(); ++i) {
    auto s = std::make_shared<InputStats>();
    const Sums& total = totals[i];
    s->width = total.width;
    s->tokens = total.tokens;
    s->xtx.resize(static_cast<size_t>(total.width) * total.width);
    for (uint32_t r = 0; r < total.width; ++r) {
      for (uint32_t c = 0; c <= r; ++c) {
        s->xtx[static_cast<size_t>(r) * total.width + c] = s->xtx[static_cast<size_t>(c) * total.width + r] =
            total.xtx[static_cast<size_t>(r) * total.width + c];
      }
    }
    s->mean_abs.resize(total.width);
    for (uint32_t k = 0; k < total.width; ++k) s->mean_abs[k] = total.abs[k] / static_cast<double>(total.tokens);
    stats[i] = std::move(s);
  }
  Calibration calibration;
  calibration.inputs.resize(image.tensor_count());
  for (uint32_t t = 0; t < image.tensor_count(); ++t) {
    if (total_of[t] != WindowStats::kNone) calibration.inputs[t] = stats[total_of[t]];
  }
  return calibration;
}

}  // namespace qmc::host
