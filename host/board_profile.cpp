#include "host/board_profile.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "hal/emu/emu_board.h"
#include "host/atomic_file.h"
#include "host/checkpoint.h"

namespace qmc::host {
namespace {

using nlohmann::json;

struct BuiltIn {
  const char* name;
  const char* json;
};
const BuiltIn kBuiltIns[] = {
#include "board_profiles.inc"
};

// Reads one object's keys, each once; whatever is left over is an unknown key.
class Fields {
 public:
  Fields(const json& object, std::string path, const std::string& origin) : path_(std::move(path)), origin_(origin) {
    if (!object.is_object()) Fail(path_, "is " + Short(object) + ", expected an object");
    object_ = &object;
  }

  const json* Optional(const char* key) {
    seen_.insert(key);
    const auto it = object_->find(key);
    return it == object_->end() || it->is_null() ? nullptr : &*it;
  }
  const json& Required(const char* key) {
    const json* v = Optional(key);
    if (v == nullptr) Fail(Path(key), "is missing");
    return *v;
  }
  std::string String(const char* key, bool required = true) {
    const json* v = required ? &Required(key) : Optional(key);
    if (v == nullptr) return "";
    if (!v->is_string()) Fail(Path(key), "is " + Short(*v) + ", expected a string");
    return v->get<std::string>();
  }
  // A finite number >= 0 (> 0 when `positive`).
  double Number(const json& v, const std::string& path, bool positive) const {
    if (!v.is_number() || !std::isfinite(v.get<double>()) || v.get<double>() < 0 ||
        (positive && v.get<double>() == 0)) {
      Fail(path, "is " + Short(v) + (positive ? ", expected a number > 0" : ", expected a number >= 0"));
    }
    return v.get<double>();
  }
  double Number(const char* key, bool positive) { return Number(Required(key), Path(key), positive); }
  uint32_t Count(const json& v, const std::string& path) const {
    if (!v.is_number_unsigned() || v.get<uint64_t>() == 0 || v.get<uint64_t>() > 1000000) {
      Fail(path, "is " + Short(v) + ", expected a positive integer");
    }
    return v.get<uint32_t>();
  }
  uint32_t Count(const char* key) { return Count(Required(key), Path(key)); }
  // A number for every mode, or {"1": x, "2": y, "3": z} covering `modes`.
  PerMode Modes(const char* key, const std::vector<uint32_t>& modes, bool positive) {
    return Modes(Required(key), Path(key), modes, positive);
  }
  PerMode Modes(const json& v, const std::string& path, const std::vector<uint32_t>& modes, bool positive) const {
    PerMode out;
    if (v.is_object()) {
      for (const auto& [mode, value] : v.items()) {
        const bool known = mode.size() == 1 && mode[0] >= '1' && mode[0] <= '3' &&
                           std::count(modes.begin(), modes.end(), static_cast<uint32_t>(mode[0] - '0')) != 0;
        if (!known) Fail(path + "." + mode, "is not one of the memory's cell_bits modes");
        out.value[mode[0] - '0'] = Number(value, path + "." + mode, positive);
      }
      for (uint32_t m : modes) {
        if (v.find(std::to_string(m)) == v.end()) Fail(path + "." + std::to_string(m), "is missing");
      }
    } else {
      const double x = Number(v, path, positive);
      for (uint32_t m : modes) out.value[m] = x;
    }
    return out;
  }
  std::pair<uint32_t, uint32_t> Range(const char* key) {
    const json& v = Required(key);
    if (!v.is_array() || v.size() != 2) Fail(Path(key), "is " + Short(v) + ", expected [min, max]");
    const uint32_t lo = Count(v[0], Path(key) + "[0]"), hi = Count(v[1], Path(key) + "[1]");
    if (hi < lo) Fail(Path(key), "has max < min");
    return {lo, hi};
  }
  // Unknown keys are errors (a misspelt parameter would otherwise be ignored).
  void Done() const {
    for (const auto& [key, value] : object_->items()) {
      if (seen_.count(key) == 0) Fail(Path(key.c_str()), "is not a known key");
    }
  }
  std::string Path(const std::string& key) const { return path_.empty() ? key : path_ + "." + key; }
  [[noreturn]] void Fail(const std::string& path, const std::string& what) const {
    throw InputError("board profile " + origin_ + ": " + path + " " + what);
  }

 private:
  static std::string Short(const json& v) {
    std::string text = v.dump();
    return text.size() > 40 ? text.substr(0, 37) + "..." : text;
  }
  const json* object_ = nullptr;
  std::string path_;
  const std::string& origin_;
  std::set<std::string> seen_;
};

Memory ParseMemory(const std::string& name, const json& v, const std::string& origin) {
  Fields f(v, "memories." + name, origin);
  Memory m;
  m.name = name;
  f.Optional("source");
  m.technology = f.String("technology", false);
  m.placement = f.String("placement");
  if (m.placement != "on-chip" && m.placement != "on-package" && m.placement != "off-chip") {
    f.Fail(f.Path("placement"), "is \"" + m.placement + "\", expected on-chip, on-package or off-chip");
  }
  m.cell_bits = {1};
  if (const json* modes = f.Optional("cell_bits")) {
    if (!modes->is_array() || modes->empty()) f.Fail(f.Path("cell_bits"), "is not a list of modes (1..3)");
    m.cell_bits.clear();
    for (const json& b : *modes) {
      if (!b.is_number_unsigned() || b.get<uint32_t>() < 1 || b.get<uint32_t>() > 3) {
        f.Fail(f.Path("cell_bits"), "is not a list of modes (1..3)");
      }
      m.cell_bits.push_back(b.get<uint32_t>());
    }
    std::sort(m.cell_bits.begin(), m.cell_bits.end());
    m.cell_bits.erase(std::unique(m.cell_bits.begin(), m.cell_bits.end()), m.cell_bits.end());
  }
  m.read_energy_pj_per_bit = f.Modes("read_energy_pj_per_bit", m.cell_bits, false);
  const json* write = f.Optional("write_energy_pj_per_bit");
  m.write_energy_pj_per_bit =
      write ? f.Modes(*write, f.Path("write_energy_pj_per_bit"), m.cell_bits, false) : m.read_energy_pj_per_bit;
  m.bandwidth_gib_s = f.Modes("bandwidth_gib_s", m.cell_bits, true);
  m.unit = f.String("unit", false);
  if (m.unit.empty()) m.unit = "unit";
  m.units = f.Count("units");
  m.access_latency_ns = f.Number("access_latency_ns", false);
  const json* queue = f.Optional("queue_latency_ns");
  m.queue_latency_ns = queue ? f.Number(*queue, f.Path("queue_latency_ns"), false) : 0.0;
  m.density_mbit_per_mm2 = f.Modes("density_mbit_per_mm2", m.cell_bits, true);
  Fields link(f.Required("link"), f.Path("link"), origin);
  link.Optional("source");
  m.link.name = link.String("name");
  m.link.energy_pj_per_bit = link.Number("energy_pj_per_bit", false);
  const json* rate = link.Optional("gt_s");
  const json* lanes = link.Optional("lanes");
  if ((rate == nullptr) != (lanes == nullptr)) link.Fail(link.Path(rate ? "lanes" : "gt_s"), "is missing");
  if (rate != nullptr) {
    m.link.bytes_per_s = link.Number(*rate, link.Path("gt_s"), true) * 1e9 * link.Count(*lanes, link.Path("lanes")) / 8.0;
  }
  link.Done();
  f.Done();
  return m;
}

}  // namespace

uint32_t Memory::Mode(uint32_t data_cell_bits, const std::string& board) const {
  if (cell_bits.size() == 1) return cell_bits.front();
  if (data_cell_bits == 0) return cell_bits.front();
  if (std::count(cell_bits.begin(), cell_bits.end(), data_cell_bits) == 0) {
    throw InputError("board " + board + ": memory " + name + " has no " + std::to_string(data_cell_bits) +
                     "-bit cell mode for the image's codes");
  }
  return data_cell_bits;
}

double Memory::BytesPerSecond(uint32_t mode, uint32_t unit_count) const {
  const double device = bandwidth_gib_s(mode) * 1073741824.0 * unit_count;
  return link.bytes_per_s > 0 ? std::min(device, link.bytes_per_s) : device;
}

BoardProfile ParseBoardProfile(std::string_view text, const std::string& origin) {
  json v;
  try {
    v = json::parse(text);
  } catch (const json::exception&) {
    throw InputError("board profile " + origin + ": malformed JSON");
  }
  Fields f(v, "", origin);
  BoardProfile b;
  b.origin = origin;
  b.name = f.String("name");
  b.description = f.String("description", false);
  f.Optional("source");
  {
    Fields memories(f.Required("memories"), "memories", origin);
    const json& all = *f.Optional("memories");
    if (all.empty()) memories.Fail("memories", "is empty");
    for (const auto& [name, m] : all.items()) {
      memories.Optional(name.c_str());
      b.memories.push_back(ParseMemory(name, m, origin));
    }
    memories.Done();
  }
  auto memory_named = [&](const std::string& name, const std::string& path) {
    for (size_t i = 0; i < b.memories.size(); ++i) {
      if (b.memories[i].name == name) return static_cast<int>(i);
    }
    f.Fail(path, "names memory '" + name + "', which memories does not define");
  };
  {
    Fields windows(f.Required("windows"), "windows", origin);
    const char* names[] = {"", "mram", "reram", "dram"};
    for (uint32_t w = 1; w < image::kWindowCount; ++w) {
      b.window_memory[w] = memory_named(windows.String(names[w]), windows.Path(names[w]));
    }
    windows.Done();
  }
  if (const json* storage = f.Optional("storage")) {
    if (!storage->is_string()) f.Fail("storage", "is not a memory name");
    b.storage = memory_named(storage->get<std::string>(), "storage");
  }
  {
    Fields sync(f.Required("sync"), "sync", origin);
    sync.Optional("source");
    b.cdc_cycles = sync.Number("cdc_cycles", false);
    b.sync_clock_ghz = sync.Number("clock_ghz", true);
    sync.Done();
  }
  if (const json* search = f.Optional("design_search")) {
    Fields s(*search, "design_search", origin);
    s.Optional("source");
    DesignSearch d;
    d.power_budget_w = s.Number("power_budget_w", true);
    d.e_net_pj_per_bit = s.Number("e_net_pj_per_bit", false);
    std::tie(d.mram_channels_min, d.mram_channels_max) = s.Range("mram_channels");
    std::tie(d.reram_arrays_min, d.reram_arrays_max) = s.Range("reram_arrays");
    s.Done();
    b.search = d;
  }
  if (const json* emu = f.Optional("emu_window_mib")) {
    Fields windows(*emu, "emu_window_mib", origin);
    const char* names[] = {"sram", "mram", "reram", "dram"};
    for (uint32_t w = 0; w < image::kWindowCount; ++w) {
      if (const json* mib = windows.Optional(names[w])) {
        const uint32_t n = windows.Count(*mib, windows.Path(names[w]));
        if (n > hal::emu::kMaxWindowMib) {
          windows.Fail(windows.Path(names[w]), "is " + std::to_string(n) + ", expected at most " +
                                                   std::to_string(hal::emu::kMaxWindowMib) + " (MiB)");
        }
        b.emu_window_bytes[w] = uint64_t{n} << 20;
      }
    }
    windows.Done();
  }
  f.Done();
  return b;
}

BoardProfile LoadBoardProfile(const std::string& name_or_file) {
  std::error_code ec;
  if (std::filesystem::is_regular_file(name_or_file, ec)) {
    std::ifstream in(name_or_file, std::ios::binary);
    if (!in) throw IoError(name_or_file + ": cannot open: " + std::strerror(errno));
    std::ostringstream text;
    text << in.rdbuf();
    return ParseBoardProfile(text.str(), name_or_file);
  }
  for (const BuiltIn& b : kBuiltIns) {
    if (name_or_file == b.name) return ParseBoardProfile(b.json, std::string("built-in ") + b.name);
  }
  std::string names;
  for (const BuiltIn& b : kBuiltIns) names += std::string(names.empty() ? "" : ", ") + b.name;
  throw InputError("board profile " + name_or_file + ": no such file, nor a built-in board (" + names + ")");
}

std::vector<std::string> BuiltInBoards() {
  std::vector<std::string> names;
  for (const BuiltIn& b : kBuiltIns) names.emplace_back(b.name);
  return names;
}

}  // namespace qmc::host
