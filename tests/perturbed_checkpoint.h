// A realistic "one tensor changed" model for delta-flash tests and benches:
// a llama2.c v0 checkpoint copied with layer 0's wq weights perturbed
// (so its inlier codes, scales and outliers all change) and every other
// byte the same; packed, it differs from the original's image in that one
// tensor's blobs (and the section CRCs and header that cover them).
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <vector>

namespace qmc::testing {

inline void WritePerturbedCheckpoint(const std::filesystem::path& source, const std::filesystem::path& out) {
  std::ifstream in(source, std::ios::binary);
  std::vector<char> bytes((std::istreambuf_iterator<char>(in)), {});
  int32_t config[7];
  if (bytes.size() < sizeof config) throw std::runtime_error("not a llama2.c checkpoint: " + source.string());
  std::memcpy(config, bytes.data(), sizeof config);
  const int64_t dim = config[0], layers = config[2], vocab = std::abs(config[5]);
  // v0 order: token embedding, attention RMS norms, then wq for every layer.
  const int64_t wq = static_cast<int64_t>(sizeof config) + 4 * (vocab * dim + layers * dim);
  if (static_cast<int64_t>(bytes.size()) < wq + 4 * dim * dim) throw std::runtime_error("checkpoint too short");
  for (int64_t i = 0; i < dim * dim; ++i) {
    float w;
    std::memcpy(&w, &bytes[static_cast<size_t>(wq + 4 * i)], 4);
    w *= 1.0f + 0.3f * static_cast<float>(std::sin(static_cast<double>(i)));
    std::memcpy(&bytes[static_cast<size_t>(wq + 4 * i)], &w, 4);
  }
  std::ofstream(out, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

}  // namespace qmc::testing
