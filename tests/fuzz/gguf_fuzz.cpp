// libFuzzer target: the GGUF checkpoint reader (metadata, tensor infos,
// F32/F16/BF16 data, the SentencePiece vocabulary) on arbitrary bytes.
// Bad input must end in host::InputError, nothing else.
#include <cstddef>
#include <cstdint>

#include "host/checkpoint.h"
#include "tests/fuzz/fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto path = qmc::fuzz::WriteScratch("model.gguf", {data, size});
  try {
    qmc::host::ValidateCheckpoint(qmc::host::LoadGguf(path));
  } catch (const qmc::host::InputError&) {
  }
  return 0;
}
