// Text out over the link without stdio: strings and numbers into a small
// buffer, sent when it fills or on Flush (after each generated token, so
// text streams as it is produced).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "hal/hal.h"

namespace qmc::firmware {

class LinkWriter {
 public:
  explicit LinkWriter(hal::ByteLink& link) : link_(link) {}

  LinkWriter& Text(std::string_view text);
  LinkWriter& Uint(uint64_t value);
  // `value` with `decimals` digits after the point (rounded), e.g. 12.5.
  LinkWriter& Fixed(double value, uint32_t decimals);
  void Flush();

 private:
  static constexpr uint32_t kWriteTimeoutUs = 1000000;  // a host that stops reading loses output

  void Put(char c);

  hal::ByteLink& link_;
  char buffer_[256];
  size_t used_ = 0;
};

}  // namespace qmc::firmware
