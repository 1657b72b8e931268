// Multiple-choice scoring (host/task_eval.h, `qmc eval --task`): each
// choice's log-likelihood against a plain recomputation on a fresh engine
// per choice, acc and acc_norm from those, the task file's errors, and the
// converters' output for tiny files in each source's format.
#include "host/task_eval.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/engine.h"
#include "common/matvec.h"
#include "host/atomic_file.h"
#include "host/checkpoint.h"
#include "host/eval.h"
#include "host/pack.h"
#include "host/synthetic_checkpoint.h"
#include "host/task_convert.h"
#include "host/task_file.h"
#include "tests/cli_runner.h"

namespace qmc {
namespace {

namespace fs = std::filesystem;
const fs::path kShared = QMC_SHARED_DIR;

std::vector<uint8_t> PackStories(image::Quantizer quantizer = image::Quantizer::kF32) {
  host::Checkpoint checkpoint = host::LoadCheckpoint(kShared / "models/stories260K.bin");
  checkpoint.tokenizer = host::LoadTokenizerFile(kShared / "models/tok512.bin", checkpoint.config.vocab_size);
  host::QuantOptions options;
  options.quantizer = quantizer;
  return host::PackModel(checkpoint, options).image;
}

image::ImageView View(const std::vector<uint8_t>& bytes) {
  const image::ImageView view = image::ImageView::OpenFile(bytes).value();
  EXPECT_TRUE(view.Validate().ok());
  return view;
}

void WriteText(const fs::path& path, const std::string& text) {
  host::WriteFileAtomically(path, std::vector<uint8_t>(text.begin(), text.end()));
}

// The protocol written out plainly: the start token (llama2.c's BOS, 1),
// the context's tokens kept, and each choice's tokens.
struct PlainItem {
  std::vector<std::vector<uint32_t>> sequences;  // per choice: start + context + choice
  size_t first_scored = 0;                       // index of the first choice token
  bool fell_back = false;                        // some choice was encoded on its own
};

PlainItem PlainTokens(const image::ImageView& view, const host::TaskItem& item, size_t context) {
  std::string trimmed = item.context, moved;
  while (!trimmed.empty() && std::string(" \t\n\r\f\v").find(trimmed.back()) != std::string::npos) {
    moved.insert(moved.begin(), trimmed.back());
    trimmed.pop_back();
  }
  const std::vector<uint32_t> ctx = host::EncodeText(view, trimmed);
  PlainItem out;
  std::vector<std::vector<uint32_t>> choices;
  size_t longest = 0;
  for (const std::string& choice : item.choices) {
    const std::vector<uint32_t> whole = host::EncodeText(view, trimmed + moved + choice);
    std::vector<uint32_t> tokens;
    if (whole.size() > ctx.size() && std::vector<uint32_t>(whole.begin(), whole.begin() + ctx.size()) == ctx) {
      tokens.assign(whole.begin() + ctx.size(), whole.end());
    } else {
      tokens = host::EncodeText(view, moved + choice);
      out.fell_back = true;
    }
    longest = std::max(longest, tokens.size());
    choices.push_back(tokens);
  }
  const size_t keep = std::min(ctx.size(), context - 1 - longest);
  std::vector<uint32_t> prefix = {1};
  prefix.insert(prefix.end(), ctx.end() - keep, ctx.end());
  out.first_scored = prefix.size();
  for (const std::vector<uint32_t>& tokens : choices) {
    out.sequences.push_back(prefix);
    out.sequences.back().insert(out.sequences.back().end(), tokens.begin(), tokens.end());
  }
  return out;
}

// The sum of log softmax(logits)[next] over the choice's tokens, on a fresh
// engine run token by token from position 0.
double PlainLogLikelihood(const image::ImageView& view, const std::vector<uint32_t>& sequence, size_t first_scored,
                          KvFormat kv) {
  const image::ModelConfig& c = view.model();
  std::vector<uint8_t> arena(Engine::ArenaBytes(c, view.detail(), c.seq_len)),
      cache(Engine::KvBytes(c, view.detail(), c.seq_len, kv));
  Engine engine;
  EXPECT_TRUE(engine.Init(view, arena, cache, kv).ok());
  double sum = 0.0;
  for (size_t pos = 0; pos + 1 < sequence.size(); ++pos) {
    const float* logits = engine.Forward(sequence[pos], static_cast<uint32_t>(pos));
    if (pos + 1 < first_scored) continue;
    double max = logits[0];
    for (uint32_t v = 1; v < c.vocab_size; ++v) max = std::max(max, static_cast<double>(logits[v]));
    double z = 0.0;
    for (uint32_t v = 0; v < c.vocab_size; ++v) z += std::exp(logits[v] - max);
    sum += logits[sequence[pos + 1]] - max - std::log(z);
  }
  return sum;
}

// Items on stories260K's ground: one with a trailing space to move, an empty
// context, a tie (identical choices: the lower index wins), choices of
// different lengths (acc and acc_norm can differ), a long context, and a
// context whose last token merges with the choice ("happ" + "y": "happy").
std::vector<host::TaskItem> StoryItems() {
  const std::string text =
      R"({"context": "Once upon a time, there was a little girl named Lily. She liked to play with her", "choices": [" toys.", " dog in the park every day.", " zxq vrk."], "gold": 0}
{"context": "The cat sat on the ", "choices": ["mat.", "moon and ate a big red apple.", "tree"], "gold": 2, "id": "trailing-space"}

{"context": "", "choices": ["Once upon a time", "Qwerty uiop"], "gold": 0}
{"context": "Tom had a ball. He threw it to", "choices": [" his friend", " his friend"], "gold": 1}
{"context": "One day, a boy named Tim went to the park with his mom. They saw a big tree. Tim wanted to climb the tree, but his mom said no. Tim was sad. Then he saw a", "choices": [" bird.", " dog.", " car.", " xylophone of purple socks."], "gold": 1}
{"context": "Lily was happy because she found a shiny", "choices": [" stone", " stones"], "gold": 1}
{"context": "She was happ", "choices": ["y.", "ily"], "gold": 0}
)";
  return host::ParseTaskItems(text, "stories.jsonl");
}

struct Recomputed {
  std::vector<std::vector<double>> loglikelihood;
  double acc = 0.0, acc_norm = 0.0;
  bool fell_back = false;
};

Recomputed Recompute(const image::ImageView& view, const std::vector<host::TaskItem>& items, size_t context,
                     KvFormat kv) {
  Recomputed r;
  for (const host::TaskItem& item : items) {
    const PlainItem plain = PlainTokens(view, item, context);
    r.fell_back = r.fell_back || plain.fell_back;
    std::vector<double> ll;
    for (const std::vector<uint32_t>& sequence : plain.sequences) {
      ll.push_back(PlainLogLikelihood(view, sequence, plain.first_scored, kv));
    }
    size_t best = 0, best_norm = 0;
    for (size_t c = 1; c < ll.size(); ++c) {
      if (ll[c] > ll[best]) best = c;
      if (ll[c] / item.choices[c].size() > ll[best_norm] / item.choices[best_norm].size()) best_norm = c;
    }
    r.acc += best == item.gold ? 1.0 : 0.0;
    r.acc_norm += best_norm == item.gold ? 1.0 : 0.0;
    r.loglikelihood.push_back(ll);
  }
  r.acc /= static_cast<double>(items.size());
  r.acc_norm /= static_cast<double>(items.size());
  return r;
}

// EvaluateTask runs the batched forward pass, the recomputation the
// one-token engine: equal up to f32 rounding.
void ExpectMatches(const host::TaskResult& result, const Recomputed& plain) {
  ASSERT_EQ(result.scores.size(), plain.loglikelihood.size());
  for (size_t i = 0; i < plain.loglikelihood.size(); ++i) {
    ASSERT_EQ(result.scores[i].loglikelihood.size(), plain.loglikelihood[i].size());
    for (size_t c = 0; c < plain.loglikelihood[i].size(); ++c) {
      const double want = plain.loglikelihood[i][c];
      EXPECT_NEAR(result.scores[i].loglikelihood[c], want, 1e-6 * (1.0 + std::abs(want))) << "item " << i << " choice " << c;
    }
  }
  EXPECT_DOUBLE_EQ(result.acc, plain.acc);
  EXPECT_DOUBLE_EQ(result.acc_norm, plain.acc_norm);
  const double n = static_cast<double>(result.items);
  EXPECT_DOUBLE_EQ(result.acc_stderr, std::sqrt(plain.acc * (1 - plain.acc) / (n - 1)));
  EXPECT_DOUBLE_EQ(result.acc_norm_stderr, std::sqrt(plain.acc_norm * (1 - plain.acc_norm) / (n - 1)));
}

class TaskEval : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fs::exists(kShared / "models/stories260K.bin")) GTEST_SKIP() << "../shared/models is missing";
  }
};

// Each choice's score equals a fresh engine's per choice (the item's shared
// prefix cache gives the same numbers), acc and acc_norm follow, and the
// thread count changes nothing.
TEST_F(TaskEval, ScoresAreThePlainComputation) {
  const std::vector<uint8_t> bytes = PackStories();
  const image::ImageView view = View(bytes);
  const std::vector<host::TaskItem> items = StoryItems();
  const Recomputed plain = Recompute(view, items, 512, KvFormat::kF32);
  EXPECT_TRUE(plain.fell_back);  // "She was happy" does not start with the tokens of "She was happ"

  host::TaskOptions options;
  options.threads = 1;
  const host::TaskResult one = host::EvaluateTask(view, items, options);
  EXPECT_EQ(one.items, items.size());
  ExpectMatches(one, plain);
  EXPECT_EQ(one.scores[3].choice, 0u);  // the tie goes to the lower index
  EXPECT_EQ(one.scores[3].loglikelihood[0], one.scores[3].loglikelihood[1]);
  EXPECT_GT(one.acc, 0.0);
  EXPECT_LT(one.acc, 1.0);

  options.threads = 3;
  const host::TaskResult three = host::EvaluateTask(view, items, options);
  for (size_t i = 0; i < items.size(); ++i) EXPECT_EQ(three.scores[i].loglikelihood, one.scores[i].loglikelihood);
  EXPECT_EQ(three.acc, one.acc);
  EXPECT_EQ(three.acc_norm, one.acc_norm);

  options.limit = 2;
  const host::TaskResult limited = host::EvaluateTask(view, items, options);
  EXPECT_EQ(limited.items, 2u);
  EXPECT_EQ(limited.scores[1].loglikelihood, one.scores[1].loglikelihood);
}

// A quantized image with an int8 KV cache: rerunning positions over the shared prefix still matches.
// An int8 cache rounds each K/V row to 1/127 of its range: a batched product
// summed in another f32 order than the one-token matvec may move a value
// across a rounding step (1e-4 in a log-likelihood). On the reference kernel
// the batched product is n matvecs, so both orders are the same.
TEST_F(TaskEval, Int8CacheOnAQuantizedImageIsThePlainComputation) {
  const std::vector<uint8_t> bytes = PackStories(image::Quantizer::kQmc);
  const image::ImageView view = View(bytes);
  const std::vector<host::TaskItem> items = StoryItems();
  host::TaskOptions options;
  options.kv = KvFormat::kInt8;
  const MatVecKernel active = ActiveMatVecKernel();
  ASSERT_TRUE(UseMatVecKernel(MatVecKernel::kReference).ok());
  const host::TaskResult result = host::EvaluateTask(view, items, options);
  const Recomputed plain = Recompute(view, items, 512, KvFormat::kInt8);
  ASSERT_TRUE(UseMatVecKernel(active).ok());
  ExpectMatches(result, plain);
}

// A Hymba in miniature (the keys of Hymba-1.5B's config.json, sized down;
// seeded weights, tok512's vocabulary): its recurrent state and the windowed
// layers' rings (4 positions) cannot be rewound over a shared prefix, so each
// choice runs from position 0 and must still match.
TEST_F(TaskEval, HymbaScoresAreThePlainComputation) {
  const fs::path dir = testing::FreshTestDir("qmc_task_hymba_");
  nlohmann::json config = nlohmann::json::parse(testing::Slurp(kShared / "models/paper/hymba-1.5b-base/config.json"));
  if (config.is_discarded() || config.empty()) GTEST_SKIP() << "the Hymba config is missing";
  const int layers = 3, dim = 24, inner = 2 * dim, heads = 4;
  config["conv_dim"] = nlohmann::json::object();
  for (int l = 0; l < layers; ++l) config["conv_dim"][std::to_string(l)] = inner;
  config["global_attn_idx"] = {0};
  config["kv_reuse_group"] = {{1, 2}};
  config["layer_type"] = std::vector<std::string>(layers, "h");
  config["hidden_size"] = dim;
  config["intermediate_size"] = 40;
  config["num_hidden_layers"] = layers;
  config["num_attention_heads"] = heads;
  config["num_key_value_heads"] = 2;
  config["v_head_dim"] = inner / heads;
  config["mamba_d_state"] = 4;
  config["mamba_dt_rank"] = 5;
  config["num_memory_tokens"] = 4;
  config["sliding_window"] = 4;
  config["max_position_embeddings"] = config["seq_length"] = 128;
  config["orig_max_position_embeddings"] = 64;
  config["vocab_size"] = 512;
  WriteText(dir / "config.json", config.dump());
  host::Checkpoint checkpoint = host::SyntheticCheckpoint(host::SyntheticModel(dir / "config.json"), 3);
  checkpoint.tokenizer = host::LoadTokenizerFile(kShared / "models/tok512.bin", 512);
  fs::remove_all(dir);
  ASSERT_EQ(checkpoint.detail.ssm_inner, static_cast<uint32_t>(inner));
  ASSERT_EQ(checkpoint.detail.attn_window, 4u);
  const std::vector<uint8_t> bytes = host::PackModel(checkpoint, {}).image;
  const image::ImageView view = View(bytes);
  const std::vector<host::TaskItem> items = StoryItems();
  const host::TaskResult result = host::EvaluateTask(view, items);
  ExpectMatches(result, Recompute(view, items, view.model().seq_len, KvFormat::kF32));
  EXPECT_NE(result.scores[0].loglikelihood[0], result.scores[0].loglikelihood[1]);
}

// A served context of 24 positions cuts the long contexts from the front, the
// same tokens for every choice; a choice alone longer than that is refused.
TEST_F(TaskEval, ContextIsLeftTruncated) {
  const std::vector<uint8_t> bytes = PackStories();
  const image::ImageView view = View(bytes);
  const std::vector<host::TaskItem> items = StoryItems();
  host::TaskOptions options;
  options.context = 24;
  const host::TaskResult short_context = host::EvaluateTask(view, items, options);
  ExpectMatches(short_context, Recompute(view, items, 24, KvFormat::kF32));
  const host::TaskResult full = host::EvaluateTask(view, items);
  EXPECT_NE(short_context.scores[4].loglikelihood, full.scores[4].loglikelihood);  // the long context was cut
  EXPECT_EQ(short_context.scores[2].loglikelihood, full.scores[2].loglikelihood);  // the empty one was not

  options.context = 4;
  try {
    host::EvaluateTask(view, items, options);
    ADD_FAILURE() << "a choice longer than the context was scored";
  } catch (const host::InputError& e) {
    EXPECT_NE(std::string(e.what()).find("stories.jsonl:"), std::string::npos) << e.what();
  }
  options.context = view.model().seq_len + 1;
  EXPECT_THROW(host::EvaluateTask(view, items, options), host::InputError);
}

// Each bad line names its file and line (blank lines counted).
TEST(TaskFile, ErrorsNameTheLine) {
  const std::string good = R"({"context": "a", "choices": ["b", "c"], "gold": 1})";
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"not json", "not JSON"},
      {"[1, 2]", "not a JSON object"},
      {R"({"choices": ["b", "c"], "gold": 0})", "\"context\" is missing"},
      {R"({"context": 3, "choices": ["b", "c"], "gold": 0})", "\"context\" is not a string"},
      {R"({"context": "a", "gold": 0})", "\"choices\" is missing"},
      {R"({"context": "a", "choices": "b", "gold": 0})", "\"choices\" is not an array"},
      {R"({"context": "a", "choices": ["b", 2], "gold": 0})", "choice 1 is not a string"},
      {R"({"context": "a", "choices": ["b", ""], "gold": 0})", "choice 1 is empty"},
      {R"({"context": "a", "choices": ["b"], "gold": 0})", "expected at least 2"},
      {R"({"context": "a", "choices": ["b", "c"]})", "\"gold\" is missing"},
      {R"({"context": "a", "choices": ["b", "c"], "gold": "1"})", "\"gold\" is not an integer"},
      {R"({"context": "a", "choices": ["b", "c"], "gold": 2})", "out of range"},
      {R"({"context": "a", "choices": ["b", "c"], "gold": -1})", "out of range"},
      {R"({"context": "a", "choices": ["b", "c"], "gold": 0, "id": [1]})", "\"id\""},
  };
  for (const auto& [line, problem] : cases) {
    try {
      host::ParseTaskItems(good + "\n\n" + line + "\n" + good + "\n", "t.jsonl");
      ADD_FAILURE() << "accepted: " << line;
    } catch (const host::InputError& e) {
      const std::string message = e.what();
      EXPECT_EQ(message.rfind("t.jsonl:3: ", 0), 0u) << message;
      EXPECT_NE(message.find(problem), std::string::npos) << message;
      EXPECT_EQ(message.find('\n'), std::string::npos) << message;
    }
  }
  EXPECT_THROW(host::ParseTaskItems("\n  \n", "t.jsonl"), host::InputError);

  const std::vector<host::TaskItem> items =
      host::ParseTaskItems(good + "\r\n\n" + R"({"id": 7, "context": "", "choices": ["x", "y", "z"], "gold": 2, "extra": 1})",
                           "t.jsonl");
  ASSERT_EQ(items.size(), 2u);
  EXPECT_EQ(items[0].gold, 1u);
  EXPECT_EQ(items[0].where, "t.jsonl:1");
  EXPECT_EQ(items[1].id, "7");
  EXPECT_EQ(items[1].where, "t.jsonl:3");
  EXPECT_EQ(items[1].choices, (std::vector<std::string>{"x", "y", "z"}));
  // Written back, the items read the same.
  const std::vector<host::TaskItem> again = host::ParseTaskItems(host::FormatTaskItems(items), "u.jsonl");
  EXPECT_EQ(again[1].id, "7");
  EXPECT_EQ(again[1].choices, items[1].choices);
  EXPECT_EQ(again[0].context, items[0].context);
}

TEST(TaskConvert, HellaSwagPreprocessIsLmEvals) {
  EXPECT_EQ(host::HellaSwagPreprocess("  Heat it [title] Done.  "), "Heat it. Done.");
  EXPECT_EQ(host::HellaSwagPreprocess("[header] How to x [step] Do y."), " How to x Do y.");
  EXPECT_EQ(host::HellaSwagPreprocess("a   b"), "a  b");       // one pass of "  " -> " "
  EXPECT_EQ(host::HellaSwagPreprocess("a [b\nc] d"), "a [b\nc] d");  // a tag ends on its line
  EXPECT_EQ(host::HellaSwagPreprocess("x [a] [b] y"), "x  y");
  EXPECT_EQ(host::HellaSwagPreprocess("open [ only"), "open [ only");
}

TEST(TaskConvert, HellaSwag) {
  const std::string source =
      R"({"ind": 24, "activity_label": "Roof shingle removal", "ctx_a": "A man is sitting on a roof.", "ctx_b": "he", "endings": ["is using wrap to wrap a pair of skis.", "is ripping level tiles off.", "is holding a rubik's cube.", "starts pulling up roofing on a roof."], "source_id": "activitynet~v_-JhWjGDPHMY", "split": "val", "split_type": "indomain", "label": 3}
{"activity_label": "Home and Garden", "ctx_a": "[header] How to clean a grill [title] Heat the GRILL.", "ctx_b": "then SCRUB it", "endings": ["[step] Use a brush.  Rinse it.", " [substeps] Wait  [title] done", "x", "y"], "label": "1"}
)";
  EXPECT_EQ(host::FormatTaskItems(host::ConvertTask(host::TaskSource::kHellaSwag, source, "h.jsonl")),
            R"({"id":"24","context":"Roof shingle removal: A man is sitting on a roof. He","choices":[" is using wrap to wrap a pair of skis."," is ripping level tiles off."," is holding a rubik's cube."," starts pulling up roofing on a roof."],"gold":3}
{"context":"Home and Garden: How to clean a grill. Heat the GRILL. Then scrub it","choices":["  Use a brush. Rinse it.","  Wait . done"," x"," y"],"gold":1}
)");
  try {
    host::ConvertTask(host::TaskSource::kHellaSwag,
                      R"({"activity_label": "a", "ctx_a": "b", "endings": ["c", "d"], "label": 0})", "h.jsonl");
    ADD_FAILURE();
  } catch (const host::InputError& e) {
    EXPECT_STREQ(e.what(), "h.jsonl:1: \"ctx_b\" is missing");
  }
  EXPECT_THROW(host::ConvertTask(host::TaskSource::kHellaSwag,
                                 R"({"activity_label": "a", "ctx_a": "b", "ctx_b": "", "endings": ["c", "d"], "label": 2})",
                                 "h.jsonl"),
               host::InputError);
}

TEST(TaskConvert, Arc) {
  const std::string source =
      R"({"id": "Mercury_7175875", "question": {"stem": "Which is the most likely effect of faster rotation?", "choices": [{"text": "Planetary density will decrease.", "label": "A"}, {"text": "Planetary years will become longer.", "label": "B"}, {"text": "Planetary days will become shorter.", "label": "C"}, {"text": "Planetary gravity will become stronger.", "label": "D"}]}, "answerKey": "C"}
{"question": {"stem": "What melts ice?", "choices": [{"text": "cold", "label": "1"}, {"text": "heat", "label": "2"}, {"text": "dark", "label": "3"}]}, "answerKey": "2"}
)";
  EXPECT_EQ(host::FormatTaskItems(host::ConvertTask(host::TaskSource::kArc, source, "a.jsonl")),
            R"({"id":"Mercury_7175875","context":"Question: Which is the most likely effect of faster rotation?\nAnswer:","choices":[" Planetary density will decrease."," Planetary years will become longer."," Planetary days will become shorter."," Planetary gravity will become stronger."],"gold":2}
{"context":"Question: What melts ice?\nAnswer:","choices":[" cold"," heat"," dark"],"gold":1}
)");
  try {
    host::ConvertTask(host::TaskSource::kArc,
                      "\n" + source.substr(0, source.find('\n')) +
                          "\n" R"({"question": {"stem": "q", "choices": [{"text": "a", "label": "A"}, {"text": "b", "label": "B"}]}, "answerKey": "E"})",
                      "a.jsonl");
    ADD_FAILURE();
  } catch (const host::InputError& e) {
    EXPECT_STREQ(e.what(), "a.jsonl:3: \"answerKey\" \"E\" is not among the choices' labels");
  }
}

TEST(TaskConvert, BoolQ) {
  const std::string source =
      R"({"question": "do iran and afghanistan speak the same language", "title": "Persian language", "answer": true, "passage": "Persian (/ˈpɜːrʒən/), also known by its endonym Farsi, is spoken in Iran and Afghanistan."}
{"question": "is the sky green", "passage": "The sky is blue.", "idx": 3, "label": 0}
)";
  EXPECT_EQ(host::FormatTaskItems(host::ConvertTask(host::TaskSource::kBoolQ, source, "b.jsonl")),
            R"({"context":"Persian (/ˈpɜːrʒən/), also known by its endonym Farsi, is spoken in Iran and Afghanistan.\nQuestion: do iran and afghanistan speak the same language?\nAnswer:","choices":[" no"," yes"],"gold":1}
{"id":"3","context":"The sky is blue.\nQuestion: is the sky green?\nAnswer:","choices":[" no"," yes"],"gold":0}
)");
  try {
    host::ConvertTask(host::TaskSource::kBoolQ, R"({"question": "q", "passage": "p"})", "b.jsonl");
    ADD_FAILURE();
  } catch (const host::InputError& e) {
    EXPECT_STREQ(e.what(), "b.jsonl:1: \"answer\" is missing");
  }
}

// qmc convert-task, then qmc eval --task on what it wrote, as a user runs them.
class TaskCli : public TaskEval {
 protected:
  void SetUp() override {
    TaskEval::SetUp();
    if (IsSkipped()) return;
    dir_ = testing::FreshTestDir("qmc_task_cli_");
    host::WriteFileAtomically(dir_ / "f32.qmc", PackStories());
  }
  void TearDown() override {
    if (!dir_.empty()) fs::remove_all(dir_);
  }
  std::string Path(const char* name) const { return (dir_ / name).string(); }
  fs::path dir_;
};

TEST_F(TaskCli, ConvertThenEval) {
  WriteText(dir_ / "boolq.jsonl",
            R"({"question": "was the dog happy", "passage": "The dog ran in the park and wagged its tail.", "answer": true}
{"question": "did lily cry", "passage": "Lily smiled at her mom and played with her toy.", "answer": false}
{"question": "was the sun hot", "passage": "The sun was big and hot in the sky.", "answer": true}
)");
  const testing::CliRun convert =
      testing::Qmc("convert-task --from boolq " + Path("boolq.jsonl") + " -o " + Path("items.jsonl"), dir_);
  ASSERT_EQ(convert.exit_code, 0) << convert.err;
  const std::vector<host::TaskItem> items = host::ReadTaskFile(dir_ / "items.jsonl");
  ASSERT_EQ(items.size(), 3u);

  const testing::CliRun eval = testing::Qmc("eval " + Path("f32.qmc") + " --task " + Path("items.jsonl") + " --json", dir_);
  ASSERT_EQ(eval.exit_code, 0) << eval.err;
  const nlohmann::json out = nlohmann::json::parse(eval.out);
  const std::vector<uint8_t> bytes = host::ReadWholeFile(dir_ / "f32.qmc");
  const image::ImageView view = View(bytes);
  const Recomputed plain = Recompute(view, items, 512, KvFormat::kF32);
  EXPECT_EQ(out["items"], 3);
  EXPECT_DOUBLE_EQ(out["acc"].get<double>(), plain.acc);
  EXPECT_DOUBLE_EQ(out["acc_norm"].get<double>(), plain.acc_norm);
  EXPECT_DOUBLE_EQ(out["acc_stderr"].get<double>(), std::sqrt(plain.acc * (1 - plain.acc) / 2));
  EXPECT_TRUE(out.contains("acc_norm_stderr"));

  const testing::CliRun text = testing::Qmc("eval " + Path("f32.qmc") + " --task " + Path("items.jsonl") + " --limit 1", dir_);
  ASSERT_EQ(text.exit_code, 0) << text.err;
  EXPECT_NE(text.out.find("over 1 items"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("n/a"), std::string::npos) << text.out;  // no standard error from one item
}

TEST_F(TaskCli, BadInputExitCodes) {
  WriteText(dir_ / "bad.jsonl", "{\"context\": \"a\", \"choices\": [\"b\", \"c\"], \"gold\": 0}\n\n"
                                "{\"context\": \"a\", \"choices\": [\"b\", \"c\"], \"gold\": 5}\n");
  const testing::CliRun bad = testing::Qmc("eval " + Path("f32.qmc") + " --task " + Path("bad.jsonl"), dir_);
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_NE(bad.err.find("bad.jsonl:3:"), std::string::npos) << bad.err;
  EXPECT_EQ(std::count(bad.err.begin(), bad.err.end(), '\n'), 1) << bad.err;

  WriteText(dir_ / "arc.jsonl", R"({"question": {"stem": "q"}, "answerKey": "A"})");
  const testing::CliRun convert = testing::Qmc("convert-task --from arc " + Path("arc.jsonl") + " -o " + Path("o.jsonl"), dir_);
  EXPECT_EQ(convert.exit_code, 1);
  EXPECT_NE(convert.err.find("arc.jsonl:1:"), std::string::npos) << convert.err;
  EXPECT_FALSE(fs::exists(dir_ / "o.jsonl"));

  EXPECT_EQ(testing::Qmc("eval " + Path("f32.qmc"), dir_).exit_code, 2);  // neither --text nor --task
  EXPECT_EQ(testing::Qmc("eval " + Path("f32.qmc") + " --task " + Path("bad.jsonl") + " --text " + Path("bad.jsonl"), dir_)
                .exit_code,
            2);
  EXPECT_EQ(testing::Qmc("eval " + Path("f32.qmc") + " --task " + Path("missing.jsonl"), dir_).exit_code, 4);
  EXPECT_EQ(testing::Qmc("convert-task --from mmlu " + Path("arc.jsonl") + " -o " + Path("o.jsonl"), dir_).exit_code, 2);
}

}  // namespace
}  // namespace qmc
