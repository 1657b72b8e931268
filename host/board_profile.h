// A board profile: the memories of an SoC and which of them holds each of
// an image's windows, with the parameters `qmc memsim` turns bytes into
// energy, latency and area from. One JSON file per board
// (hal/profiles/boards/*.json, compiled into qmc by name); docs/memory-model.md
// is the format and says where every number of the shipped profiles comes from.
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/image_format.h"

namespace qmc::host {

// A parameter that may depend on the cell mode (bits per cell, 1..3): one
// number for every mode, or one per mode the memory has.
struct PerMode {
  std::array<double, 4> value{};  // index: bits per cell
  double operator()(uint32_t cell_bits) const { return value[cell_bits]; }
};

struct Link {
  std::string name;
  double energy_pj_per_bit = 0;
  double bytes_per_s = 0;  // 0: not a limit (gt_s x lanes / 8 when given)
};

struct Memory {
  std::string name;
  std::string technology;
  std::string placement;            // on-chip, on-package, off-chip
  std::vector<uint32_t> cell_bits;  // the modes it has, ascending (1: one bit per cell)
  PerMode read_energy_pj_per_bit;
  PerMode write_energy_pj_per_bit;  // the read energy when not given
  PerMode bandwidth_gib_s;          // per unit (channel, array, device)
  std::string unit;
  uint32_t units = 1;
  double access_latency_ns = 0;
  double queue_latency_ns = 0;
  PerMode density_mbit_per_mm2;  // Mb = 2^20 bits
  Link link;

  bool OffChip() const { return placement == "off-chip"; }
  // The mode data stored as `data_cell_bits`-bit cells (0: plain bytes) takes
  // here: a single-mode memory stores everything its own way; an MLC memory
  // stores codes in their mode and plain bytes in its lowest. Throws
  // InputError when it lacks the mode.
  uint32_t Mode(uint32_t data_cell_bits, const std::string& board) const;
  // Bytes per second `units` units deliver in `mode`, the link permitting.
  double BytesPerSecond(uint32_t mode, uint32_t unit_count) const;
  double BytesPerSecond(uint32_t mode) const { return BytesPerSecond(mode, units); }
};

// The power-constrained design search (the paper's Eq. 4).
struct DesignSearch {
  double power_budget_w = 0;
  double e_net_pj_per_bit = 0;
  uint32_t mram_channels_min = 1, mram_channels_max = 1;
  uint32_t reram_arrays_min = 1, reram_arrays_max = 1;
};

struct BoardProfile {
  std::string name;
  std::string description;
  std::string origin;  // the file, or "built-in NAME"
  std::vector<Memory> memories;
  // The memory holding each image window (index image::Window); SRAM holds no image bytes.
  std::array<int, image::kWindowCount> window_memory{-1, -1, -1, -1};
  int storage = -1;  // a memory that also holds every weight byte (Flash beside DRAM), or -1
  double cdc_cycles = 0;
  double sync_clock_ghz = 1;
  std::optional<DesignSearch> search;
  // The emu board's window sizes in bytes (index image::Window; 0: the
  // default), from "emu_window_mib": qmc-fw-emu --board and qmc nvm write --board.
  std::array<uint64_t, image::kWindowCount> emu_window_bytes{};

  const Memory& WindowMemory(image::Window w) const { return memories.at(window_memory[static_cast<uint32_t>(w)]); }
  double SyncSeconds() const { return cdc_cycles / (sync_clock_ghz * 1e9); }
};

// Parses profile JSON; `origin` names it in errors. Throws InputError with
// one line naming the field (missing, negative, unknown key, unknown memory).
BoardProfile ParseBoardProfile(std::string_view json, const std::string& origin);

// A shipped profile by name (its file stem: paper-soc, orin-lpddr5, ...), or a file.
BoardProfile LoadBoardProfile(const std::string& name_or_file);

// The names of the shipped profiles.
std::vector<std::string> BuiltInBoards();

}  // namespace qmc::host
