// A model in, image bytes out: validation, quantisation of every tensor,
// layout. Shared by `qmc pack` and the benchmarks.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "host/calibration.h"
#include "host/checkpoint.h"
#include "host/quantize.h"

namespace qmc::host {

// Called before each tensor is quantized (from the calling thread).
using PackProgress = std::function<void(size_t index, size_t count, const TensorSpec& spec)>;

// A model as PackImage streams it: what the image says of it, and its
// tensors one at a time.
struct ModelSource {
  image::ModelConfig config{};
  image::ModelDetail detail{};
  std::vector<uint8_t> tokenizer;  // the image's tokenizer section
  // Tensor `index` of RequiredTensors(config, detail), which `spec`
  // describes. Called once per tensor, from worker threads, for several
  // tensors at once: it must be safe to call concurrently.
  std::function<Tensor(size_t index, const TensorSpec& spec)> tensor;
  // The input statistics the calibrated quantizers (gptq, awq, qmc with
  // GPTQ) need (host/calibration.h); null for the data-free ones.
  std::shared_ptr<const Calibration> calibration;
};

// Whether `options` quantize from calibration statistics.
bool NeedsCalibration(const QuantOptions& options);

// Packs tensor by tensor, `threads` tensors at a time (0: one per core),
// each fetched, checked (shape, finite weights) and quantized on its own
// thread, so memory holds at most `threads` f32 tensors besides the
// quantized blobs: a model packs without its whole f32 checkpoint in
// memory. The bytes do not depend on `threads`. Throws InputError, before
// fetching anything when the image would pass the format's 4 GiB.
std::vector<uint8_t> PackImage(const ModelSource& source, const QuantOptions& options,
                               const PackProgress& progress = {}, unsigned threads = 0);

// A checkpoint as a source; its tensors move out as they are packed.
ModelSource SourceOf(Checkpoint checkpoint);

struct PackedModel {
  std::vector<uint8_t> image;
  std::vector<QuantizedTensor> tensors;  // with their reconstructions
};

// The same image as PackImage(SourceOf(checkpoint)), with every quantized
// tensor kept; the whole checkpoint is checked first. Throws InputError for
// an invalid checkpoint, tokenizer or options.
// `calibration` as ModelSource::calibration.
PackedModel PackModel(const Checkpoint& checkpoint, const QuantOptions& options, const PackProgress& progress = {},
                      std::shared_ptr<const Calibration> calibration = nullptr);

}  // namespace qmc::host
