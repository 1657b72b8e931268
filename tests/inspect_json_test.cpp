// `qmc inspect --json` against its documented schema (docs/inspect-json.md):
// every key of real output is in the document's table with its type, every
// documented key is there, and the values match a recomputation from the
// image bytes (section table, CRCs, window extents) and the tensor list.
#include <gtest/gtest.h>
#include <zlib.h>

#include <cstring>
#include <map>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <sstream>

#include "tests/cli_runner.h"

namespace qmc {
namespace {

using nlohmann::json;
using testing::FreshTestDir;
using testing::Qmc;
using testing::Slurp;

struct Field {
  std::string type;  // integer, number, string, boolean, object, array
  std::string when;  // always, tensors, no-tensors
};

// The table rows "| `path` | type | when | meaning |" of the document.
std::map<std::string, Field> DocumentedFields() {
  std::istringstream doc(Slurp(std::string(QMC_SOURCE_DIR) + "/docs/inspect-json.md"));
  const std::regex row(R"(^\| `([^`]+)` \| (\w+) \| ([\w-]+) \| .+\|$)");
  std::map<std::string, Field> fields;
  std::smatch m;
  for (std::string line; std::getline(doc, line);) {
    if (std::regex_match(line, m, row)) fields[m[1]] = {m[2], m[3]};
  }
  return fields;
}

std::string TypeOf(const json& v) {
  if (v.is_number_unsigned()) return "integer";
  if (v.is_number()) return "number";
  if (v.is_string()) return "string";
  if (v.is_boolean()) return "boolean";
  if (v.is_object()) return "object";
  if (v.is_array()) return "array";
  return "null";
}

// Every key path of `value` ("a.b", "list[].c") with the type it has.
void CollectPaths(const json& value, const std::string& path, std::map<std::string, std::set<std::string>>& out) {
  if (value.is_object()) {
    for (const auto& [key, member] : value.items()) {
      const std::string p = path.empty() ? key : path + "." + key;
      out[p].insert(TypeOf(member));
      CollectPaths(member, p, out);
    }
  } else if (value.is_array()) {
    for (const json& element : value) CollectPaths(element, path + "[]", out);
  }
}

void ExpectMatchesSchema(const json& summary, const std::map<std::string, Field>& fields) {
  std::map<std::string, std::set<std::string>> paths;
  CollectPaths(summary, "", paths);
  for (const auto& [path, types] : paths) {
    const auto field = fields.find(path);
    ASSERT_NE(field, fields.end()) << path << " is not in docs/inspect-json.md";
    // A number that happens to be whole prints as an integer.
    for (const std::string& type : types) {
      EXPECT_TRUE(type == field->second.type || (type == "integer" && field->second.type == "number"))
          << path << " is " << type << ", documented " << field->second.type;
    }
  }
  const bool tensors_ok = summary.at("tensors_ok").get<bool>();
  for (const auto& [path, field] : fields) {
    const bool expected = field.when == "always" || (field.when == "tensors") == tensors_ok;
    // Keys inside array elements exist only when the array has elements.
    const bool in_empty_array = path.find("[]") != std::string::npos && summary.at(path.substr(0, path.find("[]"))).empty();
    if (in_empty_array) continue;
    EXPECT_EQ(paths.count(path) == 1, expected) << path << " (documented when " << field.when << ")";
  }
}

uint32_t U32(const std::string& bytes, size_t offset) {
  uint32_t v;
  std::memcpy(&v, bytes.data() + offset, 4);
  return v;
}

// Checks the summary's values against the image file, read by the format's
// table (docs/image-format.md), and against sums over its own tensor list.
void ExpectValuesOf(const json& s, const std::string& image) {
  EXPECT_EQ(s["schema"], 1);
  EXPECT_EQ(s["version"], std::to_string(image[4] | image[5] << 8) + "." + std::to_string(image[6] | image[7] << 8));
  EXPECT_EQ(s["image_size"].get<uint64_t>(), image.size());
  const uint32_t section_count = U32(image, 16);
  ASSERT_EQ(s["sections"].size(), section_count);
  const char* const kWindows[] = {"sram", "mram", "reram", "dram"};
  std::map<std::string, uint64_t> window_end = {{"sram", 0}, {"mram", 128 + 24 * section_count}, {"reram", 0}, {"dram", 0}};
  bool all_ok = true;
  for (uint32_t i = 0; i < section_count; ++i) {
    const size_t entry = 128 + 24 * i;
    const json& sec = s["sections"][i];
    const uint32_t file_offset = U32(image, entry + 4), window_offset = U32(image, entry + 8), length = U32(image, entry + 12);
    const std::string window = kWindows[static_cast<uint8_t>(image[entry + 1])];
    EXPECT_EQ(sec["index"], i);
    EXPECT_EQ(sec["window"], window);
    EXPECT_EQ(sec["file_offset"], file_offset);
    EXPECT_EQ(sec["window_offset"], window_offset);
    EXPECT_EQ(sec["length"], length);
    char crc[11];
    const uLong crc32_value = crc32(0, reinterpret_cast<const Bytef*>(image.data() + file_offset), length);
    std::snprintf(crc, sizeof crc, "0x%08lx", crc32_value);
    EXPECT_EQ(sec["crc32"], crc);
    EXPECT_EQ(sec["crc_ok"], crc32_value == U32(image, entry + 16));
    all_ok &= crc32_value == U32(image, entry + 16);
    window_end[window] = std::max<uint64_t>(window_end[window], uint64_t{window_offset} + length);
  }
  EXPECT_EQ(s["crc_ok"], all_ok);
  for (const auto& [window, end] : window_end) EXPECT_EQ(s["bytes_by_window"][window], end) << window;

  ASSERT_TRUE(s["tensors_ok"].get<bool>());
  ASSERT_EQ(s["tensors"].size(), U32(image, 24));
  uint64_t weights = 0, bytes = 0, outliers = 0;
  double value_bits = 0;
  for (const json& t : s["tensors"]) {
    const uint64_t n = t["rows"].get<uint64_t>() * t["cols"].get<uint64_t>();
    const uint64_t b = t["bytes"]["data"].get<uint64_t>() + t["bytes"]["scales"].get<uint64_t>() +
                       t["bytes"]["outliers"].get<uint64_t>();
    EXPECT_DOUBLE_EQ(t["bits_per_weight"].get<double>(), 8.0 * static_cast<double>(b) / static_cast<double>(n));
    // The Llama models here: every 2-D weight is a matrix, every norm a 1 x dim vector.
    EXPECT_EQ(t["matrix"], t["rows"].get<uint64_t>() > 1) << t["name"];
    if (!t["matrix"].get<bool>()) continue;
    weights += n;
    bytes += b;
    const uint64_t k = t["outliers"].get<uint64_t>();
    outliers += k;
    const std::string scheme = t["scheme"];
    value_bits += scheme == "split" ? static_cast<double>((n - k) * t["bits"].get<uint64_t>() + k * t["outlier_bits"].get<uint64_t>())
                                    : static_cast<double>(n * t["bits"].get<uint64_t>() + 16 * k);
  }
  EXPECT_EQ(s["matrix_weights"], weights);
  EXPECT_DOUBLE_EQ(s["bits_per_weight"].get<double>(), 8.0 * static_cast<double>(bytes) / static_cast<double>(weights));
  EXPECT_DOUBLE_EQ(s["value_bits_per_weight"].get<double>(), value_bits / static_cast<double>(weights));
  EXPECT_DOUBLE_EQ(s["outlier_fraction"].get<double>(), static_cast<double>(outliers) / static_cast<double>(weights));
  for (const json& t : s["tensors"]) {
    if (t["name"] != "blk.0.attn_q.weight") continue;
    EXPECT_EQ(s["inlier_bits"], t["bits"]);
    EXPECT_EQ(s["outlier_bits"], t["outlier_bits"]);
    EXPECT_EQ(s["cell_bits"], t["cell_bits"]);
  }
}

json PackAndInspect(const std::string& scheme, const std::filesystem::path& dir, std::string& image) {
  const std::filesystem::path file = dir / "image.qmc";
  const auto pack = Qmc("pack " + testing::Stories260K() + " " + scheme + " -q -o " + file.string(), dir);
  EXPECT_EQ(pack.exit_code, 0) << pack.err;
  const auto inspect = Qmc("inspect --json " + file.string(), dir);
  EXPECT_EQ(inspect.exit_code, 0) << inspect.err;
  image = Slurp(file);
  return json::parse(inspect.out);
}

TEST(InspectJson, DocumentHasTheTable) {
  const auto fields = DocumentedFields();
  EXPECT_GT(fields.size(), 50u);
  EXPECT_EQ(fields.at("schema").type, "integer");
  EXPECT_EQ(fields.at("bytes_by_window.reram").type, "integer");
  EXPECT_EQ(fields.at("error").when, "no-tensors");
}

TEST(InspectJson, F32ImageMatchesSchemaAndBytes) {
  const auto dir = FreshTestDir("inspect_json_");
  std::string image;
  const json s = PackAndInspect("--scheme f32", dir, image);
  ExpectMatchesSchema(s, DocumentedFields());
  ExpectValuesOf(s, image);
  // 32 bits per weight, nothing else: the f32 image stores plain floats.
  EXPECT_DOUBLE_EQ(s["bits_per_weight"].get<double>(), 32.0);
  EXPECT_EQ(s["quantizer"], "f32");
  EXPECT_EQ(s["bytes_by_window"]["reram"], 0);
  // stories260K: dim 64, hidden 172, 5 layers, kv width 32, vocab 512, shared classifier.
  EXPECT_EQ(s["matrix_weights"], 512 * 64 + 5 * (2 * 64 * 64 + 2 * 32 * 64 + 3 * 64 * 172));
  EXPECT_EQ(s["model"]["arch"], "llama");
}

TEST(InspectJson, Paper3MlcImageMatchesSchemaAndBytes) {
  const auto dir = FreshTestDir("inspect_json_");
  std::string image;
  const json s = PackAndInspect("--preset paper-3mlc", dir, image);
  ExpectMatchesSchema(s, DocumentedFields());
  ExpectValuesOf(s, image);
  EXPECT_EQ(s["preset"], "paper-3mlc");
  EXPECT_EQ(s["inlier_bits"], 3);
  EXPECT_EQ(s["cell_bits"], 3);
  EXPECT_GT(s["bytes_by_window"]["reram"].get<uint64_t>(), 0u);
  EXPECT_GT(s["outlier_fraction"].get<double>(), 0.0);
}

// A damaged tensor directory: the keys that need it go, `error` comes, and
// the output still follows the table.
TEST(InspectJson, BadDirectoryStillMatchesSchema) {
  const auto dir = FreshTestDir("inspect_json_");
  std::string image;
  PackAndInspect("--scheme f32", dir, image);
  const uint32_t directory_offset = U32(image, 128 + 4);  // the packer writes the directory first
  image[directory_offset + 3] ^= 0x5a;
  std::ofstream(dir / "bad.qmc", std::ios::binary).write(image.data(), static_cast<std::streamsize>(image.size()));
  const auto inspect = Qmc("inspect --json " + (dir / "bad.qmc").string(), dir);
  EXPECT_EQ(inspect.exit_code, 3);
  const json s = json::parse(inspect.out);
  EXPECT_FALSE(s["tensors_ok"].get<bool>());
  EXPECT_FALSE(s["crc_ok"].get<bool>());
  ExpectMatchesSchema(s, DocumentedFields());
}

}  // namespace
}  // namespace qmc
