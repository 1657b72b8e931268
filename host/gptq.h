// GPTQ (Frantar et al. 2022; github.com/IST-DASLab/gptq): a matrix is
// rounded column by column, each column's rounding error fed forward into
// the columns not yet rounded through the inverse Hessian H = XᵀX of the
// matrix's inputs, so the output error stays small though every weight sits
// on its grid. The gptq quantizer writes RTN's group-affine layout with
// GPTQ's codes; qmc with GptqOptions::enabled rounds around its outliers.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "host/calibration.h"
#include "host/quantize.h"

namespace qmc::host {

// The upper Cholesky factor U of the inverse of H + damp·mean(diag H)·I
// (n x n, row-major, symmetric, dead inputs already given H_ii = 1):
// (H + λI)⁻¹ = UᵀU, as float, row-major. When that is not positive definite
// the damp is raised tenfold a few times; then InputError names `name`.
std::vector<float> GptqInverseFactor(const std::vector<double>& h, uint32_t n, double damp, const std::string& name);

// Rounds column k of the current weights w (rows x cols, row-major):
// writes to q[r] what weight (r, k) will decode to.
using GptqRound = std::function<void(uint32_t k, const std::vector<float>& w, float* q)>;

// GPTQ's column loop over w's columns in storage order, with `hinv` from
// GptqInverseFactor in the same order: each column is rounded and its error
// fed into the rest of its block at once, and into the columns past the
// block once per block (the lazy batch); per weight the same arithmetic, in
// the same order, as the column-by-column algorithm. w ends holding q.
void GptqLoop(std::vector<float>& w, uint32_t rows, uint32_t cols, const std::vector<float>& hinv, uint32_t block,
              const GptqRound& round);

// The group-affine codes (QuantizeGroupAffine's layout; options.group_size
// already a width, not kPerChannel) chosen by GPTQ. Outliers (is_outlier,
// possibly empty) keep their fp16 values and code the zero point. Group
// fits are made from the current weights when the loop reaches the group,
// or up front from the given weights with act-order or one group per row.
GroupCodes GptqGroupAffine(const TensorSpec& spec, const Tensor& tensor, const std::vector<bool>& is_outlier,
                           const QuantOptions& options, const InputStats& input);

// QuantizeSplit's layout with GPTQ's codes: outliers and every grid fitted
// up front from the given weights (FitSplit), then each weight rounded to
// its own grid (outlier or inlier group) with error feedback.
QuantizedTensor GptqSplit(const TensorSpec& spec, const Tensor& tensor, const QuantOptions& options,
                          const InputStats& input);

}  // namespace qmc::host
