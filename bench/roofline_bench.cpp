// Decode against the memory roofline, in one process: greedy one-token
// decode of an image on the host engine (as `qmc run` does), its tokens per
// second and the bytes it reads per token (the engine's read counters: every
// weight, norm, embedding row and KV cache row, all windows), then a
// streaming read of a buffer of that many bytes, on 1 thread and on every
// core. Prints bytes/token × tok/s ÷ bandwidth: the fraction of the memory
// bandwidth decode reaches (1 = memory-bound at the streaming rate).
//
//   roofline_bench IMAGE [--tokens N] [--runs R]
//
// bench/roofline_bench.sh packs a synthetic paper-scale image for it.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "common/engine.h"
#include "common/image_reader.h"
#include "host/checkpoint.h"
#include "host/image_summary.h"
#include "host/mapped_file.h"

namespace {

using Clock = std::chrono::steady_clock;

double Seconds(Clock::time_point since) { return std::chrono::duration<double>(Clock::now() - since).count(); }

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.size() % 2 == 1 ? v[v.size() / 2] : 0.5 * (v[v.size() / 2 - 1] + v[v.size() / 2]);
}

// Sums [begin, end) as 64-bit words, four independent sums so the loads, not
// the adds, set the pace.
uint64_t SumWords(const uint64_t* begin, const uint64_t* end) {
  uint64_t s[4] = {};
  for (; begin + 4 <= end; begin += 4) {
    for (int k = 0; k < 4; ++k) s[k] += begin[k];
  }
  for (; begin < end; ++begin) s[0] += *begin;
  return s[0] + s[1] + s[2] + s[3];
}

// GB/s of one streaming read of `words` split over `threads` threads.
double ReadBandwidth(const std::vector<uint64_t>& words, unsigned threads, uint64_t& checksum) {
  std::vector<uint64_t> sums(threads);
  std::vector<std::thread> pool;
  const auto start = Clock::now();
  for (unsigned t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      const size_t begin = words.size() * t / threads, end = words.size() * (t + 1) / threads;
      sums[t] = SumWords(words.data() + begin, words.data() + end);
    });
  }
  for (std::thread& thread : pool) thread.join();
  const double seconds = Seconds(start);
  for (uint64_t s : sums) checksum += s;
  return static_cast<double>(words.size() * sizeof(uint64_t)) / seconds / 1e9;
}

}  // namespace

int main(int argc, char** argv) {
  std::string path;
  uint32_t tokens = 8;
  int runs = 3;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--tokens" && i + 1 < argc) {
      tokens = static_cast<uint32_t>(std::max(1, std::stoi(argv[++i])));
    } else if (arg == "--runs" && i + 1 < argc) {
      runs = std::max(1, std::stoi(argv[++i]));
    } else if (path.empty() && arg[0] != '-') {
      path = arg;
    } else {
      std::fprintf(stderr, "usage: roofline_bench IMAGE [--tokens N] [--runs R]\n");
      return 2;
    }
  }
  if (path.empty()) {
    std::fprintf(stderr, "usage: roofline_bench IMAGE [--tokens N] [--runs R]\n");
    return 2;
  }
  try {
    const qmc::host::MappedFile file(path);
    const qmc::Result<qmc::image::ImageView> opened = qmc::image::ImageView::OpenFile(file.bytes());
    if (!opened.ok()) throw qmc::host::InputError(path + ": " + qmc::host::DescribeStatus(opened.status()));
    const qmc::image::ImageView& view = opened.value();
    if (const qmc::Status s = view.Validate(); !s.ok()) throw qmc::host::InputError(path + ": " + qmc::host::DescribeStatus(s));
    const qmc::image::ModelConfig& config = view.model();
    const uint32_t context = std::min(config.seq_len, tokens + 1);
    tokens = context - 1;
    std::vector<uint8_t> arena(qmc::Engine::ArenaBytes(config, view.detail(), context)),
        kv(qmc::Engine::KvBytes(config, view.detail(), context));
    qmc::Engine engine;
    if (const qmc::Status s = engine.Init(view, arena, kv); !s.ok()) throw qmc::host::InputError(qmc::host::DescribeStatus(s));

    // Position 0 warms up (pages the image in); positions 1..tokens are timed.
    std::vector<double> rates;
    uint64_t bytes = 0;
    for (int run = 0; run < runs; ++run) {
      const float* logits = engine.Forward(1, 0);
      engine.TakeTraffic();
      const auto start = Clock::now();
      for (uint32_t pos = 1; pos <= tokens; ++pos) {
        const auto next = static_cast<uint32_t>(std::max_element(logits, logits + config.vocab_size) - logits);
        logits = engine.Forward(next, pos);
      }
      rates.push_back(tokens / Seconds(start));
      const qmc::ReadCounter traffic = engine.TakeTraffic();
      bytes = 0;
      for (uint64_t r : traffic.read) bytes += r;
      bytes /= tokens;
    }

    // The same number of bytes, streamed: written first so every page is
    // resident, then read R times on 1 thread and on every core.
    const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
    std::vector<uint64_t> words(bytes / sizeof(uint64_t));
    for (size_t i = 0; i < words.size(); ++i) words[i] = i;
    std::vector<double> one, all;
    uint64_t checksum = 0;
    for (int run = 0; run < runs; ++run) {
      one.push_back(ReadBandwidth(words, 1, checksum));
      all.push_back(ReadBandwidth(words, cores, checksum));
    }
    const double tok_s = Median(rates), decode_gb_s = static_cast<double>(bytes) * tok_s / 1e9;
    std::printf("image %s: %u layers, %.1f MB; %u decode tokens, %d runs (checksum %llu)\n", path.c_str(),
                config.n_layers, static_cast<double>(file.bytes().size()) / 1e6, tokens, runs,
                static_cast<unsigned long long>(checksum % 1000));
    std::printf("decode: %.3f tok/s (min %.3f, max %.3f), %.1f MB read per token -> %.2f GB/s\n", tok_s,
                *std::min_element(rates.begin(), rates.end()), *std::max_element(rates.begin(), rates.end()),
                static_cast<double>(bytes) / 1e6, decode_gb_s);
    std::printf("streaming read of %.1f MB: 1 thread %.2f GB/s (min %.2f, max %.2f), %u threads %.2f GB/s (min %.2f, max %.2f)\n",
                static_cast<double>(bytes) / 1e6, Median(one), *std::min_element(one.begin(), one.end()),
                *std::max_element(one.begin(), one.end()), cores, Median(all), *std::min_element(all.begin(), all.end()),
                *std::max_element(all.begin(), all.end()));
    std::printf("roofline fraction: %.3f of 1-thread bandwidth, %.3f of %u-thread bandwidth\n", decode_gb_s / Median(one),
                decode_gb_s / Median(all), cores);
  } catch (const qmc::host::InputError& e) {
    std::fprintf(stderr, "roofline_bench: %s\n", e.what());
    return 1;
  }
  return 0;
}
