#include "host/cli/progress_bar.h"

#include <unistd.h>

#include <cstdio>

namespace qmc::cli {
namespace {

// Redraws at most this often: a terminal is slower than the emulated link.
constexpr std::chrono::milliseconds kRedraw{100};
constexpr int kWidth = 30;

std::string Bytes(double bytes) {
  char text[32];
  if (bytes >= 1 << 20) {
    std::snprintf(text, sizeof text, "%.1f MiB", bytes / (1 << 20));
  } else {
    std::snprintf(text, sizeof text, "%.1f KiB", bytes / (1 << 10));
  }
  return text;
}

}  // namespace

ProgressBar::ProgressBar(std::string label)
    : label_(std::move(label)), enabled_(isatty(STDERR_FILENO) == 1), start_(std::chrono::steady_clock::now()) {}

ProgressBar::~ProgressBar() {
  if (drawn_) std::fputc('\n', stderr);
}

void ProgressBar::Update(uint64_t done, uint64_t total) {
  if (!enabled_ || total == 0) return;
  const auto now = std::chrono::steady_clock::now();
  if (drawn_ && done < total && now - last_draw_ < kRedraw) return;
  last_draw_ = now;
  drawn_ = true;
  const double seconds = std::chrono::duration<double>(now - start_).count();
  const double rate = seconds > 0 ? static_cast<double>(done) / seconds : 0;
  const double fraction = static_cast<double>(done) / static_cast<double>(total);
  const int filled = static_cast<int>(fraction * kWidth);
  std::string bar(static_cast<size_t>(filled), '=');
  bar.resize(kWidth, ' ');
  const double left = rate > 0 ? static_cast<double>(total - done) / rate : 0;
  std::fprintf(stderr, "\r%s [%s] %3d%%  %s / %s  %s/s  ETA %.0f s  ", label_.c_str(), bar.c_str(),
               static_cast<int>(fraction * 100), Bytes(static_cast<double>(done)).c_str(),
               Bytes(static_cast<double>(total)).c_str(), Bytes(rate).c_str(), left);
  std::fflush(stderr);
}

}  // namespace qmc::cli
