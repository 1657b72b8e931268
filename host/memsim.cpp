#include "host/memsim.h"

#include <algorithm>
#include <map>

#include "common/quant_layout.h"
#include "common/tensor_traffic.h"

namespace qmc::host {
namespace {

using image::Window;
constexpr uint32_t kWindows = image::kWindowCount;

double ElementBytes(KvFormat f) { return f == KvFormat::kF32 ? 4 : f == KvFormat::kFp16 ? 2 : 1; }
double RowBytes(uint32_t dim, KvFormat f) { return dim * ElementBytes(f) + (f == KvFormat::kInt8 ? 4 : 0); }
// The recurrent state keeps f32 with an f32 cache, else 16-bit values (assumption).
double StateElementBytes(KvFormat f) { return f == KvFormat::kF32 ? 4 : 2; }

// Positions a layer attends to from cache position `pos` (prefix tokens included).
uint64_t Attended(const AttentionLayer& a, uint64_t pos, uint32_t prefix) {
  if (a.window == 0) return pos + 1;
  const uint64_t recent = std::min<uint64_t>(pos + 1, uint64_t{a.window} + 1);
  const uint64_t older_prefix = pos > a.window ? std::min<uint64_t>(prefix, pos - a.window) : 0;
  return recent + older_prefix;
}

// One tensor access's bytes, by window.
struct Access {
  std::array<double, kWindows> bytes{};
  double Total() const { return bytes[0] + bytes[1] + bytes[2] + bytes[3]; }
};

void AddBlobs(Access& a, const LaidTensor& t, const BlobTraffic& b) {
  a.bytes[static_cast<uint32_t>(t.data_window)] += static_cast<double>(b.data);
  a.bytes[static_cast<uint32_t>(t.scales_window)] += static_cast<double>(b.scales);
  a.bytes[static_cast<uint32_t>(t.outliers_window)] += static_cast<double>(b.outliers);
}

// Value bits of a matrix by window: codes where its data lives, outlier values where its outliers do.
Access ValueAccess(const LaidTensor& t, double fraction) {
  Access a;
  const image::TensorEntry& e = t.entry;
  const uint64_t outlier_bits = e.scheme == static_cast<uint8_t>(image::Scheme::kSplit)
                                    ? uint64_t{e.outlier_count} * e.outlier_bits
                                    : uint64_t{e.outlier_count} * 16u;
  a.bytes[static_cast<uint32_t>(t.data_window)] += fraction * static_cast<double>(ValueBits(e) - outlier_bits) / 8.0;
  a.bytes[static_cast<uint32_t>(t.outliers_window)] += fraction * static_cast<double>(outlier_bits) / 8.0;
  return a;
}

// The tensor accesses of one decode step, as the engine makes them.
std::vector<Access> WeightAccesses(const ModelLayout& layout, Accounting accounting) {
  std::vector<Access> out;
  for (const LaidTensor& t : layout.tensors) {
    const image::TensorEntry& e = t.entry;
    const bool tied = layout.shape.tied_classifier;
    if (accounting == Accounting::kPaper) {
      if (!t.shape.spec.is_matrix) continue;
      // Every matrix once; an untied embedding is one row.
      const double fraction = t.shape.use == TensorUse::kEmbedding && !tied ? 1.0 / e.rows : 1.0;
      out.push_back(ValueAccess(t, fraction));
      continue;
    }
    switch (t.shape.use) {
      case TensorUse::kPrefix:
        break;
      case TensorUse::kEmbedding: {
        Access row;
        row.bytes[static_cast<uint32_t>(t.data_window)] += t.row_data;
        row.bytes[static_cast<uint32_t>(t.scales_window)] += t.row_scales;
        row.bytes[static_cast<uint32_t>(t.outliers_window)] += t.row_outliers;
        out.push_back(row);
        if (!tied) break;
        [[fallthrough]];  // the classifier: the whole matrix again
      }
      case TensorUse::kMatrix:
      case TensorUse::kVector: {
        Access whole;
        AddBlobs(whole, t, RowBlobTraffic(e, 0, e.rows, 0, e.outlier_count));
        out.push_back(whole);
        break;
      }
    }
  }
  return out;
}

double CellsOf(double bits, uint32_t mode, Accounting accounting) {
  if (mode <= 1) return bits;
  // Paper: value bits fill cells exactly. All-in: a 32-bit bus word holds 32 / mode cells.
  if (accounting == Accounting::kPaper) return bits / mode;
  return bits / 32.0 * quant::CellsPerWord(mode);
}

Figures Compute(const ModelLayout& layout, const BoardProfile& board, Accounting accounting, const StateTraffic& state) {
  Figures f;
  f.accounting = accounting;
  const double n = static_cast<double>(layout.matrix_weights);
  const bool all_in = accounting == Accounting::kAllIn;

  // The mode each window's data takes in its memory.
  std::array<uint32_t, kWindows> mode{};
  for (uint32_t w = 1; w < kWindows; ++w) {
    const Memory& m = board.memories.at(board.window_memory[w]);
    mode[w] = m.Mode(layout.window_cell_bits[w], board.name);
    f.window_memory[w] = m.name + (m.cell_bits.size() > 1 ? " (" + std::to_string(mode[w]) + "-bit cells)" : "");
  }

  std::vector<MemoryFigures> mem(board.memories.size());
  for (size_t i = 0; i < mem.size(); ++i) {
    mem[i].name = board.memories[i].name;
    mem[i].placement = board.memories[i].placement;
    mem[i].storage = static_cast<int>(i) == board.storage;
  }

  // Stored bits, cells and area, by window and by memory.
  double image_bits = 0;
  for (uint32_t w = 1; w < kWindows; ++w) {
    double bits = all_in ? 8.0 * static_cast<double>(layout.window_bytes[w]) : static_cast<double>(layout.value_bits[w]);
    double cells = CellsOf(bits, mode[w], accounting);
    image_bits += bits;
    if (all_in && w == static_cast<uint32_t>(Window::kDram)) {  // the KV cache and state live beside the image's DRAM bytes
      bits += 8.0 * static_cast<double>(state.stored);
      cells += 8.0 * static_cast<double>(state.stored) / mode[w];
    }
    f.bits_per_weight[w] = bits / n;
    f.cells_per_weight[w] = cells / n;
    f.bits_per_weight_total += bits / n;
    f.cells_per_weight_total += cells / n;
    const Memory& m = board.memories.at(board.window_memory[w]);
    MemoryFigures& mf = mem.at(board.window_memory[w]);
    mf.stored_bits += bits;
    mf.cells += cells;
    mf.area_mm2 += bits / (m.density_mbit_per_mm2(mode[w]) * 1048576.0);
    mf.mode = std::max(mf.mode, mode[w]);
  }
  f.cells_per_weight_with_storage = f.cells_per_weight_total;
  if (board.storage >= 0) {
    const Memory& m = board.memories.at(board.storage);
    MemoryFigures& mf = mem.at(board.storage);
    const uint32_t storage_mode = m.cell_bits.front();
    mf.stored_bits += image_bits;
    mf.cells += CellsOf(image_bits, storage_mode, accounting);
    mf.area_mm2 += image_bits / (m.density_mbit_per_mm2(storage_mode) * 1048576.0);
    f.cells_per_weight_with_storage += CellsOf(image_bits, storage_mode, accounting) / n;
  }

  // Per token: each access's bytes go to its windows' memories.
  std::vector<bool> serves_weights(board.memories.size(), false);
  for (const Access& a : WeightAccesses(layout, accounting)) {
    std::map<int, double> busy;  // memory -> its time for this access
    for (uint32_t w = 1; w < kWindows; ++w) {
      if (a.bytes[w] <= 0) continue;
      f.bytes_per_token[w] += a.bytes[w];
      const int i = board.window_memory[w];
      const Memory& m = board.memories[i];
      mem[i].read_bytes += a.bytes[w];
      mem[i].energy_j += a.bytes[w] * 8.0 * (m.read_energy_pj_per_bit(mode[w]) + m.link.energy_pj_per_bit) * 1e-12;
      busy[i] += a.bytes[w] / m.BytesPerSecond(mode[w]);
      serves_weights[i] = true;
    }
    double slowest = 0;
    for (auto& [i, seconds] : busy) {
      const Memory& m = board.memories[i];
      seconds += (m.access_latency_ns + m.queue_latency_ns) * 1e-9;
      mem[i].busy_s += seconds;
      slowest = std::max(slowest, seconds);
    }
    // Outliers and inliers fetched concurrently, merged across clock domains.
    f.latency_s += slowest + (busy.size() > 1 ? board.SyncSeconds() : 0.0);
  }
  // The KV cache and state: DRAM, concurrent with the weights unless the same memory serves both.
  if (all_in && (state.read > 0 || state.written > 0)) {
    const uint32_t w = static_cast<uint32_t>(Window::kDram);
    const int i = board.window_memory[w];
    const Memory& m = board.memories[i];
    f.bytes_per_token[w] += state.read;
    f.written_per_token += state.written;
    mem[i].read_bytes += state.read;
    mem[i].written_bytes += state.written;
    mem[i].energy_j += (state.read * (m.read_energy_pj_per_bit(mode[w]) + m.link.energy_pj_per_bit) +
                        state.written * (m.write_energy_pj_per_bit(mode[w]) + m.link.energy_pj_per_bit)) *
                       8.0 * 1e-12;
    const double seconds = (m.access_latency_ns + m.queue_latency_ns) * 1e-9 +
                           (state.read + state.written) / m.BytesPerSecond(mode[w]);
    mem[i].busy_s += seconds;
    f.latency_s = serves_weights[i] ? f.latency_s + seconds : std::max(f.latency_s, seconds);
  }

  for (size_t i = 0; i < mem.size(); ++i) {
    f.energy_j += mem[i].energy_j;
    f.bytes_per_token_total += mem[i].read_bytes + mem[i].written_bytes;
    if (board.memories[i].OffChip()) f.offchip_bytes_per_token += mem[i].read_bytes + mem[i].written_bytes;
    if (!mem[i].storage) f.area_mm2 += mem[i].area_mm2;
  }
  f.offchip_share = f.bytes_per_token_total > 0 ? f.offchip_bytes_per_token / f.bytes_per_token_total : 0;
  // Storage last, and memories holding nothing for this model left out.
  for (size_t i = 0; i < mem.size(); ++i) {
    if (!mem[i].storage && mem[i].stored_bits > 0) f.memories.push_back(mem[i]);
  }
  if (board.storage >= 0) f.memories.push_back(mem[board.storage]);
  return f;
}

}  // namespace

StateTraffic KvTraffic(const ModelShape& shape, const Workload& workload) {
  StateTraffic t;
  const double state_bytes = static_cast<double>(shape.state_elements) * StateElementBytes(workload.kv);
  const uint32_t first = workload.mode == Workload::kContext ? workload.context - 1 : 0;
  const uint32_t count = workload.Positions();
  for (uint32_t k = 0; k < count; ++k) {
    const uint64_t pos = uint64_t{shape.prefix_tokens} + first + k;
    for (const AttentionLayer& a : shape.attention) {
      const double row = a.kv_heads * (RowBytes(a.key_dim, workload.kv) + RowBytes(a.value_dim, workload.kv));
      t.read += static_cast<double>(Attended(a, pos, shape.prefix_tokens)) * row;
      if (a.owns_cache) t.written += row;
    }
    t.read += state_bytes;
    t.written += state_bytes;
  }
  if (count > 0) {
    t.read /= count;
    t.written /= count;
  }
  const uint64_t last = uint64_t{shape.prefix_tokens} + workload.LastPosition();
  for (const AttentionLayer& a : shape.attention) {
    if (!a.owns_cache) continue;
    const uint64_t held = a.window == 0 ? last + 1 : std::min<uint64_t>(last + 1, uint64_t{shape.prefix_tokens} + a.window + 1);
    t.stored += static_cast<uint64_t>(static_cast<double>(held) * a.kv_heads *
                                      (RowBytes(a.key_dim, workload.kv) + RowBytes(a.value_dim, workload.kv)));
  }
  t.stored += static_cast<uint64_t>(state_bytes);
  return t;
}

SimResult Simulate(const ModelLayout& layout, const BoardProfile& board, const Workload& workload) {
  SimResult r;
  r.scheme = layout.scheme;
  r.board = board.name;
  const StateTraffic state = KvTraffic(layout.shape, workload);
  r.paper = Compute(layout, board, Accounting::kPaper, state);
  r.all_in = Compute(layout, board, Accounting::kAllIn, state);
  return r;
}

}  // namespace qmc::host
