// Perplexity of an image on a token stream, and how far its next-token
// distributions stray from a reference image's (mean KL divergence and top-1
// agreement, as llama.cpp's perplexity tool reports). `qmc eval` and the
// eval benchmark are thin wrappers around Evaluate.
//
// Protocol: the tokens are cut into consecutive, non-overlapping windows of
// context - 1 tokens (the last may be shorter; the context is
// EvalOptions::context, by default min(seq_len, 2048)); each window runs from
// position 0 on a fresh KV cache, prefixed with the tokenizer's start token
// (BOS, or EOS for a tokenizer without one), so every token is scored
// exactly once, predicted from it and the tokens before it in its window.
// A window runs through the engine many tokens per call (the batched
// forward pass: the whole window unless the logits would pass 16 MiB), which gives the one-token engine's logits up to f32
// rounding. A token's NLL is -log softmax(logits)[token], computed in double
// with the maximum logit subtracted.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "common/engine.h"
#include "common/image_reader.h"

namespace qmc::host {

struct EvalOptions {
  KvFormat kv = KvFormat::kF32;  // the evaluated image's; the reference always runs an f32 cache
  size_t max_tokens = 0;         // score only the first max_tokens tokens; 0 = all
  uint32_t context = 0;          // positions per window, the start token included; 0 = min(seq_len, 2048)
  unsigned threads = 0;          // windows evaluated in parallel; 0 = one per hardware thread
  uint32_t batch = 0;            // tokens per engine call; 0 = EvalBatch's, 1 = one at a time as a device runs
  // Called after each window with the tokens scored so far (from worker
  // threads, one call at a time).
  std::function<void(size_t scored, size_t total)> progress;
};

struct EvalResult {
  double nll = 0.0;  // mean negative log-likelihood, nats/token
  double ppl = 0.0;  // exp(nll)
  size_t tokens = 0;
  std::optional<double> kl;    // mean KL(reference || image) over the scored positions, nats
  std::optional<double> top1;  // fraction of positions whose argmax equals the reference's
};

// log Σ_i exp(logits[i]) in double, with the maximum subtracted: a token's
// NLL is LogPartition(logits, vocab) - logits[token].
double LogPartition(const float* logits, uint32_t n);

// Tokens per engine call for scoring with `positions` positions: each weight
// is read (and decoded) once for this many tokens; a whole window where its
// logits take at most 16 MiB.
uint32_t EvalBatch(const image::ModelConfig& config, uint32_t positions);

// Text bytes EncodeText encodes at a time.
inline constexpr size_t kEncodeChunkBytes = size_t{256} << 10;

// The tokens of `text` by the image's tokenizer (no BOS, no EOS). Throws
// InputError if the image has none. Exactly one Encode of the whole text,
// but encoded a chunk at a time (EncodeChunkEnds) in one tokenizer
// workspace sized for the longest chunk: memory is bounded by chunk_bytes,
// or where a chunk finds no break (Tokenizer::BreakBefore) in chunk_bytes, by
// twice the stretch it spans; not by the text's length.
std::vector<uint32_t> EncodeText(const image::ImageView& image, std::string_view text,
                                 size_t chunk_bytes = kEncodeChunkBytes);
// The same with a tokenizer section for a model of `vocab_size` rows.
std::vector<uint32_t> EncodeText(std::span<const uint8_t> section, uint32_t vocab_size, std::string_view text,
                                 size_t chunk_bytes = kEncodeChunkBytes);
// Where EncodeText cuts `text`: each chunk's end, the last text.size(). A
// chunk ends at the last break within chunk_bytes of its start; with none,
// within twice as far, and so on.
std::vector<size_t> EncodeChunkEnds(std::span<const uint8_t> section, uint32_t vocab_size, std::string_view text,
                                    size_t chunk_bytes = kEncodeChunkBytes);
// The tokenizer workspace EncodeText allocates for `text`.
size_t EncodeWorkspaceBytes(std::span<const uint8_t> section, uint32_t vocab_size, std::string_view text,
                            size_t chunk_bytes = kEncodeChunkBytes);

// `image` and `reference` (may be null) must have passed Validate(). Throws
// InputError when there is nothing to score, a token is outside the
// vocabulary, or the reference has another tokenizer or too short a context.
// The result does not depend on the thread count.
EvalResult Evaluate(const image::ImageView& image, const image::ImageView* reference, std::span<const uint32_t> tokens,
                    const EvalOptions& options = {});

}  // namespace qmc::host
