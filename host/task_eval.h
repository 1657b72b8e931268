// Multiple-choice scoring of an image (`qmc eval --task`), as
// lm-evaluation-harness scores loglikelihood tasks: each choice's
// log-likelihood given the item's context, accuracy (acc) and
// length-normalised accuracy (acc_norm). docs/task-format.md has the
// protocol; in short:
//
// - Trailing whitespace of the context moves to the front of each choice
//   (lm-eval's _encode_pair). The context's tokens are encode(context); a
//   choice's are encode(context + choice) less those tokens from its front,
//   or encode(choice) when the joint encoding does not start with them.
// - The sequence is [start token] + context + choice, the start token being
//   the tokenizer's BOS (its EOS without one), as `qmc eval --text` starts
//   its windows. A choice's score is the sum over its tokens of
//   log softmax(logits)[token], computed in double, each token predicted from
//   everything before it.
// - When the sequence of the longest choice exceeds the served context, the
//   context loses tokens from its front (the start token stays), the same
//   ones for every choice of the item.
// - acc takes the choice of the highest score, acc_norm of the highest score
//   per UTF-8 byte of the choice; ties go to the lowest index. The standard
//   errors are sqrt(p (1 - p) / (n - 1)) (lm-eval's mean_stderr), NaN for one item.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "common/engine.h"
#include "common/image_reader.h"
#include "host/task_file.h"

namespace qmc::host {

struct TaskOptions {
  KvFormat kv = KvFormat::kF32;
  uint32_t context = 0;  // positions served, the start token included; 0 = min(seq_len, 2048)
  size_t limit = 0;      // score only the first `limit` items; 0 = all
  unsigned threads = 0;  // items scored in parallel; 0 = one per hardware thread
  // Called after each item with the items scored so far (from worker
  // threads, one call at a time).
  std::function<void(size_t scored, size_t total)> progress;
};

struct ItemScore {
  std::vector<double> loglikelihood;  // per choice, nats
  uint32_t choice = 0;                // acc's pick
  uint32_t choice_norm = 0;           // acc_norm's pick
};

struct TaskResult {
  size_t items = 0;
  double acc = 0.0;
  double acc_stderr = 0.0;
  double acc_norm = 0.0;
  double acc_norm_stderr = 0.0;
  std::vector<ItemScore> scores;  // per item scored, in file order
};

// `image` must have passed Validate(). Throws InputError when the image has
// no tokenizer or start token, the context asked exceeds the model's, or a
// choice alone does not fit the context (naming the item's FILE:LINE).
// The result does not depend on the thread count.
TaskResult EvaluateTask(const image::ImageView& image, std::span<const TaskItem> items, const TaskOptions& options = {});

}  // namespace qmc::host
