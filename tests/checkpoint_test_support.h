// What the checkpoint reader tests share: the shared models, scratch
// directories, little-endian byte building, test-side conversions written
// independently of the readers, and tensor comparison.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <bit>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <vector>

#include "host/checkpoint.h"

namespace qmc::testing {

inline std::filesystem::path SharedModel(const std::string& name) {
  return std::filesystem::path(QMC_SHARED_DIR) / "models" / name;
}

// Skips the current test when a shared model is missing (CI always has them).
#define QMC_REQUIRE_SHARED(path)                                                                    \
  if (!std::filesystem::exists(path)) {                                                             \
    GTEST_SKIP() << "shared model " << (path) << " is missing (QMC_SHARED_DIR=" QMC_SHARED_DIR ")"; \
  }

// A fresh directory unique to the running test, removed with everything in it.
class ScratchDir {
 public:
  ScratchDir() {
    static int counter = 0;
    const ::testing::TestInfo* info = ::testing::UnitTest::GetInstance()->current_test_info();
    path_ = std::filesystem::path(::testing::TempDir()) /
            ("qmc_" + std::string(info->test_suite_name()) + "_" + info->name() + "_" + std::to_string(::getpid()) +
             "_" + std::to_string(counter++));
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~ScratchDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;

  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path operator/(const std::string& name) const { return path_ / name; }

 private:
  std::filesystem::path path_;
};

// Appends values as little-endian bytes (the host is little-endian, as the formats are).
struct ByteBuilder {
  static_assert(std::endian::native == std::endian::little);
  std::vector<uint8_t> bytes;

  template <typename T>
  ByteBuilder& Put(T value) {
    const auto* p = reinterpret_cast<const uint8_t*>(&value);
    bytes.insert(bytes.end(), p, p + sizeof value);
    return *this;
  }
  ByteBuilder& PutRaw(const void* data, size_t size) {
    const auto* p = static_cast<const uint8_t*>(data);
    bytes.insert(bytes.end(), p, p + size);
    return *this;
  }
  ByteBuilder& PutText(std::string_view text) { return PutRaw(text.data(), text.size()); }
  ByteBuilder& PadTo(size_t multiple) {
    bytes.resize((bytes.size() + multiple - 1) / multiple * multiple, 0);
    return *this;
  }
};

inline void WriteFile(const std::filesystem::path& path, const std::vector<uint8_t>& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  ASSERT_TRUE(out.good()) << "cannot write " << path;
}

inline void WriteText(const std::filesystem::path& path, const std::string& text) {
  WriteFile(path, std::vector<uint8_t>(text.begin(), text.end()));
}

inline std::vector<uint8_t> ReadFile(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::vector<uint8_t> bytes(std::filesystem::file_size(path));
  in.read(reinterpret_cast<char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  EXPECT_TRUE(in.good()) << "cannot read " << path;
  return bytes;
}

// bfloat16 with round-to-nearest-even, the way PyTorch converts.
inline uint16_t FloatToBf16(float f) {
  const uint32_t bits = std::bit_cast<uint32_t>(f);
  return static_cast<uint16_t>((bits + 0x7FFFu + ((bits >> 16) & 1u)) >> 16);
}

// HuggingFace's permute() in convert_llama_weights_to_hf.py: rows viewed as
// [head][D/2][2] are transposed to [head][2][D/2], turning llama2.c's
// interleaved RoPE pairs into rotate-half halves. Works on a matrix
// (row_size = cols) and on a bias (row_size = 1).
inline std::vector<float> ToRotateHalf(const std::vector<float>& data, uint32_t n_heads, uint32_t head_dim) {
  const size_t row_size = data.size() / (static_cast<size_t>(n_heads) * head_dim);
  const size_t half = head_dim / 2;
  std::vector<float> out(data.size());
  size_t to = 0;
  for (size_t h = 0; h < n_heads; ++h) {
    for (size_t pair_member = 0; pair_member < 2; ++pair_member) {
      for (size_t pair = 0; pair < half; ++pair, ++to) {
        const size_t from = h * head_dim + pair * 2 + pair_member;
        std::memcpy(&out[to * row_size], &data[from * row_size], row_size * sizeof(float));
      }
    }
  }
  return out;
}

// Holds when `got` has `want`'s shape and close(got[i], want[i], i) for every i;
// the failure reports how many values differ and the first of them.
template <typename Close>
::testing::AssertionResult TensorMatches(const host::Tensor& got, const host::Tensor& want, Close close) {
  if (got.rows != want.rows || got.cols != want.cols || got.data.size() != want.data.size()) {
    return ::testing::AssertionFailure() << "shape [" << got.rows << ", " << got.cols << "] (" << got.data.size()
                                         << " values), want [" << want.rows << ", " << want.cols << "]";
  }
  size_t mismatches = 0, first = 0;
  for (size_t i = 0; i < got.data.size(); ++i) {
    if (!close(got.data[i], want.data[i], i)) {
      if (mismatches++ == 0) first = i;
    }
  }
  if (mismatches == 0) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << mismatches << " of " << got.data.size() << " values differ; first at "
                                       << first << ": got " << got.data[first] << ", want " << want.data[first];
}

inline bool Exactly(float got, float want, size_t) {
  return std::bit_cast<uint32_t>(got) == std::bit_cast<uint32_t>(want);
}

// Every field, so a reader that gets one wrong fails by name.
inline void ExpectSameConfig(const image::ModelConfig& got, const image::ModelConfig& want) {
  EXPECT_EQ(got.arch, want.arch);
  EXPECT_EQ(got.dim, want.dim);
  EXPECT_EQ(got.hidden_dim, want.hidden_dim);
  EXPECT_EQ(got.n_layers, want.n_layers);
  EXPECT_EQ(got.n_heads, want.n_heads);
  EXPECT_EQ(got.n_kv_heads, want.n_kv_heads);
  EXPECT_EQ(got.head_dim, want.head_dim);
  EXPECT_EQ(got.vocab_size, want.vocab_size);
  EXPECT_EQ(got.seq_len, want.seq_len);
  EXPECT_EQ(got.rope_theta, want.rope_theta);
  EXPECT_EQ(got.norm_eps, want.norm_eps);
  EXPECT_EQ(got.flags, want.flags);
}

inline std::vector<std::string> TensorNames(const host::Checkpoint& checkpoint) {
  std::vector<std::string> names;
  for (const auto& [name, tensor] : checkpoint.tensors) names.push_back(name);
  return names;
}

// Runs `load`, expecting an InputError whose message is one line containing `word`.
template <typename Load>
void ExpectInputError(Load load, const std::string& word) {
  try {
    load();
    ADD_FAILURE() << "no InputError; expected one mentioning '" << word << "'";
  } catch (const host::InputError& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find(word), std::string::npos) << "message: " << message;
    EXPECT_EQ(message.find('\n'), std::string::npos) << "message spans lines: " << message;
  }
}

}  // namespace qmc::testing
