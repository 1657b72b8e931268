#include "host/memsim_report.h"

#include <cmath>
#include <cstdio>
#include <sstream>

namespace qmc::host {
namespace {

using nlohmann::json;

const char* const kWindowNames[] = {"sram", "mram", "reram", "dram"};

double Ratio(double reference, double subject) { return subject > 0 ? reference / subject : 0.0; }

std::string Bytes(double b) {
  char text[32];
  const char* units[] = {"B", "kB", "MB", "GB", "TB"};
  int u = 0;
  while (std::fabs(b) >= 1000 && u < 4) b /= 1000, ++u;
  std::snprintf(text, sizeof text, u == 0 ? "%.0f %s" : "%.2f %s", b, units[u]);
  return text;
}

std::string Seconds(double s) {
  char text[32];
  if (s >= 1) std::snprintf(text, sizeof text, "%.3f s", s);
  else if (s >= 1e-3) std::snprintf(text, sizeof text, "%.3f ms", s * 1e3);
  else std::snprintf(text, sizeof text, "%.3f us", s * 1e6);
  return text;
}

std::string Joules(double j) {
  char text[32];
  if (j >= 1) std::snprintf(text, sizeof text, "%.3f J", j);
  else if (j >= 1e-3) std::snprintf(text, sizeof text, "%.3f mJ", j * 1e3);
  else std::snprintf(text, sizeof text, "%.3f uJ", j * 1e6);
  return text;
}

std::string Grouped(uint64_t v) {
  std::string digits = std::to_string(v), out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

json FiguresJson(const Figures& f) {
  json windows = json::object();
  for (uint32_t w = 1; w < image::kWindowCount; ++w) {
    windows[kWindowNames[w]] = {{"bits_per_weight", f.bits_per_weight[w]},
                                {"cells_per_weight", f.cells_per_weight[w]},
                                {"read_bytes_per_token", f.bytes_per_token[w]}};
  }
  windows["dram"]["written_bytes_per_token"] = f.written_per_token;
  json memories = json::array();
  for (const MemoryFigures& m : f.memories) {
    memories.push_back({{"name", m.name},
                        {"placement", m.placement},
                        {"storage_copy", m.storage},
                        {"cell_bits", m.mode},
                        {"stored_bytes", m.stored_bits / 8},
                        {"cells", m.cells},
                        {"area_mm2", m.area_mm2},
                        {"read_bytes_per_token", m.read_bytes},
                        {"written_bytes_per_token", m.written_bytes},
                        {"energy_j_per_token", m.energy_j},
                        {"busy_s_per_token", m.busy_s}});
  }
  return {{"windows", windows},
          {"bits_per_weight", f.bits_per_weight_total},
          {"cells_per_weight", f.cells_per_weight_total},
          {"cells_per_weight_with_storage", f.cells_per_weight_with_storage},
          {"bytes_per_token", f.bytes_per_token_total},
          {"offchip_bytes_per_token", f.offchip_bytes_per_token},
          {"offchip_share", f.offchip_share},
          {"energy_j_per_token", f.energy_j},
          {"latency_s_per_token", f.latency_s},
          {"area_mm2", f.area_mm2},
          {"memories", memories}};
}

json RatiosJson(const Ratios& r) {
  return {{"memory", r.memory},       {"cells", r.cells},   {"cells_with_storage", r.cells_with_storage},
          {"transfers", r.transfers}, {"energy", r.energy}, {"latency", r.latency},
          {"area", r.area}};
}

const char* AccountingName(Accounting a) { return a == Accounting::kPaper ? "paper" : "all_in"; }

}  // namespace

Ratios RatiosAgainst(const Figures& ref, const Figures& s) {
  return {Ratio(ref.bits_per_weight_total, s.bits_per_weight_total),
          Ratio(ref.cells_per_weight_total, s.cells_per_weight_total),
          Ratio(ref.cells_per_weight_with_storage, s.cells_per_weight_with_storage),
          Ratio(ref.offchip_bytes_per_token, s.offchip_bytes_per_token),
          Ratio(ref.energy_j, s.energy_j),
          Ratio(ref.latency_s, s.latency_s),
          Ratio(ref.area_mm2, s.area_mm2)};
}

std::string DescribeWorkload(const Workload& w, const ModelShape& shape) {
  const char* kv = w.kv == KvFormat::kF32 ? "f32" : w.kv == KvFormat::kFp16 ? "fp16" : "int8";
  std::string text = w.mode == Workload::kContext
                         ? "one token decoded at context " + std::to_string(w.context)
                         : "a run of " + std::to_string(w.prompt) + " prompt + " + std::to_string(w.generate) +
                               " generated tokens, averaged over its " + std::to_string(w.Positions()) +
                               " forward passes";
  text += std::string(", KV cache ") + kv;
  if (shape.prefix_tokens > 0) text += ", " + std::to_string(shape.prefix_tokens) + " meta tokens cached ahead";
  if (w.LastPosition() + 1 > shape.max_positions) {
    text += " (beyond the model's " + std::to_string(shape.max_positions) + " positions)";
  }
  return text;
}

json ReportJson(const MemsimReport& r) {
  json out;
  const ModelShape& s = *r.shape;
  out["model"] = {{"source", s.source},
                  {"family", s.family},
                  {"matrix_weights", r.matrix_weights},
                  {"tied_classifier", s.tied_classifier},
                  {"max_positions", s.max_positions}};
  const Workload& w = r.workload;
  out["workload"] = {{"mode", w.mode == Workload::kContext ? "context" : "run"},
                     {"context", w.context},
                     {"prompt", w.prompt},
                     {"generate", w.generate},
                     {"kv", w.kv == KvFormat::kF32 ? "f32" : w.kv == KvFormat::kFp16 ? "fp16" : "int8"},
                     {"description", DescribeWorkload(w, s)}};
  json refs = json::array();
  for (const Reference& ref : r.references) {
    refs.push_back({{"scheme", ref.scheme},
                    {"board", ref.board},
                    {"paper", FiguresJson(ref.result.paper)},
                    {"all_in", FiguresJson(ref.result.all_in)}});
  }
  out["references"] = refs;
  json results = json::array();
  for (const ReportRow& row : r.results) {
    json entry = {{"scheme", row.scheme}, {"board", row.board}};
    if (row.layout != nullptr) {
      json bytes = json::object();
      for (uint32_t win = 1; win < image::kWindowCount; ++win) bytes[kWindowNames[win]] = row.layout->window_bytes[win];
      entry["bytes_by_window"] = bytes;
      entry["matrix_bits_per_weight"] = row.layout->BitsPerWeight();
      entry["value_bits_per_weight"] = row.layout->ValueBitsPerWeight();
      entry["outlier_fraction"] =
          static_cast<double>(row.layout->outliers) / static_cast<double>(row.layout->matrix_weights);
    }
    for (Accounting a : {Accounting::kPaper, Accounting::kAllIn}) {
      json figures = FiguresJson(row.result.Of(a));
      json ratios = json::object();
      for (const Reference& ref : r.references) {
        ratios[ref.Label()] = RatiosJson(RatiosAgainst(ref.result.Of(a), row.result.Of(a)));
      }
      figures["ratios"] = ratios;
      entry[AccountingName(a)] = figures;
    }
    results.push_back(entry);
  }
  out["results"] = results;
  if (!r.searches.empty()) {
    json searches = json::array();
    for (const SearchChoice& c : r.searches) {
      searches.push_back({{"scheme", c.scheme},
                          {"board", c.board},
                          {"mram_memory", c.mram_memory},
                          {"reram_memory", c.reram_memory},
                          {"mram_channels", c.mram_channels},
                          {"reram_arrays", c.reram_arrays},
                          {"power_w", c.power_w},
                          {"power_budget_w", c.budget_w},
                          {"latency_s_per_token", c.latency_s},
                          {"evaluated", c.evaluated},
                          {"within_budget", c.within_budget}});
    }
    out["design_search"] = searches;
  }
  return out;
}

std::string ReportText(const MemsimReport& r) {
  std::ostringstream out;
  char line[512];
  const ModelShape& s = *r.shape;
  out << "model: " << s.source << " (" << s.family << "), " << Grouped(r.matrix_weights)
      << " weights in matrices" << (s.tied_classifier ? " (the tied embedding counted once)" : "") << "\n";
  out << "workload: " << DescribeWorkload(r.workload, s) << "\n";
  out << "accountings: paper = stored value bits of weight matrices only, each matrix read once per token; "
         "all-in = every stored byte, the bytes a decode step reads, the KV cache\n";
  for (const ReportRow& row : r.results) {
    out << "\n== " << row.scheme << " on " << row.board;
    if (!row.board_description.empty()) out << ": " << row.board_description;
    out << "\n";
    std::snprintf(line, sizeof line, "  %-7s %-26s %9s %9s %12s   %9s %9s %12s\n", "", "", "paper", "", "", "all-in", "",
                  "");
    out << line;
    std::snprintf(line, sizeof line, "  %-7s %-26s %9s %9s %12s   %9s %9s %12s\n", "window", "memory", "bits/w",
                  "cells/w", "read/token", "bits/w", "cells/w", "read/token");
    out << line;
    const Figures& p = row.result.paper;
    const Figures& a = row.result.all_in;
    for (uint32_t w = 1; w < image::kWindowCount; ++w) {
      const std::string& memory = a.window_memory[w];
      std::snprintf(line, sizeof line, "  %-7s %-26s %9.4f %9.4f %12s   %9.4f %9.4f %12s\n", kWindowNames[w],
                    memory.c_str(), p.bits_per_weight[w], p.cells_per_weight[w], Bytes(p.bytes_per_token[w]).c_str(),
                    a.bits_per_weight[w], a.cells_per_weight[w], Bytes(a.bytes_per_token[w]).c_str());
      out << line;
    }
    std::snprintf(line, sizeof line, "  %-34s %9.4f %9.4f %12s   %9.4f %9.4f %12s\n", "total (read + written)",
                  p.bits_per_weight_total, p.cells_per_weight_total, Bytes(p.bytes_per_token_total).c_str(),
                  a.bits_per_weight_total, a.cells_per_weight_total, Bytes(a.bytes_per_token_total).c_str());
    out << line;
    if (a.written_per_token > 0) out << "  (all-in: DRAM also written " << Bytes(a.written_per_token) << " per token: KV cache and state)\n";
    std::snprintf(line, sizeof line, "  %-34s %19s %12s   %19s %12s\n", "off-chip bytes/token, share", Bytes(p.offchip_bytes_per_token).c_str(),
                  (std::to_string(static_cast<int>(std::lround(p.offchip_share * 100))) + " %").c_str(),
                  Bytes(a.offchip_bytes_per_token).c_str(),
                  (std::to_string(static_cast<int>(std::lround(a.offchip_share * 100))) + " %").c_str());
    out << line;
    std::snprintf(line, sizeof line, "  %-34s %32s   %32s\n", "energy per token", Joules(p.energy_j).c_str(),
                  Joules(a.energy_j).c_str());
    out << line;
    std::snprintf(line, sizeof line, "  %-34s %32s   %32s\n", "latency per token", Seconds(p.latency_s).c_str(),
                  Seconds(a.latency_s).c_str());
    out << line;
    out << "  memories (paper | all-in): \n";
    for (size_t i = 0; i < a.memories.size(); ++i) {
      const MemoryFigures& ma = a.memories[i];
      const MemoryFigures* mp = nullptr;
      for (const MemoryFigures& m : p.memories) {
        if (m.name == ma.name) mp = &m;
      }
      std::snprintf(line, sizeof line, "    %-8s %-10s %db/cell  holds %10s | %10s  area %8.2f | %8.2f mm2  %s\n",
                    ma.name.c_str(), ma.placement.c_str(), static_cast<int>(ma.mode),
                    Bytes(mp ? mp->stored_bits / 8 : 0).c_str(), Bytes(ma.stored_bits / 8).c_str(),
                    mp ? mp->area_mm2 : 0.0, ma.area_mm2, ma.storage ? "(storage copy, not in the area total)" : "");
      out << line;
    }
    std::snprintf(line, sizeof line, "  %-34s %19.2f mm2 %31.2f mm2\n", "area (every memory but storage)", p.area_mm2,
                  a.area_mm2);
    out << line;
    std::snprintf(line, sizeof line, "\n  %-30s %7s %7s %9s %9s %7s %8s %7s\n", "ratio: reference / this", "memory",
                  "cells", "+storage", "off-chip", "energy", "latency", "area");
    out << line;
    for (Accounting acc : {Accounting::kPaper, Accounting::kAllIn}) {
      bool first = true;
      for (const Reference& ref : r.references) {
        const Ratios x = RatiosAgainst(ref.result.Of(acc), row.result.Of(acc));
        std::snprintf(line, sizeof line, "  %-7s %-22s %7.2f %7.2f %9.2f %9.2f %7.2f %8.2f %7.2f\n",
                      first ? (acc == Accounting::kPaper ? "paper" : "all-in") : "", ref.Label().c_str(), x.memory,
                      x.cells, x.cells_with_storage, x.transfers, x.energy, x.latency, x.area);
        out << line;
        first = false;
      }
    }
  }
  out << "\nreferences (paper | all-in):\n";
  for (const Reference& ref : r.references) {
    const Figures& p = ref.result.paper;
    const Figures& a = ref.result.all_in;
    std::snprintf(line, sizeof line,
                  "  %-22s bits/w %6.3f | %6.3f  off-chip/token %10s | %10s  energy %10s | %10s  latency %10s | %10s\n",
                  ref.Label().c_str(), p.bits_per_weight_total, a.bits_per_weight_total,
                  Bytes(p.offchip_bytes_per_token).c_str(), Bytes(a.offchip_bytes_per_token).c_str(),
                  Joules(p.energy_j).c_str(), Joules(a.energy_j).c_str(), Seconds(p.latency_s).c_str(),
                  Seconds(a.latency_s).c_str());
    out << line;
  }
  for (const SearchChoice& c : r.searches) {
    std::snprintf(line, sizeof line,
                  "\ndesign search (Eq. 4) for %s on %s: %u %s channels x %u %s arrays, %.2f W of a %.2f W budget, "
                  "latency %s per token (all-in; %llu of %llu configurations within the budget)\n",
                  c.scheme.c_str(), c.board.c_str(), c.mram_channels, c.mram_memory.c_str(), c.reram_arrays,
                  c.reram_memory.c_str(), c.power_w, c.budget_w, Seconds(c.latency_s).c_str(),
                  static_cast<unsigned long long>(c.within_budget), static_cast<unsigned long long>(c.evaluated));
    out << line;
  }
  return out.str();
}

std::string ReportCsv(const MemsimReport& r) {
  std::ostringstream out;
  out << "scheme,board,role,accounting";
  for (const char* w : {"mram", "reram", "dram"}) out << ",bits_per_weight_" << w;
  for (const char* w : {"mram", "reram", "dram"}) out << ",cells_per_weight_" << w;
  for (const char* w : {"mram", "reram", "dram"}) out << ",read_bytes_per_token_" << w;
  out << ",written_bytes_per_token_dram,bits_per_weight,cells_per_weight,cells_per_weight_with_storage,bytes_per_token,"
         "offchip_bytes_per_token,offchip_share,energy_j_per_token,latency_s_per_token,area_mm2";
  for (const Reference& ref : r.references) {
    for (const char* q : {"memory", "cells", "cells_with_storage", "transfers", "energy", "latency", "area"}) {
      out << ",x_" << q << "_vs_" << ref.scheme << "@" << ref.board;
    }
  }
  out << "\n";
  auto row = [&](const std::string& scheme, const std::string& board, const char* role, const SimResult& result) {
    for (Accounting a : {Accounting::kPaper, Accounting::kAllIn}) {
      const Figures& f = result.Of(a);
      out << scheme << "," << board << "," << role << "," << AccountingName(a);
      char v[64];
      auto put = [&](double x) {
        std::snprintf(v, sizeof v, ",%.9g", x);
        out << v;
      };
      for (uint32_t w = 1; w < 4; ++w) put(f.bits_per_weight[w]);
      for (uint32_t w = 1; w < 4; ++w) put(f.cells_per_weight[w]);
      for (uint32_t w = 1; w < 4; ++w) put(f.bytes_per_token[w]);
      for (double x : {f.written_per_token, f.bits_per_weight_total, f.cells_per_weight_total,
                       f.cells_per_weight_with_storage, f.bytes_per_token_total, f.offchip_bytes_per_token,
                       f.offchip_share, f.energy_j, f.latency_s, f.area_mm2}) {
        put(x);
      }
      for (const Reference& ref : r.references) {
        const Ratios x = RatiosAgainst(ref.result.Of(a), f);
        for (double q : {x.memory, x.cells, x.cells_with_storage, x.transfers, x.energy, x.latency, x.area}) put(q);
      }
      out << "\n";
    }
  };
  for (const ReportRow& rr : r.results) row(rr.scheme, rr.board, "subject", rr.result);
  for (const Reference& ref : r.references) row(ref.scheme, ref.board, "reference", ref.result);
  return out.str();
}

}  // namespace qmc::host
