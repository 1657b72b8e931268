#include "firmware/link_writer.h"

namespace qmc::firmware {

void LinkWriter::Put(char c) {
  if (used_ == sizeof buffer_) Flush();
  buffer_[used_++] = c;
}

LinkWriter& LinkWriter::Text(std::string_view text) {
  for (char c : text) Put(c);
  return *this;
}

LinkWriter& LinkWriter::Uint(uint64_t value) {
  char digits[20];
  size_t n = 0;
  do {
    digits[n++] = static_cast<char>('0' + value % 10);
    value /= 10;
  } while (value != 0);
  while (n > 0) Put(digits[--n]);
  return *this;
}

LinkWriter& LinkWriter::Fixed(double value, uint32_t decimals) {
  if (!(value == value)) return Text("nan");
  if (value < 0) {
    Put('-');
    value = -value;
  }
  uint64_t scale = 1;
  for (uint32_t i = 0; i < decimals; ++i) scale *= 10;
  if (value * static_cast<double>(scale) >= 1.8e19) return Text("inf");
  const auto scaled = static_cast<uint64_t>(value * static_cast<double>(scale) + 0.5);
  Uint(scaled / scale);
  if (decimals == 0) return *this;
  Put('.');
  for (uint64_t unit = scale / 10; unit > 0; unit /= 10) Put(static_cast<char>('0' + scaled / unit % 10));
  return *this;
}

void LinkWriter::Flush() {
  link_.Write({reinterpret_cast<const uint8_t*>(buffer_), used_}, kWriteTimeoutUs);
  used_ = 0;
}

}  // namespace qmc::firmware
