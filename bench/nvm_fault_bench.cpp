// NVM faults in operation (issue 14, item 4), measured; markdown on stdout:
//  1. what MRAM SECDED (hal/emu/secded.h: 8 check bits per 64-bit word)
//     costs in check bits per weight, for kjv6M packed paper-3mlc and for
//     the paper's four models laid out as `qmc memsim` lays them out;
//  2. model quality under MRAM bit errors with and without SECDED: qmc
//     eval's protocol (host/eval.h) on kjv6M paper-3mlc, the first --tokens
//     tokens of kjv-valid.txt, ΔNLL, KL and top-1 against the same image
//     read without errors, mean ± sd over --seeds seeds; ReRAM exact, so
//     only MRAM (scales, outlier codes and positions) errs. Errors as the
//     emulated board's program noise draws them (host/device_noise.h);
//  3. what the boot's CRC check costs: firmware::BootImage (everything boot
//     validates: section CRCs, header, directory, tokenizer) on the emulated
//     board for kjv6M paper-3mlc and for a one-layer paper-width image
//     (qmc pack --synthetic, paper-scale board), --boot-repeats times each;
//     CRC-bound, so a full paper image's time follows from its size.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "common/image_reader.h"
#include "firmware/boot.h"
#include "hal/emu/code_errors.h"
#include "hal/emu/device_profile.h"
#include "hal/emu/emu_board.h"
#include "hal/emu/secded.h"
#include "host/atomic_file.h"
#include "host/checkpoint.h"
#include "host/device_noise.h"
#include "host/eval.h"
#include "host/model_layout.h"
#include "host/model_shapes.h"
#include "host/nvm_image.h"
#include "host/pack.h"
#include "host/pack_presets.h"

namespace {

namespace fs = std::filesystem;
using qmc::hal::emu::DeviceProfile;

const fs::path kShared = QMC_SHARED_DIR;
const fs::path kSource = QMC_SOURCE_DIR;

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

// A preset's options as `qmc pack --preset NAME` resolves them with the built-in device profile.
qmc::host::QuantOptions Preset(const char* name) {
  const qmc::host::Preset& p = *qmc::host::FindPreset(name);
  qmc::host::QuantOptions o = p.options;
  if (p.noise_aware) {
    o.inlier_noise = qmc::hal::emu::CodeErrors(qmc::hal::emu::DefaultDeviceProfile().Mode(o.cell_bits), o.bits,
                                               o.cell_bits)
                         .mean_square_levels;
  }
  return o;
}

// SECDED's check bits over `mram_bytes` (whole 64-bit words), per weight.
double CheckBitsPerWeight(uint64_t mram_bytes, uint64_t weights) {
  return static_cast<double>((mram_bytes + 7) / 8 * 8) / static_cast<double>(weights);
}

void CostRow(const std::string& model, uint64_t mram, uint64_t weights, double all_in) {
  std::printf("| %s | %llu | %llu | %.4f | %.3f | %.1f %% |\n", model.c_str(), static_cast<unsigned long long>(mram),
              static_cast<unsigned long long>(weights), CheckBitsPerWeight(mram, weights), all_in,
              100.0 * CheckBitsPerWeight(mram, weights) / all_in);
}

double Seconds(std::chrono::steady_clock::duration d) { return std::chrono::duration<double>(d).count(); }

// BootImage on a board holding `bytes` in slot 0: seconds per boot, each repeat.
std::vector<double> TimeBoot(const std::vector<uint8_t>& bytes, const fs::path& nvm,
                             const qmc::hal::emu::WindowSizes& sizes, int repeats) {
  const qmc::image::ImageView file = qmc::image::ImageView::OpenFile(bytes).value();
  qmc::host::WriteImageToNvm(file, bytes, nvm, sizes);
  qmc::hal::emu::EmuBoard board(nvm, {}, sizes);
  std::vector<double> seconds;
  for (int i = 0; i < repeats; ++i) {
    qmc::image::ImageView view;
    const auto start = std::chrono::steady_clock::now();
    const qmc::firmware::BootResult boot = qmc::firmware::BootImage(board.info(), view);
    seconds.push_back(Seconds(std::chrono::steady_clock::now() - start));
    if (boot.state != qmc::firmware::BootState::kReady) throw std::runtime_error("the board did not boot the image");
  }
  return seconds;
}

void BootRow(const std::string& what, uint64_t bytes, std::vector<double> seconds) {
  std::sort(seconds.begin(), seconds.end());
  const double median = seconds[seconds.size() / 2], mb = static_cast<double>(bytes) / 1e6;
  std::printf("| %s | %.1f | %.2f | %.2f | %.2f | %.0f |\n", what.c_str(), mb, seconds.front() * 1e3, median * 1e3,
              seconds.back() * 1e3, mb / median);
}

}  // namespace

int main(int argc, char** argv) {
  size_t seeds = 3, tokens = 1024;
  int boot_repeats = 5;
  std::vector<double> rates = {1e-6, 1e-5, 1e-4, 1e-3};
  bool paper_boot = true;
  CLI::App app{"NVM faults: MRAM SECDED cost and model quality under MRAM bit errors; the boot's CRC check time."};
  app.add_option("--seeds", seeds, "error seeds per rate")->default_val(3);
  app.add_option("--tokens", tokens, "kjv-valid.txt tokens scored")->default_val(1024);
  app.add_option("--rates", rates, "MRAM bit-error rates")->default_str("1e-6 1e-5 1e-4 1e-3");
  app.add_option("--boot-repeats", boot_repeats, "boots timed per image")->default_val(5);
  app.add_flag("!--no-paper-boot", paper_boot, "skip packing and booting the one-layer paper-width image");
  CLI11_PARSE(app, argc, argv);

  const fs::path dir = fs::temp_directory_path() / ("qmc_nvm_fault_bench_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  try {
    qmc::host::Checkpoint checkpoint = qmc::host::LoadCheckpoint(kShared / "models/kjv6M.bin");
    checkpoint.tokenizer =
        qmc::host::LoadTokenizerFile(kShared / "models/kjv_tok2048.bin", checkpoint.config.vocab_size);
    const std::vector<uint8_t> image = qmc::host::PackModel(checkpoint, Preset("paper-3mlc")).image;
    const qmc::image::ImageView view = qmc::image::ImageView::OpenFile(image).value();
    const qmc::host::ModelLayout kjv = qmc::host::LayOutImage(view);

    std::printf("## MRAM SECDED: cost\n\nHamming(72,64) over every 64-bit word of the image's MRAM footprint (boot "
                "record, directory, tokenizer, norms, scales, outliers): 8 check bits per 64 data bits. Weights: "
                "weight-matrix weights, as qmc inspect counts them.\n\n"
                "| model (paper-3mlc) | MRAM bytes | weights | check bits/weight | all-in bits/weight without "
                "ECC | ECC's share of it |\n|---|---:|---:|---:|---:|---:|\n");
    CostRow("kjv6M (image)", view.WindowBytes(qmc::image::Window::kMram), kjv.matrix_weights, kjv.BitsPerWeight());
    for (const char* name : {"llama-3.2-3b", "qwen2.5-1.5b-instruct", "phi-1_5", "hymba-1.5b-base"}) {
      const qmc::host::ModelLayout l = qmc::host::LayOutModel(
          qmc::host::LoadModelShape(kShared / "models/paper" / name / "config.json"), Preset("paper-3mlc"), "paper-3mlc");
      CostRow(std::string(name) + " (memsim layout)", l.window_bytes[static_cast<size_t>(qmc::image::Window::kMram)],
              l.matrix_weights, l.BitsPerWeight());
    }
    std::fflush(stdout);

    // Quality under MRAM bit errors.
    const std::vector<uint8_t> text = qmc::host::ReadWholeFile(kShared / "data/kjv-valid.txt");
    const std::vector<uint32_t> ids =
        qmc::host::EncodeText(view, std::string_view(reinterpret_cast<const char*>(text.data()), text.size()));
    qmc::host::EvalOptions options;
    options.max_tokens = tokens;
    const qmc::host::EvalResult clean = qmc::host::Evaluate(view, &view, ids, options);
    std::printf("\n## MRAM bit errors with and without SECDED: kjv6M paper-3mlc\n\n"
                "qmc eval's protocol on the first %zu tokens of kjv-valid.txt; clean NLL %.4f nats/token. Against "
                "the same image read without errors; mean ± sd over %zu seeds (the same errors in the data bits "
                "with and without the code). Words: per image read, mean.\n\n"
                "| MRAM BER | SECDED | ΔNLL | KL | top-1 | words with a corrected error | uncorrectable (detected) | "
                "silently wrong |\n|---:|---|---:|---:|---:|---:|---:|---:|\n",
                clean.tokens, clean.nll, seeds);
    for (const double rate : rates) {
      for (const bool secded : {false, true}) {
        DeviceProfile profile;
        profile.name = "MRAM only";
        profile.mram_ber = rate;
        profile.mram_secded = secded;
        std::vector<double> dnll, kl, top1, corrected, uncorrectable, silent;
        for (size_t seed = 1; seed <= seeds; ++seed) {
          qmc::hal::emu::SecdedCounts counts;
          const std::vector<uint8_t> noisy = qmc::host::ApplyDeviceNoise(image, profile, seed, &counts);
          const qmc::host::EvalResult e =
              qmc::host::Evaluate(qmc::image::ImageView::OpenFile(noisy).value(), &view, ids, options);
          dnll.push_back(e.nll - clean.nll);
          kl.push_back(*e.kl);
          top1.push_back(*e.top1);
          corrected.push_back(static_cast<double>(counts.corrected));
          uncorrectable.push_back(static_cast<double>(counts.uncorrectable));
          silent.push_back(static_cast<double>(counts.silent));
        }
        const Stats d = MeanSd(dnll), k = MeanSd(kl), t = MeanSd(top1);
        std::printf("| %g | %s | %+.4f ± %.4f | %.5f ± %.5f | %.4f ± %.4f | %s | %s | %s |\n", rate,
                    secded ? "on" : "off", d.mean, d.sd, k.mean, k.sd, t.mean, t.sd,
                    secded ? std::to_string(MeanSd(corrected).mean).c_str() : "-",
                    secded ? std::to_string(MeanSd(uncorrectable).mean).c_str() : "-",
                    secded ? std::to_string(MeanSd(silent).mean).c_str() : "-");
        std::fflush(stdout);
      }
    }

    // The boot's checks.
    std::printf("\n## What the boot's CRC check costs (emulated board, this host)\n\n"
                "firmware::BootImage: commit records, then every section's CRC, header, directory and tokenizer "
                "validated in place; %d boots each, page cache warm.\n\n"
                "| image | MB checked | min ms | median ms | max ms | MB/s (median) |\n|---|---:|---:|---:|---:|---:|\n",
                boot_repeats);
    BootRow("kjv6M paper-3mlc", image.size(), TimeBoot(image, dir / "kjv", {}, boot_repeats));
    if (paper_boot) {
      const fs::path config = kShared / "models/paper/qwen2.5-1.5b-instruct/config.json";
      const fs::path one_layer = dir / "qwen_one_layer.qmc";
      const std::string pack = std::string(QMC_CLI) + " pack -q --synthetic " + config.string() +
                               " --synthetic-layers 1 --seed 1 --preset paper-3mlc -o " + one_layer.string() +
                               " >/dev/null";
      if (std::system(pack.c_str()) != 0) throw std::runtime_error("qmc pack --synthetic failed");
      const std::vector<uint8_t> paper = qmc::host::ReadWholeFile(one_layer);
      const qmc::hal::emu::WindowSizes sizes =
          qmc::hal::emu::LoadWindowSizes(kSource / "hal/profiles/boards/paper-scale.json");
      std::vector<double> seconds = TimeBoot(paper, dir / "paper", sizes, boot_repeats);
      BootRow("qwen2.5-1.5b-instruct paper-3mlc, 1 of 28 layers", paper.size(), seconds);
      std::sort(seconds.begin(), seconds.end());
      const qmc::host::ModelLayout full =
          qmc::host::LayOutModel(qmc::host::LoadModelShape(config), Preset("paper-3mlc"), "paper-3mlc");
      double full_bytes = 0;
      for (const uint64_t b : full.window_bytes) full_bytes += static_cast<double>(b);
      const double per_byte = seconds[seconds.size() / 2] / static_cast<double>(paper.size());
      std::printf("\nThe whole qwen2.5-1.5b-instruct paper-3mlc image (%.0f MB by its memsim layout) at the median "
                  "rate above: %.2f s per boot (scaled by size from the one-layer measurement, not booted whole).\n",
                  full_bytes / 1e6, full_bytes * per_byte);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "nvm_fault_bench: %s\n", e.what());
    fs::remove_all(dir);
    return 1;
  }
  fs::remove_all(dir);
  return 0;
}
