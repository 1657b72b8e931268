#include "host/image_writer.h"

#include <cstring>

#include "common/crc32.h"
#include "common/image_reader.h"

namespace qmc::host {
namespace {

using image::SectionKind;

// Every offset and length of the format is 32 bits.
uint32_t Checked(uint64_t value) {
  if (value > 0xFFFFFFFFu) throw InputError("model too large for the 32-bit image format");
  return static_cast<uint32_t>(value);
}

uint32_t AlignUp(uint64_t value, uint32_t alignment) {
  return Checked((value + alignment - 1) / alignment * alignment);
}

image::Window WindowOf(SectionKind kind) {
  switch (kind) {
    case SectionKind::kInlierCodes: return image::Window::kReram;
    case SectionKind::kDenseWeights: return image::Window::kDram;
    default: return image::Window::kMram;
  }
}

bool IsDense(image::Scheme scheme) { return scheme == image::Scheme::kF32 || scheme == image::Scheme::kF16; }

}  // namespace

ImageWriter::ImageWriter(ImageModel model) : model_(std::move(model)) {}

image::BlobRef ImageWriter::Place(SectionKind kind, std::vector<uint8_t> blob) {
  if (blob.empty()) return {image::kNoSection, 0, 0};
  Section& section = kind == SectionKind::kInlierCodes ? codes_ : kind == SectionKind::kDenseWeights ? dense_ : params_;
  const uint32_t offset = AlignUp(section.size, image::kBlobAlignment);
  const auto length = static_cast<uint32_t>(blob.size());
  section.size = Checked(uint64_t{offset} + blob.size());
  section.blobs.emplace_back(offset, std::move(blob));
  return {static_cast<uint32_t>(kind), offset, length};
}

void ImageWriter::Add(QuantizedTensor t) {
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
  const bool dense = IsDense(t.scheme);
  any_codes_ |= !dense;
  any_dense_ |= dense && t.is_matrix;
  const SectionKind data =
      !dense ? SectionKind::kInlierCodes : (t.is_matrix ? SectionKind::kDenseWeights : SectionKind::kParams);
  e.data = Place(data, std::move(t.data));
  e.scales = Place(SectionKind::kParams, std::move(t.scales));
  e.outliers = Place(SectionKind::kParams, std::move(t.outliers));
  entries_.push_back(e);
}

std::vector<uint8_t> ImageWriter::Finish() {
  // Section order: directory, tokenizer, model detail, params, then codes and dense weights if used.
  std::vector<SectionKind> kinds;
  for (SectionKind kind : {SectionKind::kTensorDirectory, SectionKind::kTokenizer, SectionKind::kModelDetail,
                           SectionKind::kParams, SectionKind::kInlierCodes, SectionKind::kDenseWeights}) {
    if ((kind == SectionKind::kInlierCodes && !any_codes_) || (kind == SectionKind::kDenseWeights && !any_dense_))
      continue;
    kinds.push_back(kind);
  }
  auto index_of = [&](uint32_t kind) {
    for (uint32_t i = 0; i < kinds.size(); ++i) {
      if (static_cast<uint32_t>(kinds[i]) == kind) return i;
    }
    return image::kNoSection;
  };
  for (image::TensorEntry& e : entries_) {
    for (image::BlobRef* ref : {&e.data, &e.scales, &e.outliers}) {
      if (ref->section != image::kNoSection) ref->section = index_of(ref->section);
    }
  }
  const auto* detail = reinterpret_cast<const uint8_t*>(&model_.detail);
  auto size_of = [&](SectionKind kind) -> uint64_t {
    switch (kind) {
      case SectionKind::kTensorDirectory: return entries_.size() * sizeof(image::TensorEntry);
      case SectionKind::kTokenizer: return model_.tokenizer.size();
      case SectionKind::kModelDetail: return sizeof model_.detail;
      case SectionKind::kInlierCodes: return codes_.size;
      case SectionKind::kDenseWeights: return dense_.size;
      default: return params_.size;
    }
  };

  // Place sections in the file after the boot record, and in their windows
  // (MRAM begins with the boot record itself).
  const auto count = static_cast<uint32_t>(kinds.size());
  std::vector<image::SectionEntry> table(count);
  uint32_t file_cursor = AlignUp(image::BootRecordSize(count), image::kSectionAlignment);
  uint32_t window_cursor[image::kWindowCount] = {0, file_cursor, 0, 0};
  for (uint32_t i = 0; i < count; ++i) {
    const image::Window window = WindowOf(kinds[i]);
    auto& cursor = window_cursor[static_cast<uint32_t>(window)];
    const uint64_t size = size_of(kinds[i]);
    table[i] = {static_cast<uint8_t>(kinds[i]), static_cast<uint8_t>(window), 0, file_cursor, cursor,
                Checked(size), 0, 0};
    file_cursor = AlignUp(uint64_t{file_cursor} + size, image::kSectionAlignment);
    cursor = AlignUp(uint64_t{cursor} + size, image::kSectionAlignment);
  }
  const uint32_t image_size = Checked(uint64_t{table.back().file_offset} + table.back().length);

  // Section bytes straight into the image, each blob freed once copied.
  std::vector<uint8_t> out(image_size, 0);
  auto copy = [&](uint32_t at, const uint8_t* bytes, size_t n) {
    if (n > 0) std::memcpy(out.data() + at, bytes, n);
  };
  for (uint32_t i = 0; i < count; ++i) {
    const uint32_t at = table[i].file_offset;
    switch (kinds[i]) {
      case SectionKind::kTensorDirectory:
        copy(at, reinterpret_cast<const uint8_t*>(entries_.data()), entries_.size() * sizeof(image::TensorEntry));
        break;
      case SectionKind::kTokenizer: copy(at, model_.tokenizer.data(), model_.tokenizer.size()); break;
      case SectionKind::kModelDetail: copy(at, detail, sizeof model_.detail); break;
      default: {
        Section& s = kinds[i] == SectionKind::kInlierCodes    ? codes_
                     : kinds[i] == SectionKind::kDenseWeights ? dense_
                                                              : params_;
        for (auto& [offset, blob] : s.blobs) {
          copy(at + offset, blob.data(), blob.size());
          std::vector<uint8_t>().swap(blob);
        }
        s = {};
        break;
      }
    }
    table[i].crc32 = Crc32(out.data() + at, table[i].length);
  }
  const auto tensor_count = static_cast<uint32_t>(entries_.size());
  entries_.clear();

  image::Header header{};
  header.magic = image::kMagic;
  header.version_major = image::kVersionMajor;
  header.version_minor = image::kVersionMinor;
  header.header_size = sizeof(image::Header);
  header.image_size = image_size;
  header.section_count = count;
  header.section_table_offset = sizeof(image::Header);
  header.tensor_count = tensor_count;
  header.quantizer = static_cast<uint32_t>(model_.quantizer);
  header.model = model_.config;
  header.outlier_ratio = model_.outlier_ratio;
  if (model_.preset.size() >= sizeof header.preset)
    throw InputError("preset name too long for the image: " + model_.preset);
  std::memcpy(header.preset, model_.preset.data(), model_.preset.size());
  header.header_crc = image::HeaderCrc(header, table.data());
  std::memcpy(out.data(), &header, sizeof header);
  std::memcpy(out.data() + sizeof header, table.data(), count * sizeof(image::SectionEntry));
  return out;
}

}  // namespace qmc::host
