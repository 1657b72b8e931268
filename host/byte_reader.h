// Sequential little-endian parsing of untrusted bytes: every read is checked
// against the end, so a malformed file yields an InputError naming the file,
// never a read out of bounds.
#pragma once

#include <bit>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <type_traits>
#include <utility>

#include "host/checkpoint.h"

namespace qmc::host {

static_assert(std::endian::native == std::endian::little, "the readers copy little-endian values as they lie");

class ByteReader {
 public:
  ByteReader(std::span<const uint8_t> bytes, std::string file) : bytes_(bytes), file_(std::move(file)) {}

  uint64_t position() const { return position_; }
  uint64_t size() const { return bytes_.size(); }
  uint64_t remaining() const { return bytes_.size() - position_; }
  const std::string& file() const { return file_; }

  // Takes the next `count` bytes; `what` names them in the error if they run past the end.
  std::span<const uint8_t> Bytes(uint64_t count, const char* what) {
    if (count > remaining()) {
      Fail("truncated: " + std::string(what) + " needs " + std::to_string(count) + " bytes at offset " +
           std::to_string(position_) + ", only " + std::to_string(remaining()) + " remain");
    }
    const std::span<const uint8_t> out = bytes_.subspan(position_, count);
    position_ += count;
    return out;
  }

  template <typename T>
  T Read(const char* what) {
    static_assert(std::is_trivially_copyable_v<T>);
    T value;
    std::memcpy(&value, Bytes(sizeof(T), what).data(), sizeof(T));
    return value;
  }

  void Seek(uint64_t position) {
    if (position > size()) Fail("offset " + std::to_string(position) + " is past the end of the file");
    position_ = position;
  }

  // Throws InputError("<file>: <message>").
  [[noreturn]] void Fail(const std::string& message) const { throw InputError(file_ + ": " + message); }

 private:
  std::span<const uint8_t> bytes_;
  std::string file_;
  uint64_t position_ = 0;
};

}  // namespace qmc::host
