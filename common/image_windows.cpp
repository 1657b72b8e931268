// ImageView::OpenWindows: the boot-record checks of OpenFile for an image
// that lives in memory windows. The rules are the same (docs/image-format.md)
// except those about the file's layout, replaced by each section lying
// inside its window.
#include <cstring>

#include "common/image_reader.h"
#include "common/model_tensors.h"

namespace qmc::image {
namespace {

bool AllZero(const uint8_t* p, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    if (p[i] != 0) return false;
  }
  return true;
}

bool RangesOverlap(uint64_t a, uint64_t a_len, uint64_t b, uint64_t b_len) { return a < b + b_len && b < a + a_len; }

Window ExpectedWindow(SectionKind kind) {
  switch (kind) {
    case SectionKind::kInlierCodes: return Window::kReram;
    case SectionKind::kDenseWeights: return Window::kDram;
    default: return Window::kMram;
  }
}

}  // namespace

Result<ImageView> ImageView::OpenWindows(std::span<const uint8_t> boot_record,
                                         const std::span<const uint8_t> (&windows)[kWindowCount]) {
  ImageView view;
  Header& h = view.header_;
  if (boot_record.size() < sizeof(Header)) return Error(StatusCode::kTruncated, "boot record is shorter than the image header");
  std::memcpy(&h, boot_record.data(), sizeof h);
  if (h.magic != kMagic) return Error(StatusCode::kBadMagic, "not a QMC image (bad magic)");
  if (h.version_major != kVersionMajor) return Error(StatusCode::kBadVersion, "unsupported image major version");
  if (h.header_size != sizeof(Header)) return Error(StatusCode::kInvalidValue, "header size field is wrong");
  if (h.section_table_offset != h.header_size) return Error(StatusCode::kInvalidValue, "section table does not follow the header");
  if (h.section_count == 0 || h.section_count > kMaxSections) return Error(StatusCode::kInvalidValue, "section count out of range");
  const uint32_t record = BootRecordSize(h.section_count);
  if (boot_record.size() < record) return Error(StatusCode::kTruncated, "boot record ends inside the section table");
  std::memcpy(view.sections_, boot_record.data() + sizeof(Header), h.section_count * sizeof(SectionEntry));
  if (HeaderCrc(h, view.sections_) != h.header_crc) return Error(StatusCode::kBadChecksum, "header CRC mismatch");

  if (!AllZero(h.reserved, sizeof h.reserved)) return Error(StatusCode::kInvalidValue, "reserved header bytes are not zero");
  if (h.quantizer > static_cast<uint32_t>(Quantizer::kMxInt4)) return Error(StatusCode::kInvalidValue, "unknown quantizer");
  if (!(h.outlier_ratio >= 0.0f && h.outlier_ratio < 1.0f)) return Error(StatusCode::kInvalidValue, "outlier ratio out of range");
  if (Status s = ValidateModelConfig(h.model); !s.ok()) return s;
  if (h.tensor_count != RequiredTensorCount(h.model)) {
    return Error(StatusCode::kInvalidValue, "tensor count does not match the model config");
  }

  uint32_t directories = 0, tokenizers = 0;
  for (uint32_t i = 0; i < h.section_count; ++i) {
    const SectionEntry& s = view.sections_[i];
    if (s.kind < static_cast<uint8_t>(SectionKind::kTensorDirectory) ||
        s.kind > static_cast<uint8_t>(SectionKind::kDenseWeights)) {
      return SectionError(StatusCode::kInvalidValue, "unknown section kind", i);
    }
    const auto kind = static_cast<SectionKind>(s.kind);
    if (s.window != static_cast<uint8_t>(ExpectedWindow(kind))) {
      return SectionError(StatusCode::kInvalidValue, "section placed in the wrong memory window", i);
    }
    if (s.reserved != 0 || s.reserved2 != 0) return SectionError(StatusCode::kInvalidValue, "reserved section fields are not zero", i);
    if (s.length == 0) return SectionError(StatusCode::kInvalidValue, "empty section", i);
    if (s.window_offset % kSectionAlignment != 0) return SectionError(StatusCode::kInvalidValue, "section is not 64-byte aligned", i);
    const std::span<const uint8_t> window = windows[s.window];
    if (static_cast<uint64_t>(s.window_offset) + s.length > window.size()) {
      return SectionError(StatusCode::kOutOfBounds, "section extends past the end of its memory window", i);
    }
    if (s.window == static_cast<uint8_t>(Window::kMram) && s.window_offset < record) {
      return SectionError(StatusCode::kOverlap, "section overlaps the boot record in MRAM", i);
    }
    for (uint32_t j = 0; j < i; ++j) {
      const SectionEntry& o = view.sections_[j];
      if (s.window == o.window && RangesOverlap(s.window_offset, s.length, o.window_offset, o.length)) {
        return SectionError(StatusCode::kOverlap, "sections overlap in their window", i);
      }
    }
    directories += kind == SectionKind::kTensorDirectory;
    tokenizers += kind == SectionKind::kTokenizer;
    view.section_bytes_[i] = window.subspan(s.window_offset, s.length);
  }
  if (directories != 1) return Error(StatusCode::kMissing, "image needs exactly one tensor directory section");
  if (tokenizers != 1) return Error(StatusCode::kMissing, "image needs exactly one tokenizer section");
  const uint32_t directory = view.SectionOfKind(SectionKind::kTensorDirectory);
  if (view.sections_[directory].length != h.tensor_count * sizeof(TensorEntry)) {
    return SectionError(StatusCode::kShapeMismatch, "tensor directory size does not match the tensor count", directory);
  }
  return view;
}

}  // namespace qmc::image
