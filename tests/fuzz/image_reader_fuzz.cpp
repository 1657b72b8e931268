// libFuzzer target: the image reader and validator (common/image_reader.h)
// on arbitrary bytes, as `qmc inspect` and the device open an image. An
// image that validates must also give its tensors, blobs and tokenizer. Each
// input is checked twice: as it is, and with its CRCs fixed.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <span>
#include <vector>

#include "common/crc32.h"
#include "common/image_reader.h"
#include "common/tokenizer.h"

namespace {

void Check(std::span<const uint8_t> file) {
  using qmc::image::ImageView;
  const qmc::Result<ImageView> opened = ImageView::OpenFile(file);
  if (!opened.ok()) return;
  const ImageView& view = opened.value();
  for (uint32_t w = 0; w < qmc::image::kWindowCount; ++w) view.WindowBytes(static_cast<qmc::image::Window>(w));
  if (!view.Validate().ok()) return;
  for (uint32_t i = 0; i < view.tensor_count(); ++i) {
    const qmc::image::TensorEntry t = view.tensor(i);
    if (view.FindTensor(t.name) > i) std::abort();  // a name found must be this entry or an earlier one
    // The blobs lie inside their sections: touching their ends is in bounds (ASan checks).
    for (const std::span<const uint8_t> blob : {view.blob(t.data), view.blob(t.scales)}) {
      if (blob.empty()) continue;
      volatile uint8_t touch = blob.front();
      touch = blob.back();
    }
  }
  // A validated image's tokenizer, once initialised, encodes (a vocabulary
  // without byte fallback may have no tokens for some of the text).
  constexpr size_t kText = 64;
  std::vector<uint8_t> workspace(qmc::Tokenizer::WorkspaceBytes(view, kText));
  qmc::Tokenizer tokenizer;
  if (!tokenizer.Init(view, workspace, kText).ok()) return;
  std::vector<uint32_t> tokens(tokenizer.MaxTokens(kText));
  const bool bos = tokenizer.bos() != qmc::Tokenizer::kNoToken;
  const qmc::Result<uint32_t> count = tokenizer.Encode("Hello, world.", bos, false, tokens);
  if (count.ok() && count.value() > tokens.size()) std::abort();
}

// `data` with its CRCs made right, as a writer would: each section's CRC
// where the section lies inside the data, then the header CRC.
std::vector<uint8_t> WithCrcsFixed(const uint8_t* data, size_t size) {
  using namespace qmc::image;
  std::vector<uint8_t> image(data, data + size);
  Header header;
  if (size < sizeof header) return image;
  std::memcpy(&header, image.data(), sizeof header);
  if (header.section_count > kMaxSections || size < BootRecordSize(header.section_count)) return image;
  SectionEntry sections[kMaxSections];
  std::memcpy(sections, image.data() + sizeof header, header.section_count * sizeof(SectionEntry));
  for (uint32_t i = 0; i < header.section_count; ++i) {
    SectionEntry& s = sections[i];
    if (s.file_offset <= size && s.length <= size - s.file_offset) s.crc32 = qmc::Crc32(data + s.file_offset, s.length);
  }
  std::memcpy(image.data() + sizeof header, sections, header.section_count * sizeof(SectionEntry));
  header.header_crc = HeaderCrc(header, sections);
  std::memcpy(image.data(), &header, sizeof header);
  return image;
}

}  // namespace

// The input as it is, then with its CRCs fixed: mutations seldom keep a
// CRC right, and without the second pass the checks behind them would go
// unexplored.
extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Check({data, size});
  Check(WithCrcsFixed(data, size));
  return 0;
}
