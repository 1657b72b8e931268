// libFuzzer target: the HuggingFace directory reader (config.json and
// model.safetensors). The input is config.json, then kSeparator, then
// model.safetensors; without the separator it is config.json alone (a
// directory without weights). Bad input must end in host::InputError.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string_view>

#include "host/checkpoint.h"
#include "tests/fuzz/fuzz_support.h"

namespace {
constexpr std::string_view kSeparator = "\n--safetensors--\n";
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  namespace fs = std::filesystem;
  const fs::path dir = qmc::fuzz::ScratchDir() / "hf";
  fs::create_directories(dir);
  const uint8_t* end = data + size;
  const uint8_t* cut = std::search(data, end, kSeparator.begin(), kSeparator.end());
  qmc::fuzz::WriteScratch("hf/config.json", {data, cut});
  if (cut == end) {
    fs::remove(dir / "model.safetensors");
  } else {
    qmc::fuzz::WriteScratch("hf/model.safetensors", {cut + kSeparator.size(), end});
  }
  try {
    qmc::host::ValidateCheckpoint(qmc::host::LoadCheckpoint(dir));
  } catch (const qmc::host::InputError&) {
  }
  return 0;
}
