// Output that appears whole or not at all: build pipelines never see a
// half-written image, and a failed command leaves nothing behind.
#pragma once

#include <cstdint>
#include <filesystem>
#include <stdexcept>
#include <vector>

namespace qmc::host {

class IoError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Writes to a temporary file beside `path`, syncs it, then renames it over
// `path`. Throws IoError (and removes the temporary) on any failure.
void WriteFileAtomically(const std::filesystem::path& path, const std::vector<uint8_t>& bytes);

std::vector<uint8_t> ReadWholeFile(const std::filesystem::path& path);

}  // namespace qmc::host
