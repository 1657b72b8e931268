// The engine against a forward pass written plainly here, straight from a
// checkpoint's f32 tensors (or a quantizer's reconstructions), sharing no
// code with common/: every logit over whole greedy sequences, and the text
// `qmc run` prints.
#include <gtest/gtest.h>

#include "common/model_tensors.h"

#include "tests/cli_runner.h"
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "common/engine.h"
#include "common/tokenizer.h"
#include "host/atomic_file.h"
#include "host/pack.h"
#include "tests/tiny_model.h"

namespace qmc {
namespace {

namespace fs = std::filesystem;
using image::ModelConfig;
const fs::path kShared = QMC_SHARED_DIR;

using Weights = std::map<std::string, std::vector<float>>;

// llama2.c run.c's forward(), transcribed with explicit head_dim, GQA,
// rope_theta, norm_eps and optional q/k/v biases.
class ReferenceModel {
 public:
  ReferenceModel(const ModelConfig& c, Weights weights) : c_(c), w_(std::move(weights)) {
    const size_t kv = static_cast<size_t>(c.n_layers) * c.seq_len * c.n_kv_heads * c.head_dim;
    key_cache_.assign(kv, 0.0f);
    value_cache_.assign(kv, 0.0f);
  }

  std::vector<float> Forward(int token, int pos) {
    const int dim = c_.dim, hidden = c_.hidden_dim, head_size = c_.head_dim;
    const int q_dim = c_.n_heads * head_size, kv_dim = c_.n_kv_heads * head_size;
    const int kv_mul = c_.n_heads / c_.n_kv_heads;
    std::vector<float> x(W("token_embd.weight") + static_cast<size_t>(token) * dim,
                         W("token_embd.weight") + static_cast<size_t>(token + 1) * dim);
    std::vector<float> xb(std::max(dim, q_dim)), xb2(dim), q(q_dim), hb(hidden), hb2(hidden), att(pos + 1);
    for (int l = 0; l < static_cast<int>(c_.n_layers); ++l) {
      const std::string p = "blk." + std::to_string(l) + ".";
      rmsnorm(xb.data(), x.data(), W(p + "attn_norm.weight"), dim);
      const size_t loff = static_cast<size_t>(l) * c_.seq_len * kv_dim;
      float* k = key_cache_.data() + loff + static_cast<size_t>(pos) * kv_dim;
      float* v = value_cache_.data() + loff + static_cast<size_t>(pos) * kv_dim;
      matmul(q.data(), xb.data(), W(p + "attn_q.weight"), dim, q_dim);
      matmul(k, xb.data(), W(p + "attn_k.weight"), dim, kv_dim);
      matmul(v, xb.data(), W(p + "attn_v.weight"), dim, kv_dim);
      if (c_.flags & image::kModelQkvBias) {
        for (int i = 0; i < q_dim; i++) q[i] += W(p + "attn_q.bias")[i];
        for (int i = 0; i < kv_dim; i++) k[i] += W(p + "attn_k.bias")[i];
        for (int i = 0; i < kv_dim; i++) v[i] += W(p + "attn_v.bias")[i];
      }
      for (int i = 0; i < q_dim; i += 2) {
        const int head_dim = i % head_size;
        const float freq = 1.0f / powf(c_.rope_theta, head_dim / static_cast<float>(head_size));
        const float val = pos * freq;
        const float fcr = cosf(val), fci = sinf(val);
        const int rotn = i < kv_dim ? 2 : 1;
        for (int r = 0; r < rotn; r++) {
          float* vec = r == 0 ? q.data() : k;
          const float v0 = vec[i], v1 = vec[i + 1];
          vec[i] = v0 * fcr - v1 * fci;
          vec[i + 1] = v0 * fci + v1 * fcr;
        }
      }
      for (int h = 0; h < static_cast<int>(c_.n_heads); h++) {
        const float* qh = q.data() + h * head_size;
        for (int t = 0; t <= pos; t++) {
          const float* kt = key_cache_.data() + loff + static_cast<size_t>(t) * kv_dim + (h / kv_mul) * head_size;
          float score = 0.0f;
          for (int i = 0; i < head_size; i++) score += qh[i] * kt[i];
          att[t] = score / sqrtf(static_cast<float>(head_size));
        }
        softmax(att.data(), pos + 1);
        float* out = xb.data() + h * head_size;
        std::fill(out, out + head_size, 0.0f);
        for (int t = 0; t <= pos; t++) {
          const float* vt = value_cache_.data() + loff + static_cast<size_t>(t) * kv_dim + (h / kv_mul) * head_size;
          for (int i = 0; i < head_size; i++) out[i] += att[t] * vt[i];
        }
      }
      matmul(xb2.data(), xb.data(), W(p + "attn_output.weight"), q_dim, dim);
      for (int i = 0; i < dim; i++) x[i] += xb2[i];
      rmsnorm(xb.data(), x.data(), W(p + "ffn_norm.weight"), dim);
      matmul(hb.data(), xb.data(), W(p + "ffn_gate.weight"), dim, hidden);
      matmul(hb2.data(), xb.data(), W(p + "ffn_up.weight"), dim, hidden);
      for (int i = 0; i < hidden; i++) {
        float val = hb[i];
        val *= (1.0f / (1.0f + expf(-val)));
        val *= hb2[i];
        hb[i] = val;
      }
      matmul(xb.data(), hb.data(), W(p + "ffn_down.weight"), hidden, dim);
      for (int i = 0; i < dim; i++) x[i] += xb[i];
    }
    rmsnorm(x.data(), x.data(), W("output_norm.weight"), dim);
    const bool shared = c_.flags & image::kModelSharedClassifier;
    std::vector<float> logits(c_.vocab_size);
    matmul(logits.data(), x.data(), W(shared ? "token_embd.weight" : "output.weight"), dim, c_.vocab_size);
    return logits;
  }

 private:
  const float* W(const std::string& name) const { return w_.at(name).data(); }

  void rmsnorm(float* o, const float* x, const float* weight, int size) const {
    float ss = 0.0f;
    for (int j = 0; j < size; j++) ss += x[j] * x[j];
    ss /= size;
    ss += c_.norm_eps;
    ss = 1.0f / sqrtf(ss);
    for (int j = 0; j < size; j++) o[j] = weight[j] * (ss * x[j]);
  }

  static void softmax(float* x, int size) {
    float max_val = x[0];
    for (int i = 1; i < size; i++) max_val = std::max(max_val, x[i]);
    float sum = 0.0f;
    for (int i = 0; i < size; i++) {
      x[i] = expf(x[i] - max_val);
      sum += x[i];
    }
    for (int i = 0; i < size; i++) x[i] /= sum;
  }

  // W (d,n) @ x (n,) -> xout (d,)
  static void matmul(float* xout, const float* x, const float* w, int n, int d) {
    for (int i = 0; i < d; i++) {
      float val = 0.0f;
      for (int j = 0; j < n; j++) val += w[static_cast<size_t>(i) * n + j] * x[j];
      xout[i] = val;
    }
  }

  ModelConfig c_;
  Weights w_;
  std::vector<float> key_cache_, value_cache_;
};

int Argmax(const float* logits, uint32_t n) { return static_cast<int>(std::max_element(logits, logits + n) - logits); }

Weights CheckpointWeights(const host::Checkpoint& checkpoint) {
  Weights w;
  for (const auto& [name, tensor] : checkpoint.tensors) w[name] = tensor.data;
  return w;
}

Weights ReconstructedWeights(const host::PackedModel& packed) {
  Weights w;
  for (const host::QuantizedTensor& t : packed.tensors) w[t.name] = t.reconstruction;
  return w;
}

host::PackedModel Pack(const host::Checkpoint& checkpoint, image::Quantizer quantizer, uint32_t bits = 3) {
  host::QuantOptions options;
  options.quantizer = quantizer;
  options.bits = bits;
  options.cell_bits = 3;
  return host::PackModel(checkpoint, options);
}

// Greedy decoding from BOS for `steps` positions by the engine and by the
// reference, each feeding back its own choice: the tokens must agree and
// every logit must be within `tolerance`. Returns the tokens.
std::vector<int> ExpectSameGreedyRun(const std::vector<uint8_t>& image_bytes, ReferenceModel reference,
                                     uint32_t steps, float tolerance) {
  const image::ImageView view = image::ImageView::OpenFile(image_bytes).value();
  EXPECT_TRUE(view.Validate().ok());
  const ModelConfig& c = view.model();
  std::vector<uint8_t> arena(Engine::ArenaBytes(c, image::DefaultDetail(c), c.seq_len)), kv(Engine::KvBytes(c, image::DefaultDetail(c), steps));
  Engine engine;
  const Status status = engine.Init(view, arena, kv);
  EXPECT_TRUE(status.ok()) << status.what;
  std::vector<int> tokens = {1};
  for (uint32_t pos = 0; pos < steps; ++pos) {
    const float* logits = engine.Forward(static_cast<uint32_t>(tokens.back()), pos);
    EXPECT_NE(logits, nullptr);
    if (logits == nullptr) break;
    const std::vector<float> expected = reference.Forward(tokens.back(), static_cast<int>(pos));
    float worst = 0.0f;
    for (uint32_t i = 0; i < c.vocab_size; ++i) worst = std::max(worst, std::fabs(logits[i] - expected[i]));
    EXPECT_LE(worst, tolerance) << "position " << pos;
    const int next = Argmax(logits, c.vocab_size);
    EXPECT_EQ(next, Argmax(expected.data(), c.vocab_size)) << "position " << pos;
    if (next != Argmax(expected.data(), c.vocab_size)) break;
    tokens.push_back(next);
  }
  return tokens;
}

host::Checkpoint Stories() {
  host::Checkpoint c = host::LoadLlama2c(kShared / "models/stories260K.bin");
  c.tokenizer = host::LoadTokenizerFile(kShared / "models/tok512.bin", c.config.vocab_size);
  return c;
}

TEST(EngineReference, Stories260KF32) {
  if (!fs::exists(kShared / "models/stories260K.bin")) GTEST_SKIP() << "../shared/models is missing";
  const host::Checkpoint checkpoint = Stories();
  const host::PackedModel packed = Pack(checkpoint, image::Quantizer::kF32);
  const std::vector<int> tokens =
      ExpectSameGreedyRun(packed.image, ReferenceModel(checkpoint.config, CheckpointWeights(checkpoint)), 96, 1e-4f);
  EXPECT_EQ(tokens.size(), 97u);
}

// A 3-bit qmc image decodes to the quantizer's reconstructions; the engine
// runs exactly the model those weights define.
TEST(EngineReference, Stories260KQmc3Bit) {
  if (!fs::exists(kShared / "models/stories260K.bin")) GTEST_SKIP() << "../shared/models is missing";
  const host::Checkpoint checkpoint = Stories();
  const host::PackedModel packed = Pack(checkpoint, image::Quantizer::kQmc, 3);
  const std::vector<int> tokens =
      ExpectSameGreedyRun(packed.image, ReferenceModel(checkpoint.config, ReconstructedWeights(packed)), 96, 1e-4f);
  EXPECT_EQ(tokens.size(), 97u);
}

TEST(EngineReference, Kjv6MF32) {
  if (!fs::exists(kShared / "models/kjv6M.bin")) GTEST_SKIP() << "../shared/models is missing";
  host::Checkpoint checkpoint = host::LoadLlama2c(kShared / "models/kjv6M.bin");
  checkpoint.tokenizer = host::LoadTokenizerFile(kShared / "models/kjv_tok2048.bin", checkpoint.config.vocab_size);
  const host::PackedModel packed = Pack(checkpoint, image::Quantizer::kF32);
  const std::vector<int> tokens =
      ExpectSameGreedyRun(packed.image, ReferenceModel(checkpoint.config, CheckpointWeights(checkpoint)), 24, 1e-4f);
  EXPECT_EQ(tokens.size(), 25u);
}

// The paths the shared models do not take: Qwen2's q/k/v biases, a separate
// classifier, another RoPE theta and epsilon, odd widths, mxint4 and fp16.
TEST(EngineReference, SyntheticQwen2WithBiasesAndEverySchemeStaysWithinTolerance) {
  host::Checkpoint checkpoint = testing::TinyCheckpoint(3);
  checkpoint.config.arch = static_cast<uint32_t>(image::Arch::kQwen2);
  checkpoint.config.flags |= image::kModelQkvBias;
  checkpoint.config.rope_theta = 1e6f;
  checkpoint.config.norm_eps = 1e-6f;
  std::mt19937 rng(4);
  std::normal_distribution<float> normal(0.0f, 0.3f);
  for (const host::TensorSpec& spec : host::RequiredTensors(checkpoint.config, checkpoint.detail)) {
    if (spec.name.find(".bias") == std::string::npos) continue;
    host::Tensor bias{spec.rows, spec.cols, std::vector<float>(spec.cols)};
    for (float& b : bias.data) b = normal(rng);
    checkpoint.tensors[spec.name] = bias;
  }
  for (const image::Quantizer q : {image::Quantizer::kF32, image::Quantizer::kFp16, image::Quantizer::kRtn,
                                   image::Quantizer::kQmc, image::Quantizer::kMxInt4}) {
    const host::PackedModel packed = Pack(checkpoint, q, q == image::Quantizer::kMxInt4 ? 4 : 3);
    const std::vector<int> tokens = ExpectSameGreedyRun(
        packed.image, ReferenceModel(checkpoint.config, ReconstructedWeights(packed)), checkpoint.config.seq_len, 1e-4f);
    EXPECT_EQ(tokens.size(), checkpoint.config.seq_len + 1u) << static_cast<int>(q);
  }
}


// run.c's decode() and safe_printf(), over the tokenizer bytes the image embeds.
class ReferenceDecoder {
 public:
  explicit ReferenceDecoder(const std::vector<uint8_t>& bytes) {
    for (size_t pos = 4; pos < bytes.size();) {
      int32_t length;
      std::memcpy(&length, &bytes[pos + 4], 4);
      vocab_.push_back(std::string(reinterpret_cast<const char*>(&bytes[pos + 8]), static_cast<size_t>(length)).c_str());
      pos += 8 + static_cast<size_t>(length);
    }
  }

  // What `qmc run` prints for `next` following `token`.
  std::string Printed(int token, int next) const {
    const char* piece = vocab_[next].c_str();
    if (token == 1 && piece[0] == ' ') piece++;
    unsigned char byte_val;
    char byte_piece[2] = {0, 0};
    if (std::sscanf(piece, "<0x%02hhX>", &byte_val) == 1) {
      byte_piece[0] = static_cast<char>(byte_val);
      piece = byte_piece;
    }
    if (piece[0] == '\0') return "";
    if (piece[1] == '\0' && !(std::isprint(static_cast<unsigned char>(piece[0])) || std::isspace(static_cast<unsigned char>(piece[0])))) {
      return "";
    }
    return piece;
  }

 private:
  std::vector<std::string> vocab_;
};

using qmc::testing::CliRun;
using qmc::testing::Qmc;

class RunCli : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fs::exists(kShared / "models/stories260K.bin")) GTEST_SKIP() << "../shared/models is missing";
    dir_ = qmc::testing::FreshTestDir("qmc_run_cli_");
    checkpoint_ = Stories();
    image_ = dir_ / "stories.qmc";
    host::WriteFileAtomically(image_, Pack(checkpoint_, image::Quantizer::kF32).image);
  }
  void TearDown() override {
    if (!dir_.empty()) fs::remove_all(dir_);
  }

  fs::path dir_;
  host::Checkpoint checkpoint_;
  fs::path image_;
};

// Greedy `qmc run` prints what run.c's generate() would print with the
// reference model: the prompt echoed, then the argmax continuation.
TEST_F(RunCli, GreedyTextIsTheReferenceModelsText) {
  for (const std::string prompt : {"", "Once upon a time, a cat"}) {
    const uint32_t steps = 120;
    // The prompt's tokens (the encoder is held to run.c's in tokenizer_test).
    std::vector<uint8_t> workspace(
        Tokenizer::WorkspaceBytes(checkpoint_.tokenizer, checkpoint_.config.vocab_size, prompt.size()));
    Tokenizer tokenizer;
    ASSERT_TRUE(tokenizer.Init(checkpoint_.tokenizer, checkpoint_.config.vocab_size, workspace, prompt.size()).ok());
    std::vector<uint32_t> prompt_tokens(tokenizer.MaxTokens(prompt.size()));
    const uint32_t n_prompt = tokenizer.Encode(prompt, true, false, prompt_tokens).value();

    ReferenceModel reference(checkpoint_.config, CheckpointWeights(checkpoint_));
    const ReferenceDecoder decoder(checkpoint_.tokenizer);
    std::string expected;
    int token = static_cast<int>(prompt_tokens[0]);
    for (uint32_t pos = 0; pos < steps;) {
      const std::vector<float> logits = reference.Forward(token, static_cast<int>(pos));
      const int next = pos + 1 < n_prompt ? static_cast<int>(prompt_tokens[pos + 1])
                                          : Argmax(logits.data(), checkpoint_.config.vocab_size);
      ++pos;
      if (next == 1) break;
      expected += decoder.Printed(token, next);
      token = next;
    }
    expected += "\n";

    const CliRun run = Qmc("run " + image_.string() + " -p '" + prompt + "' -n " + std::to_string(steps) + " -t 0", dir_);
    ASSERT_EQ(run.exit_code, 0) << run.err;
    EXPECT_EQ(run.out, expected);
    EXPECT_EQ(run.out.rfind(prompt, 0), 0u);
    EXPECT_GT(run.out.size(), prompt.size() + 100);
    EXPECT_NE(run.err.find("achieved tok/s"), std::string::npos) << run.err;
  }
}

TEST_F(RunCli, SamplingIsReproducibleFromTheSeed) {
  const std::string args = "run " + image_.string() + " -p 'The dog' -n 80 -t 1.0 --top-p 0.9 --seed ";
  const CliRun a = Qmc(args + "7", dir_), b = Qmc(args + "7", dir_), c = Qmc(args + "8", dir_);
  ASSERT_EQ(a.exit_code, 0) << a.err;
  EXPECT_EQ(a.out, b.out);
  EXPECT_NE(a.out, c.out);
  EXPECT_EQ(a.out.rfind("The dog", 0), 0u);
}

TEST_F(RunCli, RejectsACorruptImageAndBadOptions) {
  std::vector<uint8_t> bytes = host::ReadWholeFile(image_);
  bytes[bytes.size() - 100] ^= 0x40;  // a weight byte: only the section CRC notices
  const fs::path corrupt = dir_ / "corrupt.qmc";
  host::WriteFileAtomically(corrupt, bytes);
  const CliRun bad = Qmc("run " + corrupt.string() + " -n 8", dir_);
  EXPECT_EQ(bad.exit_code, 3);
  EXPECT_NE(bad.err.find("CRC"), std::string::npos) << bad.err;
  EXPECT_EQ(Qmc("run " + image_.string() + " -t -1", dir_).exit_code, 2);
  EXPECT_EQ(Qmc("run " + image_.string() + " --seed 0", dir_).exit_code, 2);
  EXPECT_EQ(Qmc("run " + (dir_ / "missing.qmc").string(), dir_).exit_code, 4);
}

}  // namespace
}  // namespace qmc
