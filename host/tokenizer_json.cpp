#include "host/tokenizer_json.h"

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>

#include "common/bpe_format.h"
#include "host/atomic_file.h"
#include "host/checkpoint.h"

namespace qmc::host {
namespace {

using nlohmann::json;

const std::string kMarker = "\xE2\x96\x81";  // U+2581, sentencepiece's space

// The pre-tokenizer regexes the encoder implements, by their exact text.
const std::pair<const char*, PreTokenizer> kSplitPatterns[] = {
    {R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)",
     PreTokenizer::kLlama3},
    {R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)",
     PreTokenizer::kQwen2},
};

// Names an EOS usually goes by, for a tokenizer.json that does not say which
// token ends a text.
const char* const kEosNames[] = {"<|end_of_text|>", "<|endoftext|>", "</s>"};

class JsonFile {
 public:
  explicit JsonFile(const std::filesystem::path& path) : name_(path.string()) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw IoError(name_ + ": cannot open: " + std::strerror(errno));
    try {
      root_ = json::parse(in);
    } catch (const json::parse_error& e) {
      Fail(std::string("not valid JSON: ") + e.what());
    }
  }
  const json& root() const { return root_; }
  [[noreturn]] void Fail(const std::string& message) const { throw InputError(name_ + ": " + message); }

  // root[key] when present and not null.
  const json* Find(const json& object, const char* key) const {
    if (!object.is_object()) return nullptr;
    const auto it = object.find(key);
    return it == object.end() || it->is_null() ? nullptr : &*it;
  }
  std::string String(const json& object, const char* key, const char* what) const {
    const json* v = Find(object, key);
    if (v == nullptr || !v->is_string()) Fail(std::string(what) + " has no string \"" + key + "\"");
    return v->get<std::string>();
  }
  bool Bool(const json& object, const char* key, bool absent) const {
    const json* v = Find(object, key);
    if (v == nullptr) return absent;
    if (!v->is_boolean()) Fail(std::string("\"") + key + "\" is not true or false");
    return v->get<bool>();
  }

 private:
  std::string name_;
  json root_;
};

// GPT-2's byte-level alphabet: byte b is the codepoint ByteChar(b), printable
// bytes standing for themselves, the rest moved past U+00FF.
uint32_t ByteChar(uint8_t b) {
  if ((b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE)) return b;
  uint32_t n = 0;
  for (uint32_t c = 0; c < b; ++c) {
    if (!((c >= '!' && c <= '~') || (c >= 0xA1 && c <= 0xAC) || (c >= 0xAE))) ++n;
  }
  return 256 + n;
}

// The byte each codepoint of the alphabet stands for (-1: none).
class ByteAlphabet {
 public:
  ByteAlphabet() {
    byte_of_.fill(-1);
    for (int b = 0; b < 256; ++b) byte_of_[ByteChar(static_cast<uint8_t>(b))] = static_cast<int16_t>(b);
  }

  // The raw bytes of a byte-level vocabulary text, or nothing if a
  // character is outside the alphabet (all of it is below U+0144: one or
  // two UTF-8 bytes).
  std::optional<std::string> Decode(const std::string& text) const {
    std::string out;
    for (size_t i = 0; i < text.size(); ++i) {
      uint32_t cp = static_cast<uint8_t>(text[i]);
      if ((cp & 0xE0u) == 0xC0u && i + 1 < text.size() && (static_cast<uint8_t>(text[i + 1]) & 0xC0u) == 0x80u) {
        cp = (cp & 0x1Fu) << 6 | (static_cast<uint8_t>(text[++i]) & 0x3Fu);
      } else if (cp >= 0x80) {
        return std::nullopt;
      }
      if (cp >= byte_of_.size() || byte_of_[cp] < 0) return std::nullopt;
      out += static_cast<char>(byte_of_[cp]);
    }
    return out;
  }

 private:
  std::array<int16_t, 0x144> byte_of_;
};

struct Added {
  uint32_t id;
  std::string content;
  uint32_t flags;
};

class Compiler {
 public:
  explicit Compiler(const std::filesystem::path& path) : file_(path), directory_(path.parent_path()) {}

  std::vector<uint8_t> Run() {
    const json& root = file_.root();
    const json* model = file_.Find(root, "model");
    if (model == nullptr) file_.Fail("no \"model\"");
    const std::string type = file_.String(*model, "type", "model");
    if (type != "BPE") file_.Fail("tokenizer model type " + type + " is not supported (only BPE)");
    if (file_.Find(*model, "dropout") != nullptr && (*model)["dropout"] != 0)
      file_.Fail("BPE dropout is not supported");
    for (const char* affix : {"continuing_subword_prefix", "end_of_word_suffix"}) {
      const json* v = file_.Find(*model, affix);
      if (v != nullptr && (!v->is_string() || !v->get<std::string>().empty())) {
        file_.Fail(std::string("BPE ") + affix + " is not supported");
      }
    }
    ReadNormalizer(file_.Find(root, "normalizer"));
    ReadPreTokenizer(file_.Find(root, "pre_tokenizer"));
    byte_level_ = saw_byte_level_;
    if (!byte_level_ && !file_.Bool(*model, "byte_fallback", false)) {
      file_.Fail("a BPE with neither a ByteLevel pre-tokenizer nor byte_fallback is not supported");
    }
    if (byte_level_ && (flags_ & (bpe::kFlagPrependMarker | bpe::kFlagSpaceToMarker)) != 0) {
      file_.Fail("a sentencepiece normalizer with a ByteLevel pre-tokenizer is not supported");
    }
    if (!byte_level_ && ((flags_ & bpe::kFlagNfc) != 0 || pre_tokenizer_ != PreTokenizer::kNone)) {
      file_.Fail("NFC or a Split pre-tokenizer without ByteLevel is not supported");
    }
    if (file_.Bool(*model, "ignore_merges", false)) flags_ |= bpe::kFlagIgnoreMerges;
    ReadDecoder(file_.Find(root, "decoder"));
    ReadVocabulary(*model);
    ReadAddedTokens(file_.Find(root, "added_tokens"));
    ReadMerges(*model);
    ReadPostProcessor(file_.Find(root, "post_processor"));
    ReadTokenizerConfig();
    if (eos_ == bpe::kNoToken) {
      for (const char* name : kEosNames) {
        const auto it = std::find_if(added_.begin(), added_.end(), [&](const Added& a) { return a.content == name; });
        if (it != added_.end() && (it->flags & bpe::kAddedSpecial) != 0) {
          eos_ = it->id;
          break;
        }
      }
    }
    if ((flags_ & bpe::kFlagAddBos) != 0 && bos_ == bpe::kNoToken) file_.Fail("BOS is added but no BOS token is named");
    if ((flags_ & bpe::kFlagAddEos) != 0 && eos_ == bpe::kNoToken) file_.Fail("EOS is added but no EOS token is named");
    return Build();
  }

 private:
  void ReadNormalizer(const json* n) {
    if (n == nullptr) return;
    const std::string type = file_.String(*n, "type", "normalizer");
    if (type == "Sequence") {
      const json* list = file_.Find(*n, "normalizers");
      if (list == nullptr || !list->is_array()) file_.Fail("normalizer Sequence has no list");
      for (const json& item : *list) ReadNormalizer(&item);
    } else if (type == "NFC") {
      flags_ |= bpe::kFlagNfc;
    } else if (type == "Prepend" && file_.String(*n, "prepend", "Prepend") == kMarker) {
      flags_ |= bpe::kFlagPrependMarker;
    } else if (type == "Replace" && PatternString(*n) == " " && file_.String(*n, "content", "Replace") == kMarker) {
      flags_ |= bpe::kFlagSpaceToMarker;
    } else {
      file_.Fail("normalizer " + type + " " + n->dump() + " is not supported");
    }
  }

  // The literal of a {"pattern": {"String": ...}}; "" for a regex.
  std::string PatternString(const json& item) const {
    const json* pattern = file_.Find(item, "pattern");
    const json* literal = pattern != nullptr ? file_.Find(*pattern, "String") : nullptr;
    return literal != nullptr && literal->is_string() ? literal->get<std::string>() : std::string();
  }

  void ReadPreTokenizer(const json* p) {
    if (p == nullptr) return;
    const std::string type = file_.String(*p, "type", "pre_tokenizer");
    if (type == "Sequence") {
      const json* list = file_.Find(*p, "pretokenizers");
      if (list == nullptr || !list->is_array()) file_.Fail("pre_tokenizer Sequence has no list");
      for (const json& item : *list) ReadPreTokenizer(&item);
      return;
    }
    if (saw_byte_level_) file_.Fail("a pre-tokenizer after ByteLevel is not supported");
    if (type == "ByteLevel") {
      if (file_.Bool(*p, "add_prefix_space", false)) file_.Fail("ByteLevel add_prefix_space is not supported");
      if (file_.Bool(*p, "use_regex", true)) SetPattern(PreTokenizer::kGpt2);
      saw_byte_level_ = true;
      return;
    }
    if (type == "Split") {
      const json* pattern = file_.Find(*p, "pattern");
      const json* regex = pattern != nullptr ? file_.Find(*pattern, "Regex") : nullptr;
      if (regex == nullptr || !regex->is_string()) file_.Fail("Split pre-tokenizer without a Regex is not supported");
      const std::string text = regex->get<std::string>();
      const auto known = std::find_if(std::begin(kSplitPatterns), std::end(kSplitPatterns),
                                      [&](const auto& k) { return text == k.first; });
      if (known == std::end(kSplitPatterns))
        file_.Fail("Split pre-tokenizer pattern " + json(text).dump() + " is not supported");
      if (file_.String(*p, "behavior", "Split") != "Isolated" || file_.Bool(*p, "invert", false)) {
        file_.Fail("Split pre-tokenizer behaviour other than Isolated is not supported");
      }
      SetPattern(known->second);
      return;
    }
    file_.Fail("pre_tokenizer " + type + " is not supported");
  }

  void SetPattern(PreTokenizer kind) {
    if (pre_tokenizer_ != PreTokenizer::kNone) file_.Fail("more than one regex pre-tokenizer is not supported");
    pre_tokenizer_ = kind;
  }

  void ReadDecoder(const json* d) {
    if (d == nullptr) file_.Fail("no decoder");
    const std::string type = file_.String(*d, "type", "decoder");
    if (byte_level_) {
      if (type != "ByteLevel") file_.Fail("decoder " + type + " is not supported for a byte-level BPE");
      return;
    }
    // Sentencepiece style: U+2581 back to spaces, <0xXX> to bytes, one leading space stripped.
    if (type != "Sequence") file_.Fail("decoder " + type + " is not supported for a byte-fallback BPE");
    const json* list = file_.Find(*d, "decoders");
    bool replaces_marker = false;
    for (const json& item : list != nullptr && list->is_array() ? *list : json::array()) {
      const std::string t = file_.String(item, "type", "decoder");
      if (t == "Replace" && PatternString(item) == kMarker && file_.String(item, "content", "Replace") == " ") {
        replaces_marker = true;
      } else if (t == "Strip" && file_.String(item, "content", "Strip") == " " && item.value("stop", 0) == 0 &&
                 item.value("start", 0) <= 1) {
        if (item.value("start", 0) == 1) flags_ |= bpe::kFlagStripSpaceAfterBos;
      } else if (t != "ByteFallback" && t != "Fuse") {
        file_.Fail("decoder " + t + " " + item.dump() + " is not supported");
      }
    }
    if (!replaces_marker) file_.Fail("a byte-fallback BPE decoder must Replace U+2581 with a space");
  }

  void ReadVocabulary(const json& model) {
    const json* vocab = file_.Find(model, "vocab");
    if (vocab == nullptr || !vocab->is_object()) file_.Fail("BPE model has no vocab object");
    const ByteAlphabet alphabet;
    vocab_.reserve(vocab->size());
    vocab_keys_.reserve(vocab->size());
    for (const auto& [key, value] : vocab->items()) {
      if (!value.is_number_unsigned() || value.get<uint64_t>() >= 0x1000000)
        file_.Fail("vocab id of " + json(key).dump() + " is not an id");
      const auto id = value.get<uint32_t>();
      std::string text = key;
      if (byte_level_) {
        const std::optional<std::string> raw = alphabet.Decode(key);
        if (!raw) file_.Fail("vocab token " + json(key).dump() + " is not in the byte-level alphabet");
        text = *raw;
      }
      if (text.empty()) file_.Fail("vocab has an empty token");
      if (!vocab_.emplace(text, id).second) file_.Fail("vocab repeats token " + json(key).dump());
      SetText(id, text);
      vocab_keys_[key] = id;
    }
  }

  void SetText(uint32_t id, const std::string& text) {
    if (id >= texts_.size()) texts_.resize(id + 1);
    if (texts_[id] && *texts_[id] != text) file_.Fail("token " + std::to_string(id) + " has two texts");
    texts_[id] = text;
  }

  void ReadAddedTokens(const json* list) {
    if (list == nullptr) return;
    if (!list->is_array()) file_.Fail("added_tokens is not a list");
    bool normalized = false, not_normalized = false;
    for (const json& a : *list) {
      const json* id = file_.Find(a, "id");
      if (id == nullptr || !id->is_number_unsigned() || id->get<uint64_t>() >= 0x1000000)
        file_.Fail("added token without an id");
      const std::string content = file_.String(a, "content", "added token");
      if (content.empty()) file_.Fail("added token " + std::to_string(id->get<uint32_t>()) + " is empty");
      if (file_.Bool(a, "single_word", false))
        file_.Fail("added token " + json(content).dump() + ": single_word is not supported");
      (file_.Bool(a, "normalized", false) ? normalized : not_normalized) = true;
      uint32_t flags = 0;
      if (file_.Bool(a, "special", false)) flags |= bpe::kAddedSpecial;
      if (file_.Bool(a, "lstrip", false)) flags |= bpe::kAddedLstrip;
      if (file_.Bool(a, "rstrip", false)) flags |= bpe::kAddedRstrip;
      SetText(id->get<uint32_t>(), content);
      added_.push_back({id->get<uint32_t>(), content, flags});
    }
    // Added tokens are matched in the raw text, in one pass: exact when none
    // is to be matched after normalization, or when nothing normalizes.
    if (normalized &&
        (not_normalized || (flags_ & (bpe::kFlagNfc | bpe::kFlagPrependMarker | bpe::kFlagSpaceToMarker)) != 0)) {
      file_.Fail(
          "added tokens matched after normalization (\"normalized\": true) are not supported with a normalizer "
          "or beside tokens matched before it");
    }
  }

  uint32_t VocabId(const std::string& key, const std::string& merge) const {
    const auto it = vocab_keys_.find(key);
    if (it == vocab_keys_.end())
      file_.Fail("merge " + json(merge).dump() + " names " + json(key).dump() + ", not in the vocab");
    return it->second;
  }

  void ReadMerges(const json& model) {
    const json* merges = file_.Find(model, "merges");
    if (merges == nullptr || !merges->is_array()) file_.Fail("BPE model has no merges list");
    uint32_t rank = 0;
    merges_.reserve(merges->size());
    for (const json& m : *merges) {
      std::string a, b;
      if (m.is_string()) {
        const std::string s = m.get<std::string>();
        const size_t space = s.find(' ');
        if (space == std::string::npos || s.find(' ', space + 1) != std::string::npos)
          file_.Fail("merge " + m.dump() + " is not two tokens");
        a = s.substr(0, space), b = s.substr(space + 1);
      } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
        a = m[0].get<std::string>(), b = m[1].get<std::string>();
      } else {
        file_.Fail("merge " + m.dump() + " is not two tokens");
      }
      const std::string pair = a + " " + b;
      merges_.push_back({VocabId(a, pair), VocabId(b, pair), rank++, VocabId(a + b, pair)});
    }
    // By pair; a repeated pair keeps its last rank, as HuggingFace's merge map does.
    std::stable_sort(merges_.begin(), merges_.end(), [](const bpe::BpeMerge& x, const bpe::BpeMerge& y) {
      return x.left < y.left || (x.left == y.left && x.right < y.right);
    });
    std::vector<bpe::BpeMerge> unique;
    for (size_t i = 0; i < merges_.size(); ++i) {
      const bool repeated =
          i + 1 < merges_.size() && merges_[i + 1].left == merges_[i].left && merges_[i + 1].right == merges_[i].right;
      if (!repeated) unique.push_back(merges_[i]);
    }
    merges_ = std::move(unique);
  }

  // The id of a special token named in a post-processor or tokenizer_config.json.
  uint32_t IdOf(const std::string& content, const std::string& where) const {
    for (const Added& a : added_) {
      if (a.content == content) return a.id;
    }
    const auto it = vocab_keys_.find(content);
    if (it == vocab_keys_.end()) file_.Fail(where + " names " + json(content).dump() + ", not a token");
    return it->second;
  }

  void ReadPostProcessor(const json* p) {
    if (p == nullptr) return;
    const std::string type = file_.String(*p, "type", "post_processor");
    if (type == "Sequence") {
      const json* list = file_.Find(*p, "processors");
      if (list == nullptr || !list->is_array()) file_.Fail("post_processor Sequence has no list");
      for (const json& item : *list) ReadPostProcessor(&item);
    } else if (type == "TemplateProcessing") {
      const json* single = file_.Find(*p, "single");
      if (single == nullptr || !single->is_array()) file_.Fail("TemplateProcessing has no single template");
      // [SpecialToken]? Sequence A [SpecialToken]?
      bool seen_sequence = false;
      for (const json& piece : *single) {
        if (file_.Find(piece, "Sequence") != nullptr) {
          if (seen_sequence) file_.Fail("TemplateProcessing with two sequences is not supported");
          seen_sequence = true;
          continue;
        }
        const json* special = file_.Find(piece, "SpecialToken");
        if (special == nullptr) file_.Fail("TemplateProcessing piece " + piece.dump() + " is not supported");
        const std::string name = file_.String(*special, "id", "SpecialToken");
        const json* entry = file_.Find(*p, "special_tokens");
        const json* ids = entry != nullptr && file_.Find(*entry, name.c_str()) != nullptr
                              ? file_.Find((*entry)[name], "ids")
                              : nullptr;
        if (ids == nullptr || !ids->is_array() || ids->size() != 1 || !(*ids)[0].is_number_unsigned()) {
          file_.Fail("TemplateProcessing special token " + json(name).dump() + " is not one id");
        }
        const auto id = (*ids)[0].get<uint32_t>();
        if (!seen_sequence) {
          if ((flags_ & bpe::kFlagAddBos) != 0) file_.Fail("TemplateProcessing adds two tokens before the text");
          bos_ = id, flags_ |= bpe::kFlagAddBos;
        } else {
          if ((flags_ & bpe::kFlagAddEos) != 0) file_.Fail("TemplateProcessing adds two tokens after the text");
          eos_ = id, flags_ |= bpe::kFlagAddEos;
        }
      }
    } else if (type != "ByteLevel") {  // ByteLevel post-processing only adjusts offsets
      file_.Fail("post_processor " + type + " is not supported");
    }
  }

  // tokenizer_config.json (transformers' settings) decides BOS and EOS when present.
  void ReadTokenizerConfig() {
    const std::filesystem::path path = directory_ / "tokenizer_config.json";
    if (!std::filesystem::exists(path)) return;
    const JsonFile config(path);
    const json& root = config.root();
    const auto token = [&](const char* key) -> std::optional<std::string> {
      const json* v = config.Find(root, key);
      if (v == nullptr) return std::nullopt;
      if (v->is_string()) return v->get<std::string>();
      if (v->is_object() && v->contains("content") && (*v)["content"].is_string())
        return (*v)["content"].get<std::string>();
      config.Fail(std::string("\"") + key + "\" is not a token");
    };
    if (const auto bos = token("bos_token")) bos_ = IdOf(*bos, path.string() + " bos_token");
    if (const auto eos = token("eos_token")) eos_ = IdOf(*eos, path.string() + " eos_token");
    for (const auto& [key, flag] :
         {std::pair{"add_bos_token", bpe::kFlagAddBos}, std::pair{"add_eos_token", bpe::kFlagAddEos}}) {
      if (config.Find(root, key) == nullptr) continue;
      flags_ = config.Bool(root, key, false) ? flags_ | flag : flags_ & ~flag;
    }
  }

  std::vector<uint8_t> Build() const {
    bpe::BpeHeader h{};
    h.magic = bpe::kMagic;
    h.version = bpe::kVersion;
    h.model = static_cast<uint8_t>(byte_level_ ? bpe::Model::kByteLevel : bpe::Model::kSentencePiece);
    h.pre_tokenizer = static_cast<uint8_t>(pre_tokenizer_);
    h.flags = flags_;
    h.token_count = static_cast<uint32_t>(texts_.size());
    h.vocab_count = static_cast<uint32_t>(vocab_.size());
    h.merge_count = static_cast<uint32_t>(merges_.size());
    h.added_count = static_cast<uint32_t>(added_.size());
    h.bos = bos_;
    h.eos = eos_;

    std::vector<uint32_t> byte_tokens(256), offsets{0}, sorted;
    std::string text;
    for (uint32_t id = 0; id < texts_.size(); ++id) {
      if (!texts_[id]) file_.Fail("token id " + std::to_string(id) + " has no token (ids must be 0..N-1)");
      if (texts_[id]->size() > bpe::kMaxTokenBytes) {
        file_.Fail("token " + std::to_string(id) + " is " + std::to_string(texts_[id]->size()) + " bytes long, more than " +
                   std::to_string(bpe::kMaxTokenBytes));
      }
      text += *texts_[id];
      offsets.push_back(static_cast<uint32_t>(text.size()));
      h.max_token_bytes = std::max(h.max_token_bytes, static_cast<uint32_t>(texts_[id]->size()));
    }
    h.text_bytes = static_cast<uint32_t>(text.size());
    for (int b = 0; b < 256; ++b) {
      char name[8];
      std::snprintf(name, sizeof name, "<0x%02X>", b);
      const std::string key = byte_level_ ? std::string(1, static_cast<char>(b)) : std::string(name);
      const auto it = vocab_.find(key);
      if (it == vocab_.end())
        file_.Fail("vocab has no token for byte " + std::to_string(b) + (byte_level_ ? "" : " (" + key + ")"));
      byte_tokens[b] = it->second;
    }
    if (!byte_level_ && (flags_ & (bpe::kFlagPrependMarker | bpe::kFlagSpaceToMarker)) != 0 &&
        !vocab_.contains(kMarker)) {
      file_.Fail("vocab has no U+2581 token for the normalizer's spaces");
    }
    std::vector<std::pair<std::string_view, uint32_t>> by_text(vocab_.begin(), vocab_.end());
    std::sort(by_text.begin(), by_text.end());  // bytewise, as the encoder compares
    for (const auto& [t, id] : by_text) sorted.push_back(id);
    std::vector<Added> added = added_;
    std::sort(added.begin(), added.end(), [](const Added& a, const Added& b) { return a.content < b.content; });
    for (size_t i = 1; i < added.size(); ++i) {
      if (added[i].content == added[i - 1].content)
        file_.Fail("added token " + json(added[i].content).dump() + " repeats");
    }

    std::vector<uint8_t> out(sizeof h);
    const auto put = [&out](const void* data, size_t bytes) {
      out.insert(out.end(), static_cast<const uint8_t*>(data), static_cast<const uint8_t*>(data) + bytes);
    };
    std::memcpy(out.data(), &h, sizeof h);
    put(byte_tokens.data(), byte_tokens.size() * 4);
    put(offsets.data(), offsets.size() * 4);
    put(sorted.data(), sorted.size() * 4);
    put(merges_.data(), merges_.size() * sizeof(bpe::BpeMerge));
    for (const Added& a : added) {
      const bpe::BpeAddedToken entry{a.id, a.flags};
      put(&entry, sizeof entry);
    }
    put(text.data(), text.size());
    return out;
  }

  JsonFile file_;
  std::filesystem::path directory_;
  bool saw_byte_level_ = false;
  bool byte_level_ = false;
  PreTokenizer pre_tokenizer_ = PreTokenizer::kNone;
  uint32_t flags_ = 0;
  uint32_t bos_ = bpe::kNoToken;
  uint32_t eos_ = bpe::kNoToken;
  std::vector<std::optional<std::string>> texts_;         // by id
  std::unordered_map<std::string, uint32_t> vocab_;       // text (raw bytes for byte-level) -> id
  std::unordered_map<std::string, uint32_t> vocab_keys_;  // as tokenizer.json spells it -> id
  std::vector<Added> added_;
  std::vector<bpe::BpeMerge> merges_;
};

}  // namespace

std::vector<uint8_t> CompileTokenizerJson(const std::filesystem::path& path) { return Compiler(path).Run(); }

void ApplyConfigSpecialTokens(std::vector<uint8_t>& section, const std::filesystem::path& config_json) {
  bpe::BpeHeader h;
  if (section.size() < sizeof h) return;
  std::memcpy(&h, section.data(), sizeof h);
  if (h.magic != bpe::kMagic) return;
  const JsonFile config(config_json);
  const auto id = [&](const char* key) -> std::optional<uint32_t> {
    const json* v = config.Find(config.root(), key);
    if (v != nullptr && v->is_array() && !v->empty()) v = &(*v)[0];
    if (v == nullptr) return std::nullopt;
    if (!v->is_number_unsigned() || v->get<uint64_t>() >= h.token_count) {
      config.Fail(std::string(key) + " " + v->dump() + " is not one of the tokenizer's " +
                  std::to_string(h.token_count) + " tokens");
    }
    return v->get<uint32_t>();
  };
  if (const auto eos = id("eos_token_id")) h.eos = *eos;
  if (const auto bos = id("bos_token_id"); bos && h.bos == bpe::kNoToken) h.bos = *bos;
  std::memcpy(section.data(), &h, sizeof h);
}

}  // namespace qmc::host
