#include "firmware/console_line.h"

#include <utility>

namespace qmc::firmware {
namespace {

bool ParseUint(std::string_view text, uint64_t max, uint64_t& out) {
  if (text.empty() || text.size() > 20) return false;
  uint64_t value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return false;
    const auto digit = static_cast<uint64_t>(c - '0');
    if (value > (max - digit) / 10) return false;
    value = value * 10 + digit;
  }
  out = value;
  return true;
}

// Plain decimals ("0.8", "1", ".5"), correctly rounded: the digits form an
// exact integer divided by an exact power of ten, so the one rounding
// matches what the host's strtod gives `qmc run`.
bool ParseDecimal(std::string_view text, float& out) {
  uint64_t mantissa = 0;
  uint32_t digits = 0, decimals = 0;
  bool point = false;
  for (char c : text) {
    if (c == '.' && !point) {
      point = true;
    } else if (c >= '0' && c <= '9') {
      if (++digits > 15) return false;
      mantissa = mantissa * 10 + static_cast<uint64_t>(c - '0');
      decimals += point;
    } else {
      return false;
    }
  }
  if (digits == 0) return false;
  double power = 1.0;
  for (uint32_t i = 0; i < decimals; ++i) power *= 10.0;
  out = static_cast<float>(static_cast<double>(mantissa) / power);
  return true;
}

bool ParseKernel(std::string_view name, MatVecKernel& out) {
  constexpr std::pair<std::string_view, MatVecKernel> kNames[] = {{"reference", MatVecKernel::kReference},
                                                                  {"scalar", MatVecKernel::kScalar},
                                                                  {"avx2", MatVecKernel::kAvx2},
                                                                  {"helium", MatVecKernel::kHelium}};
  for (const auto& [known, kernel] : kNames) {
    if (name == known) {
      out = kernel;
      return true;
    }
  }
  return false;
}

// Applies `key=value` (a known key) to `options`; the error for a bad value, or nullptr.
const char* Apply(std::string_view key, std::string_view value, GenerateOptions& options) {
  uint64_t n = 0;
  if (key == "steps") {
    if (!ParseUint(value, UINT32_MAX, n)) return "steps= takes a whole number";
    options.steps = static_cast<uint32_t>(n);
  } else if (key == "ctx") {
    if (!ParseUint(value, UINT32_MAX, n) || n == 0) return "ctx= takes a whole number >= 1";
    options.context = static_cast<uint32_t>(n);
  } else if (key == "temp") {
    if (!ParseDecimal(value, options.temperature)) return "temp= takes a number >= 0, e.g. 0.8";
  } else if (key == "topp") {
    if (!ParseDecimal(value, options.topp) || options.topp > 1.0f) return "topp= takes a number in [0, 1]";
  } else if (key == "seed") {
    if (!ParseUint(value, UINT64_MAX, n) || n == 0) return "seed= takes a whole number >= 1";
    options.seed = n;
  } else if (key == "kernel") {
    return ParseKernel(value, options.kernel) ? nullptr : "kernel= takes reference, scalar, avx2 or helium";
  } else if (value == "f32") {  // the key is kv
    options.kv = KvFormat::kF32;
  } else if (value == "fp16") {
    options.kv = KvFormat::kFp16;
  } else if (value == "int8") {
    options.kv = KvFormat::kInt8;
  } else {
    return "kv= takes f32, fp16 or int8";
  }
  return nullptr;
}

bool IsKey(std::string_view key) {
  return key == "steps" || key == "ctx" || key == "temp" || key == "topp" || key == "seed" || key == "kv" || key == "kernel";
}

}  // namespace

ConsoleLine ParseConsoleLine(std::string_view line) {
  ConsoleLine parsed;
  std::string_view rest = line;
  for (;;) {
    // No substr: it can throw, and the firmware has no exceptions.
    const size_t space = rest.find(' ');
    const std::string_view word(rest.data(), space == std::string_view::npos ? rest.size() : space);
    const size_t equals = word.find('=');
    if (equals == std::string_view::npos) break;
    const std::string_view key(word.data(), equals), value(word.data() + equals + 1, word.size() - equals - 1);
    if (!IsKey(key)) break;
    parsed.error = Apply(key, value, parsed.options);
    if (parsed.error != nullptr) return parsed;
    rest.remove_prefix(word.size());
    while (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);
  }
  parsed.prompt = rest;
  return parsed;
}

}  // namespace qmc::firmware
