// Writes the fuzz targets' seed corpora into DIR/<target>/ from the tests'
// own fixtures (the tiny checkpoint of tests/tiny_model.h, packed, written
// in each checkpoint format) and from ../shared (small files, or the first
// KiB of large ones). Nothing is copied into the source tree.
//   fuzz_seeds DIR
#include <zlib.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/slip_frame.h"
#include "host/checkpoint.h"
#include "host/pack.h"
#include "host/tokenizer_json.h"
#include "tests/checkpoint_test_support.h"
#include "tests/fuzz/fuzz_support.h"
#include "tests/hf_directory.h"
#include "tests/tiny_model.h"

namespace {

namespace fs = std::filesystem;
using Bytes = std::vector<uint8_t>;
using json = nlohmann::json;
using qmc::testing::ByteBuilder;
using qmc::testing::ReadFile;
using qmc::testing::WriteFile;
using qmc::testing::WriteText;

const fs::path kShared = QMC_SHARED_DIR;
fs::path g_out;

void Seed(const std::string& target, const std::string& name, const Bytes& bytes) {
  fs::create_directories(g_out / target);
  WriteFile(g_out / target / name, bytes);
}

Bytes Text(const std::string& text) { return Bytes(text.begin(), text.end()); }

// The first `limit` bytes of a shared file; empty when ../shared lacks it.
Bytes SharedPrefix(const std::string& relative, size_t limit) {
  const fs::path path = kShared / relative;
  if (!fs::exists(path)) return {};
  Bytes bytes = ReadFile(path);
  if (bytes.size() > limit) bytes.resize(limit);
  return bytes;
}

// The tiny checkpoint's tensors in llama2.c's order (token_embd, per-layer kinds, output_norm).
std::vector<std::string> Llama2cOrder(const qmc::image::ModelConfig& c) {
  std::vector<std::string> names = {"token_embd.weight"};
  for (const char* kind : {"attn_norm.weight", "attn_q.weight", "attn_k.weight", "attn_v.weight", "attn_output.weight",
                           "ffn_norm.weight", "ffn_gate.weight", "ffn_down.weight", "ffn_up.weight"}) {
    for (uint32_t l = 0; l < c.n_layers; ++l) names.push_back("blk." + std::to_string(l) + "." + kind);
  }
  names.push_back("output_norm.weight");
  return names;
}

void Llama2cSeeds(const qmc::host::Checkpoint& tiny) {
  const qmc::image::ModelConfig& c = tiny.config;
  for (const bool shared : {true, false}) {
    ByteBuilder b;
    const int32_t vocab = shared ? static_cast<int32_t>(c.vocab_size) : -static_cast<int32_t>(c.vocab_size);
    for (int32_t v : {int32_t(c.dim), int32_t(c.hidden_dim), int32_t(c.n_layers), int32_t(c.n_heads),
                      int32_t(c.n_kv_heads), vocab, int32_t(c.seq_len)}) {
      b.Put(v);
    }
    for (const std::string& name : Llama2cOrder(c)) {
      for (float v : tiny.tensors.at(name).data) b.Put(v);
    }
    for (uint64_t i = 0; i < uint64_t(c.seq_len) * c.head_dim; ++i) b.Put(0.0f);  // freq_cis_real, freq_cis_imag
    if (!shared) {
      for (float v : tiny.tensors.at("token_embd.weight").data) b.Put(v);  // output.weight
    }
    Seed("llama2c_fuzz", shared ? "tiny_v0_shared.bin" : "tiny_v0.bin", b.bytes);
  }
  // v2 "ak42": 256-byte header, f32 norms, then Q8_0 matrices (int8 codes, f32 scale per group of 8).
  ByteBuilder b;
  b.Put<uint32_t>(0x616b3432).Put<int32_t>(2);
  for (int32_t v : {int32_t(c.dim), int32_t(c.hidden_dim), int32_t(c.n_layers), int32_t(c.n_heads),
                    int32_t(c.n_kv_heads), int32_t(c.vocab_size), int32_t(c.seq_len)}) {
    b.Put(v);
  }
  b.Put<uint8_t>(1).Put<int32_t>(8);
  b.bytes.resize(256, 0);
  std::vector<std::string> norms, matrices = {"token_embd.weight"};
  for (const char* kind : {"attn_norm.weight", "ffn_norm.weight"}) {
    for (uint32_t l = 0; l < c.n_layers; ++l) norms.push_back("blk." + std::to_string(l) + "." + kind);
  }
  norms.push_back("output_norm.weight");
  for (const char* kind : {"attn_q.weight", "attn_k.weight", "attn_v.weight", "attn_output.weight", "ffn_gate.weight",
                           "ffn_down.weight", "ffn_up.weight"}) {
    for (uint32_t l = 0; l < c.n_layers; ++l) matrices.push_back("blk." + std::to_string(l) + "." + kind);
  }
  for (const std::string& name : norms) {
    for (float v : tiny.tensors.at(name).data) b.Put(v);
  }
  for (const std::string& name : matrices) {
    const size_t n = tiny.tensors.at(name).data.size();
    for (size_t i = 0; i < n; ++i) b.Put<int8_t>(static_cast<int8_t>(i % 7 - 3));
    for (size_t g = 0; g < n / 8; ++g) b.Put(0.01f);
  }
  Seed("llama2c_fuzz", "tiny_v2.bin", b.bytes);
  const Bytes stories = SharedPrefix("models/stories260K.bin", 1024);
  if (!stories.empty()) Seed("llama2c_fuzz", "stories260K_first_kib.bin", stories);
}

// GGUF v3: the tiny model's config, tokenizer and F32 tensors (GGUF dims innermost first).
void GgufSeed(const qmc::host::Checkpoint& tiny) {
  const qmc::image::ModelConfig& c = tiny.config;
  ByteBuilder b;
  auto str = [&b](const std::string& s) { b.Put<uint64_t>(s.size()).PutText(s); };
  const std::vector<std::pair<std::string, uint32_t>> dims = {
      {"llama.embedding_length", c.dim},      {"llama.feed_forward_length", c.hidden_dim},
      {"llama.block_count", c.n_layers},      {"llama.attention.head_count", c.n_heads},
      {"llama.attention.head_count_kv", c.n_kv_heads}, {"llama.context_length", c.seq_len}};
  b.PutText("GGUF").Put<uint32_t>(3).Put<uint64_t>(tiny.tensors.size()).Put<uint64_t>(dims.size() + 4);
  str("general.architecture");
  b.Put<uint32_t>(8);  // string
  str("llama");
  for (const auto& [key, value] : dims) {
    str(key);
    b.Put<uint32_t>(4).Put(value);  // uint32
  }
  str("llama.attention.layer_norm_rms_epsilon");
  b.Put<uint32_t>(6).Put(1e-5f);  // float32
  str("tokenizer.ggml.tokens");
  b.Put<uint32_t>(9).Put<uint32_t>(8).Put<uint64_t>(c.vocab_size);  // array of strings
  for (uint32_t i = 0; i < c.vocab_size; ++i) str("t" + std::to_string(i));
  str("tokenizer.ggml.scores");
  b.Put<uint32_t>(9).Put<uint32_t>(6).Put<uint64_t>(c.vocab_size);  // array of float32
  for (uint32_t i = 0; i < c.vocab_size; ++i) b.Put(-static_cast<float>(i));
  uint64_t offset = 0;
  for (const auto& [name, t] : tiny.tensors) {
    str(name);
    if (t.rows == 1) {
      b.Put<uint32_t>(1).Put<uint64_t>(t.cols);
    } else {
      b.Put<uint32_t>(2).Put<uint64_t>(t.cols).Put<uint64_t>(t.rows);
    }
    b.Put<uint32_t>(0).Put<uint64_t>(offset);  // F32
    offset += (4 * t.data.size() + 31) / 32 * 32;
  }
  b.PadTo(32);
  for (const auto& [name, t] : tiny.tensors) {
    for (float v : t.data) b.Put(v);
    b.PadTo(32);
  }
  Seed("gguf_fuzz", "tiny.gguf", b.bytes);
}

// config.json, the separator safetensors_fuzz splits at, model.safetensors.
void SafetensorsSeeds(const qmc::host::Checkpoint& tiny) {
  const qmc::image::ModelConfig& c = tiny.config;
  const json config = {{"architectures", {"LlamaForCausalLM"}}, {"model_type", "llama"},
                       {"hidden_size", c.dim}, {"intermediate_size", c.hidden_dim},
                       {"num_hidden_layers", c.n_layers}, {"num_attention_heads", c.n_heads},
                       {"num_key_value_heads", c.n_kv_heads}, {"vocab_size", c.vocab_size},
                       {"max_position_embeddings", c.seq_len}, {"rms_norm_eps", 1e-5},
                       {"rope_theta", 10000.0}, {"tie_word_embeddings", false}};
  const std::map<std::string, std::string> layer_names = {
      {"attn_norm.weight", "input_layernorm.weight"}, {"attn_q.weight", "self_attn.q_proj.weight"},
      {"attn_k.weight", "self_attn.k_proj.weight"},   {"attn_v.weight", "self_attn.v_proj.weight"},
      {"attn_output.weight", "self_attn.o_proj.weight"}, {"ffn_norm.weight", "post_attention_layernorm.weight"},
      {"ffn_gate.weight", "mlp.gate_proj.weight"},    {"ffn_down.weight", "mlp.down_proj.weight"},
      {"ffn_up.weight", "mlp.up_proj.weight"}};
  const std::map<std::string, std::string> top_names = {{"token_embd.weight", "model.embed_tokens.weight"},
                                                        {"output_norm.weight", "model.norm.weight"},
                                                        {"output.weight", "lm_head.weight"}};
  std::vector<qmc::testing::StTensor> tensors;
  for (const auto& [name, t] : tiny.tensors) {
    std::string hf;
    if (top_names.count(name)) {
      hf = top_names.at(name);
    } else {
      const size_t dot = name.find('.', 4);  // blk.N.kind
      hf = "model.layers." + name.substr(4, dot - 4) + "." + layer_names.at(name.substr(dot + 1));
    }
    const std::vector<uint64_t> shape =
        t.rows == 1 ? std::vector<uint64_t>{t.cols} : std::vector<uint64_t>{t.rows, t.cols};
    tensors.push_back({hf, name.find("norm") != std::string::npos ? "F32" : "BF16", shape,
                       qmc::testing::Encode(t.data, name.find("norm") != std::string::npos ? "F32" : "BF16")});
  }
  Bytes seed = Text(config.dump(1) + "\n--safetensors--\n");
  const Bytes st = qmc::testing::SafetensorsBytes(tensors);
  seed.insert(seed.end(), st.begin(), st.end());
  Seed("safetensors_fuzz", "tiny_llama", seed);
  for (const std::string dir : {"kjv6M-hf", "paper/phi-1_5", "paper/hymba-1.5b-base", "paper/qwen2.5-1.5b-instruct"}) {
    const Bytes json_bytes = SharedPrefix("models/" + dir + "/config.json", 8192);
    if (!json_bytes.empty()) Seed("safetensors_fuzz", fs::path(dir).filename().string() + "_config", json_bytes);
  }
}

// A paper model's tokenizer.json cut down to its first `keep` ids: the
// vocabulary, the merges among them, the added tokens among them.
void TokenizerJsonSeeds() {
  constexpr int64_t keep = 300;
  for (const std::string dir : {"phi-1_5", "hymba-1.5b-base", "llama-3.2-3b", "qwen2.5-1.5b-instruct"}) {
    const fs::path path = kShared / "models/paper" / dir / "tokenizer.json";
    if (!fs::exists(path)) continue;
    const Bytes bytes = ReadFile(path);
    json j = json::parse(bytes.begin(), bytes.end());
    json vocab = json::object();
    for (const auto& [text, id] : j["model"]["vocab"].items()) {
      if (id.get<int64_t>() < keep) vocab[text] = id;
    }
    json merges = json::array();
    for (const json& m : j["model"]["merges"]) {
      // A merge is ["left", "right"] or "left right".
      const std::string text = m.is_array() ? "" : m.get<std::string>();
      const std::string left = m.is_array() ? m[0].get<std::string>() : text.substr(0, text.find(' '));
      const std::string right = m.is_array() ? m[1].get<std::string>() : text.substr(text.find(' ') + 1);
      if (vocab.contains(left) && vocab.contains(right) && vocab.contains(left + right)) merges.push_back(m);
    }
    json added = json::array();
    for (const json& a : j["added_tokens"]) {
      if (a["id"].get<int64_t>() < keep) added.push_back(a);
    }
    j["model"]["vocab"] = vocab;
    j["model"]["merges"] = merges;
    j["added_tokens"] = added;
    Seed("tokenizer_json_fuzz", dir + ".json", Text(j.dump(1)));
  }
}

void TokenizerEncodeSeeds() {
  std::vector<Bytes> texts = {Text("Hello, world! It's 2024: caf\xC3\xA9 \xE2\x96\x81 <s> </s> <|endoftext|>")};
  for (const std::string file : {"data/kjv-valid.txt", "data/wiki.test.raw",
                                 "data/tokenizer-tests/ggml-vocab-gpt-2.gguf.inp",
                                 "data/tokenizer-tests/ggml-vocab-llama-spm.gguf.inp"}) {
    Bytes text = SharedPrefix(file, 1024);
    if (!text.empty()) texts.push_back(std::move(text));
  }
  // The first byte picks one of the target's tokenizers (0..3) and sets BOS/EOS in its top bits.
  for (size_t t = 0; t < texts.size(); ++t) {
    for (uint8_t pick : {0x00, 0x41, 0x82, 0xC3}) {
      Bytes seed = {pick};
      seed.insert(seed.end(), texts[t].begin(), texts[t].end());
      Seed("tokenizer_encode_fuzz", "text" + std::to_string(t) + "_" + std::to_string(pick), seed);
    }
  }
}

void SlipSeeds() {
  Bytes stream = {0};  // buffer: a whole packet
  const std::string noise = "qmc> hello\n";
  stream.insert(stream.end(), noise.begin(), noise.end());
  const Bytes payload = {1, 2, 0xC0, 0xDB, 0xDC, 0xDD, 5};
  for (uint8_t op = 1; op <= 11; ++op) {
    Bytes frame(qmc::flash::kMaxFrameBytes);
    frame.resize(qmc::flash::EncodeFrame({op, 0, uint16_t(op * 3), 0, 0, 0}, payload, frame));
    stream.insert(stream.end(), frame.begin(), frame.end());
  }
  Seed("slip_fuzz", "frames", stream);
  stream[0] = 16;  // a 16-byte buffer: every frame oversize
  Seed("slip_fuzz", "frames_small_buffer", stream);
}

// What `qmc flash` sends an emulated board with flash_server_fuzz's window
// sizes to flash and commit the tiny image.
void FlashServerSeed(const Bytes& image) {
  const fs::path work = g_out / "flash_capture";
  fs::remove_all(work);
  fs::create_directories(work / "nvm");
  WriteFile(work / "tiny.qmc", image);
  const int mib = static_cast<int>(qmc::fuzz::kFlashBoardWindowMib);
  const json board = {{"emu_window_mib", {{"sram", mib}, {"mram", mib}, {"reram", mib}, {"dram", mib}}}};
  WriteText(work / "board.json", board.dump());
  const std::string port = "exec:tee " + (work / "stream").string() + " | " QMC_FW_EMU " --board " +
                           (work / "board.json").string() + " --nvm " + (work / "nvm").string();
  const std::string command = std::string(QMC_CLI) + " flash " + (work / "tiny.qmc").string() + " --port '" + port +
                              "' >" + (work / "log").string() + " 2>&1";
  if (std::system(command.c_str()) != 0) {
    std::fprintf(stderr, "fuzz_seeds: %s failed (see %s)\n", command.c_str(), (work / "log").c_str());
    std::exit(1);
  }
  Seed("flash_server_fuzz", "flash_tiny_image", ReadFile(work / "stream"));
  fs::remove_all(work);
}

Bytes RawDeflate(const Bytes& data, int level, int strategy) {
  z_stream z{};
  if (deflateInit2(&z, level, Z_DEFLATED, -15, 8, strategy) != Z_OK) std::abort();
  Bytes out(deflateBound(&z, data.size()));
  z.next_in = const_cast<uint8_t*>(data.data());
  z.avail_in = static_cast<uInt>(data.size());
  z.next_out = out.data();
  z.avail_out = static_cast<uInt>(out.size());
  if (deflate(&z, Z_FINISH) != Z_STREAM_END) std::abort();
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}

void InflateSeeds(const Bytes& image) {
  Bytes text = SharedPrefix("data/kjv-valid.txt", 4096);
  if (text.empty()) text = Text("In the beginning was the word, and the word was with the tests.");
  const Bytes inputs[] = {text, Bytes(image.begin(), image.begin() + std::min<size_t>(image.size(), 4096))};
  int n = 0;
  for (const Bytes& input : inputs) {
    for (const auto& [level, strategy] : {std::pair{9, Z_DEFAULT_STRATEGY}, {1, Z_DEFAULT_STRATEGY}, {6, Z_FIXED},
                                          {0, Z_DEFAULT_STRATEGY}, {6, Z_HUFFMAN_ONLY}, {6, Z_RLE}}) {
      Bytes seed = {uint8_t(input.size()), uint8_t(input.size() >> 8)};  // capacity: exactly the output
      const Bytes stream = RawDeflate(input, level, strategy);
      seed.insert(seed.end(), stream.begin(), stream.end());
      Seed("inflate_fuzz", "stream" + std::to_string(n++), seed);
    }
  }
  // fuzz_campaign's finding: no output room and an empty stored block (the harness compared null buffers).
  Seed("inflate_fuzz", "regression_empty_output", Bytes{0x00, 0x00, 0x03, 0x00});
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: fuzz_seeds DIR\n");
    return 2;
  }
  g_out = argv[1];
  fs::remove_all(g_out);  // a fresh corpus every time: the fuzzers add their finds to it
  fs::create_directories(g_out);
  const qmc::host::Checkpoint tiny = qmc::testing::TinyCheckpoint();
  qmc::host::QuantOptions split;
  split.outlier_bits = 4;
  qmc::host::QuantOptions fp16;
  fp16.quantizer = qmc::image::Quantizer::kFp16;
  const Bytes image = qmc::host::PackImage(qmc::host::SourceOf(tiny), {});
  Seed("image_reader_fuzz", "tiny_qmc.qmc", image);
  Seed("image_reader_fuzz", "tiny_split.qmc", qmc::host::PackImage(qmc::host::SourceOf(tiny), split));
  Seed("image_reader_fuzz", "tiny_fp16.qmc", qmc::host::PackImage(qmc::host::SourceOf(tiny), fp16));
  Llama2cSeeds(tiny);
  GgufSeed(tiny);
  SafetensorsSeeds(tiny);
  TokenizerJsonSeeds();
  TokenizerEncodeSeeds();
  SlipSeeds();
  FlashServerSeed(image);
  InflateSeeds(image);
  std::printf("fuzz_seeds: corpora in %s\n", g_out.c_str());
  return 0;
}
