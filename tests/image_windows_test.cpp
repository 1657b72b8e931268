// ImageView::OpenWindows: an image laid out in memory windows, as a device
// holds it, opens to the same view as the file, and a boot record that
// points outside its windows is refused before anything reads there.
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "common/image_reader.h"
#include "host/pack.h"
#include "tests/tiny_model.h"

namespace qmc::image {
namespace {

struct Placed {
  std::vector<uint8_t> record;
  std::vector<uint8_t> windows[kWindowCount];
  std::span<const uint8_t> spans[kWindowCount];
};

// Every section copied to its window offset, as the flasher places it.
Placed Place(const std::vector<uint8_t>& file) {
  const ImageView view = ImageView::OpenFile(file).value();
  Placed placed;
  placed.record.assign(file.begin(), file.begin() + BootRecordSize(view.section_count()));
  for (uint32_t w = 0; w < kWindowCount; ++w) placed.windows[w].resize(view.WindowBytes(static_cast<Window>(w)));
  for (uint32_t i = 0; i < view.section_count(); ++i) {
    const SectionEntry& s = view.section(i);
    std::memcpy(placed.windows[s.window].data() + s.window_offset, view.section_bytes(i).data(), s.length);
  }
  for (uint32_t w = 0; w < kWindowCount; ++w) placed.spans[w] = placed.windows[w];
  return placed;
}

std::vector<uint8_t> TinyImage() {
  host::QuantOptions options;
  options.embedding = host::EmbeddingMode::kFp16;  // a DRAM section too
  return host::PackModel(testing::TinyCheckpoint(), options).image;
}

TEST(ImageWindows, OpensTheSameImageInPlace) {
  const std::vector<uint8_t> file = TinyImage();
  const ImageView from_file = ImageView::OpenFile(file).value();
  const Placed placed = Place(file);
  ASSERT_GT(placed.windows[static_cast<uint32_t>(Window::kReram)].size(), 0u);
  ASSERT_GT(placed.windows[static_cast<uint32_t>(Window::kDram)].size(), 0u);
  const Result<ImageView> opened = ImageView::OpenWindows(placed.record, placed.spans);
  ASSERT_TRUE(opened.ok()) << opened.status().what;
  const ImageView& view = opened.value();
  ASSERT_TRUE(view.Validate().ok()) << view.Validate().what;
  for (uint32_t i = 0; i < view.section_count(); ++i) {
    const SectionEntry& s = view.section(i);
    EXPECT_EQ(view.section_bytes(i).data(), placed.windows[s.window].data() + s.window_offset);  // in place
    EXPECT_TRUE(std::equal(view.section_bytes(i).begin(), view.section_bytes(i).end(),
                           from_file.section_bytes(i).begin(), from_file.section_bytes(i).end()));
  }
  EXPECT_EQ(std::memcmp(&view.header(), &from_file.header(), sizeof(Header)), 0);
}

TEST(ImageWindows, RefusesSectionsPastTheirWindow) {
  const std::vector<uint8_t> file = TinyImage();
  Placed placed = Place(file);
  for (uint32_t w = 1; w < kWindowCount; ++w) {
    if (placed.spans[w].empty()) continue;
    Placed shorter = placed;
    for (uint32_t v = 0; v < kWindowCount; ++v) shorter.spans[v] = shorter.windows[v];
    shorter.spans[w] = shorter.spans[w].first(shorter.spans[w].size() - 1);
    const Result<ImageView> opened = ImageView::OpenWindows(shorter.record, shorter.spans);
    ASSERT_FALSE(opened.ok()) << w;
    EXPECT_EQ(opened.status().code, StatusCode::kOutOfBounds) << w;
    EXPECT_EQ(opened.status().subject, Subject::kSection) << w;
  }
}

TEST(ImageWindows, RefusesADamagedOrShortBootRecord) {
  const std::vector<uint8_t> file = TinyImage();
  const Placed placed = Place(file);
  for (size_t i = 0; i < placed.record.size(); ++i) {
    std::vector<uint8_t> record = placed.record;
    record[i] ^= 0x01;
    EXPECT_FALSE(ImageView::OpenWindows(record, placed.spans).ok()) << "byte " << i;
  }
  const std::vector<uint8_t> shorter(placed.record.begin(), placed.record.end() - 1);
  EXPECT_EQ(ImageView::OpenWindows(shorter, placed.spans).status().code, StatusCode::kTruncated);
  const std::vector<uint8_t> blank(placed.record.size(), 0);
  EXPECT_EQ(ImageView::OpenWindows(blank, placed.spans).status().code, StatusCode::kBadMagic);
}

}  // namespace
}  // namespace qmc::image
