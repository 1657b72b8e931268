// libFuzzer target: the tokenizer encoder (common/tokenizer.h over the
// llama2.c and BPE encoders) on arbitrary text. The first input byte picks
// the tokenizer and whether BOS/EOS are added; the rest is the text. A
// vocabulary with byte fallback must encode every text, every id must lie in
// the vocabulary, and a byte-level BPE (GPT-2 style, no normalizer) must
// decode back to exactly the text.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/tokenizer.h"
#include "host/checkpoint.h"
#include "host/tokenizer_json.h"
#include "tests/tiny_model.h"

namespace {

constexpr size_t kMaxText = 4096;

struct Loaded {
  std::vector<uint8_t> section;
  uint32_t vocab_size = 0;
  bool encodes_all = false;  // every text encodes (byte fallback or byte-level)
  bool round_trips = false;  // decoding gives the text back byte for byte
  std::vector<uint8_t> workspace;
  qmc::Tokenizer tokenizer;
};

std::vector<std::unique_ptr<Loaded>>& Tokenizers() {
  static std::vector<std::unique_ptr<Loaded>> all;
  return all;
}

void Add(std::vector<uint8_t> section, bool encodes_all, bool round_trips) {
  auto t = std::make_unique<Loaded>();
  t->section = std::move(section);
  t->vocab_size = qmc::host::TokenizerTokenCount(t->section);
  t->encodes_all = encodes_all;
  t->round_trips = round_trips;
  t->workspace.resize(qmc::Tokenizer::WorkspaceBytes(t->section, t->vocab_size, kMaxText));
  if (!t->tokenizer.Init(t->section, t->vocab_size, t->workspace, kMaxText).ok()) std::abort();
  Tokenizers().push_back(std::move(t));
}

}  // namespace

// The shared vocabularies when ../shared has them (llama2's 32000-entry
// tokenizer.bin, Phi-1.5's byte-level and Hymba's sentencepiece-style
// tokenizer.json), which encode any text, and always the tests' tiny
// llama2.c vocabulary, which has no byte fallback.
extern "C" int LLVMFuzzerInitialize(int*, char***) {
  namespace fs = std::filesystem;
  const fs::path shared = QMC_SHARED_DIR;
  Add(qmc::testing::TinyTokenizer(37), false, false);
  if (fs::exists(shared / "models/tokenizer.bin")) {
    Add(qmc::host::LoadTokenizerFile(shared / "models/tokenizer.bin"), true, false);
  }
  for (const auto& [dir, byte_level] : {std::pair{"phi-1_5", true}, std::pair{"hymba-1.5b-base", false}}) {
    const fs::path json = shared / "models/paper" / dir / "tokenizer.json";
    if (fs::exists(json)) Add(qmc::host::CompileTokenizerJson(json), true, byte_level);
  }
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0 || size - 1 > kMaxText) return 0;
  Loaded& t = *Tokenizers()[data[0] % Tokenizers().size()];
  const bool bos = (data[0] & 0x40) != 0 && t.tokenizer.bos() != qmc::Tokenizer::kNoToken;
  const bool eos = (data[0] & 0x80) != 0 && t.tokenizer.eos() != qmc::Tokenizer::kNoToken;
  const std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);
  std::vector<uint32_t> ids(t.tokenizer.MaxTokens(text.size()));
  const qmc::Result<uint32_t> count = t.tokenizer.Encode(text, bos, eos, ids);
  if (!count.ok()) {
    if (t.encodes_all) std::abort();
    return 0;
  }
  if (count.value() > ids.size()) std::abort();
  std::string decoded;
  uint32_t prev = qmc::Tokenizer::kNoToken;
  for (uint32_t i = 0; i < count.value(); ++i) {
    if (ids[i] >= t.vocab_size) std::abort();
    if (!(bos && i == 0) && !(eos && i + 1 == count.value())) decoded += t.tokenizer.Decode(prev, ids[i]);
    prev = ids[i];
  }
  if (t.round_trips && decoded != text) std::abort();
  return 0;
}
