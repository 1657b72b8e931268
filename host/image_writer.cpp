#include "host/image_writer.h"

#include <cstring>

#include "common/crc32.h"
#include "common/image_reader.h"

namespace qmc::host {
namespace {

using image::SectionKind;

uint32_t AlignUp(uint64_t value, uint32_t alignment) {
  const uint64_t aligned = (value + alignment - 1) / alignment * alignment;
  if (aligned > 0xFFFFFFFFu) throw InputError("model too large for the 32-bit image format");
  return static_cast<uint32_t>(aligned);
}

struct SectionBuilder {
  SectionKind kind;
  image::Window window;
  std::vector<uint8_t> bytes;

  // Appends a 16-byte aligned blob and returns its reference (absent if empty).
  image::BlobRef Add(uint32_t section_index, const std::vector<uint8_t>& blob) {
    if (blob.empty()) return {image::kNoSection, 0, 0};
    bytes.resize(AlignUp(bytes.size(), image::kBlobAlignment), 0);
    const image::BlobRef ref{section_index, static_cast<uint32_t>(bytes.size()), static_cast<uint32_t>(blob.size())};
    bytes.insert(bytes.end(), blob.begin(), blob.end());
    return ref;
  }
};

image::Window WindowOf(SectionKind kind) {
  switch (kind) {
    case SectionKind::kInlierCodes: return image::Window::kReram;
    case SectionKind::kDenseWeights: return image::Window::kDram;
    default: return image::Window::kMram;
  }
}

}  // namespace

std::vector<uint8_t> BuildImage(const ImageContents& contents) {
  bool any_codes = false, any_dense = false;
  for (const QuantizedTensor& t : contents.tensors) {
    const bool dense = t.scheme == image::Scheme::kF32 || t.scheme == image::Scheme::kF16;
    any_codes |= !dense;
    any_dense |= dense && t.is_matrix;
  }
  // Section order: directory, tokenizer, params, then codes and dense weights if used.
  std::vector<SectionBuilder> sections;
  for (SectionKind kind : {SectionKind::kTensorDirectory, SectionKind::kTokenizer, SectionKind::kParams,
                           SectionKind::kInlierCodes, SectionKind::kDenseWeights}) {
    if ((kind == SectionKind::kInlierCodes && !any_codes) || (kind == SectionKind::kDenseWeights && !any_dense)) continue;
    sections.push_back({kind, WindowOf(kind), {}});
  }
  auto index_of = [&](SectionKind kind) {
    for (uint32_t i = 0; i < sections.size(); ++i) {
      if (sections[i].kind == kind) return i;
    }
    return image::kNoSection;
  };
  const uint32_t params = index_of(SectionKind::kParams);
  const uint32_t codes = index_of(SectionKind::kInlierCodes);
  const uint32_t dense = index_of(SectionKind::kDenseWeights);

  std::vector<image::TensorEntry> entries;
  for (const QuantizedTensor& t : contents.tensors) {
    image::TensorEntry e{};
    if (t.name.size() >= image::kTensorNameSize) throw InputError("tensor name too long for the image: " + t.name);
    std::memcpy(e.name, t.name.data(), t.name.size());
    e.scheme = static_cast<uint8_t>(t.scheme);
    e.bits = t.bits;
    e.cell_bits = t.cell_bits;
    e.outlier_bits = t.outlier_bits;
    e.group_size = t.group_size;
    e.rows = t.rows;
    e.cols = t.cols;
    e.outlier_count = t.outlier_count;
    const bool is_dense = t.scheme == image::Scheme::kF32 || t.scheme == image::Scheme::kF16;
    const uint32_t data_section = !is_dense ? codes : (t.is_matrix ? dense : params);
    e.data = sections[data_section].Add(data_section, t.data);
    e.scales = sections[params].Add(params, t.scales);
    e.outliers = sections[params].Add(params, t.outliers);
    entries.push_back(e);
  }
  SectionBuilder& directory = sections[index_of(SectionKind::kTensorDirectory)];
  directory.bytes.resize(entries.size() * sizeof(image::TensorEntry));
  std::memcpy(directory.bytes.data(), entries.data(), directory.bytes.size());
  sections[index_of(SectionKind::kTokenizer)].bytes = contents.tokenizer;

  // Place sections in the file after the boot record, and in their windows
  // (MRAM begins with the boot record itself).
  const auto count = static_cast<uint32_t>(sections.size());
  std::vector<image::SectionEntry> table(count);
  uint32_t file_cursor = AlignUp(image::BootRecordSize(count), image::kSectionAlignment);
  uint32_t window_cursor[image::kWindowCount] = {0, file_cursor, 0, 0};
  for (uint32_t i = 0; i < count; ++i) {
    const SectionBuilder& s = sections[i];
    auto& cursor = window_cursor[static_cast<uint32_t>(s.window)];
    table[i] = {static_cast<uint8_t>(s.kind), static_cast<uint8_t>(s.window), 0, file_cursor, cursor,
                static_cast<uint32_t>(s.bytes.size()), Crc32(s.bytes.data(), s.bytes.size()), 0};
    file_cursor = AlignUp(static_cast<uint64_t>(file_cursor) + s.bytes.size(), image::kSectionAlignment);
    cursor = AlignUp(static_cast<uint64_t>(cursor) + s.bytes.size(), image::kSectionAlignment);
  }
  const uint32_t image_size = table.back().file_offset + table.back().length;

  image::Header header{};
  header.magic = image::kMagic;
  header.version_major = image::kVersionMajor;
  header.version_minor = image::kVersionMinor;
  header.header_size = sizeof(image::Header);
  header.image_size = image_size;
  header.section_count = count;
  header.section_table_offset = sizeof(image::Header);
  header.tensor_count = static_cast<uint32_t>(entries.size());
  header.quantizer = static_cast<uint32_t>(contents.quantizer);
  header.model = contents.config;
  header.outlier_ratio = contents.outlier_ratio;
  if (contents.preset.size() >= sizeof header.preset) throw InputError("preset name too long for the image: " + contents.preset);
  std::memcpy(header.preset, contents.preset.data(), contents.preset.size());
  header.header_crc = image::HeaderCrc(header, table.data());

  std::vector<uint8_t> out(image_size, 0);
  std::memcpy(out.data(), &header, sizeof header);
  std::memcpy(out.data() + sizeof header, table.data(), count * sizeof(image::SectionEntry));
  for (uint32_t i = 0; i < count; ++i) {
    if (!sections[i].bytes.empty()) std::memcpy(out.data() + table[i].file_offset, sections[i].bytes.data(), sections[i].bytes.size());
  }
  return out;
}

}  // namespace qmc::host
