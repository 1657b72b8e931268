// libFuzzer target: the tokenizer.json compiler (host/tokenizer_json.h) on
// arbitrary bytes. Bad input must end in host::InputError; a section the
// host accepts must pass the device's validator, initialise and encode.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <vector>

#include "common/tokenizer.h"
#include "host/checkpoint.h"
#include "host/tokenizer_json.h"
#include "tests/fuzz/fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::filesystem::path dir = qmc::fuzz::ScratchDir() / "tokenizer";
  std::filesystem::create_directories(dir);
  std::vector<uint8_t> section;
  uint32_t tokens = 0;
  try {
    section = qmc::host::CompileTokenizerJson(qmc::fuzz::WriteScratch("tokenizer/tokenizer.json", {data, size}));
    tokens = qmc::host::TokenizerTokenCount(section);
    qmc::host::ValidateTokenizer(section, tokens);
  } catch (const qmc::host::InputError&) {
    return 0;
  }
  if (!qmc::Tokenizer::Validate(section, tokens).ok()) std::abort();
  constexpr size_t kText = 64;
  std::vector<uint8_t> workspace(qmc::Tokenizer::WorkspaceBytes(section, tokens, kText));
  qmc::Tokenizer tokenizer;
  if (!tokenizer.Init(section, tokens, workspace, kText).ok()) std::abort();
  std::vector<uint32_t> ids(tokenizer.MaxTokens(kText));
  const bool bos = tokenizer.bos() != qmc::Tokenizer::kNoToken;
  const bool eos = tokenizer.eos() != qmc::Tokenizer::kNoToken;
  if (!tokenizer.Encode("Hello, world. <s> 123 \xC3\xA9", bos, eos, ids).ok()) std::abort();
  return 0;
}
