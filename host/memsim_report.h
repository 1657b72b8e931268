// `qmc memsim`'s output: the results of host/memsim.h for a model on boards,
// with the ratios against the references, as a terminal table, JSON or CSV.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "host/design_search.h"
#include "host/memsim.h"

namespace qmc::host {

struct Reference {
  std::string scheme;  // fp16, int4
  std::string board;
  SimResult result;
  std::string Label() const { return scheme + " @ " + board; }
};

struct ReportRow {
  std::string scheme;
  std::string board;
  std::string board_description;
  SimResult result;
  const ModelLayout* layout = nullptr;
};

struct MemsimReport {
  const ModelShape* shape = nullptr;
  uint64_t matrix_weights = 0;
  Workload workload;
  std::vector<Reference> references;
  std::vector<ReportRow> results;
  std::vector<SearchChoice> searches;
};

// reference / this for each figure compared.
struct Ratios {
  double memory, cells, cells_with_storage, transfers, energy, latency, area;
};
Ratios RatiosAgainst(const Figures& reference, const Figures& subject);

std::string DescribeWorkload(const Workload& workload, const ModelShape& shape);

nlohmann::json ReportJson(const MemsimReport& report);
std::string ReportText(const MemsimReport& report);
std::string ReportCsv(const MemsimReport& report);

}  // namespace qmc::host
