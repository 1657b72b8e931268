// Evaluation speed: `qmc eval`'s batched forward pass (a window's tokens per
// engine call, each weight read once per call) against the same evaluation
// one token per call (how a device runs, and how `qmc eval` ran before the
// batched pass), in the same process, on kjv6M over the first 15,300 tokens
// of kjv-valid.txt, for each weight scheme. Runs alternate, --runs times
// each (default 3); prints the median tokens/s of each, the median of the
// paired speedups with their min and max, and the NLL difference (the
// batched pass sums in another f32 order, so it may differ by rounding).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "common/image_reader.h"
#include "host/atomic_file.h"
#include "host/checkpoint.h"
#include "host/eval.h"
#include "host/pack.h"
#include "host/pack_presets.h"

namespace {

namespace fs = std::filesystem;
using qmc::image::Quantizer;

qmc::host::QuantOptions Scheme(Quantizer q, uint32_t bits = 3) {
  qmc::host::QuantOptions o;
  o.quantizer = q;
  o.bits = q == Quantizer::kMxInt4 ? 4 : bits;
  o.cell_bits = o.bits <= 3 ? o.bits : 2;
  return o;
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.size() % 2 == 1 ? v[v.size() / 2] : 0.5 * (v[v.size() / 2 - 1] + v[v.size() / 2]);
}

}  // namespace

int main(int argc, char** argv) {
  int runs = 3;
  size_t tokens_scored = 15300;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--runs" && i + 1 < argc) {
      runs = std::max(1, std::stoi(argv[++i]));
    } else if (arg == "--tokens" && i + 1 < argc) {
      tokens_scored = std::stoul(argv[++i]);
    } else {
      std::fprintf(stderr, "usage: eval_speed_bench [--runs N] [--tokens N]\n");
      return 2;
    }
  }
  const fs::path shared = QMC_SHARED_DIR;
  if (!fs::exists(shared / "models/kjv6M.bin")) {
    std::fprintf(stderr, "eval_speed_bench: ../shared/models/kjv6M.bin is missing\n");
    return 1;
  }
  qmc::host::Checkpoint checkpoint = qmc::host::LoadCheckpoint(shared / "models/kjv6M.bin");
  checkpoint.tokenizer = qmc::host::LoadTokenizerFile(shared / "models/kjv_tok2048.bin", checkpoint.config.vocab_size);
  const std::vector<uint8_t> text = qmc::host::ReadWholeFile(shared / "data/kjv-valid.txt");

  const std::vector<std::pair<std::string, qmc::host::QuantOptions>> schemes = {
      {"f32", Scheme(Quantizer::kF32)},
      {"fp16", Scheme(Quantizer::kFp16)},
      {"rtn b3 g64", Scheme(Quantizer::kRtn)},
      {"mxint4", Scheme(Quantizer::kMxInt4)},
      {"exact-outliers", qmc::host::FindPreset("exact-outliers")->options},
      {"paper-3mlc", qmc::host::FindPreset("paper-3mlc")->options},
  };
  std::printf("kjv6M, %zu kjv-valid tokens, %d alternating runs each, all hardware threads.\n\n", tokens_scored, runs);
  std::printf("| scheme | one token per call, tok/s | batched, tok/s | speedup (median) | min | max | NLL difference |\n");
  std::printf("|---|---:|---:|---:|---:|---:|---:|\n");
  for (const auto& [label, options] : schemes) {
    const std::vector<uint8_t> bytes = qmc::host::PackModel(checkpoint, options).image;
    const qmc::image::ImageView view = qmc::image::ImageView::OpenFile(bytes).value();
    std::vector<uint32_t> tokens =
        qmc::host::EncodeText(view, std::string_view(reinterpret_cast<const char*>(text.data()), text.size()));
    tokens.resize(std::min(tokens.size(), tokens_scored));
    std::vector<double> single, batched, ratios;
    double nll_single = 0.0, nll_batched = 0.0;
    for (int run = 0; run < runs; ++run) {
      double seconds[2];
      for (int batch_mode = 0; batch_mode < 2; ++batch_mode) {
        qmc::host::EvalOptions eval;
        eval.batch = batch_mode == 0 ? 1 : 0;
        const auto start = std::chrono::steady_clock::now();
        const qmc::host::EvalResult r = qmc::host::Evaluate(view, nullptr, tokens, eval);
        seconds[batch_mode] = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        (batch_mode == 0 ? nll_single : nll_batched) = r.nll;
      }
      single.push_back(static_cast<double>(tokens.size()) / seconds[0]);
      batched.push_back(static_cast<double>(tokens.size()) / seconds[1]);
      ratios.push_back(seconds[0] / seconds[1]);
    }
    std::printf("| %s | %.0f | %.0f | %.2f | %.2f | %.2f | %.1e |\n", label.c_str(), Median(single), Median(batched),
                Median(ratios), *std::min_element(ratios.begin(), ratios.end()),
                *std::max_element(ratios.begin(), ratios.end()), std::fabs(nll_batched - nll_single));
    std::fflush(stdout);
  }
  return 0;
}
