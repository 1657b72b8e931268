// Matvec kernels on kjv6M-shaped matrices (768x288: ffn_gate/up; 288x768:
// ffn_down), random weights: the reference, the portable scalar kernel and
// AVX2 (when the CPU runs it), for f32, fp16, mxint4, qmc in every
// (bits, cell bits) layout (group 64, rho 0.005) and the paper's split
// scheme (split_b3c3, split_b3c2: 3-bit inliers per channel, rho 0.3,
// 5-bit outliers).
//
// Per benchmark: items/s = rows/s; bytes/s = the tensor's image bytes
// (codes or values, scales, outliers) read per second; vs_reference and
// vs_scalar = that kernel's CPU time per matvec over this one's, both from
// this run (the reference and scalar of each case are registered, so run,
// first). avx512 is the AVX2 matvec with AVX-512 MatMul tiles, listed where
// the CPU has it.
//
// Then MatMul, the batched product (qmc eval, calibration), of 64 inputs
// ("matmul64"): items/s = weights × inputs per second (multiply-adds), and
// vs_scalar against the scalar kernel's MatMul in this run.
#include <benchmark/benchmark.h>

#include <ctime>
#include <deque>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "common/matvec.h"
#include "host/pack.h"
#include "tests/random_checkpoint.h"

namespace {

using qmc::MatVecKernel;
using qmc::image::Quantizer;

struct PackedCase {
  std::string name;
  qmc::host::PackedModel packed;
  qmc::image::ImageView view;
};

std::map<std::string, double> reference_seconds, scalar_seconds;  // per case and matrix

void RunMatVec(benchmark::State& state, const PackedCase* c, const char* tensor, MatVecKernel kernel,
               const std::string& key) {
  const qmc::image::TensorEntry t = c->view.tensor(c->view.FindTensor(tensor));
  std::mt19937 rng(1);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> x(t.cols), y(t.rows), row(t.cols);
  for (float& v : x) v = normal(rng);
  const std::clock_t start = std::clock();  // CPU time, as Google Benchmark reports
  for (auto _ : state) {
    qmc::MatVec(c->view, t, x.data(), y.data(), row.data(), kernel);
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  const double seconds = static_cast<double>(std::clock() - start) / CLOCKS_PER_SEC / static_cast<double>(state.iterations());
  const int64_t bytes = int64_t{t.data.length} + t.scales.length + t.outliers.length;
  state.SetItemsProcessed(state.iterations() * int64_t{t.rows});
  state.SetBytesProcessed(state.iterations() * bytes);
  if (kernel == MatVecKernel::kReference) {
    reference_seconds[key] = seconds;
    return;
  }
  if (const auto it = reference_seconds.find(key); it != reference_seconds.end()) {
    state.counters["vs_reference"] = it->second / seconds;
  }
  if (kernel == MatVecKernel::kScalar) {
    scalar_seconds[key] = seconds;
  } else if (const auto it = scalar_seconds.find(key); it != scalar_seconds.end()) {
    state.counters["vs_scalar"] = it->second / seconds;
  }
}

constexpr uint32_t kInputs = 64;

void RunMatMul(benchmark::State& state, const PackedCase* c, const char* tensor, MatVecKernel kernel,
               const std::string& key) {
  const qmc::image::TensorEntry t = c->view.tensor(c->view.FindTensor(tensor));
  std::mt19937 rng(1);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> x(size_t{kInputs} * t.cols), y(size_t{kInputs} * t.rows), row(t.cols);
  for (float& v : x) v = normal(rng);
  const std::clock_t start = std::clock();
  for (auto _ : state) {
    qmc::MatMul(c->view, t, x.data(), t.cols, y.data(), t.rows, kInputs, row.data(), kernel);
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  const double seconds = static_cast<double>(std::clock() - start) / CLOCKS_PER_SEC / static_cast<double>(state.iterations());
  state.SetItemsProcessed(state.iterations() * int64_t{t.rows} * t.cols * kInputs);
  if (kernel == MatVecKernel::kScalar) {
    scalar_seconds[key] = seconds;
  } else if (const auto it = scalar_seconds.find(key); it != scalar_seconds.end()) {
    state.counters["vs_scalar"] = it->second / seconds;
  }
}

qmc::host::QuantOptions Options(Quantizer quantizer, uint32_t bits, uint32_t cell_bits) {
  qmc::host::QuantOptions o;
  o.quantizer = quantizer;
  o.bits = bits;
  o.cell_bits = cell_bits;
  o.group_size = quantizer == Quantizer::kMxInt4 ? 32 : 64;
  o.outlier_ratio = 0.005;
  return o;
}

qmc::host::QuantOptions SplitOptions(uint32_t cell_bits) {
  qmc::host::QuantOptions o;
  o.bits = 3;
  o.cell_bits = cell_bits;
  o.group_size = qmc::host::kPerChannel;
  o.outlier_ratio = 0.3;
  o.outlier_bits = 5;
  return o;
}

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  const qmc::host::Checkpoint checkpoint = qmc::testing::RandomCheckpoint(288, 768, 7);
  std::vector<std::pair<std::string, qmc::host::QuantOptions>> schemes = {
      {"f32", Options(Quantizer::kF32, 32, 3)},
      {"fp16", Options(Quantizer::kFp16, 16, 3)},
      {"mxint4_c2", Options(Quantizer::kMxInt4, 4, 2)}};
  for (uint32_t bits = 2; bits <= 4; ++bits) {
    for (uint32_t cell_bits = 1; cell_bits <= 3; ++cell_bits) {
      schemes.push_back({"qmc_b" + std::to_string(bits) + "c" + std::to_string(cell_bits),
                         Options(Quantizer::kQmc, bits, cell_bits)});
    }
  }
  schemes.push_back({"split_b3c3", SplitOptions(3)});
  schemes.push_back({"split_b3c2", SplitOptions(2)});
  std::vector<MatVecKernel> kernels = {MatVecKernel::kReference, MatVecKernel::kScalar};
  for (MatVecKernel kernel : {MatVecKernel::kAvx2, MatVecKernel::kAvx512}) {
    if (qmc::MatVecKernelAvailable(kernel)) kernels.push_back(kernel);
  }
  const char* kernel_names[] = {"reference", "scalar", "avx2", "avx512"};

  std::deque<PackedCase> cases;  // stable addresses for the registered lambdas
  for (const auto& [name, options] : schemes) {
    PackedCase& c = cases.emplace_back(PackedCase{name, qmc::host::PackModel(checkpoint, options), {}});
    c.view = qmc::image::ImageView::OpenFile(c.packed.image).value();
    for (const auto& [tensor_name, shape] :
         {std::pair{"blk.0.ffn_gate.weight", "768x288"}, {"blk.0.ffn_down.weight", "288x768"}}) {
      const char* tensor = tensor_name;  // a structured binding cannot be captured before C++20 in clang 14
      const std::string key = name + "/" + shape;
      for (MatVecKernel kernel : kernels) {
        benchmark::RegisterBenchmark((key + "/" + kernel_names[static_cast<int>(kernel)]).c_str(),
                                     [&c, tensor, kernel, key](benchmark::State& state) {
                                       RunMatVec(state, &c, tensor, kernel, key);
                                     });
      }
      for (MatVecKernel kernel : kernels) {
        if (kernel == MatVecKernel::kReference) continue;  // n matvecs: the matvec rows above
        const std::string matmul_key = key + "/matmul64";
        benchmark::RegisterBenchmark((matmul_key + "/" + kernel_names[static_cast<int>(kernel)]).c_str(),
                                     [&c, tensor, kernel, matmul_key](benchmark::State& state) {
                                       RunMatMul(state, &c, tensor, kernel, matmul_key);
                                     });
      }
    }
  }
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
