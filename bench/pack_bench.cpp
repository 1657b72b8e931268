// Pack experiment: for each shared model, scheme and setting, the effective
// bits per weight (codes, scales, zeros, outliers, indices, row starts), the
// weight-reconstruction error (relative Frobenius norm over all weight
// matrices) and pack throughput (MB of checkpoint read and packed per second).
// Prints a markdown table; --csv FILE also writes CSV.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "common/image_reader.h"
#include "host/checkpoint.h"
#include "host/image_summary.h"
#include "host/pack.h"

namespace {

namespace fs = std::filesystem;
using qmc::image::Quantizer;

struct Setting {
  std::string label;
  qmc::host::QuantOptions options;
};

struct Model {
  std::string name;
  fs::path checkpoint;
  fs::path tokenizer;
};

qmc::host::QuantOptions Options(Quantizer q, uint32_t bits = 3, double rho = 0.0, uint32_t group = 64,
                                qmc::host::OutlierBalance balance = qmc::host::OutlierBalance::kTensor) {
  qmc::host::QuantOptions o;
  o.quantizer = q;
  o.bits = q == Quantizer::kMxInt4 ? 4 : bits;
  o.cell_bits = o.bits <= 3 ? o.bits : 2;
  o.outlier_ratio = rho;
  o.group_size = group;
  o.balance = balance;
  return o;
}

std::vector<Setting> Settings(bool quick) {
  std::vector<Setting> s = {{"f32", Options(Quantizer::kF32)},
                            {"fp16", Options(Quantizer::kFp16)},
                            {"mxint4", Options(Quantizer::kMxInt4)}};
  for (uint32_t bits : {4u, 3u, 2u}) {
    s.push_back({"rtn b" + std::to_string(bits) + " g64", Options(Quantizer::kRtn, bits)});
    if (!quick) s.push_back({"rtn b" + std::to_string(bits) + " g128", Options(Quantizer::kRtn, bits, 0.0, 128)});
    const std::vector<double> rhos = quick ? std::vector<double>{0.005} : std::vector<double>{0.001, 0.0025, 0.005, 0.01, 0.02};
    for (double rho : rhos) {
      char label[64];
      std::snprintf(label, sizeof label, "qmc b%u g64 rho%.4g", bits, rho);
      s.push_back({label, Options(Quantizer::kQmc, bits, rho)});
    }
    if (!quick) {
      s.push_back({"qmc b" + std::to_string(bits) + " g64 rho0.005 row",
                   Options(Quantizer::kQmc, bits, 0.005, 64, qmc::host::OutlierBalance::kRow)});
    }
  }
  return s;
}

double RelativeError(const qmc::host::Checkpoint& checkpoint, const qmc::host::PackedModel& packed) {
  double num = 0, den = 0;
  for (const auto& t : packed.tensors) {
    if (!t.is_matrix) continue;
    const std::vector<float>& w = checkpoint.tensors.at(t.name).data;
    for (size_t i = 0; i < w.size(); ++i) {
      const double d = static_cast<double>(w[i]) - t.reconstruction[i];
      num += d * d;
      den += static_cast<double>(w[i]) * w[i];
    }
  }
  return std::sqrt(num / den);
}

uint64_t Bytes(const fs::path& path) {
  if (!fs::is_directory(path)) return fs::file_size(path);
  uint64_t total = 0;
  for (const auto& e : fs::directory_iterator(path)) total += e.is_regular_file() ? e.file_size() : 0;
  return total;
}

}  // namespace

int main(int argc, char** argv) {
  bool quick = false;
  std::string csv_path;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--quick") {
      quick = true;
    } else if (arg == "--csv" && i + 1 < argc) {
      csv_path = argv[++i];
    } else {
      std::fprintf(stderr,
                   "usage: pack_bench [--quick] [--csv FILE]\n"
                   "  --quick  stories260K only, fewer settings (a smoke run)\n");
      return 2;
    }
  }
  const fs::path shared = QMC_SHARED_DIR;
  std::vector<Model> models = {{"stories260K", shared / "models/stories260K.bin", shared / "models/tok512.bin"}};
  if (!quick) models.push_back({"kjv6M", shared / "models/kjv6M.bin", shared / "models/kjv_tok2048.bin"});
  for (const Model& m : models) {
    if (!fs::exists(m.checkpoint)) {
      std::fprintf(stderr, "pack_bench: %s is missing (../shared/models)\n", m.checkpoint.c_str());
      return 1;
    }
  }

  std::string csv = "model,setting,bits_per_weight,rel_frobenius_error,outlier_fraction,mram_bytes,reram_bytes,dram_bytes,pack_mb_per_s\n";
  std::printf("| model | setting | bits/weight | rel. error | outliers | MRAM B | ReRAM B | DRAM B | pack MB/s |\n");
  std::printf("|---|---|---:|---:|---:|---:|---:|---:|---:|\n");
  for (const Model& m : models) {
    const double mb = static_cast<double>(Bytes(m.checkpoint)) / 1e6;
    for (const Setting& s : Settings(quick)) {
      const auto start = std::chrono::steady_clock::now();
      qmc::host::Checkpoint checkpoint = qmc::host::LoadCheckpoint(m.checkpoint);
      checkpoint.tokenizer = qmc::host::LoadTokenizerFile(m.tokenizer, checkpoint.config.vocab_size);
      const qmc::host::PackedModel packed = qmc::host::PackModel(checkpoint, s.options);
      const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

      const qmc::image::ImageView view = qmc::image::ImageView::OpenFile(packed.image).value();
      const nlohmann::json summary = qmc::host::SummarizeImage(view);
      const auto& w = summary["bytes_by_window"];
      const double error = RelativeError(checkpoint, packed);
      char row[512];
      std::snprintf(row, sizeof row, "| %s | %s | %.3f | %.5f | %.4f | %llu | %llu | %llu | %.1f |\n", m.name.c_str(),
                    s.label.c_str(), summary["bits_per_weight"].get<double>(), error,
                    summary["outlier_fraction"].get<double>(), w["mram"].get<unsigned long long>(),
                    w["reram"].get<unsigned long long>(), w["dram"].get<unsigned long long>(), mb / seconds);
      std::fputs(row, stdout);
      std::fflush(stdout);
      std::snprintf(row, sizeof row, "%s,%s,%.5f,%.6f,%.6f,%llu,%llu,%llu,%.2f\n", m.name.c_str(), s.label.c_str(),
                    summary["bits_per_weight"].get<double>(), error, summary["outlier_fraction"].get<double>(),
                    w["mram"].get<unsigned long long>(), w["reram"].get<unsigned long long>(),
                    w["dram"].get<unsigned long long>(), mb / seconds);
      csv += row;
    }
  }
  if (!csv_path.empty()) std::ofstream(csv_path) << csv;
  return 0;
}
