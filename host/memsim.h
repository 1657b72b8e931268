// The memory system, simulated: a model's layout (host/model_layout.h) on a
// board (host/board_profile.h) running a workload gives, per token, the
// bytes each window and memory reads and writes, the energy, the latency by
// the QMC paper's model, and the capacity, cells and area each memory needs.
// docs/memory-model.md is the model, term by term.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "common/engine.h"
#include "host/board_profile.h"
#include "host/model_layout.h"

namespace qmc::host {

// What the model runs. kContext: one decoded token attending to `context`
// positions (its own included: position context - 1). kRun: `prompt` +
// `generate` forward passes from position 0, figures averaged over them
// (what qmc-fw-emu's stats line reports).
struct Workload {
  enum Mode { kContext, kRun } mode = kContext;
  uint32_t context = 512;
  uint32_t prompt = 0;
  uint32_t generate = 0;
  KvFormat kv = KvFormat::kFp16;

  uint32_t Positions() const { return mode == kContext ? 1 : prompt + generate; }
  uint32_t LastPosition() const { return mode == kContext ? context - 1 : prompt + generate - 1; }
};

// Bytes per token the KV cache and recurrent state add in DRAM, the same
// definition as common/engine.cpp's counts for Llama-family models.
struct StateTraffic {
  double read = 0;
  double written = 0;
  uint64_t stored = 0;  // the cache and state at the workload's last position
};
StateTraffic KvTraffic(const ModelShape& shape, const Workload& workload);

// The paper's accounting: stored value bits only (codes and outlier values
// of weight matrices), each matrix read once per token, no KV cache. All-in:
// every stored byte (scales, positions, row tables, norms, directory,
// tokenizer, padding), the bytes a decode step reads by
// common/tensor_traffic.h (one embedding row), and the KV cache.
enum class Accounting { kPaper, kAllIn };

struct MemoryFigures {
  std::string name;
  std::string placement;
  uint32_t mode = 1;          // bits per cell the data takes there (the ReRAM window's codes' mode)
  double stored_bits = 0;     // held for the model (all-in: with the KV cache in DRAM)
  double cells = 0;
  double area_mm2 = 0;
  double read_bytes = 0;      // per token
  double written_bytes = 0;   // per token
  double energy_j = 0;        // per token: reads and writes x (device + link) pJ/bit
  double busy_s = 0;          // per token: sum of its t_access + s/b + t_queue
  bool storage = false;       // the board's storage copy (Flash): holds, never read per token
};

struct Figures {
  Accounting accounting;
  // By window (index image::Window): per weight of the N in matrices.
  std::array<double, image::kWindowCount> bits_per_weight{};
  std::array<double, image::kWindowCount> cells_per_weight{};
  std::array<double, image::kWindowCount> bytes_per_token{};   // read
  std::array<std::string, image::kWindowCount> window_memory{};  // "reram (3-bit cells)"
  double written_per_token = 0;                                   // DRAM: KV and state writes
  double bits_per_weight_total = 0;                               // the windows' (data volume)
  double cells_per_weight_total = 0;
  double cells_per_weight_with_storage = 0;
  double bytes_per_token_total = 0;      // read + written
  double offchip_bytes_per_token = 0;    // read + written at off-chip memories
  double offchip_share = 0;
  double energy_j = 0;
  double latency_s = 0;
  double area_mm2 = 0;                   // every memory but the storage copy
  std::vector<MemoryFigures> memories;   // the board's, storage last
};

struct SimResult {
  std::string scheme;
  std::string board;
  Figures paper;
  Figures all_in;
  const Figures& Of(Accounting a) const { return a == Accounting::kPaper ? paper : all_in; }
};

SimResult Simulate(const ModelLayout& layout, const BoardProfile& board, const Workload& workload);


}  // namespace qmc::host
