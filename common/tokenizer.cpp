#include "common/tokenizer.h"

#include <cstring>

namespace qmc {
namespace {

bool IsBpe(std::span<const uint8_t> bytes) {
  uint32_t magic = 0;
  if (bytes.size() >= sizeof magic) std::memcpy(&magic, bytes.data(), sizeof magic);
  return magic == bpe::kMagic;
}

std::span<const uint8_t> TokenizerSection(const image::ImageView& image) {
  for (uint32_t i = 0; i < image.section_count(); ++i) {
    if (image.section(i).kind == static_cast<uint8_t>(image::SectionKind::kTokenizer)) return image.section_bytes(i);
  }
  return {};
}

}  // namespace

Status Tokenizer::Validate(std::span<const uint8_t> bytes, uint32_t vocab_size) {
  if (IsBpe(bytes)) return BpeTokenizer::Validate(bytes, vocab_size);
  const Llama2cScan scan = ScanLlama2c(bytes, vocab_size, [](uint32_t, size_t, uint32_t) {});
  if (!scan.ok()) return scan.status();
  if (scan.end != bytes.size()) return Error(StatusCode::kInvalidValue, "tokenizer has bytes past its vocabulary");
  return Status::Ok();
}

size_t Tokenizer::WorkspaceBytes(std::span<const uint8_t> bytes, uint32_t vocab_size, size_t max_text_length) {
  return IsBpe(bytes) ? BpeTokenizer::WorkspaceBytes(bytes, max_text_length)
                      : Llama2cTokenizer::WorkspaceBytes(vocab_size, max_text_length);
}

size_t Tokenizer::WorkspaceBytes(const image::ImageView& image, size_t max_text_length) {
  return WorkspaceBytes(TokenizerSection(image), image.model().vocab_size, max_text_length);
}

Status Tokenizer::Init(std::span<const uint8_t> bytes, uint32_t vocab_size, std::span<uint8_t> workspace,
                       size_t max_text_length) {
  kind_ = Kind::kNone;
  const bool bpe = IsBpe(bytes);
  const Status s = bpe ? bpe_.Init(bytes, vocab_size, workspace, max_text_length)
                       : llama2c_.Init(bytes, vocab_size, workspace, max_text_length);
  if (!s.ok()) return s;
  kind_ = bpe ? Kind::kBpe : Kind::kLlama2c;
  return Status::Ok();
}

Status Tokenizer::Init(const image::ImageView& image, std::span<uint8_t> workspace, size_t max_text_length) {
  const std::span<const uint8_t> section = TokenizerSection(image);
  if (section.empty()) return Error(StatusCode::kMissing, "image has no tokenizer section");
  return Init(section, image.model().vocab_size, workspace, max_text_length);
}

size_t Tokenizer::MaxTokens(size_t text_length) const {
  return kind_ == Kind::kBpe ? bpe_.MaxTokens(text_length) : Llama2cTokenizer::MaxTokens(text_length);
}

Result<uint32_t> Tokenizer::Encode(std::string_view text, bool bos, bool eos, std::span<uint32_t> tokens) {
  switch (kind_) {
    case Kind::kLlama2c:
      return llama2c_.Encode(text, bos, eos, tokens);
    case Kind::kBpe:
      return bpe_.Encode(text, bos, eos, tokens);
    case Kind::kNone:
      break;
  }
  return Error(StatusCode::kMissing, "tokenizer not initialised");
}

size_t Tokenizer::BreakBefore(std::string_view text, size_t limit) {
  switch (kind_) {
    case Kind::kLlama2c:
      return llama2c_.BreakBefore(text, limit);
    case Kind::kBpe:
      return bpe_.BreakBefore(text, limit);
    case Kind::kNone:
      break;
  }
  return 0;
}

Result<uint32_t> Tokenizer::EncodeContinuation(std::string_view text, bool eos, std::span<uint32_t> tokens) {
  switch (kind_) {
    case Kind::kLlama2c:
      return llama2c_.Encode(text, false, eos, tokens, true);
    case Kind::kBpe:
      return bpe_.Encode(text, false, eos, tokens, true);
    case Kind::kNone:
      break;
  }
  return Error(StatusCode::kMissing, "tokenizer not initialised");
}

std::string_view Tokenizer::Decode(uint32_t prev_token, uint32_t token) const {
  switch (kind_) {
    case Kind::kLlama2c:
      return llama2c_.Decode(prev_token, token);
    case Kind::kBpe:
      return bpe_.Decode(prev_token, token);
    case Kind::kNone:
      break;
  }
  return {};
}

std::string_view Tokenizer::Display(uint32_t prev_token, uint32_t token) const {
  const std::string_view piece = Decode(prev_token, token);
  if (kind_ == Kind::kLlama2c && piece.size() == 1) {
    const auto byte = static_cast<unsigned char>(piece[0]);
    if (!((byte >= 0x20 && byte < 0x7F) || (byte >= '\t' && byte <= '\r'))) return {};  // isprint || isspace
  }
  return piece;
}

uint32_t Tokenizer::bos() const {
  return kind_ == Kind::kBpe ? bpe_.bos() : (kind_ == Kind::kLlama2c ? Llama2cTokenizer::kBos : kNoToken);
}

uint32_t Tokenizer::eos() const {
  return kind_ == Kind::kBpe ? bpe_.eos() : (kind_ == Kind::kLlama2c ? Llama2cTokenizer::kEos : kNoToken);
}

bool Tokenizer::add_bos() const { return kind_ == Kind::kBpe ? bpe_.add_bos() : kind_ == Kind::kLlama2c; }

bool Tokenizer::add_eos() const { return kind_ == Kind::kBpe && bpe_.add_eos(); }

bool Tokenizer::EndsText(uint32_t token) const {
  if (kind_ == Kind::kLlama2c) return token == Llama2cTokenizer::kBos;
  return token != kNoToken && token == eos();
}

const Arena& Tokenizer::arena() const { return kind_ == Kind::kBpe ? bpe_.arena() : llama2c_.arena(); }

}  // namespace qmc
