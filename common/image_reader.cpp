#include "common/image_reader.h"

#include <cstring>

#include "common/crc32.h"
#include "common/half.h"
#include "common/model_tensors.h"
#include "common/quant_layout.h"
#include "common/split_layout.h"
#include "common/tokenizer.h"

namespace qmc::image {
namespace {

constexpr uint32_t kCrcOffset = offsetof(Header, header_crc);

bool AllZero(const uint8_t* p, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    if (p[i] != 0) return false;
  }
  return true;
}

bool RangesOverlap(uint64_t a, uint64_t a_len, uint64_t b, uint64_t b_len) {
  return a < b + b_len && b < a + a_len;
}

Window ExpectedWindow(SectionKind kind) {
  switch (kind) {
    case SectionKind::kInlierCodes: return Window::kReram;
    case SectionKind::kDenseWeights: return Window::kDram;
    default: return Window::kMram;
  }
}

bool NamesEqual(const char* a, const char* b) {
  for (uint32_t i = 0; i < kTensorNameSize; ++i) {
    if (a[i] != b[i]) return false;
    if (a[i] == '\0') return true;
  }
  return true;
}

uint16_t LoadU16(const uint8_t* p) { return static_cast<uint16_t>(p[0] | (p[1] << 8)); }
uint32_t LoadU32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

}  // namespace

uint32_t HeaderCrc(const Header& header, const SectionEntry* sections) {
  const uint32_t crc = Crc32(&header, kCrcOffset);
  return Crc32(sections, header.section_count * sizeof(SectionEntry), crc);
}

Status ImageView::LoadBootRecord(std::span<const uint8_t> record) {
  Header& h = header_;
  if (record.size() < sizeof(Header)) return Error(StatusCode::kTruncated, "image is shorter than its header");
  std::memcpy(&h, record.data(), sizeof h);
  if (h.magic != kMagic) return Error(StatusCode::kBadMagic, "not a QMC image (bad magic)");
  if (h.version_major != kVersionMajor) return Error(StatusCode::kBadVersion, "unsupported image major version");
  if (h.header_size != sizeof(Header)) return Error(StatusCode::kInvalidValue, "header size field is wrong");
  if (h.section_table_offset != h.header_size) return Error(StatusCode::kInvalidValue, "section table does not follow the header");
  if (h.section_count == 0 || h.section_count > kMaxSections) return Error(StatusCode::kInvalidValue, "section count out of range");
  if (record.size() < BootRecordSize(h.section_count)) return Error(StatusCode::kTruncated, "image ends inside the section table");
  std::memcpy(sections_, record.data() + sizeof(Header), h.section_count * sizeof(SectionEntry));
  if (HeaderCrc(h, sections_) != h.header_crc) return Error(StatusCode::kBadChecksum, "header CRC mismatch");

  // The CRC holds, so what follows catches writer bugs and crafted images.
  if (ReservedMustBeZero() && !AllZero(h.reserved, sizeof h.reserved)) {
    return Error(StatusCode::kInvalidValue, "reserved header bytes are not zero");
  }
  uint32_t preset_length = 0;
  while (preset_length < sizeof h.preset && h.preset[preset_length] != '\0') ++preset_length;
  if (preset_length == sizeof h.preset ||
      !AllZero(reinterpret_cast<const uint8_t*>(h.preset) + preset_length, sizeof h.preset - preset_length)) {
    return Error(StatusCode::kInvalidValue, "preset name is not NUL-terminated and NUL-padded");
  }
  if (h.quantizer > static_cast<uint32_t>(Quantizer::kAwq)) return Error(StatusCode::kInvalidValue, ReservedMustBeZero() ? "unknown quantizer"
                                                               : "quantizer from a later minor version, unknown to this reader");
  if (!(h.outlier_ratio >= 0.0f && h.outlier_ratio < 1.0f)) return Error(StatusCode::kInvalidValue, "outlier ratio out of range");
  return ValidateModelConfig(h.model);
}

// The placement rules every section obeys wherever the image lies.
Status ImageView::CheckSectionPlacement(uint32_t i) const {
  const SectionEntry& s = sections_[i];
  if (s.kind < static_cast<uint8_t>(SectionKind::kTensorDirectory) ||
      s.kind > static_cast<uint8_t>(SectionKind::kModelDetail)) {
    return SectionError(StatusCode::kInvalidValue,
                        ReservedMustBeZero() ? "unknown section kind"
                                             : "section kind from a later minor version, unknown to this reader",
                        i);
  }
  if (s.window != static_cast<uint8_t>(ExpectedWindow(static_cast<SectionKind>(s.kind)))) {
    return SectionError(StatusCode::kInvalidValue, "section placed in the wrong memory window", i);
  }
  if (ReservedMustBeZero() && (s.reserved != 0 || s.reserved2 != 0)) return SectionError(StatusCode::kInvalidValue, "reserved section fields are not zero", i);
  if (s.length == 0) return SectionError(StatusCode::kInvalidValue, "empty section", i);
  if (s.window_offset % kSectionAlignment != 0) return SectionError(StatusCode::kInvalidValue, "section is not 64-byte aligned", i);
  if (s.window == static_cast<uint8_t>(Window::kMram) && s.window_offset < BootRecordSize(header_.section_count)) {
    return SectionError(StatusCode::kOverlap, "section overlaps the boot record in MRAM", i);
  }
  for (uint32_t j = 0; j < i; ++j) {
    const SectionEntry& o = sections_[j];
    if (s.window == o.window && RangesOverlap(s.window_offset, s.length, o.window_offset, o.length)) {
      return SectionError(StatusCode::kOverlap, "sections overlap in their window", i);
    }
  }
  return Status::Ok();
}

Status ImageView::CheckSectionSet() const {
  uint32_t directories = 0, tokenizers = 0, details = 0;
  for (uint32_t i = 0; i < header_.section_count; ++i) {
    directories += sections_[i].kind == static_cast<uint8_t>(SectionKind::kTensorDirectory);
    tokenizers += sections_[i].kind == static_cast<uint8_t>(SectionKind::kTokenizer);
    details += sections_[i].kind == static_cast<uint8_t>(SectionKind::kModelDetail);
  }
  if (directories != 1) return Error(StatusCode::kMissing, "image needs exactly one tensor directory section");
  if (tokenizers != 1) return Error(StatusCode::kMissing, "image needs exactly one tokenizer section");
  if (details > 1) return Error(StatusCode::kInvalidValue, "image has more than one model detail section");
  if (header_.tensor_count != RequiredTensorCount(header_.model, detail_)) {
    return Error(StatusCode::kInvalidValue, "tensor count does not match the model config");
  }
  const uint32_t directory = SectionOfKind(SectionKind::kTensorDirectory);
  if (sections_[directory].length != header_.tensor_count * sizeof(TensorEntry)) {
    return SectionError(StatusCode::kShapeMismatch, "tensor directory size does not match the tensor count", directory);
  }
  return Status::Ok();
}

Result<ImageView> ImageView::OpenFile(std::span<const uint8_t> file) {
  ImageView view;
  if (Status s = view.LoadBootRecord(file); !s.ok()) return s;
  const Header& h = view.header_;
  if (h.image_size > file.size()) return Error(StatusCode::kTruncated, "file is shorter than the image size in its header");
  if (h.image_size < file.size()) return Error(StatusCode::kInvalidValue, "file is longer than the image size in its header");
  const uint32_t record = BootRecordSize(h.section_count);
  for (uint32_t i = 0; i < h.section_count; ++i) {
    if (Status s = view.CheckSectionPlacement(i); !s.ok()) return s;
    const SectionEntry& s = view.sections_[i];
    if (s.file_offset % kSectionAlignment != 0) return SectionError(StatusCode::kInvalidValue, "section is not 64-byte aligned", i);
    if (s.file_offset < record) return SectionError(StatusCode::kOverlap, "section overlaps the header or section table", i);
    if (static_cast<uint64_t>(s.file_offset) + s.length > h.image_size) {
      return SectionError(StatusCode::kOutOfBounds, "section extends past the end of the image", i);
    }
    for (uint32_t j = 0; j < i; ++j) {
      if (RangesOverlap(s.file_offset, s.length, view.sections_[j].file_offset, view.sections_[j].length)) {
        return SectionError(StatusCode::kOverlap, "sections overlap in the file", i);
      }
    }
    view.section_bytes_[i] = file.subspan(s.file_offset, s.length);
  }
  if (Status s = view.LoadDetail(); !s.ok()) return s;
  if (Status s = view.CheckSectionSet(); !s.ok()) return s;
  return view;
}

Result<ImageView> ImageView::OpenWindows(std::span<const uint8_t> boot_record,
                                         const std::span<const uint8_t> (&windows)[kWindowCount]) {
  ImageView view;
  if (Status s = view.LoadBootRecord(boot_record); !s.ok()) return s;
  for (uint32_t i = 0; i < view.header_.section_count; ++i) {
    if (Status s = view.CheckSectionPlacement(i); !s.ok()) return s;
    const SectionEntry& s = view.sections_[i];
    const std::span<const uint8_t> window = windows[s.window];
    if (static_cast<uint64_t>(s.window_offset) + s.length > window.size()) {
      return SectionError(StatusCode::kOutOfBounds, "section extends past the end of its memory window", i);
    }
    view.section_bytes_[i] = window.subspan(s.window_offset, s.length);
  }
  if (Status s = view.LoadDetail(); !s.ok()) return s;
  if (Status s = view.CheckSectionSet(); !s.ok()) return s;
  return view;
}

// The detail shapes the tensor list, so it is read (and its CRC checked) as
// the image opens; a 1.1 image has none and means the defaults.
Status ImageView::LoadDetail() {
  detail_ = DefaultDetail(header_.model);
  const uint32_t index = SectionOfKind(SectionKind::kModelDetail);
  if (index == kNoSection) {
    if (header_.model.arch > static_cast<uint32_t>(Arch::kQwen2)) {
      return Error(StatusCode::kMissing, "Phi and Hymba images need a model detail section");
    }
    return Status::Ok();
  }
  if (header_.version_minor < 2) return SectionError(StatusCode::kInvalidValue, "model detail section in a 1.1 image", index);
  if (section_bytes_[index].size() != sizeof(ModelDetail)) {
    return SectionError(StatusCode::kShapeMismatch, "model detail section is not 320 bytes", index);
  }
  if (Status s = CheckSectionCrc(index); !s.ok()) return s;
  std::memcpy(&detail_, section_bytes_[index].data(), sizeof detail_);
  if (ReservedMustBeZero() && !AllZero(reinterpret_cast<const uint8_t*>(detail_.reserved), sizeof detail_.reserved)) {
    return SectionError(StatusCode::kInvalidValue, "model detail reserved field is not zero", index);
  }
  return ValidateModelDetail(header_.model, detail_);
}

uint32_t ImageView::SectionOfKind(SectionKind kind) const {
  for (uint32_t i = 0; i < header_.section_count; ++i) {
    if (sections_[i].kind == static_cast<uint8_t>(kind)) return i;
  }
  return kNoSection;
}

Status ImageView::CheckSectionCrc(uint32_t i) const {
  const std::span<const uint8_t> bytes = section_bytes_[i];
  if (Crc32(bytes.data(), bytes.size()) != sections_[i].crc32) {
    return SectionError(StatusCode::kBadChecksum, "section CRC mismatch", i);
  }
  return Status::Ok();
}

TensorEntry ImageView::tensor(uint32_t i) const {
  TensorEntry entry;
  const uint32_t directory = SectionOfKind(SectionKind::kTensorDirectory);
  std::memcpy(&entry, section_bytes_[directory].data() + i * sizeof(TensorEntry), sizeof entry);
  return entry;
}

uint32_t ImageView::FindTensor(const char* name) const {
  for (uint32_t i = 0; i < tensor_count(); ++i) {
    if (NamesEqual(tensor(i).name, name)) return i;
  }
  return tensor_count();
}

std::span<const uint8_t> ImageView::blob(const BlobRef& ref) const {
  if (ref.section == kNoSection) return {};
  return section_bytes_[ref.section].subspan(ref.offset, ref.length);
}

uint32_t ImageView::WindowBytes(Window window) const {
  uint32_t end = window == Window::kMram ? BootRecordSize(header_.section_count) : 0;
  for (uint32_t i = 0; i < header_.section_count; ++i) {
    const SectionEntry& s = sections_[i];
    if (s.window == static_cast<uint8_t>(window) && s.window_offset + s.length > end) end = s.window_offset + s.length;
  }
  return end;
}

Status ImageView::ValidateTensors() const {
  const uint32_t directory = SectionOfKind(SectionKind::kTensorDirectory);
  if (Status s = CheckSectionCrc(directory); !s.ok()) return s;
  for (uint32_t i = 0; i < tensor_count(); ++i) {
    if (Status s = ValidateTensor(i); !s.ok()) return s;
  }
  for (uint32_t i = 0; i < tensor_count(); ++i) {
    const TensorRequirement required = RequiredTensor(header_.model, detail_, i);
    const TensorEntry t = tensor(i);
    if (!NamesEqual(t.name, required.name)) return TensorError(StatusCode::kMissing, "tensor missing or out of order", i);
    if (t.rows != required.rows || t.cols != required.cols) {
      return TensorError(StatusCode::kShapeMismatch, "tensor shape does not match the model config", i);
    }
    if (!required.is_matrix && t.scheme != static_cast<uint8_t>(Scheme::kF32)) {
      return TensorError(StatusCode::kInvalidValue, "norms, biases and SSM vectors must be f32", i);
    }
  }
  return Status::Ok();
}

Status ImageView::ValidateTensor(uint32_t i) const {
  const TensorEntry t = tensor(i);
  if (t.name[0] == '\0') return TensorError(StatusCode::kInvalidValue, "tensor has an empty name", i);
  uint32_t name_length = 0;
  while (name_length < kTensorNameSize && t.name[name_length] != '\0') ++name_length;
  if (name_length == kTensorNameSize) return TensorError(StatusCode::kInvalidValue, "tensor name is not NUL-terminated", i);
  if (!AllZero(reinterpret_cast<const uint8_t*>(t.name) + name_length, kTensorNameSize - name_length)) {
    return TensorError(StatusCode::kInvalidValue, "tensor name padding is not zero", i);
  }
  if (ReservedMustBeZero() && t.reserved1 != 0) return TensorError(StatusCode::kInvalidValue, "reserved tensor fields are not zero", i);
  const bool split = t.scheme == static_cast<uint8_t>(Scheme::kSplit);
  if (!split && t.outlier_bits != 0) return TensorError(StatusCode::kInvalidValue, "outlier bits set on a scheme without them", i);
  if (t.rows == 0 || t.cols == 0) return TensorError(StatusCode::kInvalidValue, "tensor has a zero dimension", i);

  // Each blob must lie inside a section of the kind its role requires.
  auto check_blob = [&](const BlobRef& ref, uint64_t expected_length, SectionKind kind,
                        SectionKind alt_kind) -> Status {
    if (expected_length == 0) {
      if (ref.section != kNoSection || ref.offset != 0 || ref.length != 0) {
        return TensorError(StatusCode::kInvalidValue, "tensor references a blob its scheme does not use", i);
      }
      return Status::Ok();
    }
    if (ref.section >= header_.section_count) return TensorError(StatusCode::kOutOfBounds, "tensor blob names no section", i);
    const uint8_t section_kind = sections_[ref.section].kind;
    if (section_kind != static_cast<uint8_t>(kind) && section_kind != static_cast<uint8_t>(alt_kind)) {
      return TensorError(StatusCode::kInvalidValue, "tensor blob lies in the wrong kind of section", i);
    }
    if (ref.length != expected_length) return TensorError(StatusCode::kShapeMismatch, "tensor blob length does not match its shape", i);
    if (ref.offset % kBlobAlignment != 0) return TensorError(StatusCode::kInvalidValue, "tensor blob is not 16-byte aligned", i);
    if (static_cast<uint64_t>(ref.offset) + ref.length > sections_[ref.section].length) {
      return TensorError(StatusCode::kOutOfBounds, "tensor blob extends past its section", i);
    }
    return Status::Ok();
  };

  const uint64_t count = static_cast<uint64_t>(t.rows) * t.cols;
  uint64_t data_length = 0, scales_length = 0, outliers_length = 0;
  SectionKind data_kind = SectionKind::kInlierCodes, data_alt = SectionKind::kInlierCodes;
  switch (static_cast<Scheme>(t.scheme)) {
    case Scheme::kF32:
    case Scheme::kF16: {
      const uint8_t bits = t.scheme == static_cast<uint8_t>(Scheme::kF32) ? 32 : 16;
      if (t.bits != bits || t.cell_bits != 0 || t.group_size != 0) {
        return TensorError(StatusCode::kInvalidValue, "dense tensor has wrong bits, cell bits or group size", i);
      }
      if (t.outlier_count != 0) return TensorError(StatusCode::kInvalidValue, "dense tensor carries outliers", i);
      data_length = count * (bits / 8);
      data_kind = SectionKind::kDenseWeights;
      data_alt = SectionKind::kParams;
      break;
    }
    case Scheme::kGroupAffine:
    case Scheme::kMxInt4: {
      const bool mx = t.scheme == static_cast<uint8_t>(Scheme::kMxInt4);
      if (mx ? t.bits != 4 : (t.bits < 2 || t.bits > 4)) return TensorError(StatusCode::kInvalidValue, "unsupported code bits", i);
      if (t.cell_bits < 1 || t.cell_bits > 3) return TensorError(StatusCode::kInvalidValue, "unsupported cell bits", i);
      if (mx ? t.group_size != quant::kMxBlock : t.group_size == 0) {
        return TensorError(StatusCode::kInvalidValue, "invalid group size", i);
      }
      data_length = static_cast<uint64_t>(t.rows) * quant::WordsPerRow(t.cols, t.bits, t.cell_bits) * 4u;
      scales_length = static_cast<uint64_t>(t.rows) * quant::GroupsPerRow(t.cols, t.group_size) * (mx ? 1u : 4u);
      if (t.outlier_count != 0) {
        if (mx) return TensorError(StatusCode::kInvalidValue, "MX tensors carry no outliers", i);
        if (t.cols > kMaxOutlierColumns) return TensorError(StatusCode::kTooLarge, "too many columns for u16 outlier indices", i);
        if (t.outlier_count > count) return TensorError(StatusCode::kInvalidValue, "more outliers than weights", i);
        outliers_length = (static_cast<uint64_t>(t.rows) + 1u) * 4u + static_cast<uint64_t>(t.outlier_count) * 4u;
      }
      break;
    }
    case Scheme::kSplit: {
      if (t.bits < 2 || t.bits > 4) return TensorError(StatusCode::kInvalidValue, "unsupported code bits", i);
      if (t.cell_bits < 1 || t.cell_bits > 3) return TensorError(StatusCode::kInvalidValue, "unsupported cell bits", i);
      if (t.outlier_bits < quant::kMinOutlierBits || t.outlier_bits > quant::kMaxOutlierBits) {
        return TensorError(StatusCode::kInvalidValue, "unsupported outlier bits", i);
      }
      if (t.group_size == 0) return TensorError(StatusCode::kInvalidValue, "invalid group size", i);
      if (t.outlier_count > count) return TensorError(StatusCode::kInvalidValue, "more outliers than weights", i);
      data_length = quant::SplitDataBytes(t.rows, t.cols, t.outlier_count, t.bits, t.cell_bits);
      scales_length = quant::SplitScalesBytes(t.rows, t.cols, t.group_size);
      outliers_length = quant::SplitOutliersBytes(t.rows, t.cols, t.outlier_count, t.outlier_bits);
      break;
    }
    default:
      return TensorError(StatusCode::kInvalidValue,
                         ReservedMustBeZero() ? "unknown tensor scheme"
                                              : "tensor scheme from a later minor version, unknown to this reader",
                         i);
  }
  if (data_length > 0xFFFFFFFFu || scales_length > 0xFFFFFFFFu || outliers_length > 0xFFFFFFFFu) {
    return TensorError(StatusCode::kTooLarge, "tensor is too large for the image format", i);
  }
  if (Status s = check_blob(t.data, data_length, data_kind, data_alt); !s.ok()) return s;
  if (Status s = check_blob(t.scales, scales_length, SectionKind::kParams, SectionKind::kParams); !s.ok()) return s;
  if (Status s = check_blob(t.outliers, outliers_length, SectionKind::kParams, SectionKind::kParams); !s.ok()) return s;
  if (split) return ValidateSplitIndex(t, i);
  if (t.outlier_count == 0) return Status::Ok();

  // The outlier CSR: row starts ascend to the count; columns ascend within a row.
  const std::span<const uint8_t> csr = blob(t.outliers);
  const uint8_t* row_start = csr.data();
  const uint8_t* entries = csr.data() + (t.rows + 1u) * 4u;
  if (LoadU32(row_start) != 0) return TensorError(StatusCode::kInvalidValue, "outlier table does not start at 0", i);
  for (uint32_t r = 0; r < t.rows; ++r) {
    const uint32_t begin = LoadU32(row_start + r * 4u);
    const uint32_t end = LoadU32(row_start + (r + 1u) * 4u);
    if (end < begin || end > t.outlier_count) return TensorError(StatusCode::kInvalidValue, "outlier row starts out of order", i);
    for (uint32_t k = begin; k < end; ++k) {
      const uint32_t col = LoadU16(entries + k * 4u);
      if (col >= t.cols) return TensorError(StatusCode::kOutOfBounds, "outlier column out of range", i);
      if (k > begin && col <= LoadU16(entries + (k - 1u) * 4u)) {
        return TensorError(StatusCode::kInvalidValue, "outlier columns not ascending", i);
      }
      if ((LoadU16(entries + k * 4u + 2u) & 0x7C00u) == 0x7C00u) {
        return TensorError(StatusCode::kInvalidValue, "outlier value is not finite", i);
      }
    }
  }
  if (LoadU32(row_start + t.rows * 4u) != t.outlier_count) {
    return TensorError(StatusCode::kInvalidValue, "outlier table does not end at the outlier count", i);
  }
  return Status::Ok();
}

// The split index: row starts ascend to the count, each row's bitmap holds
// exactly its outliers and no bit past the last column. Data may be zero
// length (every weight an outlier), so its blob may be absent.
Status ImageView::ValidateSplitIndex(const TensorEntry& t, uint32_t i) const {
  const uint8_t* index = blob(t.outliers).data();
  const uint8_t* bitmap = index + quant::SplitBitmapOffset(t.rows);
  const uint32_t words = quant::BitmapWordsPerRow(t.cols);
  const uint32_t tail_bits = t.cols % 32u;
  if (LoadU32(index) != 0) return TensorError(StatusCode::kInvalidValue, "outlier table does not start at 0", i);
  for (uint32_t r = 0; r < t.rows; ++r) {
    const uint32_t begin = LoadU32(index + r * 4u);
    const uint32_t end = LoadU32(index + (r + 1u) * 4u);
    if (end < begin || end > t.outlier_count) return TensorError(StatusCode::kInvalidValue, "outlier row starts out of order", i);
    uint32_t set = 0;
    for (uint32_t w = 0; w < words; ++w) set += static_cast<uint32_t>(__builtin_popcount(LoadU32(bitmap + (static_cast<size_t>(r) * words + w) * 4u)));
    if (set != end - begin) return TensorError(StatusCode::kInvalidValue, "outlier bitmap does not match the row starts", i);
    if (tail_bits != 0 && (LoadU32(bitmap + (static_cast<size_t>(r) * words + words - 1u) * 4u) >> tail_bits) != 0) {
      return TensorError(StatusCode::kOutOfBounds, "outlier bitmap marks a column past the row", i);
    }
  }
  if (LoadU32(index + t.rows * 4u) != t.outlier_count) {
    return TensorError(StatusCode::kInvalidValue, "outlier table does not end at the outlier count", i);
  }
  return Status::Ok();
}

Status ImageView::ValidateTokenizer() const {
  const uint32_t index = SectionOfKind(SectionKind::kTokenizer);
  const std::span<const uint8_t> bytes = section_bytes_[index];
  if (bytes.size() >= 4 && LoadU32(bytes.data()) == bpe::kMagic && header_.version_minor < 2) {
    return SectionError(StatusCode::kInvalidValue, "BPE tokenizer section in a 1.1 image", index);
  }
  if (Status s = Tokenizer::Validate(bytes, header_.model.vocab_size); !s.ok()) return SectionError(s.code, s.what, index);
  return Status::Ok();
}

Status ImageView::Validate() const {
  for (uint32_t i = 0; i < header_.section_count; ++i) {
    if (Status s = CheckSectionCrc(i); !s.ok()) return s;
  }
  if (Status s = ValidateTensors(); !s.ok()) return s;
  return ValidateTokenizer();
}

}  // namespace qmc::image
