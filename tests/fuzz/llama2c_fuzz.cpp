// libFuzzer target: the llama2.c checkpoint reader (v0 and v2 "ak42") on
// arbitrary bytes, through LoadCheckpoint's format detection as `qmc pack`
// reads a file. Bad input must end in host::InputError, nothing else.
#include <cstddef>
#include <cstdint>

#include "host/checkpoint.h"
#include "tests/fuzz/fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto path = qmc::fuzz::WriteScratch("model.bin", {data, size});
  try {
    qmc::host::ValidateCheckpoint(qmc::host::LoadCheckpoint(path));
  } catch (const qmc::host::InputError&) {
  }
  return 0;
}
