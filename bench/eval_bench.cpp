// Eval experiment: perplexity of each quantization scheme and KV cache
// format on held-out text (kjv6M on kjv-valid.txt, stories260K on WikiText-2
// test), with the mean KL divergence from the f32 image's next-token
// distributions and top-1 agreement with it, and eval throughput. The
// protocol is `qmc eval`'s (host/eval.h). Prints a markdown table; --csv
// FILE also writes CSV.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "common/image_reader.h"
#include "host/atomic_file.h"
#include "host/checkpoint.h"
#include "host/eval.h"
#include "host/image_summary.h"
#include "host/pack.h"

namespace {

namespace fs = std::filesystem;
using qmc::KvFormat;
using qmc::image::Quantizer;

struct Setting {
  std::string label;
  qmc::host::QuantOptions options;
  KvFormat kv = KvFormat::kF32;
};

struct Model {
  std::string name;
  fs::path checkpoint;
  fs::path tokenizer;
  fs::path text;
  size_t max_tokens;
};

qmc::host::QuantOptions Options(Quantizer q, uint32_t bits = 3, double rho = 0.0) {
  qmc::host::QuantOptions o;
  o.quantizer = q;
  o.bits = q == Quantizer::kMxInt4 ? 4 : bits;
  o.cell_bits = o.bits <= 3 ? o.bits : 2;
  o.outlier_ratio = rho;
  return o;
}

// The first setting is the f32 reference the others are compared with.
std::vector<Setting> Settings(bool quick) {
  if (quick) {
    return {{"f32", Options(Quantizer::kF32)},
            {"qmc b3 g64 rho0.005", Options(Quantizer::kQmc, 3, 0.005)},
            {"f32", Options(Quantizer::kF32), KvFormat::kInt8}};
  }
  return {{"f32", Options(Quantizer::kF32)},
          {"fp16", Options(Quantizer::kFp16)},
          {"mxint4", Options(Quantizer::kMxInt4)},
          {"rtn b4 g64", Options(Quantizer::kRtn, 4)},
          {"rtn b3 g64", Options(Quantizer::kRtn, 3)},
          {"rtn b2 g64", Options(Quantizer::kRtn, 2)},
          {"qmc b3 g64 rho0.005", Options(Quantizer::kQmc, 3, 0.005)},
          {"qmc b3 g64 rho0.01", Options(Quantizer::kQmc, 3, 0.01)},
          {"qmc b2 g64 rho0.01", Options(Quantizer::kQmc, 2, 0.01)},
          {"f32", Options(Quantizer::kF32), KvFormat::kFp16},
          {"f32", Options(Quantizer::kF32), KvFormat::kInt8},
          {"qmc b3 g64 rho0.005", Options(Quantizer::kQmc, 3, 0.005), KvFormat::kInt8}};
}

std::vector<uint8_t> Pack(const Model& m, const qmc::host::QuantOptions& options) {
  qmc::host::Checkpoint checkpoint = qmc::host::LoadCheckpoint(m.checkpoint);
  checkpoint.tokenizer = qmc::host::LoadTokenizerFile(m.tokenizer, checkpoint.config.vocab_size);
  return qmc::host::PackModel(checkpoint, options).image;
}

const char* KvName(KvFormat kv) { return kv == KvFormat::kF32 ? "f32" : kv == KvFormat::kFp16 ? "fp16" : "int8"; }

}  // namespace

int main(int argc, char** argv) {
  bool quick = false;
  std::string csv_path;
  size_t kjv_tokens = 20000, wiki_tokens = 100000;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--quick") {
      quick = true;
    } else if (arg == "--csv" && i + 1 < argc) {
      csv_path = argv[++i];
    } else if (arg == "--kjv-tokens" && i + 1 < argc) {
      kjv_tokens = std::stoul(argv[++i]);
    } else if (arg == "--wiki-tokens" && i + 1 < argc) {
      wiki_tokens = std::stoul(argv[++i]);
    } else {
      std::fprintf(stderr,
                   "usage: eval_bench [--quick] [--kjv-tokens N] [--wiki-tokens N] [--csv FILE]\n"
                   "  --quick          stories260K only, 1000 tokens, three settings (a smoke run)\n"
                   "  --kjv-tokens N   kjv6M tokens scored on kjv-valid.txt (default 20000; 0 = all)\n"
                   "  --wiki-tokens N  stories260K tokens scored on wiki.test.raw (default 100000; 0 = all)\n");
      return 2;
    }
  }
  const fs::path shared = QMC_SHARED_DIR;
  std::vector<Model> models;
  if (!quick) {
    models.push_back({"kjv6M", shared / "models/kjv6M.bin", shared / "models/kjv_tok2048.bin",
                      shared / "data/kjv-valid.txt", kjv_tokens});
  }
  models.push_back({"stories260K", shared / "models/stories260K.bin", shared / "models/tok512.bin",
                    shared / "data/wiki.test.raw", quick ? 1000 : wiki_tokens});
  for (const Model& m : models) {
    if (!fs::exists(m.checkpoint) || !fs::exists(m.text)) {
      std::fprintf(stderr, "eval_bench: %s or %s is missing (../shared)\n", m.checkpoint.c_str(), m.text.c_str());
      return 1;
    }
  }

  std::printf("Eval threads: %u. KL and top-1 are against the f32 image with an f32 KV cache; tok/s counts the "
              "scored tokens per second, reference run included (f32 row: the image alone).\n\n",
              std::max(1u, std::thread::hardware_concurrency()));
  std::string csv = "model,text,setting,kv,bits_per_weight,tokens,nll,ppl,kl,top1,tokens_per_s\n";
  std::printf("| model | text | setting | KV | bits/weight | tokens | NLL | ppl | KL | top-1 | tok/s |\n");
  std::printf("|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|\n");
  for (const Model& m : models) {
    const std::vector<uint8_t> text_bytes = qmc::host::ReadWholeFile(m.text);
    std::vector<uint8_t> reference_bytes;
    qmc::image::ImageView reference;
    std::vector<uint32_t> tokens;
    for (const Setting& s : Settings(quick)) {
      const std::vector<uint8_t> bytes = Pack(m, s.options);
      const qmc::image::ImageView view = qmc::image::ImageView::OpenFile(bytes).value();
      const bool is_reference = reference_bytes.empty();
      if (is_reference) {
        reference_bytes = bytes;
        reference = qmc::image::ImageView::OpenFile(reference_bytes).value();
        tokens = qmc::host::EncodeText(view, std::string_view(reinterpret_cast<const char*>(text_bytes.data()),
                                                              text_bytes.size()));
      }
      qmc::host::EvalOptions options;
      options.kv = s.kv;
      options.max_tokens = m.max_tokens;
      const auto start = std::chrono::steady_clock::now();
      const qmc::host::EvalResult r = qmc::host::Evaluate(view, is_reference ? nullptr : &reference, tokens, options);
      const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      const double bits = qmc::host::SummarizeImage(view)["bits_per_weight"].get<double>();
      const std::string text = m.text.filename().string();

      char kl[32] = "-", top1[32] = "-";
      if (r.kl) {
        std::snprintf(kl, sizeof kl, "%.3g", *r.kl);
        std::snprintf(top1, sizeof top1, "%.4f", *r.top1);
      }
      char row[512];
      std::snprintf(row, sizeof row, "| %s | %s | %s | %s | %.3f | %zu | %.4f | %.3f | %s | %s | %.0f |\n",
                    m.name.c_str(), text.c_str(), s.label.c_str(), KvName(s.kv), bits, r.tokens, r.nll, r.ppl, kl,
                    top1, static_cast<double>(r.tokens) / seconds);
      std::fputs(row, stdout);
      std::fflush(stdout);
      std::snprintf(row, sizeof row, "%s,%s,%s,%s,%.5f,%zu,%.6f,%.4f,%s,%s,%.1f\n", m.name.c_str(), text.c_str(),
                    s.label.c_str(), KvName(s.kv), bits, r.tokens, r.nll, r.ppl, r.kl ? kl : "", r.top1 ? top1 : "",
                    static_cast<double>(r.tokens) / seconds);
      csv += row;
    }
  }
  if (!csv_path.empty()) std::ofstream(csv_path) << csv;
  return 0;
}
