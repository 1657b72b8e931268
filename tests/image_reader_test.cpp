#include "common/image_reader.h"

#include <gtest/gtest.h>

#include <cstddef>
#include <cstring>
#include <string>
#include <utility>

#include "common/crc32.h"
#include "common/dequantize.h"
#include "common/model_tensors.h"
#include "common/split_layout.h"
#include "host/pack.h"
#include "tests/tiny_model.h"

namespace qmc::image {
namespace {

std::vector<uint8_t> TinyImage(host::QuantOptions options = {}) {
  return host::PackModel(testing::TinyCheckpoint(), options).image;
}

Header ReadHeader(const std::vector<uint8_t>& image) {
  Header h;
  std::memcpy(&h, image.data(), sizeof h);
  return h;
}

SectionEntry ReadSection(const std::vector<uint8_t>& image, uint32_t i) {
  SectionEntry s;
  std::memcpy(&s, image.data() + sizeof(Header) + i * sizeof(SectionEntry), sizeof s);
  return s;
}

void WriteSection(std::vector<uint8_t>& image, uint32_t i, const SectionEntry& s) {
  std::memcpy(image.data() + sizeof(Header) + i * sizeof(SectionEntry), &s, sizeof s);
}

// Re-seals the header so a crafted change reaches the checks past the CRC.
void Reseal(std::vector<uint8_t>& image) {
  Header h = ReadHeader(image);
  std::vector<SectionEntry> table(h.section_count);
  std::memcpy(table.data(), image.data() + sizeof(Header), table.size() * sizeof(SectionEntry));
  h.header_crc = HeaderCrc(h, table.data());
  std::memcpy(image.data(), &h, sizeof h);
}

uint32_t SectionIndex(const std::vector<uint8_t>& image, SectionKind kind) {
  for (uint32_t i = 0; i < ReadHeader(image).section_count; ++i) {
    if (ReadSection(image, i).kind == static_cast<uint8_t>(kind)) return i;
  }
  return kNoSection;
}

// Edits tensor `t` of the directory and re-seals the directory's CRC and the header.
void EditTensor(std::vector<uint8_t>& image, uint32_t t, void (*edit)(TensorEntry&)) {
  const uint32_t d = SectionIndex(image, SectionKind::kTensorDirectory);
  SectionEntry s = ReadSection(image, d);
  TensorEntry e;
  std::memcpy(&e, image.data() + s.file_offset + t * sizeof(TensorEntry), sizeof e);
  edit(e);
  std::memcpy(image.data() + s.file_offset + t * sizeof(TensorEntry), &e, sizeof e);
  s.crc32 = Crc32(image.data() + s.file_offset, s.length);
  WriteSection(image, d, s);
  Reseal(image);
}

TEST(ImageReader, PackedImageValidates) {
  const std::vector<uint8_t> image = TinyImage();
  const Result<ImageView> view = ImageView::OpenFile(image);
  ASSERT_TRUE(view.ok()) << view.status().what;
  EXPECT_TRUE(view.value().Validate().ok()) << view.value().Validate().what;
  EXPECT_EQ(view.value().header().tensor_count, RequiredTensorCount(view.value().model(), view.value().detail()));
  EXPECT_LT(view.value().FindTensor("blk.1.ffn_down.weight"), view.value().tensor_count());
  EXPECT_EQ(view.value().FindTensor("blk.2.ffn_down.weight"), view.value().tensor_count());
}

TEST(ImageReader, HeaderLayoutIsPinned) {
  const std::vector<uint8_t> image = TinyImage();
  EXPECT_EQ(std::memcmp(image.data(), "QMCI", 4), 0);
  uint16_t version;
  std::memcpy(&version, image.data() + 4, 2);
  EXPECT_EQ(version, 1);
  uint32_t dim;
  std::memcpy(&dim, image.data() + 32 + 4, 4);  // model.dim
  EXPECT_EQ(dim, 40u);
  uint32_t crc;
  std::memcpy(&crc, image.data() + 124, 4);
  const Header h = ReadHeader(image);
  std::vector<uint8_t> covered(image.begin(), image.begin() + 124);
  covered.insert(covered.end(), image.begin() + 128, image.begin() + 128 + h.section_count * 24);
  EXPECT_EQ(crc, Crc32(covered.data(), covered.size()));
}

TEST(ImageReader, RejectsEverySingleByteCorruptionOfHeaderAndTable) {
  const std::vector<uint8_t> image = TinyImage();
  const uint32_t record = BootRecordSize(ReadHeader(image).section_count);
  std::vector<uint8_t> bad = image;
  for (uint32_t pos = 0; pos < record; ++pos) {
    for (int delta = 1; delta < 256; ++delta) {
      bad[pos] = static_cast<uint8_t>(image[pos] ^ delta);
      ASSERT_FALSE(ImageView::OpenFile(bad).ok()) << "byte " << pos << " xor " << delta;
    }
    bad[pos] = image[pos];
  }
}

TEST(ImageReader, NamesTheCorruptSection) {
  std::vector<uint8_t> image = TinyImage();
  const uint32_t params = SectionIndex(image, SectionKind::kParams);
  image[ReadSection(image, params).file_offset + 5] ^= 0x10;
  const Result<ImageView> view = ImageView::OpenFile(image);
  ASSERT_TRUE(view.ok());
  const Status s = view.value().Validate();
  EXPECT_EQ(s.code, StatusCode::kBadChecksum);
  EXPECT_EQ(s.subject, Subject::kSection);
  EXPECT_EQ(s.index, params);
}

TEST(ImageReader, RejectsTruncatedAndExtendedFiles) {
  const std::vector<uint8_t> image = TinyImage();
  for (size_t size : {size_t{0}, size_t{10}, size_t{127}, size_t{200}, image.size() - 1}) {
    const std::vector<uint8_t> cut(image.begin(), image.begin() + static_cast<long>(size));
    const Result<ImageView> view = ImageView::OpenFile(cut);
    ASSERT_FALSE(view.ok());
    EXPECT_EQ(view.status().code, StatusCode::kTruncated) << size;
  }
  std::vector<uint8_t> longer = image;
  longer.push_back(0);
  EXPECT_FALSE(ImageView::OpenFile(longer).ok());
}

TEST(ImageReader, RejectsSectionPastTheEnd) {
  std::vector<uint8_t> image = TinyImage();
  const uint32_t last = ReadHeader(image).section_count - 1;
  SectionEntry s = ReadSection(image, last);
  s.length += 64;
  WriteSection(image, last, s);
  Reseal(image);
  const Result<ImageView> view = ImageView::OpenFile(image);
  ASSERT_FALSE(view.ok());
  EXPECT_EQ(view.status().code, StatusCode::kOutOfBounds);
  EXPECT_EQ(view.status().index, last);
}

TEST(ImageReader, RejectsOverlappingSections) {
  std::vector<uint8_t> image = TinyImage();
  SectionEntry s = ReadSection(image, 1);
  s.file_offset = ReadSection(image, 0).file_offset;
  WriteSection(image, 1, s);
  Reseal(image);
  const Result<ImageView> view = ImageView::OpenFile(image);
  ASSERT_FALSE(view.ok());
  EXPECT_EQ(view.status().code, StatusCode::kOverlap);
}

TEST(ImageReader, RejectsSectionInTheWrongWindow) {
  std::vector<uint8_t> image = TinyImage();
  const uint32_t codes = SectionIndex(image, SectionKind::kInlierCodes);
  SectionEntry s = ReadSection(image, codes);
  s.window = static_cast<uint8_t>(Window::kSram);
  WriteSection(image, codes, s);
  Reseal(image);
  EXPECT_EQ(ImageView::OpenFile(image).status().code, StatusCode::kInvalidValue);
}

struct TensorCorruption {
  const char* label;
  void (*edit)(TensorEntry&);
  StatusCode expected;
};

class ImageReaderTensorTest : public ::testing::TestWithParam<TensorCorruption> {};

TEST_P(ImageReaderTensorTest, RejectsCraftedDirectoryEntry) {
  std::vector<uint8_t> image = TinyImage();
  const uint32_t q = 2;  // blk.0.attn_q.weight, a quantized matrix with outliers
  EditTensor(image, q, GetParam().edit);
  const Result<ImageView> view = ImageView::OpenFile(image);
  ASSERT_TRUE(view.ok()) << view.status().what;
  const Status s = view.value().Validate();
  EXPECT_EQ(s.code, GetParam().expected) << s.what;
  EXPECT_EQ(s.subject, Subject::kTensor);
  EXPECT_EQ(s.index, q);
}

INSTANTIATE_TEST_SUITE_P(
    Corruptions, ImageReaderTensorTest,
    ::testing::Values(
        TensorCorruption{"rows", [](TensorEntry& e) { e.rows += 1; }, StatusCode::kShapeMismatch},
        TensorCorruption{"codes_length", [](TensorEntry& e) { e.data.length -= 4; }, StatusCode::kShapeMismatch},
        TensorCorruption{"codes_offset", [](TensorEntry& e) { e.data.offset = 0x7FFFFFF0u; }, StatusCode::kOutOfBounds},
        TensorCorruption{"misaligned", [](TensorEntry& e) { e.scales.offset += 4; }, StatusCode::kInvalidValue},
        TensorCorruption{"bits", [](TensorEntry& e) { e.bits = 5; }, StatusCode::kInvalidValue},
        TensorCorruption{"cell_bits", [](TensorEntry& e) { e.cell_bits = 4; }, StatusCode::kInvalidValue},
        TensorCorruption{"scheme", [](TensorEntry& e) { e.scheme = 9; }, StatusCode::kInvalidValue},
        TensorCorruption{"section", [](TensorEntry& e) { e.scales.section = 7; }, StatusCode::kOutOfBounds},
        TensorCorruption{"name", [](TensorEntry& e) { e.name[0] = 'x'; }, StatusCode::kMissing},
        TensorCorruption{"unterminated", [](TensorEntry& e) { std::memset(e.name, 'a', sizeof e.name); },
                         StatusCode::kInvalidValue},
        TensorCorruption{"outlier_count", [](TensorEntry& e) { e.outlier_count += 1; }, StatusCode::kShapeMismatch}),
    [](const ::testing::TestParamInfo<TensorCorruption>& info) { return std::string(info.param.label); });

// Found by image_reader_fuzz: a dense tensor claiming outliers had no
// outlier blob, and the CSR check read row starts through a null pointer.
TEST(ImageReader, RejectsADenseTensorWithOutliers) {
  std::vector<uint8_t> image = TinyImage();
  const ImageView view = ImageView::OpenFile(image).value();
  uint32_t dense = view.tensor_count();
  for (uint32_t i = 0; i < view.tensor_count() && dense == view.tensor_count(); ++i) {
    if (view.tensor(i).scheme == static_cast<uint8_t>(qmc::image::Scheme::kF32)) dense = i;
  }
  ASSERT_LT(dense, view.tensor_count()) << "the tiny image has no f32 tensor";
  EditTensor(image, dense, [](TensorEntry& e) { e.outlier_count = 3; });
  const Result<ImageView> edited = ImageView::OpenFile(image);
  ASSERT_TRUE(edited.ok()) << edited.status().what;
  const Status s = edited.value().Validate();
  EXPECT_EQ(s.code, StatusCode::kInvalidValue) << s.what;
  EXPECT_EQ(s.index, dense);
}

TEST(ImageReader, RejectsCorruptOutlierTable) {
  std::vector<uint8_t> image = TinyImage();
  const Result<ImageView> view = ImageView::OpenFile(image);
  ASSERT_TRUE(view.ok());
  const TensorEntry t = view.value().tensor(2);
  ASSERT_GT(t.outlier_count, 0u);
  // Point the first outlier's column past the row.
  const uint32_t params = t.outliers.section;
  SectionEntry s = ReadSection(image, params);
  const size_t entry = s.file_offset + t.outliers.offset + (t.rows + 1u) * 4u;
  const uint16_t bad_col = static_cast<uint16_t>(t.cols);
  std::memcpy(image.data() + entry, &bad_col, 2);
  s.crc32 = Crc32(image.data() + s.file_offset, s.length);
  WriteSection(image, params, s);
  Reseal(image);
  const Result<ImageView> again = ImageView::OpenFile(image);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again.value().Validate().code, StatusCode::kOutOfBounds);
}

host::QuantOptions SplitOptions() {
  host::QuantOptions o;
  o.outlier_ratio = 0.3;
  o.outlier_bits = 5;
  o.group_size = host::kPerChannel;
  return o;
}

// Rewrites one u32 of tensor 2's outliers blob (the split index) and reseals
// the section and the boot record, so only the index checks can object.
std::vector<uint8_t> WithSplitIndexWord(uint64_t byte_offset, uint32_t (*edit)(uint32_t)) {
  std::vector<uint8_t> image = TinyImage(SplitOptions());
  const TensorEntry t = ImageView::OpenFile(image).value().tensor(2);
  SectionEntry s = ReadSection(image, t.outliers.section);
  uint8_t* word = image.data() + s.file_offset + t.outliers.offset + byte_offset;
  uint32_t v;
  std::memcpy(&v, word, 4);
  v = edit(v);
  std::memcpy(word, &v, 4);
  s.crc32 = Crc32(image.data() + s.file_offset, s.length);
  WriteSection(image, t.outliers.section, s);
  Reseal(image);
  return image;
}

TEST(ImageReader, SplitImageValidatesAndRejectsABadIndex) {
  const std::vector<uint8_t> good = TinyImage(SplitOptions());
  const ImageView view = ImageView::OpenFile(good).value();
  ASSERT_TRUE(view.Validate().ok()) << view.Validate().what;
  const TensorEntry t = view.tensor(2);
  ASSERT_EQ(t.scheme, static_cast<uint8_t>(Scheme::kSplit));
  const uint64_t bitmap = quant::SplitBitmapOffset(t.rows);
  struct Case {
    const char* label;
    uint64_t offset;
    uint32_t (*edit)(uint32_t);
    StatusCode expected;
  };
  const uint32_t last_word = quant::BitmapWordsPerRow(t.cols) - 1u;
  const Case cases[] = {
      {"a bitmap bit moved off an outlier", bitmap, [](uint32_t v) { return v ^ (v & (0u - v)); }, StatusCode::kInvalidValue},
      {"row start out of order", 4u, [](uint32_t v) { return v + 1000u; }, StatusCode::kInvalidValue},
      {"first row start", 0u, [](uint32_t v) { return v + 1u; }, StatusCode::kInvalidValue},
  };
  for (const Case& c : cases) {
    const std::vector<uint8_t> bad = WithSplitIndexWord(c.offset, c.edit);
    const Result<ImageView> opened = ImageView::OpenFile(bad);
    ASSERT_TRUE(opened.ok());
    const Status st = opened.value().Validate();
    EXPECT_EQ(st.code, c.expected) << c.label << ": " << st.what;
    EXPECT_EQ(st.index, 2u) << c.label;
  }
  // A column past the row: the bitmap's last word of row 0 gains a bit above cols (and one is cleared to keep the count).
  if (t.cols % 32u != 0) {
    std::vector<uint8_t> bad = TinyImage(SplitOptions());
    const SectionEntry s = ReadSection(bad, t.outliers.section);
    uint8_t* word = bad.data() + s.file_offset + t.outliers.offset + bitmap + last_word * 4u;
    uint32_t v;
    std::memcpy(&v, word, 4);
    ASSERT_NE(v, 0u) << "the test wants an outlier in row 0's last bitmap word";
    v = (v & (v - 1u)) | 0x80000000u;
    std::memcpy(word, &v, 4);
    SectionEntry resealed = s;
    resealed.crc32 = Crc32(bad.data() + s.file_offset, s.length);
    WriteSection(bad, t.outliers.section, resealed);
    Reseal(bad);
    EXPECT_EQ(ImageView::OpenFile(bad).value().Validate().code, StatusCode::kOutOfBounds);
  }
  // Fields: outlier bits outside 4..8, or set on another scheme.
  std::vector<uint8_t> wide = good;
  EditTensor(wide, 2, [](TensorEntry& e) { e.outlier_bits = 9; });
  EXPECT_EQ(ImageView::OpenFile(wide).value().Validate().code, StatusCode::kInvalidValue);
  std::vector<uint8_t> stray = TinyImage();
  EditTensor(stray, 2, [](TensorEntry& e) { e.outlier_bits = 5; });
  EXPECT_EQ(ImageView::OpenFile(stray).value().Validate().code, StatusCode::kInvalidValue);
}

TEST(ImageReader, PresetNameMustBeNulPadded) {
  host::QuantOptions o = SplitOptions();
  o.preset = "paper-3mlc";
  std::vector<uint8_t> image = TinyImage(o);
  EXPECT_STREQ(ImageView::OpenFile(image).value().header().preset, "paper-3mlc");
  image[offsetof(Header, preset) + 12] = 'x';  // past the NUL after the name
  Reseal(image);
  EXPECT_EQ(ImageView::OpenFile(image).status().code, StatusCode::kInvalidValue);
}

// Writes `edit`ed model-detail bytes back with their section CRC and the header resealed.
std::vector<uint8_t> WithDetail(void (*edit)(ModelDetail&)) {
  std::vector<uint8_t> image = TinyImage();
  const uint32_t index = SectionIndex(image, SectionKind::kModelDetail);
  SectionEntry s = ReadSection(image, index);
  ModelDetail d;
  std::memcpy(&d, image.data() + s.file_offset, sizeof d);
  edit(d);
  std::memcpy(image.data() + s.file_offset, &d, sizeof d);
  s.crc32 = Crc32(image.data() + s.file_offset, s.length);
  WriteSection(image, index, s);
  Reseal(image);
  return image;
}

TEST(ImageReader, ModelDetailSectionHoldsTheDefaultsByteForByte) {
  const std::vector<uint8_t> image = TinyImage();
  const uint32_t index = SectionIndex(image, SectionKind::kModelDetail);
  ASSERT_NE(index, kNoSection);
  const SectionEntry s = ReadSection(image, index);
  EXPECT_EQ(s.window, static_cast<uint8_t>(Window::kMram));
  ASSERT_EQ(s.length, 320u);
  const ModelConfig c = ReadHeader(image).model;  // head_dim 10, 2 layers
  const uint8_t* p = image.data() + s.file_offset;
  auto u32 = [p](size_t at) {
    uint32_t v;
    std::memcpy(&v, p + at, 4);
    return v;
  };
  EXPECT_EQ(u32(0), c.head_dim);   // rope_dims
  EXPECT_EQ(u32(4), 0u);           // no RoPE scaling
  EXPECT_EQ(u32(24), c.head_dim);  // value_head_dim
  for (size_t at : {8, 12, 16, 20, 28, 32, 36, 40, 44, 48, 52, 56, 60}) EXPECT_EQ(u32(at), 0u) << at;
  for (uint32_t l = 0; l < 128; ++l) {
    EXPECT_EQ(p[64 + l], l < c.n_layers ? kLayerGlobalAttention : 0) << l;
    EXPECT_EQ(p[192 + l], l < c.n_layers ? l : 0) << l;
  }
  EXPECT_EQ(ImageView::OpenFile(image).value().detail().rope_dims, c.head_dim);
}

TEST(ImageReader, RejectsAnInconsistentModelDetail) {
  struct Case {
    const char* what;
    void (*edit)(ModelDetail&);
  };
  const Case cases[] = {
      {"odd rope_dims", [](ModelDetail& d) { d.rope_dims = 3; }},
      {"rope_dims past head_dim", [](ModelDetail& d) { d.rope_dims = 12; }},
      {"unknown scaling", [](ModelDetail& d) { d.rope_scaling = 2; }},
      {"llama3 without factors", [](ModelDetail& d) { d.rope_scaling = 1; }},
      {"SSM outside Hymba", [](ModelDetail& d) { d.ssm_inner = 8; }},
      {"KV sharing outside Hymba", [](ModelDetail& d) { d.kv_source[1] = 0; }},
      {"a later KV source", [](ModelDetail& d) { d.kv_source[0] = 1; }},
      {"a layer past n_layers", [](ModelDetail& d) { d.layer_flags[2] = 1; }},
      {"unknown layer flag", [](ModelDetail& d) { d.layer_flags[0] = 2; }},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(ImageView::OpenFile(WithDetail(c.edit)).status().code, StatusCode::kInvalidValue) << c.what;
  }
  // A valid llama3 scaling opens; a corrupt section is caught by its CRC as the image opens.
  EXPECT_TRUE(ImageView::OpenFile(WithDetail([](ModelDetail& d) {
                d.rope_scaling = 1;
                d.rope_factor = 8.0f;
                d.rope_low_freq_factor = 1.0f;
                d.rope_high_freq_factor = 4.0f;
                d.rope_original_context = 8;
              })).ok());
  std::vector<uint8_t> image = TinyImage();
  image[ReadSection(image, SectionIndex(image, SectionKind::kModelDetail)).file_offset] ^= 1;
  EXPECT_EQ(ImageView::OpenFile(image).status().code, StatusCode::kBadChecksum);
}

// docs/image-format.md, version_minor: reserved bytes are zero in an image of
// a minor this reader knows; a later minor may give them a meaning, which this
// reader ignores, and a value it added is refused as that minor's.
uint32_t AMatrix() { return ImageView::OpenFile(TinyImage()).value().FindTensor("blk.1.ffn_down.weight"); }

std::vector<uint8_t> WithMinor(std::vector<uint8_t> image, uint16_t minor) {
  Header h = ReadHeader(image);
  h.version_minor = minor;
  std::memcpy(image.data(), &h, sizeof h);
  Reseal(image);
  return image;
}

TEST(ImageReader, ALaterMinorMayGiveReservedBytesAMeaning) {
  using Edit = std::vector<uint8_t> (*)(std::vector<uint8_t>);
  const std::pair<const char*, Edit> edits[] = {
      {"header", [](std::vector<uint8_t> image) {
         image[offsetof(Header, reserved) + 5] = 7;
         return image;
       }},
      {"section entry", [](std::vector<uint8_t> image) {
         SectionEntry s = ReadSection(image, 1);
         s.reserved = 1;
         s.reserved2 = 2;
         WriteSection(image, 1, s);
         return image;
       }},
      {"tensor entry", [](std::vector<uint8_t> image) {
         EditTensor(image, AMatrix(), [](TensorEntry& e) { e.reserved1 = 3; });
         return image;
       }},
      {"model detail", [](std::vector<uint8_t>) { return WithDetail([](ModelDetail& d) { d.reserved[2] = 9; }); }},
  };
  for (const auto& [what, edit] : edits) {
    const std::vector<uint8_t> known = WithMinor(edit(TinyImage()), kVersionMinor);
    const Result<ImageView> refused = ImageView::OpenFile(known);
    EXPECT_EQ(refused.ok() ? refused.value().Validate().code : refused.status().code, StatusCode::kInvalidValue) << what;
    const std::vector<uint8_t> later = WithMinor(edit(TinyImage()), kVersionMinor + 1);
    const Result<ImageView> opened = ImageView::OpenFile(later);
    ASSERT_TRUE(opened.ok()) << what << ": " << opened.status().what;
    EXPECT_TRUE(opened.value().Validate().ok()) << what << ": " << opened.value().Validate().what;
  }
  // A scheme value a later minor added: refused, saying so.
  std::vector<uint8_t> image = TinyImage();
  EditTensor(image, AMatrix(), [](TensorEntry& e) { e.scheme = 9; });
  const Result<ImageView> known = ImageView::OpenFile(image);
  ASSERT_TRUE(known.ok());
  EXPECT_STREQ(known.value().Validate().what, "unknown tensor scheme");
  const std::vector<uint8_t> later_image = WithMinor(image, kVersionMinor + 1);  // the view maps it: keep it alive
  const Result<ImageView> later = ImageView::OpenFile(later_image);
  ASSERT_TRUE(later.ok());
  EXPECT_NE(std::string(later.value().Validate().what).find("later minor"), std::string::npos)
      << later.value().Validate().what;
}

TEST(ImageReader, WindowBytesCoverEverySection) {
  const std::vector<uint8_t> image = TinyImage();
  const ImageView view = ImageView::OpenFile(image).value();
  EXPECT_EQ(view.WindowBytes(Window::kSram), 0u);
  EXPECT_GT(view.WindowBytes(Window::kReram), 0u);
  EXPECT_EQ(view.WindowBytes(Window::kDram), 0u);  // qmc keeps no weights in DRAM
  for (uint32_t i = 0; i < view.section_count(); ++i) {
    const SectionEntry& s = view.section(i);
    EXPECT_LE(s.window_offset + s.length, view.WindowBytes(static_cast<Window>(s.window)));
  }
  host::QuantOptions fp16;
  fp16.quantizer = Quantizer::kFp16;
  const std::vector<uint8_t> dense = TinyImage(fp16);
  EXPECT_GT(ImageView::OpenFile(dense).value().WindowBytes(Window::kDram), 0u);
  EXPECT_EQ(ImageView::OpenFile(dense).value().WindowBytes(Window::kReram), 0u);
}

}  // namespace
}  // namespace qmc::image
