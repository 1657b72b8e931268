// A bump allocator over memory the caller owns: common/ has no heap, so every
// working buffer is carved from a span whose size the caller computed up
// front (each component publishes a static *Bytes() for that).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

namespace qmc {

class Arena {
 public:
  // Every allocation starts on this boundary (what SIMD loads want).
  static constexpr size_t kAlignment = 16;
  // Aligning the first allocation may skip up to this many bytes of the span.
  static constexpr size_t kStartPadding = kAlignment - 1;

  // Bytes `n` objects of T take in an arena, padding included: the sum of
  // Footprint over a sequence of allocations, plus kStartPadding, is enough
  // for that sequence whatever the span's alignment.
  template <typename T>
  static constexpr size_t Footprint(size_t n) {
    return (n * sizeof(T) + kAlignment - 1) / kAlignment * kAlignment;
  }

  Arena() = default;
  explicit Arena(std::span<uint8_t> memory) : memory_(memory) {}

  // Uninitialised storage for n objects of T, or nullptr when it does not fit.
  template <typename T>
  T* Allocate(size_t n) {
    static_assert(alignof(T) <= kAlignment);
    const auto base = reinterpret_cast<uintptr_t>(memory_.data());
    const size_t start = (base + used_ + kAlignment - 1) / kAlignment * kAlignment - base;
    if (n > (SIZE_MAX - kAlignment) / sizeof(T) || start > memory_.size() ||
        memory_.size() - start < n * sizeof(T)) {
      return nullptr;
    }
    used_ = start + n * sizeof(T);
    if (used_ > high_water_) high_water_ = used_;
    return reinterpret_cast<T*>(memory_.data() + start);
  }

  // Mark() then Release(mark) frees everything allocated in between, for
  // scratch that lives for one call.
  size_t Mark() const { return used_; }
  void Release(size_t mark) { used_ = mark; }

  size_t capacity() const { return memory_.size(); }
  size_t used() const { return used_; }
  size_t high_water() const { return high_water_; }

 private:
  std::span<uint8_t> memory_;
  size_t used_ = 0;
  size_t high_water_ = 0;
};

}  // namespace qmc
