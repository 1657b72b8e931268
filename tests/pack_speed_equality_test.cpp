// The fast packing paths held equal to their references: FitAffine's
// lane-summed search to the element-order one, the code writer to
// quant::WriteCode, the key-based outlier selection (short and long ranges) to a full sort, and a
// large tensor's rows
// threaded to the same rows quantized slice by slice.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <random>

#include "common/quant_layout.h"
#include "host/code_stream.h"
#include "host/quantize.h"

namespace qmc::host {
namespace {

bool SameFit(const AffineFit& a, const AffineFit& b) {
  return a.scale == b.scale && a.zero == b.zero && std::memcmp(&a.loss, &b.loss, sizeof a.loss) == 0;
}

// Heavy-tailed groups, plus the cases that tie: repeated values, all zero,
// one value, a few levels (candidates whose codes give equal losses).
std::vector<std::vector<float>> Groups(uint32_t seed) {
  std::mt19937 rng(seed);
  std::student_t_distribution<float> heavy(3.0f);
  std::vector<std::vector<float>> groups;
  for (uint32_t n : {1u, 2u, 7u, 8u, 15u, 16u, 17u, 31u, 64u, 65u, 128u, 1000u, 4096u}) {
    std::vector<float> w(n);
    for (float& v : w) v = 0.02f * heavy(rng);
    groups.push_back(w);
    std::vector<float> levels(n);
    for (float& v : levels) v = 0.25f * static_cast<float>(static_cast<int>(rng() % 5) - 2);
    groups.push_back(levels);
    groups.push_back(std::vector<float>(n, 0.0f));
    groups.push_back(std::vector<float>(n, -0.375f));
    std::vector<float> positive(n);
    for (float& v : positive) v = 1.0f + std::fabs(heavy(rng));
    groups.push_back(positive);
  }
  return groups;
}

TEST(PackSpeedEquality, FitAffineEqualsReference) {
  for (uint32_t seed = 1; seed <= 4; ++seed) {
    for (const std::vector<float>& w : Groups(seed)) {
      const auto n = static_cast<uint32_t>(w.size());
      for (uint32_t bits : {2u, 3u, 4u, 5u, 8u}) {
        const uint32_t max_code = (1u << bits) - 1u;
        for (const AffineGrid& grid : {kGroupGrid, kInlierGrid, kOutlierGrid}) {
          for (double noise : {0.0, 0.1, 1.5}) {
            const AffineFit fast = FitAffine(w.data(), n, max_code, grid, noise);
            const AffineFit reference = FitAffineReference(w.data(), n, max_code, grid, noise);
            ASSERT_TRUE(SameFit(fast, reference)) << "n " << n << " bits " << bits << " noise " << noise;
          }
        }
      }
    }
  }
}

TEST(PackSpeedEquality, AffineCodesEqualAffineCode) {
  for (const std::vector<float>& w : Groups(9)) {
    const auto n = static_cast<uint32_t>(w.size());
    for (uint32_t bits : {2u, 3u, 5u, 8u}) {
      const uint32_t max_code = (1u << bits) - 1u;
      const AffineFit fit = FitAffineReference(w.data(), n, max_code, kOutlierGrid, 0.0);
      std::vector<uint8_t> codes(n);
      AffineCodes(w.data(), n, fit, max_code, codes.data());
      for (uint32_t i = 0; i < n; ++i) ASSERT_EQ(codes[i], AffineCode(w[i], fit, max_code)) << i;
    }
  }
}

TEST(PackSpeedEquality, CodeStreamEqualsWriteCode) {
  std::mt19937 rng(3);
  for (uint32_t bits = 1; bits <= 8; ++bits) {
    for (uint32_t cell_bits = 1; cell_bits <= 3; ++cell_bits) {
      const uint32_t count = 1000;
      std::vector<uint32_t> codes(count);
      for (uint32_t& c : codes) c = rng() & ((1u << bits) - 1u);
      const auto words = static_cast<size_t>(quant::StreamWords(count, bits, cell_bits));
      std::vector<uint32_t> fast(words, 0u), reference(words, 0u);
      CodeStream stream(fast.data(), bits, cell_bits);
      for (uint32_t k = 0; k < count; ++k) {
        stream.Put(codes[k]);
        quant::WriteCode(reference.data(), k, codes[k], bits, cell_bits);
      }
      stream.Flush();
      ASSERT_EQ(fast, reference) << "bits " << bits << " cell bits " << cell_bits;
    }
  }
}

// The reference selection: sort every position by (|w| descending, position).
std::vector<uint32_t> SortedLargest(const Tensor& t, uint32_t begin, uint32_t end, uint32_t k) {
  std::vector<uint32_t> idx(end - begin);
  std::iota(idx.begin(), idx.end(), begin);
  std::stable_sort(idx.begin(), idx.end(), [&](uint32_t a, uint32_t b) { return std::fabs(t.data[a]) > std::fabs(t.data[b]); });
  idx.resize(k);
  return idx;
}

TEST(PackSpeedEquality, SelectOutliersEqualsSort) {
  std::mt19937 rng(5);
  Tensor t{37, 53, std::vector<float>(37 * 53)};
  // Few distinct magnitudes of both signs and zeros of both signs: many ties.
  for (float& v : t.data) v = static_cast<float>(static_cast<int>(rng() % 9) - 4) * 0.5f;
  t.data[3] = -0.0f;
  for (double ratio : {0.0, 0.001, 0.01, 0.3, 0.5, 0.9}) {
    const auto count = static_cast<uint32_t>(std::llround(ratio * t.data.size()));
    std::vector<uint32_t> expected = SortedLargest(t, 0, static_cast<uint32_t>(t.data.size()), count);
    std::sort(expected.begin(), expected.end());
    EXPECT_EQ(SelectOutliers(t, ratio, OutlierBalance::kTensor), expected) << ratio;
    expected.clear();
    for (uint32_t r = 0; r < t.rows; ++r) {
      const uint32_t k = std::min(count / t.rows + (r < count % t.rows ? 1u : 0u), t.cols);
      for (uint32_t i : SortedLargest(t, r * t.cols, (r + 1) * t.cols, k)) expected.push_back(i);
    }
    std::sort(expected.begin(), expected.end());
    EXPECT_EQ(SelectOutliers(t, ratio, OutlierBalance::kRow), expected) << ratio;
  }
}

// A tensor long enough for the histogram pass (the selection's large-range
// path): heavy-tailed values, some repeated exactly, so the k-th magnitude
// ties across positions and buckets hold many keys.
TEST(PackSpeedEquality, SelectOutliersEqualsSortOnALargeTensor) {
  std::mt19937 rng(6);
  std::student_t_distribution<float> heavy(3.0f);
  Tensor t{300, 256, std::vector<float>(300 * 256)};
  for (float& v : t.data) v = (rng() % 4 == 0) ? static_cast<float>(static_cast<int>(rng() % 7) - 3) * 0.01f : 0.01f * heavy(rng);
  for (double ratio : {0.0001, 0.005, 0.3, 0.9}) {
    const auto count = static_cast<uint32_t>(std::llround(ratio * t.data.size()));
    std::vector<uint32_t> expected = SortedLargest(t, 0, static_cast<uint32_t>(t.data.size()), count);
    std::sort(expected.begin(), expected.end());
    EXPECT_EQ(SelectOutliers(t, ratio, OutlierBalance::kTensor), expected) << ratio;
  }
}

// A tensor large enough to be quantized on several threads decodes to the
// same weights as its slices of rows quantized one by one on one thread
// (row-balanced outliers, so each slice chooses the same ones).
TEST(PackSpeedEquality, RowThreadsEqualSlices) {
  const uint32_t rows = 2048, cols = 640, slice = 64;
  std::mt19937 rng(11);
  std::student_t_distribution<float> heavy(4.0f);
  Tensor t{rows, cols, std::vector<float>(static_cast<size_t>(rows) * cols)};
  for (float& v : t.data) v = 0.02f * heavy(rng);
  QuantOptions exact;
  exact.outlier_ratio = 0.25;
  exact.balance = OutlierBalance::kRow;
  QuantOptions paper = exact;
  paper.outlier_bits = 5;
  paper.group_size = kPerChannel;
  paper.inlier_noise = 0.1;
  QuantOptions rtn;
  rtn.quantizer = image::Quantizer::kRtn;
  const TensorSpec spec{"blk.0.ffn_up.weight", rows, cols, true};
  for (const QuantOptions& o : {exact, paper, rtn}) {
    const QuantizedTensor whole = QuantizeTensor(spec, t, o);
    std::vector<float> reconstruction;
    std::vector<uint8_t> data, scales;
    for (uint32_t r = 0; r < rows; r += slice) {
      Tensor part{slice, cols, std::vector<float>(t.data.begin() + static_cast<size_t>(r) * cols,
                                                  t.data.begin() + static_cast<size_t>(r + slice) * cols)};
      const QuantizedTensor q = QuantizeTensor({spec.name, slice, cols, true}, part, o);
      reconstruction.insert(reconstruction.end(), q.reconstruction.begin(), q.reconstruction.end());
      data.insert(data.end(), q.data.begin(), q.data.end());
      scales.insert(scales.end(), q.scales.begin(), q.scales.end());
    }
    EXPECT_TRUE(std::memcmp(whole.reconstruction.data(), reconstruction.data(), reconstruction.size() * 4) == 0);
    if (o.quantizer == image::Quantizer::kRtn) {
      EXPECT_EQ(whole.data, data);
      EXPECT_EQ(whole.scales, scales);
    }
  }
}

}  // namespace
}  // namespace qmc::host
