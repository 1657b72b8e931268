#include "common/pre_tokenizer.h"

#include "common/unicode_tables.h"
#include "common/utf8.h"

namespace qmc {
namespace {

using unicode::CharClass;

// Reads the text one codepoint (or malformed byte) at a time.
class Scanner {
 public:
  Scanner(std::string_view text, size_t pos) : text_(text), pos_(pos) {}

  bool AtEnd() const { return pos_ >= text_.size(); }
  size_t pos() const { return pos_; }
  uint32_t cp() const { return Unit().cp; }
  CharClass Class() const { return AtEnd() ? CharClass::kOther : unicode::ClassOf(Unit().cp); }
  bool Is(CharClass c) const { return !AtEnd() && Class() == c; }
  bool IsChar(uint32_t c) const { return !AtEnd() && Unit().cp == c; }
  bool IsNewline() const { return IsChar('\r') || IsChar('\n'); }
  void Next() { pos_ += Unit().length; }
  // Past the run of characters of class `c` from here; returns how many.
  size_t SkipRun(CharClass c, size_t limit = SIZE_MAX) {
    size_t n = 0;
    while (n < limit && Is(c)) Next(), ++n;
    return n;
  }
  Scanner Peek() const {
    Scanner s = *this;
    s.Next();
    return s;
  }

 private:
  utf8::Unit Unit() const { return utf8::Decode(text_, pos_); }

  std::string_view text_;
  size_t pos_;
};

bool IsLetterOrNumber(const Scanner& s) { return s.Is(CharClass::kLetter) || s.Is(CharClass::kNumber); }

// 's|'t|'re|'ve|'m|'ll|'d, case-sensitively or (Llama 3's (?i:...)) under
// Unicode case folding, where s also matches U+017F LATIN SMALL LETTER LONG S.
size_t Contraction(Scanner s, bool ignore_case) {
  if (!s.IsChar('\'')) return 0;
  s.Next();
  const auto is = [&](const Scanner& at, char lower) {
    if (at.IsChar(static_cast<uint8_t>(lower))) return true;
    if (!ignore_case) return false;
    return at.IsChar(static_cast<uint8_t>(lower - 'a' + 'A')) || (lower == 's' && at.IsChar(0x17F));
  };
  if (is(s, 's') || is(s, 't') || is(s, 'm') || is(s, 'd')) return s.Peek().pos();
  const Scanner second = s.Peek();
  if ((is(s, 'r') && is(second, 'e')) || (is(s, 'v') && is(second, 'e')) || (is(s, 'l') && is(second, 'l'))) {
    return second.Peek().pos();
  }
  return 0;
}

// \s+(?!\S)|\s+ from a whitespace character: the run, less its last
// character when more than one precede a non-space.
size_t SpaceRun(Scanner s) {
  size_t last = s.pos();
  size_t count = 0;
  while (s.Is(CharClass::kSpace)) last = s.pos(), s.Next(), ++count;
  return s.AtEnd() || count == 1 ? s.pos() : last;
}

size_t Gpt2(std::string_view text, size_t start) {
  const Scanner at(text, start);
  if (const size_t end = Contraction(at, false)) return end;
  // ' ?\p{L}+', ' ?\p{N}+', ' ?[^\s\p{L}\p{N}]+'
  const Scanner body = at.IsChar(' ') && !at.Peek().AtEnd() && !at.Peek().Is(CharClass::kSpace) ? at.Peek() : at;
  const CharClass c = body.Class();
  if (!body.Is(CharClass::kSpace)) {
    Scanner s = body;
    s.SkipRun(c);
    return s.pos();
  }
  return SpaceRun(at);
}

size_t Llama3(std::string_view text, size_t start, size_t max_digits) {
  const Scanner at(text, start);
  if (const size_t end = Contraction(at, true)) return end;
  // [^\r\n\p{L}\p{N}]?\p{L}+
  if (at.Is(CharClass::kLetter) || (!at.IsNewline() && !IsLetterOrNumber(at) && at.Peek().Is(CharClass::kLetter))) {
    Scanner s = at.Is(CharClass::kLetter) ? at : at.Peek();
    s.SkipRun(CharClass::kLetter);
    return s.pos();
  }
  // \p{N}{1,3} (Llama 3) or \p{N} (Qwen2)
  if (at.Is(CharClass::kNumber)) {
    Scanner s = at;
    s.SkipRun(CharClass::kNumber, max_digits);
    return s.pos();
  }
  // ' ?[^\s\p{L}\p{N}]+[\r\n]*'
  const Scanner body = at.IsChar(' ') && at.Peek().Is(CharClass::kOther) && !at.Peek().AtEnd() ? at.Peek() : at;
  if (body.Is(CharClass::kOther)) {
    Scanner s = body;
    s.SkipRun(CharClass::kOther);
    while (s.IsNewline()) s.Next();
    return s.pos();
  }
  // \s*[\r\n]+: the whitespace run up to its last line break.
  Scanner s = at;
  size_t after_newline = 0;
  while (s.Is(CharClass::kSpace)) {
    const bool newline = s.IsNewline();
    s.Next();
    if (newline) after_newline = s.pos();
  }
  if (after_newline != 0) return after_newline;
  return SpaceRun(at);
}

}  // namespace

size_t PreTokenEnd(PreTokenizer kind, std::string_view text, size_t start) {
  switch (kind) {
    case PreTokenizer::kGpt2:
      return Gpt2(text, start);
    case PreTokenizer::kLlama3:
      return Llama3(text, start, 3);
    case PreTokenizer::kQwen2:
      return Llama3(text, start, 1);
    case PreTokenizer::kNone:
      break;
  }
  return text.size();
}

}  // namespace qmc
