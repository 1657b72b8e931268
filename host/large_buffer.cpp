#include "host/large_buffer.h"

#include <cstdio>
#include <fstream>
#include <new>
#include <sstream>

namespace qmc::host {
namespace {

std::string Gibibytes(size_t bytes) {
  char text[32];
  std::snprintf(text, sizeof text, "%.1f GiB", static_cast<double>(bytes) / (1u << 30));
  return text;
}

}  // namespace

size_t AvailableMemory() {
  std::ifstream meminfo("/proc/meminfo");
  size_t total = 0;
  int found = 0;
  for (std::string line; std::getline(meminfo, line);) {
    std::istringstream fields(line);
    std::string key;
    size_t kib = 0;
    fields >> key >> kib;
    if (key == "MemAvailable:" || key == "SwapFree:") {
      total += kib * 1024u;
      ++found;
    }
  }
  return found == 2 ? total : SIZE_MAX;
}

std::vector<uint8_t> LargeBuffer(size_t bytes, const std::string& what) {
  const size_t available = AvailableMemory();
  const std::string message = "out of memory: " + what + " needs " + Gibibytes(bytes);
  if (bytes > available) throw OutOfMemory(message + ", " + Gibibytes(available) + " available");
  try {
    return std::vector<uint8_t>(bytes);
  } catch (const std::bad_alloc&) {
    throw OutOfMemory(message);
  }
}

}  // namespace qmc::host
