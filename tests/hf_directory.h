// HuggingFace checkpoint directories written by tests: a safetensors writer
// (F32, F16, BF16, written independently of the reader) and whole
// directories of F32 tensors given by name, shape and values.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/half.h"
#include "tests/checkpoint_test_support.h"

namespace qmc::testing {

struct StTensor {
  std::string name;
  std::string dtype;
  std::vector<uint64_t> shape;
  std::vector<uint8_t> bytes;
};

inline std::vector<uint8_t> Encode(const std::vector<float>& values, const std::string& dtype) {
  ByteBuilder b;
  for (float v : values) {
    if (dtype == "F32") b.Put(v);
    if (dtype == "F16") b.Put(FloatToHalf(v));
    if (dtype == "BF16") b.Put(FloatToBf16(v));
  }
  return b.bytes;
}

// u64 header length, the JSON header (padded with spaces to 8 bytes, as the
// reference writer does), the data. `edit` may corrupt the header.
inline std::vector<uint8_t> SafetensorsBytes(const std::vector<StTensor>& tensors,
                                             const std::function<void(nlohmann::json&)>& edit = nullptr) {
  nlohmann::json header = {{"__metadata__", {{"format", "pt"}}}};
  uint64_t offset = 0;
  for (const StTensor& t : tensors) {
    header[t.name] = {{"dtype", t.dtype}, {"shape", t.shape}, {"data_offsets", {offset, offset + t.bytes.size()}}};
    offset += t.bytes.size();
  }
  if (edit) edit(header);
  std::string text = header.dump();
  text.resize((text.size() + 7) / 8 * 8, ' ');
  ByteBuilder b;
  b.Put<uint64_t>(text.size()).PutText(text);
  for (const StTensor& t : tensors) b.PutRaw(t.bytes.data(), t.bytes.size());
  return b.bytes;
}

// One tensor by HF name: its shape ({n} for a vector, {rows, cols} for a
// matrix) and row-major values.
struct HfWeight {
  std::vector<uint64_t> shape;
  std::vector<float> values;
};
using HfWeights = std::map<std::string, HfWeight>;

// `directory`/config.json and `directory`/model.safetensors holding `tensors` in F32.
inline void WriteHfDirectory(const std::filesystem::path& directory, const nlohmann::json& config,
                             const HfWeights& tensors) {
  std::vector<StTensor> st;
  for (const auto& [name, t] : tensors) st.push_back({name, "F32", t.shape, Encode(t.values, "F32")});
  WriteText(directory / "config.json", config.dump(2));
  WriteFile(directory / "model.safetensors", SafetensorsBytes(st));
}

}  // namespace qmc::testing
