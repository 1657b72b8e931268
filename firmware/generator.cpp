#include "firmware/generator.h"

#include "common/matvec.h"
#include "common/slot_layout.h"
#include "firmware/line_reader.h"

namespace qmc::firmware {
namespace {

}  // namespace

Status Generator::Init(const image::ImageView& view, const hal::BoardInfo& board, uint32_t slot, uint32_t context) {
  view_ = &view;
  board_ = &board;
  const image::ModelConfig& config = view.model();

  Arena sram(board.window(hal::WindowKind::kSram).scratch());
  auto carve = [&sram](size_t bytes) {  // empty when SRAM is full
    uint8_t* p = sram.Allocate<uint8_t>(bytes);
    return p == nullptr ? std::span<uint8_t>() : std::span<uint8_t>(p, bytes);
  };
  context_ = ServedContext(config, context);
  if (context_ == 0) return Error(StatusCode::kInvalidValue, "the context asked for exceeds the model's");
  engine_arena_ = carve(Engine::ArenaBytes(config, view.detail(), context_));
  const std::span<uint8_t> tokenizer_workspace = carve(Tokenizer::WorkspaceBytes(view, kMaxLineBytes));
  sampler_workspace_ = carve(Sampler::WorkspaceBytes(config.vocab_size));
  if (engine_arena_.empty() || tokenizer_workspace.empty() || sampler_workspace_.empty()) {
    return Error(StatusCode::kTooLarge, "the model's workspaces do not fit in SRAM");
  }
  if (Status s = tokenizer_.Init(view, tokenizer_workspace, kMaxLineBytes); !s.ok()) return s;
  const size_t max_tokens = tokenizer_.MaxTokens(kMaxLineBytes);
  uint32_t* tokens = sram.Allocate<uint32_t>(max_tokens);
  if (tokens == nullptr) return Error(StatusCode::kTooLarge, "the model's workspaces do not fit in SRAM");
  prompt_tokens_ = {tokens, max_tokens};
  sram_used_ = sram.used();

  const std::span<uint8_t> dram = nvm::SlotBytes(board.window(hal::WindowKind::kDram).scratch(), image::Window::kDram, slot);
  const size_t kv_offset = (view.WindowBytes(image::Window::kDram) + 63u) / 64u * 64u;
  const size_t kv_bytes = Engine::KvBytes(config, view.detail(), context_, KvFormat::kF32);
  if (kv_offset > dram.size() || dram.size() - kv_offset < kv_bytes) {
    return Error(StatusCode::kTooLarge, "the KV cache does not fit in the DRAM slot past the image");
  }
  kv_ = dram.subspan(kv_offset, kv_bytes);
  return Status::Ok();
}

void Generator::Run(const GenerateOptions& options, std::string_view prompt, LinkWriter& out, hal::Clock& clock) {
  const image::ModelConfig& config = view_->model();
  if (Status s = UseMatVecKernel(options.kernel); !s.ok()) {
    out.Text("qmc-fw: error: ").Text(s.what).Text("\n");
    return;
  }
  const uint32_t context = options.context != 0 ? options.context : context_;
  if (context > context_) {
    out.Text("qmc-fw: error: ctx=").Uint(context).Text(" exceeds the served context of ").Uint(context_).Text("\n");
    return;
  }
  // The cache holds exactly `context` positions in the line's format (fp16
  // and int8 rows would fit more in the f32 reservation than the arena serves).
  const std::span<uint8_t> kv = kv_.first(Engine::KvBytes(config, view_->detail(), context, options.kv));
  if (Status s = engine_.Init(*view_, engine_arena_, kv, options.kv); !s.ok()) {
    out.Text("qmc-fw: error: ").Text(s.what).Text("\n");
    return;
  }
  const uint64_t seed = options.seed != 0 ? options.seed : (clock.Cycles() | 1u);
  if (Status s = sampler_.Init(config.vocab_size, options.temperature, options.topp, seed, sampler_workspace_); !s.ok()) {
    out.Text("qmc-fw: error: ").Text(s.what).Text("\n");
    return;
  }
  const Result<uint32_t> encoded = tokenizer_.Encode(prompt, tokenizer_.add_bos(), false, prompt_tokens_);
  if (!encoded.ok()) {
    out.Text("qmc-fw: error: ").Text(encoded.status().what).Text("\n");
    return;
  }
  uint32_t prompt_count = encoded.value();
  if (prompt_count == 0) {  // an empty prompt, and no BOS added
    if (tokenizer_.StartToken() == Tokenizer::kNoToken) {
      out.Text("qmc-fw: error: empty prompt and the tokenizer has no BOS or EOS to start from\n");
      return;
    }
    prompt_tokens_[prompt_count++] = tokenizer_.StartToken();
  }
  // As run.c: 0 or more than the context means the whole context.
  const uint32_t steps = options.steps == 0 || options.steps > engine_.context() ? engine_.context() : options.steps;

  hal::WindowCounters before[hal::kWindowCount];
  for (uint32_t w = 0; w < hal::kWindowCount; ++w) before[w] = board_->windows[w]->counters();
  uint64_t start_us = 0, start_cycles = 0;
  uint32_t token = prompt_tokens_[0];
  uint32_t pos = 0;
  while (pos < steps) {
    const float* logits = engine_.Forward(token, pos);
    // In-place reads bypass the HAL (hal.h): the engine's counts are what
    // the windows were read and written.
    const ReadCounter traffic = engine_.TakeTraffic();
    for (uint32_t w = 0; w < hal::kWindowCount; ++w) board_->windows[w]->CountInPlace(traffic.read[w], traffic.written[w]);
    const uint32_t next = pos + 1 < prompt_count ? prompt_tokens_[pos + 1] : sampler_.Sample(logits);
    ++pos;
    if (tokenizer_.EndsText(next)) break;
    const std::string_view piece = tokenizer_.Display(token, next);
    if (!piece.empty()) {
      out.Text(piece);
      out.Flush();
    }
    token = next;
    if (pos == 1) {  // the first step warms up
      start_us = clock.Micros();
      start_cycles = clock.Cycles();
    }
  }
  const uint64_t elapsed_us = clock.Micros() - start_us;
  const uint64_t elapsed_cycles = clock.Cycles() - start_cycles;

  out.Text("\nqmc-fw: stats positions=").Uint(pos).Text(" prompt_tokens=").Uint(prompt_count);
  const uint32_t timed = pos > 1 ? pos - 1 : 0;
  out.Text(" tok/s=").Fixed(timed > 0 && elapsed_us > 0 ? timed * 1e6 / static_cast<double>(elapsed_us) : 0.0, 1);
  out.Text(" cycles/token=").Uint(timed > 0 ? elapsed_cycles / timed : 0);
  auto per_token = [&](hal::WindowKind kind, bool written) {
    const uint32_t w = static_cast<uint32_t>(kind);
    const hal::WindowCounters& now = board_->windows[w]->counters();
    const uint64_t bytes = written ? now.bytes_written - before[w].bytes_written : now.bytes_read - before[w].bytes_read;
    out.Uint(pos > 0 ? (bytes + pos / 2) / pos : 0);
  };
  out.Text(" mram_read/token=");
  per_token(hal::WindowKind::kMram, false);
  out.Text(" reram_read/token=");
  per_token(hal::WindowKind::kReram, false);
  out.Text(" dram_read/token=");
  per_token(hal::WindowKind::kDram, false);
  out.Text(" dram_written/token=");
  per_token(hal::WindowKind::kDram, true);
  out.Text(" sram_used=").Uint(sram_used_).Text(" kv=").Uint(Engine::KvBytes(config, view_->detail(), engine_.context(), options.kv));
  out.Text(" seed=").Uint(seed);
  if (board_->stack_high_water != nullptr) out.Text(" stack_hw=").Uint(board_->stack_high_water());
  out.Text("\n");
  out.Flush();
}

}  // namespace qmc::firmware
