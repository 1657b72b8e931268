#include "host/memsim_plot.h"

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "host/atomic_file.h"
#include "host/model_layout.h"
#include "host/pack_presets.h"

namespace qmc::host {
namespace {

namespace fs = std::filesystem;

struct Config {
  std::string label;
  QuantOptions options;
  const BoardProfile* board;
};

QuantOptions Scheme(image::Quantizer q, uint32_t bits, uint32_t cell_bits) {
  QuantOptions o;
  o.quantizer = q;
  o.bits = bits;
  o.cell_bits = cell_bits;
  return o;
}

std::string Quoted(const std::string& s) { return "\"" + s + "\""; }

void WriteFile(const fs::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
  if (!out) throw IoError(path.string() + ": cannot write");
}

std::string DescribeWorkloadShort(const Workload& w) {
  return w.mode == Workload::kContext ? "context " + std::to_string(w.context)
                                      : std::to_string(w.prompt) + " + " + std::to_string(w.generate) + " tokens";
}

std::string Terminals(const std::string& stem, const std::string& plot) {
  // The same plot to PNG and SVG.
  return "set terminal pngcairo size 960,540 font 'Sans,11'\nset output '" + stem + ".png'\n" + plot +
         "set terminal svg size 960,540 font 'Sans,11'\nset output '" + stem + ".svg'\nreplot\nunset output\n";
}

}  // namespace

std::vector<std::string> WritePlots(const std::string& dir, const PlotInputs& in) {
  fs::create_directories(dir);
  const fs::path root(dir);
  const ModelShape& shape = *in.shape;
  // The model's name: a config's directory, else the file's.
  const fs::path source(shape.source);
  const std::string model = source.filename() == "config.json" ? source.parent_path().filename().string()
                                                               : source.filename().string();

  const Config configs[] = {
      {"FP16", Scheme(image::Quantizer::kFp16, 3, 3), in.baseline},
      {"INT4", Scheme(image::Quantizer::kRtn, 4, 2), in.baseline},
      {"MXINT4", Scheme(image::Quantizer::kMxInt4, 4, 2), in.baseline},
      {"eMEMs-INT4", Scheme(image::Quantizer::kRtn, 4, 2), in.emems},
      {"QMC-3bMLC", FindPreset("paper-3mlc")->options, in.board},
      {"QMC-2bMLC", FindPreset("paper-2mlc")->options, in.board},
  };
  std::vector<SimResult> results;
  for (const Config& c : configs) results.push_back(Simulate(LayOutModel(shape, c.options, c.label), *c.board, in.workload));
  const StateTraffic kv = KvTraffic(shape, in.workload);

  // Fig. 4: normalized energy, latency and capacity per scheme, both accountings.
  for (Accounting a : {Accounting::kPaper, Accounting::kAllIn}) {
    const std::string stem = a == Accounting::kPaper ? "schemes-paper" : "schemes-allin";
    std::ostringstream dat;
    dat << "# scheme board energy latency capacity (each / FP16 on " << in.baseline->name << ")\n";
    const Figures& fp16 = results[0].Of(a);
    for (size_t i = 0; i < results.size(); ++i) {
      const Figures& f = results[i].Of(a);
      dat << Quoted(configs[i].label + "\\n" + configs[i].board->name) << " " << f.energy_j / fp16.energy_j << " "
          << f.latency_s / fp16.latency_s << " " << f.bits_per_weight_total / fp16.bits_per_weight_total << "\n";
    }
    WriteFile(root / (stem + ".dat"), dat.str());
    const std::string title = model + ": energy, latency and capacity per token, normalized to FP16 (" +
                              (a == Accounting::kPaper ? "paper's accounting: value bits" : "all-in, with the KV cache") +
                              ")";
    WriteFile(root / (stem + ".gp"),
              Terminals(stem, "set title " + Quoted(title) +
                                  "\nset style data histograms\nset style histogram clustered gap 1\n"
                                  "set style fill solid 0.85 border -1\nset boxwidth 0.9\nset grid ytics\nset bmargin 4\n"
                                  "set yrange [0:*]\nset ylabel 'relative to FP16 on the baseline'\nset key top right\n"
                                  "plot '" + stem + ".dat' using 2:xtic(1) title 'energy', '' using 3 title 'latency', "
                                  "'' using 4 title 'capacity (bits)'\n"));
  }

  // Fig. 3 right: the rho sweep of the paper's 3-bit-MLC scheme on QMC's board.
  {
    std::ostringstream dat;
    dat << "# rho energy_paper latency_paper energy_allin latency_allin (each / FP16 on " << in.baseline->name << ")\n";
    const Figures& fp16p = results[0].paper;
    const Figures& fp16a = results[0].all_in;
    for (int step = 0; step <= 8; ++step) {
      QuantOptions o = FindPreset("paper-3mlc")->options;
      o.outlier_ratio = 0.1 + 0.05 * step;
      const SimResult r = Simulate(LayOutModel(shape, o, "rho"), *in.board, in.workload);
      char line[160];
      std::snprintf(line, sizeof line, "%.2f %.6g %.6g %.6g %.6g\n", o.outlier_ratio, r.paper.energy_j / fp16p.energy_j,
                    r.paper.latency_s / fp16p.latency_s, r.all_in.energy_j / fp16a.energy_j,
                    r.all_in.latency_s / fp16a.latency_s);
      dat << line;
    }
    WriteFile(root / "rho-sweep.dat", dat.str());
    WriteFile(root / "rho-sweep.gp",
              Terminals("rho-sweep",
                        "set title " + Quoted(model + ": QMC (3-bit MLC) on " + in.board->name +
                                              " across the outlier ratio, normalized to FP16") +
                            "\nset xlabel 'outlier ratio rho'\nset ylabel 'relative to FP16 on the baseline'\n"
                            "set grid\nset key top center\nset xrange [0.08:0.52]\n"
                            "plot 'rho-sweep.dat' using 1:2 with linespoints lw 2 title 'energy (paper)', "
                            "'' using 1:3 with linespoints lw 2 title 'latency (paper)', "
                            "'' using 1:4 with linespoints lw 2 dt 2 title 'energy (all-in)', "
                            "'' using 1:5 with linespoints lw 2 dt 2 title 'latency (all-in)'\n"));
  }

  // Per-window traffic per token (all-in), the KV cache apart.
  {
    std::ostringstream dat;
    dat << "# scheme mram reram dram_weights dram_kv_read dram_written (MB per token)\n";
    for (size_t i = 0; i < results.size(); ++i) {
      const Figures& f = results[i].all_in;
      dat << Quoted(configs[i].label + "\\n" + configs[i].board->name) << " " << f.bytes_per_token[1] / 1e6 << " "
          << f.bytes_per_token[2] / 1e6 << " " << (f.bytes_per_token[3] - kv.read) / 1e6 << " " << kv.read / 1e6 << " "
          << f.written_per_token / 1e6 << "\n";
    }
    WriteFile(root / "traffic.dat", dat.str());
    WriteFile(root / "traffic.gp",
              Terminals("traffic", "set title " + Quoted(model + ": bytes per token by window (all-in; " +
                                                         DescribeWorkloadShort(in.workload) + ")") +
                                       "\nset style data histograms\nset style histogram rowstacked\n"
                                       "set style fill solid 0.85 border -1\nset boxwidth 0.7\nset grid ytics\nset bmargin 4\n"
                                       "set ylabel 'MB per token'\nset yrange [0:*]\nset key top right\n"
                                       "plot 'traffic.dat' using 2:xtic(1) title 'MRAM window', '' using 3 title "
                                       "'ReRAM window', '' using 4 title 'DRAM window: weights', '' using 5 title "
                                       "'DRAM: KV cache, state read', '' using 6 title 'DRAM: written'\n"));
  }

  std::vector<std::string> written;
  for (const char* stem : {"schemes-paper", "schemes-allin", "rho-sweep", "traffic"}) {
    const std::string command = "cd '" + root.string() + "' && gnuplot " + stem + ".gp 2>" + stem + ".log";
    if (std::system(command.c_str()) != 0) {
      throw IoError("gnuplot failed or is missing (see " + (root / (std::string(stem) + ".log")).string() +
                    "); the data and scripts are in " + root.string());
    }
    fs::remove(root / (std::string(stem) + ".log"));
    written.push_back((root / (std::string(stem) + ".png")).string());
    written.push_back((root / (std::string(stem) + ".svg")).string());
  }
  return written;
}

}  // namespace qmc::host
