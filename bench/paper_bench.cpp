// The QMC paper's Table 2 on our models: perplexity, KL and top-1 of FP16,
// RTN INT4 (per channel, the paper's system baseline, and g128), MXINT4, QMC
// paper-3mlc and paper-2mlc, and our exact-outlier QMC, without noise and
// under the device profile's read errors (mean ± sd over noise seeds); bits
// per weight in the paper's accounting (value bits) and all-in; the ρ sweep
// of the paper's Fig. 3 (left); a sweep of one cell error rate for every
// mode. kjv6M is scored on kjv-valid.txt, stories260K on WikiText-2 test;
// each model's f32 image is its KL and top-1 reference. The protocol is `qmc eval`'s (host/eval.h).
// Writes markdown to stdout and CSV with --csv FILE.
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "common/image_reader.h"
#include "hal/emu/code_errors.h"
#include "hal/emu/device_profile.h"
#include "host/atomic_file.h"
#include "host/checkpoint.h"
#include "host/device_noise.h"
#include "host/eval.h"
#include "host/image_summary.h"
#include "host/pack.h"
#include "host/pack_presets.h"

namespace {

namespace fs = std::filesystem;
using qmc::hal::emu::DeviceProfile;
using qmc::host::QuantOptions;
using qmc::image::Quantizer;

struct Model {
  std::string name;
  fs::path checkpoint, tokenizer, text;
  size_t tokens;
};

struct Row {
  std::string label;
  QuantOptions options;
};

struct Stats {
  double mean = 0.0, sd = 0.0;
};

Stats MeanSd(const std::vector<double>& v) {
  Stats s;
  for (double x : v) s.mean += x;
  s.mean /= static_cast<double>(v.size());
  for (double x : v) s.sd += (x - s.mean) * (x - s.mean);
  s.sd = v.size() > 1 ? std::sqrt(s.sd / static_cast<double>(v.size() - 1)) : 0.0;
  return s;
}

QuantOptions Plain(Quantizer q, uint32_t bits, uint32_t group, uint32_t cell_bits) {
  QuantOptions o;
  o.quantizer = q;
  o.bits = bits;
  o.group_size = group;
  o.cell_bits = cell_bits;
  o.outlier_ratio = 0.0;
  return o;
}

// A preset's options with the noise-aware weight for `profile`, as `qmc pack` resolves them.
QuantOptions FromPreset(const char* name, const DeviceProfile& profile, double rho = -1.0) {
  const qmc::host::Preset& p = *qmc::host::FindPreset(name);
  QuantOptions o = p.options;
  if (rho >= 0.0) o.outlier_ratio = rho;
  if (p.noise_aware) o.inlier_noise = qmc::hal::emu::CodeErrors(profile.Mode(o.cell_bits), o.bits, o.cell_bits).mean_square_levels;
  return o;
}

// Every ReRAM mode reads one level off with probability p, half down, half up.
DeviceProfile Uniform(double p) {
  DeviceProfile profile;
  profile.name = "uniform";
  for (auto& mode : profile.reram) mode = {p / 2, p / 2};
  return profile;
}

class Bench {
 public:
  Bench(const Model& m, size_t seeds) : m_(m), seeds_(seeds) {
    checkpoint_ = qmc::host::LoadCheckpoint(m.checkpoint);
    checkpoint_.tokenizer = qmc::host::LoadTokenizerFile(m.tokenizer, checkpoint_.config.vocab_size);
    reference_bytes_ = qmc::host::PackModel(checkpoint_, Plain(Quantizer::kF32, 3, 64, 3)).image;
    reference_ = qmc::image::ImageView::OpenFile(reference_bytes_).value();
    const std::vector<uint8_t> text = qmc::host::ReadWholeFile(m.text);
    tokens_ = qmc::host::EncodeText(reference_, std::string_view(reinterpret_cast<const char*>(text.data()), text.size()));
  }

  std::vector<uint8_t> Pack(const QuantOptions& o) const { return qmc::host::PackModel(checkpoint_, o).image; }

  qmc::host::EvalResult Eval(const std::vector<uint8_t>& bytes) const {
    const qmc::image::ImageView view = qmc::image::ImageView::OpenFile(bytes).value();
    qmc::host::EvalOptions options;
    options.max_tokens = m_.tokens;
    return qmc::host::Evaluate(view, &reference_, tokens_, options);
  }

  // Clean, then under `profile`'s errors for each seed.
  struct Result {
    qmc::host::EvalResult clean;
    size_t seeds = 0;
    Stats nll, ppl, kl, top1;
  };
  Result Run(const std::vector<uint8_t>& bytes, const DeviceProfile& profile, size_t seeds) const {
    Result r;
    r.clean = Eval(bytes);
    r.seeds = seeds;
    std::vector<double> nll, ppl, kl, top1;
    for (size_t seed = 1; seed <= seeds; ++seed) {
      const qmc::host::EvalResult e = Eval(qmc::host::ApplyDeviceNoise(bytes, profile, seed));
      nll.push_back(e.nll);
      ppl.push_back(e.ppl);
      kl.push_back(*e.kl);
      top1.push_back(*e.top1);
    }
    if (seeds > 0) r.nll = MeanSd(nll), r.ppl = MeanSd(ppl), r.kl = MeanSd(kl), r.top1 = MeanSd(top1);
    return r;
  }

  const Model& model() const { return m_; }
  size_t seeds() const { return seeds_; }

 private:
  Model m_;
  size_t seeds_;
  qmc::host::Checkpoint checkpoint_;
  std::vector<uint8_t> reference_bytes_;
  qmc::image::ImageView reference_;
  std::vector<uint32_t> tokens_;
};

std::string Fmt(const char* format, double a, double b = 0.0) {
  char text[64];
  std::snprintf(text, sizeof text, format, a, b);
  return text;
}

}  // namespace

int main(int argc, char** argv) {
  std::string csv_path, device;
  size_t kjv_tokens = 4000, wiki_tokens = 10000, seeds = 5, sweep_seeds = 3;
  bool quick = false;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--csv" && i + 1 < argc) {
      csv_path = argv[++i];
    } else if (arg == "--device" && i + 1 < argc) {
      device = argv[++i];
    } else if (arg == "--kjv-tokens" && i + 1 < argc) {
      kjv_tokens = std::stoul(argv[++i]);
    } else if (arg == "--wiki-tokens" && i + 1 < argc) {
      wiki_tokens = std::stoul(argv[++i]);
    } else if (arg == "--seeds" && i + 1 < argc) {
      seeds = std::stoul(argv[++i]);
    } else if (arg == "--sweep-seeds" && i + 1 < argc) {
      sweep_seeds = std::stoul(argv[++i]);
    } else if (arg == "--quick") {
      quick = true;
    } else {
      std::fprintf(stderr,
                   "usage: paper_bench [--device FILE] [--seeds N] [--sweep-seeds N] [--kjv-tokens N] [--wiki-tokens N]\n"
                   "                   [--quick] [--csv FILE]\n"
                   "  --device FILE    device profile for the noise-aware scales and the injected errors (default: built in)\n"
                   "  --seeds N        noise seeds per noisy row of Table 2 (default 5)\n"
                   "  --sweep-seeds N  noise seeds per noisy row of the sweeps (default 3)\n"
                   "  --kjv-tokens N   kjv6M tokens scored on kjv-valid.txt (default 4000)\n"
                   "  --wiki-tokens N  stories260K tokens scored on wiki.test.raw (default 10000)\n"
                   "  --quick          stories260K only, 1000 tokens, 2 seeds, no sweeps (a smoke run)\n");
      return 2;
    }
  }
  const DeviceProfile profile =
      device.empty() ? qmc::hal::emu::DefaultDeviceProfile() : qmc::hal::emu::LoadDeviceProfile(device);
  const fs::path shared = QMC_SHARED_DIR;
  std::vector<Model> models;
  if (!quick) models.push_back({"kjv6M", shared / "models/kjv6M.bin", shared / "models/kjv_tok2048.bin", shared / "data/kjv-valid.txt", kjv_tokens});
  models.push_back({"stories260K", shared / "models/stories260K.bin", shared / "models/tok512.bin",
                    shared / "data/wiki.test.raw", quick ? 1000 : wiki_tokens});
  if (quick) seeds = sweep_seeds = 2;
  for (const Model& m : models) {
    if (!fs::exists(m.checkpoint) || !fs::exists(m.text)) {
      std::fprintf(stderr, "paper_bench: %s or %s is missing (../shared)\n", m.checkpoint.c_str(), m.text.c_str());
      return 1;
    }
  }

  std::printf("Device profile: %s. ReRAM p_down/p_up per read: 1-bit %.3g/%.3g, 2-bit %.3g/%.3g, 3-bit %.3g/%.3g; "
              "MRAM BER %.3g. Noisy columns: mean ± sd over %zu seeds (sweeps: %zu), errors drawn once per seed on every "
              "ReRAM cell and MRAM bit an inference reads (host/device_noise.h). KL, top-1: against the f32 image.\n\n",
              profile.name.c_str(), profile.reram[0].p_down, profile.reram[0].p_up, profile.reram[1].p_down,
              profile.reram[1].p_up, profile.reram[2].p_down, profile.reram[2].p_up, profile.mram_ber, seeds, sweep_seeds);
  std::string csv = "table,model,row,rho,uniform_error_rate,value_bits,all_in_bits,tokens,nll,ppl,kl,top1,noisy_nll,noisy_nll_sd,"
                    "noisy_ppl,noisy_ppl_sd,noisy_kl,noisy_kl_sd,noisy_top1,noisy_top1_sd\n";
  // uniform_error_rate 0: the profile's rates.
  auto emit = [&](const char* table, const Bench& b, const std::string& label, double rho, double error_rate,
                  const std::vector<uint8_t>& bytes, const Bench::Result& r) {
    const qmc::image::ImageView view = qmc::image::ImageView::OpenFile(bytes).value();
    const nlohmann::json summary = qmc::host::SummarizeImage(view);
    const double value_bits = summary["value_bits_per_weight"].get<double>();
    const double all_in = summary["bits_per_weight"].get<double>();
    const bool noisy = r.seeds > 0;
    std::printf("| %s | %s | %.3f | %.3f | %.4f | %.3f | %.4f | %.4f | %s | %s | %s | %s |\n", b.model().name.c_str(),
                label.c_str(), value_bits, all_in, r.clean.nll, r.clean.ppl, *r.clean.kl, *r.clean.top1,
                noisy ? Fmt("%.4f ± %.4f", r.nll.mean, r.nll.sd).c_str() : "-",
                noisy ? Fmt("%.3f ± %.3f", r.ppl.mean, r.ppl.sd).c_str() : "-",
                noisy ? Fmt("%.4f ± %.4f", r.kl.mean, r.kl.sd).c_str() : "-",
                noisy ? Fmt("%.4f ± %.4f", r.top1.mean, r.top1.sd).c_str() : "-");
    std::fflush(stdout);
    char line[1024];
    std::snprintf(line, sizeof line, "%s,%s,%s,%g,%g,%.5f,%.5f,%zu,%.6f,%.4f,%.6f,%.5f,%.6f,%.6f,%.4f,%.4f,%.6f,%.6f,%.5f,%.5f\n",
                  table, b.model().name.c_str(), label.c_str(), rho, error_rate, value_bits, all_in, r.clean.tokens,
                  r.clean.nll, r.clean.ppl, *r.clean.kl, *r.clean.top1, r.nll.mean, r.nll.sd, r.ppl.mean, r.ppl.sd,
                  r.kl.mean, r.kl.sd, r.top1.mean, r.top1.sd);
    csv += line;
  };
  const char* header =
      "| model | row | value bits/w | all-in bits/w | NLL | ppl | KL | top-1 | noisy NLL | noisy ppl | noisy KL | noisy top-1 |\n"
      "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n";

  std::vector<Bench> benches;
  for (const Model& m : models) benches.emplace_back(m, seeds);

  std::printf("## Table 2\n\n%s", header);
  for (const Bench& b : benches) {
    const std::vector<Row> rows = {
        {"FP16", Plain(Quantizer::kFp16, 16, 64, 3)},
        {"RTN INT4 per channel", Plain(Quantizer::kRtn, 4, qmc::host::kPerChannel, 2)},
        {"RTN INT4 g128", Plain(Quantizer::kRtn, 4, 128, 2)},
        {"MXINT4", Plain(Quantizer::kMxInt4, 4, 32, 2)},
        {"QMC paper-3mlc", FromPreset("paper-3mlc", profile)},
        {"QMC paper-2mlc", FromPreset("paper-2mlc", profile)},
        {"QMC exact-outliers", FromPreset("exact-outliers", profile)},
    };
    for (const Row& row : rows) {
      const std::vector<uint8_t> bytes = b.Pack(row.options);
      // FP16 weights live in DRAM: nothing of them is noisy.
      const size_t seeds = row.options.quantizer == Quantizer::kFp16 ? 0 : b.seeds();
      emit("table2", b, row.label, row.options.outlier_ratio, 0.0, bytes, b.Run(bytes, profile, seeds));
    }
  }
  if (!quick) {
    std::printf("\n## rho sweep (paper Fig. 3 left)\n\n%s", header);
    for (const Bench& b : benches) {
      for (const char* preset : {"paper-3mlc", "paper-2mlc"}) {
        for (double rho : {0.1, 0.2, 0.3, 0.4, 0.5}) {
          const std::vector<uint8_t> bytes = b.Pack(FromPreset(preset, profile, rho));
          emit("rho_sweep", b, std::string(preset) + " rho " + Fmt("%.1f", rho), rho, 0.0, bytes,
               b.Run(bytes, profile, sweep_seeds));
        }
      }
    }
    std::printf("\n## Error-rate sweep: every ReRAM cell mode reads one level off with probability p (half down, half "
                "up); images packed for the profile\n\n%s",
                header);
    for (const Bench& b : benches) {
      const std::pair<std::string, QuantOptions> images[] = {
          {"QMC paper-3mlc", FromPreset("paper-3mlc", profile)},
          {"QMC paper-2mlc", FromPreset("paper-2mlc", profile)},
          {"RTN INT4 per channel", Plain(Quantizer::kRtn, 4, qmc::host::kPerChannel, 2)}};
      for (const auto& [label, options] : images) {
        const std::vector<uint8_t> bytes = b.Pack(options);
        for (double p : {0.001, 0.004, 0.016}) {
          emit("error_sweep", b, label + " p " + Fmt("%g", p), options.outlier_ratio, p, bytes,
               b.Run(bytes, Uniform(p), sweep_seeds));
        }
      }
    }
  }
  if (!csv_path.empty()) std::ofstream(csv_path) << csv;
  return 0;
}
