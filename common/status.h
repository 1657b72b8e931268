// Errors as values: common/ has no exceptions, so every fallible call returns
// a Status (or a Result<T>) naming what went wrong and where.
#pragma once

#include <cstdint>

namespace qmc {

enum class StatusCode : uint8_t {
  kOk = 0,
  kTruncated,      // data ends before a structure it promises
  kBadMagic,
  kBadVersion,
  kBadChecksum,
  kOutOfBounds,    // an offset/length points outside its container
  kOverlap,        // two regions claim the same bytes
  kInvalidValue,   // a field holds a value the format does not allow
  kMissing,        // a required element is absent
  kShapeMismatch,
  kTooLarge,       // does not fit a fixed capacity
};

// What `Status::index` numbers.
enum class Subject : uint8_t { kNone, kSection, kTensor };

// `what` is a static string; `index` identifies the element at fault.
struct Status {
  static constexpr uint32_t kNoIndex = 0xFFFFFFFFu;

  StatusCode code = StatusCode::kOk;
  const char* what = "ok";
  Subject subject = Subject::kNone;
  uint32_t index = kNoIndex;

  constexpr bool ok() const { return code == StatusCode::kOk; }
  static constexpr Status Ok() { return {}; }
};

constexpr Status Error(StatusCode code, const char* what) { return Status{code, what, Subject::kNone, Status::kNoIndex}; }
constexpr Status SectionError(StatusCode code, const char* what, uint32_t section) {
  return Status{code, what, Subject::kSection, section};
}
constexpr Status TensorError(StatusCode code, const char* what, uint32_t tensor) {
  return Status{code, what, Subject::kTensor, tensor};
}

const char* StatusCodeName(StatusCode code);

template <typename T>
class Result {
 public:
  constexpr Result(const T& value) : value_(value) {}
  constexpr Result(Status status) : status_(status) {}

  constexpr bool ok() const { return status_.ok(); }
  constexpr const Status& status() const { return status_; }
  constexpr const T& value() const { return value_; }
  constexpr T& value() { return value_; }

 private:
  T value_{};
  Status status_{};
};

}  // namespace qmc
