#include "host/model_layout.h"

#include <cmath>
#include <cstring>

#include "common/quant_layout.h"
#include "common/split_layout.h"
#include "common/tensor_traffic.h"
#include "host/image_summary.h"

namespace qmc::host {
namespace {

using image::Scheme;
using image::SectionKind;
using image::Window;

uint64_t AlignUp(uint64_t v, uint64_t a) { return (v + a - 1) / a * a; }

// The outliers SelectOutliers picks (host/select_outliers.cpp): round(ρ·n)
// over the tensor, or that many spread over the rows, none past a row's end.
uint64_t OutlierCount(uint32_t rows, uint32_t cols, const QuantOptions& o) {
  const auto n = static_cast<uint32_t>(static_cast<uint64_t>(rows) * cols);
  const auto count = static_cast<uint32_t>(std::llround(o.outlier_ratio * n));
  if (o.balance == OutlierBalance::kTensor) return count;
  const uint32_t per_row = count / rows, extra = count % rows;
  uint64_t total = 0;
  for (uint32_t r = 0; r < rows; ++r) total += std::min(per_row + (r < extra ? 1u : 0u), cols);
  return total;
}

// The directory entry QuantizeTensor's output gives (blob lengths only).
image::TensorEntry EntryFor(const TensorSpec& spec, const QuantOptions& o) {
  image::TensorEntry e{};
  std::memset(&e, 0, sizeof e);
  const size_t name = std::min(spec.name.size(), sizeof e.name - 1);
  std::memcpy(e.name, spec.name.data(), name);
  e.rows = spec.rows;
  e.cols = spec.cols;
  e.data = e.scales = e.outliers = {image::kNoSection, 0, 0};
  const Scheme scheme = SchemeFor(spec, o);
  e.scheme = static_cast<uint8_t>(scheme);
  const uint64_t n = static_cast<uint64_t>(spec.rows) * spec.cols;
  auto length = [](uint64_t bytes) {
    if (bytes > 0xFFFFFFFFu) throw InputError("a tensor too large for the image format's 32-bit blob lengths");
    return image::BlobRef{0, 0, static_cast<uint32_t>(bytes)};
  };
  const uint32_t group = o.group_size == kPerChannel ? spec.cols : o.group_size;
  switch (scheme) {
    case Scheme::kF32:
      e.bits = 32;
      e.data = length(n * 4);
      break;
    case Scheme::kF16:
      e.bits = 16;
      e.data = length(n * 2);
      break;
    case Scheme::kMxInt4:
      e.bits = 4;
      e.cell_bits = static_cast<uint8_t>(o.cell_bits);
      e.group_size = quant::kMxBlock;
      e.data = length(uint64_t{spec.rows} * quant::WordsPerRow(spec.cols, 4, o.cell_bits) * 4);
      e.scales = length(uint64_t{spec.rows} * quant::GroupsPerRow(spec.cols, quant::kMxBlock));
      break;
    case Scheme::kGroupAffine: {
      e.bits = static_cast<uint8_t>(o.bits);
      e.cell_bits = static_cast<uint8_t>(o.cell_bits);
      e.group_size = static_cast<uint16_t>(group);
      e.data = length(uint64_t{spec.rows} * quant::WordsPerRow(spec.cols, o.bits, o.cell_bits) * 4);
      e.scales = length(uint64_t{spec.rows} * quant::GroupsPerRow(spec.cols, group) * 4);
      if (o.quantizer == image::Quantizer::kQmc) {
        e.outlier_count = static_cast<uint32_t>(OutlierCount(spec.rows, spec.cols, o));
        if (e.outlier_count > 0) e.outliers = length((uint64_t{spec.rows} + 1) * 4 + uint64_t{e.outlier_count} * 4);
      }
      break;
    }
    case Scheme::kSplit: {
      e.bits = static_cast<uint8_t>(o.bits);
      e.cell_bits = static_cast<uint8_t>(o.cell_bits);
      e.outlier_bits = static_cast<uint8_t>(o.outlier_bits);
      e.group_size = static_cast<uint16_t>(group);
      e.outlier_count = static_cast<uint32_t>(OutlierCount(spec.rows, spec.cols, o));
      const uint64_t data = quant::SplitDataBytes(spec.rows, spec.cols, e.outlier_count, o.bits, o.cell_bits);
      if (data > 0) e.data = length(data);
      e.scales = length(quant::SplitScalesBytes(spec.rows, spec.cols, group));
      e.outliers = length(quant::SplitOutliersBytes(spec.rows, spec.cols, e.outlier_count, o.outlier_bits));
      break;
    }
  }
  return e;
}

bool HasRowTable(const image::TensorEntry& t) {
  return t.scheme == static_cast<uint8_t>(Scheme::kSplit) ||
         (t.scheme == static_cast<uint8_t>(Scheme::kGroupAffine) && t.outlier_count != 0);
}

// Mean bytes per blob of one row lookup; `before(r)` is row_start[r].
template <typename RowStart>
void MeanRow(LaidTensor& lt, RowStart&& before) {
  const image::TensorEntry& t = lt.entry;
  double data = 0, scales = 0, outliers = 0;
  const bool table = HasRowTable(t);
  for (uint32_t r = 0; r < t.rows; ++r) {
    const BlobTraffic b = RowBlobTraffic(t, r, 1, table ? before(r) : 0, table ? before(r + 1) : 0);
    data += static_cast<double>(b.data);
    scales += static_cast<double>(b.scales);
    outliers += static_cast<double>(b.outliers);
  }
  lt.row_data = data / t.rows;
  lt.row_scales = scales / t.rows;
  lt.row_outliers = outliers / t.rows;
}

void CountMatrix(ModelLayout& layout, const LaidTensor& lt) {
  const image::TensorEntry& t = lt.entry;
  layout.matrix_weights += static_cast<uint64_t>(t.rows) * t.cols;
  layout.matrix_bytes += uint64_t{t.data.length} + t.scales.length + t.outliers.length;
  layout.outliers += t.outlier_count;
  const uint64_t outlier_bits = t.scheme == static_cast<uint8_t>(Scheme::kSplit)
                                    ? uint64_t{t.outlier_count} * t.outlier_bits
                                    : uint64_t{t.outlier_count} * 16u;
  layout.value_bits[static_cast<uint32_t>(lt.outliers_window)] += outlier_bits;
  layout.value_bits[static_cast<uint32_t>(lt.data_window)] += ValueBits(t) - outlier_bits;
}

struct SectionSim {
  SectionKind kind;
  Window window;
  uint64_t bytes = 0;
  void Add(uint64_t length) {
    if (length == 0) return;
    bytes = AlignUp(bytes, image::kBlobAlignment) + length;
  }
};

Window WindowOf(SectionKind kind) {
  switch (kind) {
    case SectionKind::kInlierCodes: return Window::kReram;
    case SectionKind::kDenseWeights: return Window::kDram;
    default: return Window::kMram;
  }
}

}  // namespace

uint64_t ValueBits(const image::TensorEntry& t) {
  const uint64_t n = static_cast<uint64_t>(t.rows) * t.cols;
  if (t.scheme == static_cast<uint8_t>(Scheme::kSplit)) {
    return (n - t.outlier_count) * t.bits + uint64_t{t.outlier_count} * t.outlier_bits;
  }
  return n * t.bits + uint64_t{t.outlier_count} * 16u;
}

uint64_t ModelLayout::TotalValueBits() const {
  uint64_t total = 0;
  for (uint64_t b : value_bits) total += b;
  return total;
}

ModelLayout LayOutModel(const ModelShape& shape, const QuantOptions& options, const std::string& scheme_name) {
  ValidateOptions(options);
  ModelLayout layout;
  layout.shape = shape;
  layout.scheme = scheme_name;
  bool any_codes = false, any_dense = false;
  for (const ShapeTensor& st : shape.tensors) {
    LaidTensor lt;
    lt.shape = st;
    lt.entry = EntryFor(st.spec, options);
    const bool dense = lt.entry.scheme == static_cast<uint8_t>(Scheme::kF32) ||
                       lt.entry.scheme == static_cast<uint8_t>(Scheme::kF16);
    any_codes |= !dense;
    any_dense |= dense && st.spec.is_matrix;
    lt.data_window = !dense ? Window::kReram : (st.spec.is_matrix ? Window::kDram : Window::kMram);
    lt.scales_window = lt.outliers_window = Window::kMram;
    layout.tensors.push_back(lt);
  }
  // Sections as the image writer builds them: directory, tokenizer, model
  // detail, params, then inlier codes and dense weights if used; blobs
  // 16-aligned in their section, in directory order (data, scales, outliers).
  std::vector<SectionSim> sections;
  for (SectionKind kind : {SectionKind::kTensorDirectory, SectionKind::kTokenizer, SectionKind::kModelDetail,
                           SectionKind::kParams, SectionKind::kInlierCodes, SectionKind::kDenseWeights}) {
    if ((kind == SectionKind::kInlierCodes && !any_codes) || (kind == SectionKind::kDenseWeights && !any_dense)) continue;
    sections.push_back({kind, WindowOf(kind), 0});
  }
  auto section = [&](SectionKind kind) -> SectionSim& {
    for (SectionSim& s : sections) {
      if (s.kind == kind) return s;
    }
    return sections.front();  // unreachable: every kind used is present
  };
  for (LaidTensor& lt : layout.tensors) {
    const image::TensorEntry& e = lt.entry;
    const SectionKind data_kind = lt.data_window == Window::kReram  ? SectionKind::kInlierCodes
                                  : lt.data_window == Window::kDram ? SectionKind::kDenseWeights
                                                                     : SectionKind::kParams;
    section(data_kind).Add(e.data.length);
    section(SectionKind::kParams).Add(e.scales.length);
    section(SectionKind::kParams).Add(e.outliers.length);
    if (lt.shape.spec.is_matrix) CountMatrix(layout, lt);
    if (lt.data_window == Window::kReram) layout.window_cell_bits[static_cast<uint32_t>(Window::kReram)] = e.cell_bits;
    if (lt.shape.use == TensorUse::kEmbedding) {
      const uint64_t count = e.outlier_count;
      const uint32_t rows = e.rows;
      MeanRow(lt, [count, rows](uint32_t r) { return count * r / rows; });
    }
  }
  section(SectionKind::kTensorDirectory).bytes = shape.tensors.size() * sizeof(image::TensorEntry);
  section(SectionKind::kTokenizer).bytes = shape.tokenizer.size();
  section(SectionKind::kModelDetail).bytes = sizeof(image::ModelDetail);

  const auto count = static_cast<uint32_t>(sections.size());
  uint64_t cursor[image::kWindowCount] = {0, AlignUp(image::BootRecordSize(count), image::kSectionAlignment), 0, 0};
  layout.window_bytes[static_cast<uint32_t>(Window::kMram)] = image::BootRecordSize(count);
  for (const SectionSim& s : sections) {
    uint64_t& at = cursor[static_cast<uint32_t>(s.window)];
    layout.window_bytes[static_cast<uint32_t>(s.window)] = std::max(layout.window_bytes[static_cast<uint32_t>(s.window)], at + s.bytes);
    at = AlignUp(at + s.bytes, image::kSectionAlignment);
  }
  return layout;
}

ModelLayout LayOutImage(const image::ImageView& view) {
  ModelLayout layout;
  layout.shape = ShapeOfConfig(view.model(), view.detail());
  layout.from_image = true;
  const image::Header& h = view.header();
  const std::string preset(h.preset, strnlen(h.preset, sizeof h.preset));
  layout.scheme = preset.empty() ? QuantizerName(static_cast<image::Quantizer>(h.quantizer)) : preset;
  for (uint32_t i = 0; i < view.tensor_count(); ++i) {
    LaidTensor lt;
    lt.shape = layout.shape.tensors.at(i);
    lt.entry = view.tensor(i);
    auto window = [&view](const image::BlobRef& ref) {
      return ref.section == image::kNoSection ? Window::kSram : static_cast<Window>(view.section(ref.section).window);
    };
    lt.data_window = window(lt.entry.data);
    lt.scales_window = window(lt.entry.scales);
    lt.outliers_window = window(lt.entry.outliers);
    if (lt.outliers_window == Window::kSram) lt.outliers_window = Window::kMram;  // absent: no value bits
    if (lt.shape.spec.is_matrix) CountMatrix(layout, lt);
    if (lt.data_window == Window::kReram) {
      layout.window_cell_bits[static_cast<uint32_t>(Window::kReram)] = lt.entry.cell_bits;
    }
    if (lt.shape.use == TensorUse::kEmbedding) {
      const uint8_t* row_start =
          HasRowTable(lt.entry) ? view.blob(lt.entry.outliers).data() : nullptr;
      MeanRow(lt, [row_start](uint32_t r) {
        uint32_t v;
        std::memcpy(&v, row_start + 4u * r, 4);
        return uint64_t{v};
      });
    }
    layout.tensors.push_back(lt);
  }
  for (uint32_t w = 0; w < image::kWindowCount; ++w) layout.window_bytes[w] = view.WindowBytes(static_cast<Window>(w));
  // The embedded tokenizer, so that a layout of the same model with the
  // same tokenizer lays out the same bytes.
  for (uint32_t i = 0; i < view.section_count(); ++i) {
    if (view.section(i).kind == static_cast<uint8_t>(SectionKind::kTokenizer)) {
      layout.shape.tokenizer.assign(view.section(i).length, 0);
    }
  }
  return layout;
}

}  // namespace qmc::host
