// Text generation on the board, as `qmc run` does it on the host (same
// engine, tokenizer, sampler and loop, so greedy text is byte-identical):
// prompt tokens are forced, sampled ones follow, the model's end of text
// (its EOS; BOS for a llama2.c tokenizer) ends it.
//
// Memory: the engine arena, tokenizer and sampler workspaces and the prompt
// tokens are carved from SRAM; the KV cache (room for seq_len positions of
// f32, for the context served) from DRAM just past the image's own DRAM sections, inside the image's
// slot, so running never touches the other slot.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "common/engine.h"
#include "common/image_reader.h"
#include "common/sampler.h"
#include "common/tokenizer.h"
#include "firmware/console_line.h"
#include "firmware/link_writer.h"
#include "hal/hal.h"

namespace qmc::firmware {

class Generator {
 public:
  // `view` is validated and maps the image in `slot`; it and `board`
  // outlive the generator. Memory is reserved for `context` positions (0:
  // ServedContext's default), the most a line may ask for with ctx=.
  Status Init(const image::ImageView& view, const hal::BoardInfo& board, uint32_t slot, uint32_t context);

  // Streams the text for one console line (the prompt echoed, then what
  // follows), a line end, then the stats line:
  //   qmc-fw: stats positions=N prompt_tokens=P tok/s=X cycles/token=C mram_read/token=B
  //     reram_read/token=B dram_read/token=B dram_written/token=B sram_used=B kv=B seed=S [stack_hw=B]
  // (one line; tok/s and cycles/token exclude the first step, as `qmc run`;
  // bytes are averages over the positions run of what the engine counted it
  // read and wrote in each window (Engine::traffic), which Run adds to the
  // board's window counters after every token; stack_hw, the stack
  // high-water mark, where the board can tell).
  void Run(const GenerateOptions& options, std::string_view prompt, LinkWriter& out, hal::Clock& clock);

 private:
  const image::ImageView* view_ = nullptr;
  const hal::BoardInfo* board_ = nullptr;
  Engine engine_;
  Tokenizer tokenizer_;
  Sampler sampler_;
  std::span<uint8_t> engine_arena_;
  std::span<uint8_t> sampler_workspace_;
  std::span<uint32_t> prompt_tokens_;
  std::span<uint8_t> kv_;  // an f32 cache of context_ positions
  uint32_t context_ = 0;
  size_t sram_used_ = 0;
};

}  // namespace qmc::firmware
