// A progress bar on stderr for long transfers (bytes, percent, throughput,
// time left), drawn only when stderr is a terminal so logs stay clean.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace qmc::cli {

class ProgressBar {
 public:
  explicit ProgressBar(std::string label);
  ~ProgressBar();  // ends the bar's line

  void Update(uint64_t done, uint64_t total);

 private:
  std::string label_;
  bool enabled_;
  bool drawn_ = false;
  std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point last_draw_;
};

}  // namespace qmc::cli
