// AWQ (Lin et al. 2023; github.com/mit-han-lab/llm-awq auto_scale.py,
// auto_clip.py): channels of a matrix's input that run large matter more,
// so before rounding their weights are scaled up by s = mean|x|^α (α
// searched per scale group) and the op producing that input divides by s,
// which leaves the f32 model's function unchanged and needs no new op in the
// image. Then the awq quantizer rounds with a clip search weighed by the
// output error (AwqGroupAffine).
#pragma once

#include <string>
#include <vector>

#include "common/image_format.h"
#include "host/calibration.h"
#include "host/checkpoint.h"
#include "host/quantize.h"

namespace qmc::host {

// Matrices that read one activation, and the tensors producing it that can
// absorb a per-channel 1/s.
struct ScaleGroup {
  std::vector<std::string> matrices;  // their columns are multiplied by s
  std::vector<std::string> divided;   // vectors divided by s: a norm's weight and bias, or the producer's bias
  std::string producer;               // a projection whose rows are divided by s; empty when a norm produces
};

// Per layer, in llm-awq's order: Llama/Qwen2 attn_norm -> q,k,v; v -> attn_output
// (no GQA); ffn_norm -> gate,up; up -> down. Phi attn_norm -> q,k,v,fc1; v ->
// dense (no GQA). Hymba attn_norm -> ssm_in; ffn_norm -> gate,up. Every
// other matrix (and the classifier) takes the clip search only.
std::vector<ScaleGroup> ScaleGroups(const image::ModelConfig& config, const image::ModelDetail& detail);

inline constexpr int kAwqAlphaSteps = 20;  // α = 0, 0.05, ..., 0.95
inline constexpr int kAwqClipSteps = 10;   // range shrunk by 1, 0.95, ..., 0.55

// llm-awq's scales: max(mean_abs^α, 1e-4), over sqrt(max · min).
std::vector<float> AwqScales(const std::vector<double>& mean_abs, float alpha);

// Σ over `matrices` (reading `input`) of tr(ΔW H ΔWᵀ), H = input.xtx,
// ΔW = W − Q(W diag(s)) diag(s)⁻¹, Q the group-affine rounding to nearest
// (FitAffine, AffineCode) with options.bits and options.group_size.
double ScaledOutputError(const std::vector<const Tensor*>& matrices, const InputStats& input,
                         const std::vector<float>& s, const QuantOptions& options);

// The α of the grid with the least ScaledOutputError (the first on ties).
float SearchAlpha(const std::vector<const Tensor*>& matrices, const InputStats& input, const QuantOptions& options);

// W <- W diag(s) for the group's matrices, the producer's outputs over s.
void FoldScales(Checkpoint& checkpoint, const ScaleGroup& group, const std::vector<float>& s);

// The statistics of the input x / s: xtx_ij / (s_i s_j), mean_abs_i / s_i.
InputStats ScaledStats(const InputStats& input, const std::vector<float>& s);

// Searches and folds every scale group of the model, and points the
// calibration of the group's matrices at their scaled input. InputError when
// a group's matrices have no statistics.
void ApplyAwq(Checkpoint& checkpoint, Calibration& calibration, const QuantOptions& options);

// The awq scheme's codes (options.group_size a width): per group, the
// range shrink of kAwqClipSteps with the least (w − ŵ)ᵀ H_gg (w − ŵ), H_gg
// the group's diagonal block of input.xtx; codes rounded to nearest.
GroupCodes AwqGroupAffine(const Tensor& tensor, const QuantOptions& options, const InputStats& input);

}  // namespace qmc::host
