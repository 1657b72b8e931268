// Buffers whose size the user's options choose (a KV cache for --ctx, an
// engine arena, a tokenizer workspace for a whole text): refused with one
// line naming what and how much when the machine cannot hold them, instead
// of std::bad_alloc's "internal error" or the kernel's OOM killer.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "host/checkpoint.h"

namespace qmc::host {

// Thrown for a buffer larger than the memory available (exit code 1, like
// any option asking for too much).
class OutOfMemory : public InputError {
 public:
  using InputError::InputError;
};

// `bytes` zeroed bytes for `what` ("the KV cache of 131072 positions"), or
// OutOfMemory: "out of memory: <what> needs 29.4 GiB, 20.1 GiB available".
std::vector<uint8_t> LargeBuffer(size_t bytes, const std::string& what);

// The bytes this machine can still give a process: MemAvailable + SwapFree
// from /proc/meminfo (SIZE_MAX where that cannot be read).
size_t AvailableMemory();

}  // namespace qmc::host
