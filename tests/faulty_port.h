// A link that damages bytes, for the flasher's tests: wraps a port and, in
// both directions, drops, corrupts or duplicates each byte with the given
// probabilities, from a seed (the same seed damages the same bytes).
#pragma once

#include <random>
#include <vector>

#include "host/flash/port.h"

namespace qmc::testing {

struct LinkFaults {
  double drop = 0;
  double corrupt = 0;    // the byte is XORed with a random non-zero value
  double duplicate = 0;  // the byte goes twice
};

class FaultyPort final : public host::flash::Port {
 public:
  FaultyPort(host::flash::Port& inner, LinkFaults faults, uint64_t seed)
      : inner_(inner), faults_(faults), rng_(seed) {}

  void Write(std::span<const uint8_t> data) override {
    const std::vector<uint8_t> damaged = Damage(data);
    inner_.Write(damaged);
  }
  size_t Read(std::span<uint8_t> out, std::chrono::milliseconds timeout) override {
    // Read into a buffer, damage, and hand out what fits; a duplicated byte
    // may not fit, so the rest waits for the next read.
    if (backlog_.empty()) {
      std::vector<uint8_t> raw(out.size());
      raw.resize(inner_.Read(raw, timeout));
      backlog_ = Damage(raw);
    }
    const size_t n = std::min(out.size(), backlog_.size());
    std::copy_n(backlog_.begin(), n, out.begin());
    backlog_.erase(backlog_.begin(), backlog_.begin() + static_cast<std::ptrdiff_t>(n));
    return n;
  }
  void Purge() override {
    backlog_.clear();
    inner_.Purge();
  }
  uint32_t bytes_per_second() const override { return inner_.bytes_per_second(); }
  std::string Describe() const override { return "faulty " + inner_.Describe(); }

  uint64_t damaged_bytes() const { return damaged_; }

 private:
  std::vector<uint8_t> Damage(std::span<const uint8_t> data) {
    std::vector<uint8_t> out;
    out.reserve(data.size() + 8);
    for (uint8_t byte : data) {
      const double roll = uniform_(rng_);
      if (roll < faults_.drop) {
        ++damaged_;
        continue;
      }
      if (roll < faults_.drop + faults_.corrupt) {
        ++damaged_;
        out.push_back(static_cast<uint8_t>(byte ^ (1 + rng_() % 255)));
        continue;
      }
      out.push_back(byte);
      if (roll < faults_.drop + faults_.corrupt + faults_.duplicate) {
        ++damaged_;
        out.push_back(byte);
      }
    }
    return out;
  }

  host::flash::Port& inner_;
  LinkFaults faults_;
  std::mt19937_64 rng_;
  std::uniform_real_distribution<double> uniform_{0.0, 1.0};
  std::vector<uint8_t> backlog_;
  uint64_t damaged_ = 0;
};

}  // namespace qmc::testing
