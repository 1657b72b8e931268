#include "firmware/token_traffic.h"

#include <cstring>

namespace qmc::firmware {
namespace {

uint32_t LoadU32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

}  // namespace

void TokenTraffic::Add(const image::BlobRef& ref, uint64_t bytes, uint64_t (&by_window)[hal::kWindowCount]) const {
  if (ref.section != image::kNoSection) by_window[view_->section(ref.section).window] += bytes;
}

void TokenTraffic::AddTensor(const image::TensorEntry& t, uint64_t (&by_window)[hal::kWindowCount]) const {
  Add(t.data, t.data.length, by_window);
  Add(t.scales, t.scales.length, by_window);
  Add(t.outliers, t.outliers.length, by_window);
}

void TokenTraffic::AddEmbeddingRow(uint32_t row, uint64_t (&by_window)[hal::kWindowCount]) const {
  const image::TensorEntry& t = embedding_;
  Add(t.data, t.data.length / t.rows, by_window);  // rows are equal slices, dense or packed
  Add(t.scales, t.scales.length / t.rows, by_window);
  if (t.outlier_count == 0) return;
  const uint8_t* row_start = view_->blob(t.outliers).data() + row * 4u;
  Add(t.outliers, 2 * 4u + (LoadU32(row_start + 4) - LoadU32(row_start)) * uint64_t{sizeof(image::OutlierEntry)},
      by_window);
}

void TokenTraffic::Init(const image::ImageView& view) {
  view_ = &view;
  const uint32_t embedding = view.FindTensor("token_embd.weight");
  embedding_ = view.tensor(embedding);
  for (uint64_t& bytes : per_token_) bytes = 0;
  for (uint32_t i = 0; i < view.tensor_count(); ++i) {
    if (i != embedding) AddTensor(view.tensor(i), per_token_);
  }
  if ((view.model().flags & image::kModelSharedClassifier) != 0) AddTensor(embedding_, per_token_);
}

void TokenTraffic::Count(const hal::BoardInfo& board, uint32_t token, uint32_t pos, size_t kv_position_bytes) const {
  uint64_t read[hal::kWindowCount];
  for (uint32_t w = 0; w < hal::kWindowCount; ++w) read[w] = per_token_[w];
  AddEmbeddingRow(token, read);
  const auto dram = static_cast<uint32_t>(hal::WindowKind::kDram);
  read[dram] += static_cast<uint64_t>(pos + 1) * kv_position_bytes;
  for (uint32_t w = 0; w < hal::kWindowCount; ++w) board.windows[w]->CountInPlace(read[w], w == dram ? kv_position_bytes : 0);
}

}  // namespace qmc::firmware
