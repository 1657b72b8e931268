#include "host/image_summary.h"

#include <cstdio>
#include <cstring>
#include <sstream>

#include "common/model_tensors.h"
#include "host/model_layout.h"

namespace qmc::host {
namespace {

const char* WindowName(uint8_t window) {
  static const char* const kNames[] = {"sram", "mram", "reram", "dram"};
  return window < image::kWindowCount ? kNames[window] : "?";
}

const char* SectionKindName(uint8_t kind) {
  switch (static_cast<image::SectionKind>(kind)) {
    case image::SectionKind::kTensorDirectory: return "tensor-directory";
    case image::SectionKind::kTokenizer: return "tokenizer";
    case image::SectionKind::kParams: return "params";
    case image::SectionKind::kInlierCodes: return "inlier-codes";
    case image::SectionKind::kDenseWeights: return "dense-weights";
    case image::SectionKind::kModelDetail: return "model-detail";
  }
  return "?";
}

const char* ArchName(uint32_t arch) {
  switch (static_cast<image::Arch>(arch)) {
    case image::Arch::kLlama: return "llama";
    case image::Arch::kQwen2: return "qwen2";
    case image::Arch::kPhi: return "phi";
    case image::Arch::kHymba: return "hymba";
  }
  return "?";
}

std::string Hex32(uint32_t v) {
  char text[11];
  std::snprintf(text, sizeof text, "0x%08x", v);
  return text;
}

// Bits per outlier value: the split scheme's code width, 16 for exact fp16
// outliers, 0 without.
uint32_t OutlierValueBits(const image::TensorEntry& t) {
  if (t.scheme == static_cast<uint8_t>(image::Scheme::kSplit)) return t.outlier_bits;
  return t.outlier_count > 0 ? 16u : 0u;
}

}  // namespace

const char* QuantizerName(image::Quantizer quantizer) {
  switch (quantizer) {
    case image::Quantizer::kF32: return "f32";
    case image::Quantizer::kFp16: return "fp16";
    case image::Quantizer::kRtn: return "rtn";
    case image::Quantizer::kQmc: return "qmc";
    case image::Quantizer::kMxInt4: return "mxint4";
    case image::Quantizer::kGptq: return "gptq";
    case image::Quantizer::kAwq: return "awq";
  }
  return "?";
}

const char* SchemeName(image::Scheme scheme) {
  switch (scheme) {
    case image::Scheme::kF32: return "f32";
    case image::Scheme::kF16: return "fp16";
    case image::Scheme::kGroupAffine: return "group-affine";
    case image::Scheme::kMxInt4: return "mxint4";
    case image::Scheme::kSplit: return "split";
  }
  return "?";
}

std::string DescribeStatus(const Status& status) {
  std::string text;
  if (status.subject == Subject::kSection) text = "section " + std::to_string(status.index) + ": ";
  if (status.subject == Subject::kTensor) text = "tensor " + std::to_string(status.index) + ": ";
  return text + status.what + " (" + StatusCodeName(status.code) + ")";
}

nlohmann::json SummarizeImage(const image::ImageView& view) {
  using nlohmann::json;
  const image::Header& h = view.header();
  const image::ModelConfig& m = h.model;
  json out;
  // The version of these keys (docs/inspect-json.md): raised when a key
  // changes meaning or goes away, not when one is added.
  out["schema"] = kSummarySchema;
  out["version"] = std::to_string(h.version_major) + "." + std::to_string(h.version_minor);
  out["image_size"] = h.image_size;
  out["quantizer"] = QuantizerName(static_cast<image::Quantizer>(h.quantizer));
  out["outlier_ratio"] = h.outlier_ratio;
  out["preset"] = std::string(h.preset, strnlen(h.preset, sizeof h.preset));
  out["model"] = {{"arch", ArchName(m.arch)},
                  {"dim", m.dim},
                  {"hidden_dim", m.hidden_dim},
                  {"n_layers", m.n_layers},
                  {"n_heads", m.n_heads},
                  {"n_kv_heads", m.n_kv_heads},
                  {"head_dim", m.head_dim},
                  {"vocab_size", m.vocab_size},
                  {"seq_len", m.seq_len},
                  {"rope_theta", m.rope_theta},
                  {"norm_eps", m.norm_eps},
                  {"shared_classifier", (m.flags & image::kModelSharedClassifier) != 0},
                  {"qkv_bias", (m.flags & image::kModelQkvBias) != 0}};

  bool all_crc_ok = true;
  json sections = json::array();
  for (uint32_t i = 0; i < view.section_count(); ++i) {
    const image::SectionEntry& s = view.section(i);
    const bool crc_ok = view.CheckSectionCrc(i).ok();
    all_crc_ok &= crc_ok;
    sections.push_back({{"index", i},
                        {"kind", SectionKindName(s.kind)},
                        {"window", WindowName(s.window)},
                        {"window_offset", s.window_offset},
                        {"file_offset", s.file_offset},
                        {"length", s.length},
                        {"crc32", Hex32(s.crc32)},
                        {"crc_ok", crc_ok}});
  }
  out["sections"] = sections;
  out["crc_ok"] = all_crc_ok;
  out["bytes_by_window"] = {{"sram", view.WindowBytes(image::Window::kSram)},
                            {"mram", view.WindowBytes(image::Window::kMram)},
                            {"reram", view.WindowBytes(image::Window::kReram)},
                            {"dram", view.WindowBytes(image::Window::kDram)}};

  const Status tensors_status = view.ValidateTensors();
  out["tensors_ok"] = tensors_status.ok();
  if (!tensors_status.ok()) {
    out["error"] = DescribeStatus(tensors_status);
    out["tensors"] = json::array();
    return out;
  }
  json tensors = json::array();
  uint64_t matrix_weights = 0, matrix_bytes = 0, outliers = 0, value_bits = 0;
  for (uint32_t i = 0; i < view.tensor_count(); ++i) {
    const image::TensorEntry t = view.tensor(i);
    const uint64_t weights = static_cast<uint64_t>(t.rows) * t.cols;
    const uint64_t bytes = uint64_t{t.data.length} + t.scales.length + t.outliers.length;
    const bool matrix = image::RequiredTensor(m, view.detail(), i).is_matrix;
    if (matrix) {
      matrix_weights += weights;
      matrix_bytes += bytes;
      outliers += t.outlier_count;
      value_bits += ValueBits(t);
    }
    tensors.push_back({{"name", t.name},
                       {"rows", t.rows},
                       {"cols", t.cols},
                       {"matrix", matrix},
                       {"scheme", SchemeName(static_cast<image::Scheme>(t.scheme))},
                       {"bits", t.bits},
                       {"cell_bits", t.cell_bits},
                       {"outlier_bits", OutlierValueBits(t)},
                       {"group_size", t.group_size},
                       {"outliers", t.outlier_count},
                       {"bytes", {{"data", t.data.length}, {"scales", t.scales.length}, {"outliers", t.outliers.length}}},
                       {"bits_per_weight", 8.0 * static_cast<double>(bytes) / static_cast<double>(weights)}});
  }
  out["tensors"] = tensors;
  out["matrix_weights"] = matrix_weights;
  // Counts codes (with row padding), scales, zeros, outlier values, indices and row starts.
  out["bits_per_weight"] = 8.0 * static_cast<double>(matrix_bytes) / static_cast<double>(matrix_weights);
  out["outlier_fraction"] = static_cast<double>(outliers) / static_cast<double>(matrix_weights);
  out["value_bits_per_weight"] = static_cast<double>(value_bits) / static_cast<double>(matrix_weights);
  // The layout of the transformer blocks' matrices (the embedding may differ).
  const image::TensorEntry block = view.tensor(view.FindTensor("blk.0.attn_q.weight"));
  out["inlier_bits"] = block.bits;
  out["outlier_bits"] = OutlierValueBits(block);
  out["cell_bits"] = block.cell_bits;
  return out;
}

std::string FormatSummary(const nlohmann::json& s) {
  std::ostringstream out;
  char line[256];
  const auto& m = s["model"];
  out << "QMC image v" << s["version"].get<std::string>() << ", " << s["image_size"].get<uint64_t>() << " bytes, quantizer "
      << s["quantizer"].get<std::string>();
  if (!s["preset"].get<std::string>().empty()) out << ", preset " << s["preset"].get<std::string>();
  if (s["outlier_ratio"].get<double>() > 0) out << " (outlier ratio " << s["outlier_ratio"].get<double>() << ")";
  out << "\nmodel: " << m["arch"].get<std::string>() << " dim " << m["dim"] << ", hidden " << m["hidden_dim"] << ", "
      << m["n_layers"] << " layers, " << m["n_heads"] << " heads (" << m["n_kv_heads"] << " kv, head_dim "
      << m["head_dim"] << "), vocab " << m["vocab_size"] << ", seq_len " << m["seq_len"]
      << (m["shared_classifier"].get<bool>() ? ", shared classifier" : "") << (m["qkv_bias"].get<bool>() ? ", qkv bias" : "")
      << "\n\nsections:\n";
  std::snprintf(line, sizeof line, "  %-3s %-17s %-6s %12s %12s %12s  %-10s %s\n", "#", "kind", "window", "win offset",
                "file offset", "length", "crc32", "ok");
  out << line;
  for (const auto& sec : s["sections"]) {
    std::snprintf(line, sizeof line, "  %-3u %-17s %-6s %12llu %12llu %12llu  %-10s %s\n", sec["index"].get<unsigned>(),
                  sec["kind"].get<std::string>().c_str(), sec["window"].get<std::string>().c_str(),
                  static_cast<unsigned long long>(sec["window_offset"].get<uint64_t>()),
                  static_cast<unsigned long long>(sec["file_offset"].get<uint64_t>()),
                  static_cast<unsigned long long>(sec["length"].get<uint64_t>()), sec["crc32"].get<std::string>().c_str(),
                  sec["crc_ok"].get<bool>() ? "ok" : "BAD");
    out << line;
  }
  const auto& w = s["bytes_by_window"];
  out << "\nbytes by window: sram " << w["sram"] << ", mram " << w["mram"] << ", reram " << w["reram"] << ", dram "
      << w["dram"] << "\n";
  if (!s["tensors_ok"].get<bool>()) {
    out << "\ntensor directory invalid: " << s["error"].get<std::string>() << "\n";
    return out.str();
  }
  out << "\ntensors:\n";
  std::snprintf(line, sizeof line, "  %-28s %-12s %-13s %4s %4s %4s %5s %9s %8s\n", "name", "shape", "scheme", "bits",
                "cell", "obit", "group", "outliers", "bits/w");
  out << line;
  for (const auto& t : s["tensors"]) {
    const std::string shape = std::to_string(t["rows"].get<uint32_t>()) + "x" + std::to_string(t["cols"].get<uint32_t>());
    std::snprintf(line, sizeof line, "  %-28s %-12s %-13s %4u %4u %4u %5u %9u %8.3f\n", t["name"].get<std::string>().c_str(),
                  shape.c_str(), t["scheme"].get<std::string>().c_str(), t["bits"].get<unsigned>(),
                  t["cell_bits"].get<unsigned>(), t["outlier_bits"].get<unsigned>(), t["group_size"].get<unsigned>(),
                  t["outliers"].get<unsigned>(), t["bits_per_weight"].get<double>());
    out << line;
  }
  std::snprintf(line, sizeof line,
                "\nweight matrices: %llu weights, %.4f bits/weight all-in (%.4f value bits), outlier fraction %.5f\n",
                static_cast<unsigned long long>(s["matrix_weights"].get<uint64_t>()), s["bits_per_weight"].get<double>(),
                s["value_bits_per_weight"].get<double>(), s["outlier_fraction"].get<double>());
  out << line;
  return out.str();
}

}  // namespace qmc::host
