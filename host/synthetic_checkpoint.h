// Seeded random weights in place of a checkpoint, for any model a
// HuggingFace config.json describes: the paper's models at full size where
// no weights are at hand (`qmc pack --synthetic`). The distribution is
// heavy-tailed with outlier input channels, as trained LLM weights are,
// because the QMC outlier split is measured on it; docs/synthetic-weights.md
// gives it and its reasons.
#pragma once

#include <cstdint>
#include <filesystem>
#include <vector>

#include "common/model_tensors.h"
#include "host/checkpoint.h"
#include "host/pack.h"

namespace qmc::host {

// The model `config` (a config.json, or a directory holding one) describes,
// as LoadHuggingFaceConfig reads it; with `layers` > 0 only its first
// `layers` layers, every other dimension kept. Throws InputError.
ModelSpec SyntheticModel(const std::filesystem::path& config, uint32_t layers = 0);

// Requirement `tensor` of a model, drawn from `seed`. It depends on the seed
// and the tensor's name and shape only: not on the thread count, nor on the
// other tensors (a model cut to fewer layers has the same first layers).
Tensor SyntheticTensor(const image::TensorRequirement& tensor, uint64_t seed, uint32_t threads = 1);

// The model's tensors as PackImage streams them, generated on demand.
ModelSource SyntheticSource(const ModelSpec& model, uint64_t seed, std::vector<uint8_t> tokenizer);

// Every tensor at once (no tokenizer): a small model for tests.
Checkpoint SyntheticCheckpoint(const ModelSpec& model, uint64_t seed);

}  // namespace qmc::host
