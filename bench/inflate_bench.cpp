// The flash protocol's decompression: qmc::Inflate against zlib's inflate on
// what the host sends, 4 KiB blocks each compressed alone as raw deflate at
// level 9, for a packed image (stories260K, default options) and for text.
//
// Per benchmark: bytes/s = decompressed bytes per second over all blocks;
// compressed = compressed size over original; vs_zlib = zlib's CPU time per
// pass over this decoder's, both from this run (zlib's case runs first).
#include <benchmark/benchmark.h>
#include <zlib.h>

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "common/inflate.h"
#include "host/checkpoint.h"
#include "host/pack.h"

namespace {

namespace fs = std::filesystem;
using Bytes = std::vector<uint8_t>;
constexpr size_t kBlockBytes = 4096;

struct Blocks {
  std::vector<Bytes> compressed;
  size_t original_bytes = 0;
  size_t compressed_bytes = 0;
};

Blocks Compress(const Bytes& data) {
  Blocks b;
  for (size_t at = 0; at < data.size(); at += kBlockBytes) {
    const size_t n = std::min(kBlockBytes, data.size() - at);
    z_stream z{};
    deflateInit2(&z, 9, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY);
    Bytes out(deflateBound(&z, n));
    z.next_in = const_cast<Bytef*>(data.data() + at);
    z.avail_in = static_cast<uInt>(n);
    z.next_out = out.data();
    z.avail_out = static_cast<uInt>(out.size());
    deflate(&z, Z_FINISH);
    out.resize(out.size() - z.avail_out);
    deflateEnd(&z);
    b.original_bytes += n;
    b.compressed_bytes += out.size();
    b.compressed.push_back(std::move(out));
  }
  return b;
}

std::map<std::string, double> zlib_seconds;  // per data set

void Run(benchmark::State& state, const Blocks* blocks, bool zlib, const std::string& data_name) {
  uint8_t out[kBlockBytes];
  z_stream z{};
  inflateInit2(&z, -15);
  const std::clock_t start = std::clock();  // CPU time, as Google Benchmark reports
  for (auto _ : state) {
    for (const Bytes& c : blocks->compressed) {
      if (zlib) {
        inflateReset(&z);
        z.next_in = const_cast<Bytef*>(c.data());
        z.avail_in = static_cast<uInt>(c.size());
        z.next_out = out;
        z.avail_out = sizeof out;
        if (inflate(&z, Z_FINISH) != Z_STREAM_END) state.SkipWithError("zlib failed");
      } else if (!qmc::Inflate(c, out).ok()) {
        state.SkipWithError("qmc::Inflate failed");
      }
      benchmark::DoNotOptimize(out);
    }
  }
  const double seconds =
      static_cast<double>(std::clock() - start) / CLOCKS_PER_SEC / static_cast<double>(state.iterations());
  inflateEnd(&z);
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(blocks->original_bytes));
  state.counters["compressed"] =
      static_cast<double>(blocks->compressed_bytes) / static_cast<double>(blocks->original_bytes);
  if (zlib) {
    zlib_seconds[data_name] = seconds;
  } else if (const auto it = zlib_seconds.find(data_name); it != zlib_seconds.end()) {
    state.counters["vs_zlib"] = it->second / seconds;
  }
}

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  const fs::path shared = QMC_SHARED_DIR;
  if (!fs::exists(shared / "models/stories260K.bin") || !fs::exists(shared / "data/kjv-valid.txt")) {
    std::printf("inflate_bench: ../shared/models/stories260K.bin or data/kjv-valid.txt is missing; skipped\n");
    return 0;
  }
  qmc::host::Checkpoint checkpoint = qmc::host::LoadLlama2c(shared / "models/stories260K.bin");
  checkpoint.tokenizer = qmc::host::LoadTokenizerFile(shared / "models/tok512.bin", checkpoint.config.vocab_size);
  std::ifstream text_file(shared / "data/kjv-valid.txt", std::ios::binary);
  const std::map<std::string, Blocks> data = {
      {"stories260K_image", Compress(qmc::host::PackModel(checkpoint, qmc::host::QuantOptions{}).image)},
      {"kjv_text", Compress(Bytes((std::istreambuf_iterator<char>(text_file)), {}))},
  };
  for (const auto& [name, blocks] : data) {
    for (bool zlib : {true, false}) {
      benchmark::RegisterBenchmark((name + (zlib ? "/zlib" : "/qmc")).c_str(),
                                   [&blocks = blocks, zlib, name = name](benchmark::State& state) {
                                     Run(state, &blocks, zlib, name);
                                   });
    }
  }
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
