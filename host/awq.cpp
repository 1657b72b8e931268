// AWQ: the scale groups of each family, the α search, the fold into the
// producing norm or projection, and the clip search the awq scheme rounds with.
#include "host/awq.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <memory>

#include "common/model_tensors.h"
#include "common/quant_layout.h"

namespace qmc::host {
namespace {

using image::Role;

// (w − ŵ)ᵀ H (w − ŵ) over n consecutive inputs starting at `first`, for each of `rows` rows.
double WeightedError(const float* w, const float* w_hat, uint32_t rows, uint32_t stride, uint32_t first, uint32_t n,
                     const InputStats& input) {
  std::vector<double> d(n), hd(n);
  double total = 0.0;
  for (uint32_t r = 0; r < rows; ++r) {
    const size_t row = static_cast<size_t>(r) * stride;
    for (uint32_t i = 0; i < n; ++i) d[i] = static_cast<double>(w[row + i]) - w_hat[row + i];
    std::fill(hd.begin(), hd.end(), 0.0);
    for (uint32_t i = 0; i < n; ++i) {
      const double* h = input.xtx.data() + static_cast<size_t>(first + i) * input.width + first;
      for (uint32_t j = 0; j < n; ++j) hd[j] += d[i] * h[j];
    }
    for (uint32_t j = 0; j < n; ++j) total += d[j] * hd[j];
  }
  return total;
}

uint32_t GroupWidth(const QuantOptions& options, uint32_t cols) {
  return options.group_size == kPerChannel ? cols : options.group_size;
}

}  // namespace

std::vector<ScaleGroup> ScaleGroups(const image::ModelConfig& config, const image::ModelDetail& detail) {
  std::map<std::pair<uint32_t, Role>, std::string> names;
  for (uint32_t i = 0; i < image::RequiredTensorCount(config, detail); ++i) {
    const image::TensorRequirement t = image::RequiredTensor(config, detail, i);
    names[{t.layer, t.role}] = t.name;
  }
  std::vector<ScaleGroup> groups;
  const bool no_gqa = config.n_kv_heads == config.n_heads;
  for (uint32_t l = 0; l < config.n_layers; ++l) {
    auto name = [&](Role role) { return names.count({l, role}) != 0 ? names.at({l, role}) : std::string(); };
    auto add = [&](std::vector<Role> matrices, std::vector<Role> divided, Role producer, bool has_producer) {
      ScaleGroup g;
      for (Role r : matrices) g.matrices.push_back(name(r));
      for (Role r : divided) {
        if (!name(r).empty()) g.divided.push_back(name(r));
      }
      if (has_producer) g.producer = name(producer);
      groups.push_back(std::move(g));
    };
    switch (static_cast<image::Arch>(config.arch)) {
      case image::Arch::kLlama:
      case image::Arch::kQwen2:
        add({Role::kQ, Role::kK, Role::kV}, {Role::kAttnNorm}, Role::kCount, false);
        // With GQA one v row feeds several attn_output columns.
        if (no_gqa) add({Role::kAttnOut}, {Role::kVBias}, Role::kV, true);
        add({Role::kGate, Role::kUp}, {Role::kFfnNorm}, Role::kCount, false);
        // silu(gate)·up is linear in up's rows.
        add({Role::kDown}, {Role::kUpBias}, Role::kUp, true);
        break;
      case image::Arch::kPhi:
        // One LayerNorm feeds attention and fc1; fc2 follows a GELU, so clip only.
        add({Role::kQ, Role::kK, Role::kV, Role::kUp}, {Role::kAttnNorm, Role::kAttnNormBias}, Role::kCount, false);
        if (no_gqa) add({Role::kAttnOut}, {Role::kVBias}, Role::kV, true);
        break;
      case image::Arch::kHymba:
        add({Role::kInProj}, {Role::kAttnNorm}, Role::kCount, false);
        add({Role::kGate, Role::kUp}, {Role::kFfnNorm}, Role::kCount, false);
        break;
    }
  }
  return groups;
}

std::vector<float> AwqScales(const std::vector<double>& mean_abs, float alpha) {
  std::vector<float> s(mean_abs.size());
  for (size_t i = 0; i < s.size(); ++i) s[i] = std::max(std::pow(static_cast<float>(mean_abs[i]), alpha), 1e-4f);
  const auto [lo, hi] = std::minmax_element(s.begin(), s.end());
  const float norm = std::sqrt(*lo * *hi);
  for (float& v : s) v /= norm;
  return s;
}

double ScaledOutputError(const std::vector<const Tensor*>& matrices, const InputStats& input,
                         const std::vector<float>& s, const QuantOptions& options) {
  double total = 0.0;
  for (const Tensor* w : matrices) {
    Tensor scaled = *w;
    for (size_t i = 0; i < scaled.data.size(); ++i) scaled.data[i] *= s[i % w->cols];
    const uint32_t group = GroupWidth(options, w->cols), groups = quant::GroupsPerRow(w->cols, group);
    const GroupCodes codes = QuantizeGroupAffine(scaled, {}, options.bits, group, options.inlier_noise);
    std::vector<float> w_hat(w->data.size());
    for (size_t i = 0; i < w_hat.size(); ++i) {
      const size_t pair = ((i / w->cols) * groups + (i % w->cols) / group) * 2u;
      w_hat[i] = quant::DequantGroupAffine(codes.codes[i], codes.scale_zero[pair], codes.scale_zero[pair + 1]) / s[i % w->cols];
    }
    total += WeightedError(w->data.data(), w_hat.data(), w->rows, w->cols, 0, w->cols, input);
  }
  return total;
}

float SearchAlpha(const std::vector<const Tensor*>& matrices, const InputStats& input, const QuantOptions& options) {
  float best_alpha = 0.0f;
  double best = INFINITY;
  for (int step = 0; step < kAwqAlphaSteps; ++step) {
    const float alpha = static_cast<float>(step) / kAwqAlphaSteps;
    const double error = ScaledOutputError(matrices, input, AwqScales(input.mean_abs, alpha), options);
    if (error < best) best = error, best_alpha = alpha;
  }
  return best_alpha;
}

void FoldScales(Checkpoint& checkpoint, const ScaleGroup& group, const std::vector<float>& s) {
  for (const std::string& name : group.matrices) {
    Tensor& w = checkpoint.tensors.at(name);
    for (size_t i = 0; i < w.data.size(); ++i) w.data[i] *= s[i % w.cols];
  }
  for (const std::string& name : group.divided) {
    Tensor& v = checkpoint.tensors.at(name);
    for (size_t i = 0; i < v.data.size(); ++i) v.data[i] /= s[i];
  }
  if (group.producer.empty()) return;
  Tensor& p = checkpoint.tensors.at(group.producer);
  for (size_t i = 0; i < p.data.size(); ++i) p.data[i] /= s[i / p.cols];
}

InputStats ScaledStats(const InputStats& input, const std::vector<float>& s) {
  InputStats out = input;
  const uint32_t n = input.width;
  for (uint32_t i = 0; i < n; ++i) {
    out.mean_abs[i] /= s[i];
    for (uint32_t j = 0; j < n; ++j) out.xtx[static_cast<size_t>(i) * n + j] /= static_cast<double>(s[i]) * s[j];
  }
  return out;
}

void ApplyAwq(Checkpoint& checkpoint, Calibration& calibration, const QuantOptions& options) {
  const std::vector<TensorSpec> specs = RequiredTensors(checkpoint.config, checkpoint.detail);
  std::map<std::string, size_t> index;
  for (size_t i = 0; i < specs.size(); ++i) index[specs[i].name] = i;
  for (const ScaleGroup& group : ScaleGroups(checkpoint.config, checkpoint.detail)) {
    const std::shared_ptr<const InputStats> stats = calibration.inputs.at(index.at(group.matrices[0]));
    if (stats == nullptr) throw InputError("tensor " + group.matrices[0] + ": AWQ needs calibration statistics (--calib)");
    std::vector<const Tensor*> matrices;
    for (const std::string& name : group.matrices) matrices.push_back(&checkpoint.tensors.at(name));
    const float alpha = SearchAlpha(matrices, *stats, options);
    if (alpha == 0.0f) continue;  // s = 1
    const std::vector<float> s = AwqScales(stats->mean_abs, alpha);
    FoldScales(checkpoint, group, s);
    const auto scaled = std::make_shared<const InputStats>(ScaledStats(*stats, s));
    for (std::shared_ptr<const InputStats>& input : calibration.inputs) {
      if (input == stats) input = scaled;
    }
  }
}

GroupCodes AwqGroupAffine(const Tensor& tensor, const QuantOptions& options, const InputStats& input) {
  const uint32_t rows = tensor.rows, cols = tensor.cols, group = GroupWidth(options, cols);
  const uint32_t max_code = (1u << options.bits) - 1u, groups = quant::GroupsPerRow(cols, group);
  GroupCodes out{std::vector<uint8_t>(tensor.data.size()), std::vector<uint16_t>(static_cast<size_t>(rows) * groups * 2u)};
  std::vector<float> w_hat(group);
  for (uint32_t r = 0; r < rows; ++r) {
    for (uint32_t g = 0; g < groups; ++g) {
      const uint32_t first = g * group, n = std::min(group, cols - first);
      const float* w = tensor.data.data() + static_cast<size_t>(r) * cols + first;
      AffineFit best;
      best.loss = INFINITY;
      for (int step = 0; step < kAwqClipSteps; ++step) {
        AffineFit fit = ShrunkAffine(w, n, max_code, true, 1.0f - static_cast<float>(step) / 20.0f);
        for (uint32_t i = 0; i < n; ++i) w_hat[i] = quant::DequantGroupAffine(AffineCode(w[i], fit, max_code), fit.scale, fit.zero);
        fit.loss = WeightedError(w, w_hat.data(), 1, n, first, n, input);
        if (fit.loss < best.loss) best = fit;
      }
      CheckFit(best, w, n, r, g);
      const size_t pair = (static_cast<size_t>(r) * groups + g) * 2u;
      out.scale_zero[pair] = best.scale;
      out.scale_zero[pair + 1] = best.zero;
      uint8_t* codes = out.codes.data() + static_cast<size_t>(r) * cols + first;
      for (uint32_t i = 0; i < n; ++i) codes[i] = static_cast<uint8_t>(AffineCode(w[i], best, max_code));
    }
  }
  return out;
}

}  // namespace qmc::host
