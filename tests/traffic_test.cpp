// The bytes the engine counts it reads and writes per token in each memory
// window (Engine::traffic, common/tensor_traffic.h), against the same bytes
// worked out here from the image format alone (docs/image-format.md,
// common/split_layout.h), reading the image file's bytes with no code from
// common/; and qmc-fw-emu's stats line reporting them.
#include <gtest/gtest.h>

#include "common/model_tensors.h"
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <string>
#include <vector>

#include "common/engine.h"
#include "common/tensor_traffic.h"
#include "host/eval.h"
#include "host/pack.h"
#include "tests/board_console.h"
#include "tests/cli_runner.h"
#include "tests/firmware_tokens.h"
#include "tests/tiny_model.h"

namespace qmc {
namespace {

namespace fs = std::filesystem;
using testing::GreedyTokens;
const fs::path kShared = QMC_SHARED_DIR;

// ---- The image, read from its bytes as docs/image-format.md lays them out.

enum : uint32_t { kSram = 0, kMram = 1, kReram = 2, kDram = 3 };

uint32_t U32(const std::vector<uint8_t>& b, size_t at) {
  return b[at] | b[at + 1] << 8 | b[at + 2] << 16 | static_cast<uint32_t>(b[at + 3]) << 24;
}

struct Blob {
  uint32_t section, offset, length;
};

struct Tensor {
  std::string name;
  uint32_t scheme, bits, cell_bits, outlier_bits, group_size, rows, cols, outlier_count;
  Blob data, scales, outliers;
};

struct Section {
  uint32_t kind, window, file_offset, length;
};

struct Model {
  std::vector<uint8_t> file;
  uint32_t n_layers, n_heads, n_kv_heads, head_dim, flags;
  std::vector<Section> sections;
  std::vector<Tensor> tensors;

  uint32_t Window(const Blob& blob) const { return sections.at(blob.section).window; }
  // Byte `at` of a blob, as a u32.
  uint32_t BlobU32(const Blob& blob, uint64_t at) const {
    return U32(file, sections.at(blob.section).file_offset + blob.offset + at);
  }
};

Model ParseModel(const std::vector<uint8_t>& file) {
  Model m;
  m.file = file;
  const uint32_t section_count = U32(file, 16), tensor_count = U32(file, 24);
  m.n_layers = U32(file, 32 + 12);
  m.n_heads = U32(file, 32 + 16);
  m.n_kv_heads = U32(file, 32 + 20);
  m.head_dim = U32(file, 32 + 24);
  m.flags = U32(file, 32 + 44);
  uint32_t directory = 0;
  for (uint32_t i = 0; i < section_count; ++i) {
    const size_t at = 128 + i * 24;
    m.sections.push_back({file[at], file[at + 1], U32(file, at + 4), U32(file, at + 12)});
    if (file[at] == 1) directory = U32(file, at + 4);
  }
  for (uint32_t i = 0; i < tensor_count; ++i) {
    const size_t at = directory + i * 96;
    Tensor t;
    t.name = std::string(reinterpret_cast<const char*>(&file[at]));
    t.scheme = file[at + 40];
    t.bits = file[at + 41];
    t.cell_bits = file[at + 42];
    t.outlier_bits = file[at + 43];
    t.group_size = file[at + 44] | file[at + 45] << 8;
    t.rows = U32(file, at + 48);
    t.cols = U32(file, at + 52);
    t.outlier_count = U32(file, at + 56);
    auto blob = [&](size_t o) { return Blob{U32(file, at + o), U32(file, at + o + 4), U32(file, at + o + 8)}; };
    t.data = blob(60);
    t.scales = blob(72);
    t.outliers = blob(84);
    m.tensors.push_back(t);
  }
  return m;
}

struct Bytes {
  uint64_t read[4] = {};
  uint64_t written[4] = {};
};

void AddBlob(const Model& m, const Blob& blob, uint64_t bytes, Bytes& out) {
  if (blob.section != 0xFFFFFFFFu) out.read[m.Window(blob)] += bytes;
}

// A matvec reads every byte of a tensor's blobs, once.
void AddWhole(const Model& m, const Tensor& t, Bytes& out) {
  AddBlob(m, t.data, t.data.length, out);
  AddBlob(m, t.scales, t.scales.length, out);
  AddBlob(m, t.outliers, t.outliers.length, out);
}

// The 32-bit words that codes [begin, end) of a `bits`-bit code stream in
// `cell_bits`-bit cells touch, found by walking the codes' bits to their
// cells and the cells to their words.
uint64_t WordsTouched(uint64_t begin, uint64_t end, uint32_t bits, uint32_t cell_bits) {
  std::set<uint64_t> words;
  const uint32_t cells_per_word = 32 / cell_bits;
  for (uint64_t k = begin; k < end; ++k) {
    for (uint32_t i = 0; i < bits; ++i) words.insert((k * bits + i) / cell_bits / cells_per_word);
  }
  return words.size();
}

// One row of a tensor: what the embedding lookup reads.
void AddRow(const Model& m, const Tensor& t, uint32_t r, Bytes& out) {
  switch (t.scheme) {
    case 0:  // f32
    case 1:  // fp16
      AddBlob(m, t.data, t.data.length / t.rows, out);
      return;
    case 2:  // group-affine: the row's words and scale pairs, its two row starts and CSR entries
      AddBlob(m, t.data, t.data.length / t.rows, out);
      AddBlob(m, t.scales, t.scales.length / t.rows, out);
      if (t.outlier_count > 0) {
        const uint32_t entries = m.BlobU32(t.outliers, (r + 1) * 4) - m.BlobU32(t.outliers, r * 4);
        AddBlob(m, t.outliers, 8 + entries * 4, out);
      }
      return;
    case 3:  // mxint4: the row's words and E8M0 bytes
      AddBlob(m, t.data, t.data.length / t.rows, out);
      AddBlob(m, t.scales, t.scales.length / t.rows, out);
      return;
    case 4: {  // split
      const uint64_t first = m.BlobU32(t.outliers, r * 4), next = m.BlobU32(t.outliers, (r + 1) * 4);
      const uint64_t inlier_first = static_cast<uint64_t>(r) * t.cols - first;
      AddBlob(m, t.data, 4 * WordsTouched(inlier_first, inlier_first + t.cols - (next - first), t.bits, t.cell_bits),
              out);
      const uint32_t groups = (t.cols + t.group_size - 1) / t.group_size;
      AddBlob(m, t.scales, (1 + groups) * 4, out);
      const uint32_t bitmap_words = (t.cols + 31) / 32;
      AddBlob(m, t.outliers, 8 + bitmap_words * 4 + 4 * WordsTouched(first, next, t.outlier_bits, 1), out);
      return;
    }
  }
  ADD_FAILURE() << "unknown scheme " << t.scheme;
}

// One KV cache row (one KV head at one position) in the cache.
uint64_t KvRowBytes(const Model& m, KvFormat format) {
  switch (format) {
    case KvFormat::kF32: return m.head_dim * 4;
    case KvFormat::kFp16: return m.head_dim * 2;
    case KvFormat::kInt8: return m.head_dim + 4;  // codes and the row's f32 scale
  }
  return 0;
}

// Forward(token, pos): every matrix, norm and bias once (the classifier
// again when it is the embedding), the embedding's row `token`; the keys
// and values of positions 0..pos read once per KV head (a KV head serves its
// query group) and this position's written.
Bytes Expected(const Model& m, uint32_t token, uint32_t pos, KvFormat format) {
  Bytes out;
  for (const Tensor& t : m.tensors) {
    if (t.name == "token_embd.weight") {
      AddRow(m, t, token, out);
      if (m.flags & 1u) AddWhole(m, t, out);  // the shared classifier
    } else {
      AddWhole(m, t, out);
    }
  }
  const uint64_t kv_rows = 2ull * m.n_layers * m.n_kv_heads;  // keys and values
  out.read[kDram] += (pos + 1ull) * kv_rows * KvRowBytes(m, format);
  out.written[kDram] += kv_rows * KvRowBytes(m, format);
  return out;
}

std::string Describe(const uint64_t (&bytes)[4]) {
  return "sram " + std::to_string(bytes[0]) + ", mram " + std::to_string(bytes[1]) + ", reram " +
         std::to_string(bytes[2]) + ", dram " + std::to_string(bytes[3]);
}

void ExpectEqual(const ReadCounter& counted, const Bytes& expected) {
  EXPECT_EQ(Describe(counted.read), Describe(expected.read)) << "read";
  EXPECT_EQ(Describe(counted.written), Describe(expected.written)) << "written";
}

// ---- Images of every scheme, from the tiny synthetic model (4 query heads
// sharing 2 KV heads).

struct SchemeCase {
  const char* name;
  host::QuantOptions options;
};

std::vector<SchemeCase> Schemes() {
  auto with = [](image::Quantizer quantizer) {
    host::QuantOptions o;
    o.quantizer = quantizer;
    o.group_size = 16;  // several groups per row of the tiny model, the last partial
    return o;
  };
  host::QuantOptions split = with(image::Quantizer::kQmc);
  split.outlier_bits = 4;
  split.outlier_ratio = 0.02;
  host::QuantOptions qmc_row = with(image::Quantizer::kQmc);
  qmc_row.balance = host::OutlierBalance::kRow;
  host::QuantOptions rtn_2bit = with(image::Quantizer::kRtn);
  rtn_2bit.bits = 2;
  rtn_2bit.cell_bits = 2;
  return {{"f32", with(image::Quantizer::kF32)},      {"fp16", with(image::Quantizer::kFp16)},
          {"rtn", with(image::Quantizer::kRtn)},      {"rtn_b2c2", rtn_2bit},
          {"qmc", with(image::Quantizer::kQmc)},      {"qmc_row_balanced", qmc_row},
          {"qmc_split", split},                       {"mxint4", with(image::Quantizer::kMxInt4)}};
}

// The tiny model separate-classifier, shared-classifier, and with q/k/v biases.
std::vector<host::Checkpoint> Checkpoints() {
  host::Checkpoint bias = testing::TinyCheckpoint(3);
  bias.config.flags |= image::kModelQkvBias;
  for (const host::TensorSpec& spec : host::RequiredTensors(bias.config, bias.detail)) {
    if (bias.tensors.count(spec.name) == 0) {
      bias.tensors[spec.name] = {spec.rows, spec.cols, std::vector<float>(static_cast<size_t>(spec.rows) * spec.cols, 0.01f)};
    }
  }
  return {testing::TinyCheckpoint(1), testing::TinyCheckpoint(2, true), bias};
}

const KvFormat kFormats[] = {KvFormat::kF32, KvFormat::kFp16, KvFormat::kInt8};

// (a) Every scheme, every KV format: each token's counted bytes per window
// are the image format's, at every position of the context.
TEST(Traffic, CountedBytesPerTokenAreTheImageFormats) {
  for (const SchemeCase& scheme : Schemes()) {
    for (const host::Checkpoint& checkpoint : Checkpoints()) {
      const std::vector<uint8_t> file = host::PackModel(checkpoint, scheme.options).image;
      const image::ImageView view = image::ImageView::OpenFile(file).value();
      ASSERT_TRUE(view.Validate().ok()) << scheme.name;
      const Model model = ParseModel(file);
      const image::ModelConfig& c = view.model();
      for (const KvFormat format : kFormats) {
        SCOPED_TRACE(std::string(scheme.name) + " flags " + std::to_string(c.flags) + " kv " +
                     std::to_string(static_cast<int>(format)));
        std::vector<uint8_t> arena(Engine::ArenaBytes(c, image::DefaultDetail(c), c.seq_len)), kv(Engine::KvBytes(c, image::DefaultDetail(c), c.seq_len, format));
        Engine engine;
        ASSERT_TRUE(engine.Init(view, arena, kv, format).ok());
        for (uint32_t pos = 0; pos < c.seq_len; ++pos) {
          const uint32_t token = (pos * 7 + 3) % c.vocab_size;
          ASSERT_NE(engine.Forward(token, pos), nullptr);
          SCOPED_TRACE("pos " + std::to_string(pos));
          ExpectEqual(engine.TakeTraffic(), Expected(model, token, pos, format));
        }
      }
    }
  }
}

// Every row of every tensor, alone, and every tensor whole: AddRowTraffic
// against the format (the embedding lookup reads one row, a matvec all).
TEST(Traffic, EveryRowAndEveryTensorOfEveryScheme) {
  for (const SchemeCase& scheme : Schemes()) {
    SCOPED_TRACE(scheme.name);
    const std::vector<uint8_t> file = host::PackModel(testing::TinyCheckpoint(4), scheme.options).image;
    const image::ImageView view = image::ImageView::OpenFile(file).value();
    ASSERT_TRUE(view.Validate().ok());
    const Model model = ParseModel(file);
    for (uint32_t i = 0; i < view.tensor_count(); ++i) {
      const image::TensorEntry t = view.tensor(i);
      SCOPED_TRACE(t.name);
      ReadCounter whole;
      AddTensorTraffic(view, t, whole);
      Bytes expected;
      AddWhole(model, model.tensors[i], expected);
      ExpectEqual(whole, expected);
      for (uint32_t r = 0; r < t.rows; ++r) {
        ReadCounter row;
        AddRowTraffic(view, t, r, 1, row);
        Bytes expected_row;
        AddRow(model, model.tensors[i], r, expected_row);
        ExpectEqual(row, expected_row);
      }
    }
  }
}

// (b) Grouped-query attention loads each cached key and value once per KV
// head, not once per query head: with weights outside DRAM, DRAM reads are
// the cache alone, (pos + 1) positions x layers x KV heads x 2 rows.
TEST(Traffic, TheKvCacheIsReadOncePerKvHead) {
  host::QuantOptions options;
  options.quantizer = image::Quantizer::kRtn;
  const std::vector<uint8_t> file = host::PackModel(testing::TinyCheckpoint(5), options).image;
  const image::ImageView view = image::ImageView::OpenFile(file).value();
  const image::ModelConfig& c = view.model();
  ASSERT_EQ(view.WindowBytes(image::Window::kDram), 0u);
  ASSERT_EQ(c.n_heads, 2 * c.n_kv_heads);  // two query heads per KV head
  std::vector<uint8_t> arena(Engine::ArenaBytes(c, image::DefaultDetail(c), c.seq_len)), kv(Engine::KvBytes(c, image::DefaultDetail(c), c.seq_len));
  Engine engine;
  ASSERT_TRUE(engine.Init(view, arena, kv).ok());
  const uint64_t row = c.head_dim * sizeof(float);
  for (uint32_t pos = 0; pos < c.seq_len; ++pos) {
    ASSERT_NE(engine.Forward(pos % c.vocab_size, pos), nullptr);
    const ReadCounter counted = engine.TakeTraffic();
    EXPECT_EQ(counted.read_bytes(image::Window::kDram), (pos + 1) * c.n_layers * c.n_kv_heads * 2 * row) << pos;
    EXPECT_EQ(counted.written_bytes(image::Window::kDram), c.n_layers * c.n_kv_heads * 2 * row) << pos;
  }
}

// ---- (c) The firmware on the emu board reports the counted bytes.

TEST(TrafficFirmware, TheStatsLineReportsTheCountedBytes) {
  if (!fs::exists(kShared / "models/stories260K.bin")) GTEST_SKIP() << "../shared/models is missing";
  const fs::path dir = testing::FreshTestDir("qmc_traffic_");
  struct Cleanup {
    fs::path dir;
    ~Cleanup() { fs::remove_all(dir); }
  } cleanup{dir};
  struct Prompt {
    std::string line;  // as typed on the console
    std::string text;
    uint32_t steps;
    KvFormat format;
  };
  const Prompt prompts[] = {{"steps=40 Once upon a time", "Once upon a time", 40, KvFormat::kF32},
                            {"steps=25 kv=int8 The little dog", "The little dog", 25, KvFormat::kInt8}};
  for (const std::string scheme : {"f32", "fp16", "rtn", "qmc", "mxint4"}) {
    SCOPED_TRACE(scheme);
    const fs::path image = dir / (scheme + ".qmc"), nvm = dir / ("nvm_" + scheme);
    testing::CliRun r = testing::Qmc("pack " + testing::Stories260K() + " -q --scheme " + scheme + " -o " + image.string(), dir);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    r = testing::Qmc("nvm write " + image.string() + " " + nvm.string(), dir);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const fs::path in = dir / "link_in.txt", out = dir / "link_out.txt";
    std::ofstream(in, std::ios::binary) << prompts[0].line + "\n" + prompts[1].line + "\n";
    const std::string command = "timeout 120 " QMC_FW_EMU " --nvm " + nvm.string() + " <" + in.string() + " >" +
                                out.string() + " 2>" + (dir / "fw_err.txt").string();
    ASSERT_EQ(std::system(command.c_str()), 0);
    const std::string link = testing::Slurp(out);

    const std::string bytes = testing::Slurp(image);
    const std::vector<uint8_t> file(bytes.begin(), bytes.end());
    const image::ImageView view = image::ImageView::OpenFile(file).value();
    const Model model = ParseModel(file);
    const std::vector<testing::BoardAnswer> answers = testing::BoardAnswers(link);
    ASSERT_EQ(answers.size(), std::size(prompts)) << link;
    for (size_t i = 0; i < std::size(prompts); ++i) {
      const Prompt& prompt = prompts[i];
      SCOPED_TRACE(prompt.line);
      const std::map<std::string, double>& stats = answers[i].stats;
      ASSERT_FALSE(stats.empty()) << link;
      const std::vector<uint32_t> tokens = GreedyTokens(view, prompt.text, prompt.steps, prompt.format);
      ASSERT_EQ(stats.at("positions"), tokens.size());
      Bytes total;
      for (uint32_t pos = 0; pos < tokens.size(); ++pos) {
        const Bytes step = Expected(model, tokens[pos], pos, prompt.format);
        for (int w = 0; w < 4; ++w) {
          total.read[w] += step.read[w];
          total.written[w] += step.written[w];
        }
      }
      const uint64_t n = tokens.size();
      auto per_token = [n](uint64_t sum) { return static_cast<double>((sum + n / 2) / n); };  // rounded, as printed
      EXPECT_EQ(stats.at("mram_read/token"), per_token(total.read[kMram]));
      EXPECT_EQ(stats.at("reram_read/token"), per_token(total.read[kReram]));
      EXPECT_EQ(stats.at("dram_read/token"), per_token(total.read[kDram]));
      EXPECT_EQ(stats.at("dram_written/token"), per_token(total.written[kDram]));
    }
  }
}

}  // namespace
}  // namespace qmc
