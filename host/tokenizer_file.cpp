// Tokenizer files to the image's tokenizer section: a llama2.c tokenizer.bin
// is embedded as it is (common/llama2c_tokenizer.h reads it), a HuggingFace
// tokenizer.json is compiled (host/tokenizer_json.h). Either is checked
// against the model's vocabulary here, with messages that say where.
#include <algorithm>
#include <cstring>
#include <string>

#include "common/bpe_format.h"
#include "common/llama2c_tokenizer.h"
#include "common/tokenizer.h"
#include "host/checkpoint.h"
#include "host/mapped_file.h"
#include "host/tokenizer_json.h"

namespace qmc::host {
namespace {

[[noreturn]] void Fail(const std::string& name, const std::string& message) { throw InputError(name + ": " + message); }

bool IsJson(const std::filesystem::path& path) { return path.extension() == ".json"; }

bool IsBpe(const std::vector<uint8_t>& section) {
  uint32_t magic = 0;
  if (section.size() >= sizeof magic) std::memcpy(&magic, section.data(), sizeof magic);
  return magic == bpe::kMagic;
}

bpe::BpeHeader BpeHeaderOf(const std::vector<uint8_t>& section) {
  bpe::BpeHeader h{};
  std::memcpy(&h, section.data(), std::min(sizeof h, section.size()));
  return h;
}

// Checks llama2.c bytes hold exactly `count` entries (all there are when
// count is UINT32_MAX); returns the entries.
uint32_t CheckLlama2c(std::span<const uint8_t> bytes, uint32_t count, const std::string& name) {
  using Fault = Llama2cScan::Fault;
  const Llama2cScan scan = ScanLlama2c(bytes, count, [](uint32_t, size_t, uint32_t) {});
  const std::string token = "token " + std::to_string(scan.entries);
  uint32_t value = 0;
  if (scan.end + 8 <= bytes.size()) std::memcpy(&value, bytes.data() + scan.end + 4, sizeof value);
  switch (scan.fault) {
    case Fault::kNone:
      break;
    case Fault::kNoHeader:
      Fail(name, "truncated: the max_token_length header needs 4 bytes");
    case Fault::kMaxLength:
      Fail(name, "max_token_length is " + std::to_string(scan.max_token_length) + ", expected 1 to " +
                     std::to_string(kLlama2cMaxTokenLength));
    case Fault::kEnded:
      Fail(name, "tokenizer has only " + std::to_string(scan.entries) + " entries, the model's vocab_size is " +
                     std::to_string(count));
    case Fault::kTruncated:
      Fail(name, "truncated: " + token + " at offset " + std::to_string(scan.end) + " runs past the end (" +
                     std::to_string(bytes.size() - scan.end) + " bytes remain)");
    case Fault::kScore:
      Fail(name, token + " has a non-finite score");
    case Fault::kLength:
      Fail(name, token + " has length " + std::to_string(value) + ", expected 1 to " +
                     std::to_string(scan.max_token_length) + " (max_token_length)");
  }
  if (scan.end != bytes.size()) {
    // Embedding rows past the vocabulary would decode to nothing; more
    // entries than rows would lose tokens: neither is cut silently.
    const Llama2cScan all = ScanLlama2c(bytes, UINT32_MAX, [](uint32_t, size_t, uint32_t) {});
    if (all.ok()) {
      Fail(name, "tokenizer has " + std::to_string(all.entries) + " entries, more than the model's vocab_size " +
                     std::to_string(count));
    }
    Fail(name, std::to_string(bytes.size() - scan.end) + " bytes follow the " + std::to_string(count) +
                   " entries vocab_size allows");
  }
  return scan.entries;
}

void CheckBpe(const std::vector<uint8_t>& section, uint32_t vocab_size, const std::string& name) {
  const uint32_t tokens = BpeHeaderOf(section).token_count;
  if (tokens > vocab_size) {
    Fail(name, "tokenizer has " + std::to_string(tokens) + " tokens, more than the model's vocab_size " +
                   std::to_string(vocab_size) + " (its embedding rows)");
  }
  if (const Status s = Tokenizer::Validate(section, vocab_size); !s.ok()) Fail(name, s.what);
}

}  // namespace

std::vector<uint8_t> LoadTokenizerFile(const std::filesystem::path& path, uint32_t vocab_size) {
  if (IsJson(path)) {
    const std::vector<uint8_t> section = CompileTokenizerJson(path);
    CheckBpe(section, vocab_size, path.string());
    return section;
  }
  const MappedFile file(path);
  CheckLlama2c(file.bytes(), vocab_size, file.name());
  return {file.bytes().begin(), file.bytes().end()};
}

std::vector<uint8_t> LoadTokenizerFile(const std::filesystem::path& path) {
  if (IsJson(path)) return LoadTokenizerFile(path, UINT32_MAX);
  const MappedFile file(path);
  CheckLlama2c(file.bytes(), UINT32_MAX, file.name());
  return {file.bytes().begin(), file.bytes().end()};
}

uint32_t TokenizerTokenCount(const std::vector<uint8_t>& section) {
  if (IsBpe(section)) return BpeHeaderOf(section).token_count;
  return CheckLlama2c(section, UINT32_MAX, "tokenizer");
}

std::vector<uint8_t> CheckpointTokenizer(const std::filesystem::path& checkpoint_path,
                                         const std::filesystem::path& tokenizer_file, uint32_t vocab_size,
                                         std::vector<uint8_t> carried) {
  const bool huggingface = std::filesystem::is_directory(checkpoint_path);
  std::vector<uint8_t> section = std::move(carried);
  if (!tokenizer_file.empty()) {
    section = LoadTokenizerFile(tokenizer_file, vocab_size);
  } else if (huggingface && std::filesystem::exists(checkpoint_path / "tokenizer.json")) {
    section = LoadTokenizerFile(checkpoint_path / "tokenizer.json", vocab_size);
  }
  if (huggingface && IsBpe(section)) {
    ApplyConfigSpecialTokens(section, checkpoint_path / "config.json");
    CheckBpe(section, vocab_size, (checkpoint_path / "config.json").string());
  }
  return section;
}

void ValidateTokenizer(const std::vector<uint8_t>& bytes, uint32_t vocab_size) {
  if (IsBpe(bytes)) {
    CheckBpe(bytes, vocab_size, "tokenizer");
  } else {
    CheckLlama2c(bytes, vocab_size, "tokenizer");
  }
}

}  // namespace qmc::host
