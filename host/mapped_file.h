// A whole file mapped read-only: checkpoints are parsed in place instead of
// being copied into memory first (a 3B-parameter model is gigabytes).
#pragma once

#include <cstdint>
#include <filesystem>
#include <span>
#include <string>

namespace qmc::host {

class MappedFile {
 public:
  // Throws InputError naming the file if it cannot be opened or mapped.
  explicit MappedFile(const std::filesystem::path& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  std::span<const uint8_t> bytes() const { return {data_, size_}; }
  // The path as given, for error messages.
  const std::string& name() const { return name_; }

 private:
  std::string name_;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace qmc::host
