// Quantizing a large tensor's rows on every core: rows are independent in
// every scheme, so each range writes only its own rows' outputs and the
// result does not depend on how many threads ran.
#pragma once

#include <algorithm>
#include <cstdint>
#include <exception>
#include <thread>
#include <vector>

namespace qmc::host {

// Calls fn(begin, end) over consecutive row ranges covering [0, rows), on
// up to one thread per core when the tensor holds enough weights to pay for
// starting them; on the calling thread otherwise.
template <typename Fn>
void ForRowRanges(uint32_t rows, uint64_t weights, Fn fn) {
  constexpr uint64_t kWeightsPerThread = 1u << 20;
  const uint64_t wanted = std::max<uint64_t>(1, weights / kWeightsPerThread);
  const auto threads = static_cast<uint32_t>(
      std::min<uint64_t>({wanted, std::max(1u, std::thread::hardware_concurrency()), rows}));
  if (threads <= 1) {
    fn(0u, rows);
    return;
  }
  // A range that throws (a bad group) stops nothing else; after every thread
  // has joined, the lowest range's exception is rethrown, as one thread would.
  std::vector<std::exception_ptr> failed(threads);
  auto run = [&fn, &failed, rows, threads](uint32_t t) {
    try {
      fn(static_cast<uint32_t>(static_cast<uint64_t>(rows) * t / threads),
         static_cast<uint32_t>(static_cast<uint64_t>(rows) * (t + 1u) / threads));
    } catch (...) {
      failed[t] = std::current_exception();
    }
  };
  std::vector<std::thread> pool;
  pool.reserve(threads - 1u);
  for (uint32_t t = 1; t < threads; ++t) pool.emplace_back(run, t);
  run(0);
  for (std::thread& thread : pool) thread.join();
  for (const std::exception_ptr& e : failed) {
    if (e) std::rethrow_exception(e);
  }
}

}  // namespace qmc::host
