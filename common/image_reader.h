// Validating reader of a QMC image. Every offset and length is bounds-checked
// before it is used; a failure names what is wrong (and which section or
// tensor). The view maps sections in place: nothing is copied.
#pragma once

#include <cstdint>
#include <span>

#include "common/image_format.h"
#include "common/status.h"

namespace qmc::image {

class ImageView {
 public:
  ImageView() = default;

  // Checks the header and section table (structure and header CRC) of an
  // image held whole in memory; section payloads are not read.
  static Result<ImageView> OpenFile(std::span<const uint8_t> file);

  // The same checks for an image placed in memory windows, as a device
  // holds it: `boot_record` is the header and section table (read from MRAM
  // offset 0) and each section maps in place at its offset in
  // windows[section.window], which it must lie inside. File offsets are not
  // checked: a device has no file.
  static Result<ImageView> OpenWindows(std::span<const uint8_t> boot_record,
                                       const std::span<const uint8_t> (&windows)[kWindowCount]);

  const Header& header() const { return header_; }

  // Reserved bytes must be zero in an image of a minor version this reader
  // knows; a later minor may give them a meaning, which this reader ignores.
  bool ReservedMustBeZero() const { return header_.version_minor <= kVersionMinor; }
  const ModelConfig& model() const { return header_.model; }
  // The model-detail section's contents (validated as the image opened), or
  // DefaultDetail(model()) for an image without one.
  const ModelDetail& detail() const { return detail_; }
  uint32_t section_count() const { return header_.section_count; }
  const SectionEntry& section(uint32_t i) const { return sections_[i]; }
  std::span<const uint8_t> section_bytes(uint32_t i) const { return section_bytes_[i]; }

  Status CheckSectionCrc(uint32_t i) const;

  // Checks the tensor directory: every entry's scheme, sizes and blob
  // references, the outlier tables, and that the model's tensors are there
  // with the right shapes. Requires the directory section's CRC to hold.
  Status ValidateTensors() const;

  // Everything: every section CRC, the directory, the tokenizer.
  Status Validate() const;

  uint32_t tensor_count() const { return header_.tensor_count; }
  TensorEntry tensor(uint32_t i) const;  // i < tensor_count(), directory validated
  // Index of the tensor called `name`, or tensor_count() if absent.
  uint32_t FindTensor(const char* name) const;
  std::span<const uint8_t> blob(const BlobRef& ref) const;

  // Bytes each window must provide: the end of its furthest section.
  uint32_t WindowBytes(Window window) const;

 private:
  Status LoadBootRecord(std::span<const uint8_t> record);
  Status CheckSectionPlacement(uint32_t i) const;
  Status LoadDetail();
  Status CheckSectionSet() const;
  Status ValidateTensor(uint32_t i) const;
  Status ValidateTokenizer() const;
  Status ValidateSplitIndex(const TensorEntry& t, uint32_t i) const;
  uint32_t SectionOfKind(SectionKind kind) const;

  Header header_{};
  ModelDetail detail_{};
  SectionEntry sections_[kMaxSections]{};
  std::span<const uint8_t> section_bytes_[kMaxSections]{};
};

// Bytes of the header and section table: what a device stores as the boot record.
constexpr uint32_t BootRecordSize(uint32_t section_count) {
  return static_cast<uint32_t>(sizeof(Header) + section_count * sizeof(SectionEntry));
}

// CRC over the header (less its CRC field) and the section table.
uint32_t HeaderCrc(const Header& header, const SectionEntry* sections);

}  // namespace qmc::image
