#include "host/pack.h"

#include <algorithm>
#include <condition_variable>
#include <cstdio>
#include <exception>
#include <memory>
#include <mutex>
#include <thread>

#include "host/image_summary.h"
#include "host/image_writer.h"
#include "host/model_layout.h"

namespace qmc::host {
namespace {

// Refuses, before any weight is generated or quantized, a model whose image
// would pass what the format's 32-bit offsets address.
void CheckImageSize(const ModelSource& source, const QuantOptions& options) {
  ModelShape shape = ShapeOfConfig(source.config, source.detail);
  shape.tokenizer = source.tokenizer;
  const ModelLayout layout = LayOutModel(shape, options, "");
  uint64_t bytes = 0;
  for (uint64_t window : layout.window_bytes) bytes += window;
  if (bytes <= 0xFFFFFFFFu) return;
  char size[32];
  std::snprintf(size, sizeof size, "%.2f GB", static_cast<double>(bytes) / 1e9);
  const bool dense = options.quantizer == image::Quantizer::kF32 || options.quantizer == image::Quantizer::kFp16;
  throw InputError(std::string("the ") + QuantizerName(options.quantizer) + " image of this model would take " + size +
                   ", past the 4 GiB the image format's 32-bit offsets address" +
                   (dense ? ": pack it quantized (--scheme qmc, rtn or mxint4)" : ""));
}

std::vector<uint8_t> Pack(const ModelSource& source, const QuantOptions& options, const PackProgress& progress,
                          unsigned threads, std::vector<QuantizedTensor>* kept) {
  ValidateOptions(options);
  const std::vector<TensorSpec> specs = RequiredTensors(source.config, source.detail);
  if (NeedsCalibration(options) && (source.calibration == nullptr || source.calibration->inputs.size() != specs.size())) {
    throw InputError(std::string("--scheme ") + QuantizerName(options.quantizer) +
                     (options.gptq.enabled ? " with GPTQ" : "") + " needs calibration text (--calib FILE)");
  }
  if (source.tokenizer.empty()) throw InputError("the checkpoint carries no tokenizer: pass --tokenizer FILE");
  ValidateTokenizer(source.tokenizer, source.config.vocab_size);
  CheckImageSize(source, options);

  ImageWriter writer({source.config, source.detail, options.quantizer,
                      options.quantizer == image::Quantizer::kQmc ? static_cast<float>(options.outlier_ratio) : 0.0f,
                      options.preset, source.tokenizer});
  // Tensors are quantized in parallel and added in order; a tensor's bytes
  // depend on it alone. Whichever worker finishes, the next tensor starts at
  // once, so no core waits on a long tensor ahead of it.
  const size_t workers = std::max(1u, threads != 0 ? threads : std::thread::hardware_concurrency());
  QuantOptions quant = options;
  quant.reconstruct = kept != nullptr;
  struct Slot {
    QuantizedTensor tensor;
    std::exception_ptr error;
    bool done = false;
  };
  std::vector<Slot> slots(specs.size());
  std::mutex mutex;
  std::condition_variable finished;
  size_t launched = 0, running = 0, added = 0;
  auto work = [&](size_t i) {
    Slot slot;
    try {
      const Tensor tensor = source.tensor(i, specs[i]);
      ValidateTensor(specs[i], tensor);
      const InputStats* input = source.calibration != nullptr ? source.calibration->inputs[i].get() : nullptr;
      slot.tensor = QuantizeTensor(specs[i], tensor, quant, input);
    } catch (...) {
      slot.error = std::current_exception();
    }
    slot.done = true;
    const std::lock_guard<std::mutex> lock(mutex);
    slots[i] = std::move(slot);
    --running;
    finished.notify_one();
  };
  // Tensor i's thread, joined once it is added, or however Pack leaves (a tensor's error, a full image).
  struct Pool {
    std::vector<std::thread> threads;
    ~Pool() {
      for (std::thread& t : threads) {
        if (t.joinable()) t.join();
      }
    }
  } pool;
  pool.threads.resize(specs.size());
  std::unique_lock<std::mutex> lock(mutex);
  while (added < specs.size()) {
    while (launched < specs.size() && running < workers) {
      const size_t i = launched++;
      ++running;
      lock.unlock();
      if (progress) progress(i, specs.size(), specs[i]);
      pool.threads[i] = std::thread(work, i);
      lock.lock();
    }
    finished.wait(lock, [&] { return slots[added].done || (launched < specs.size() && running < workers); });
    while (added < specs.size() && slots[added].done) {
      Slot slot = std::move(slots[added]);
      lock.unlock();
      pool.threads[added++].join();
      if (slot.error) std::rethrow_exception(slot.error);
      if (kept != nullptr) kept->push_back(slot.tensor);
      writer.Add(std::move(slot.tensor));
      lock.lock();
    }
  }
  lock.unlock();
  return writer.Finish();
}

}  // namespace

bool NeedsCalibration(const QuantOptions& options) {
  return options.quantizer == image::Quantizer::kGptq || options.quantizer == image::Quantizer::kAwq ||
         (options.quantizer == image::Quantizer::kQmc && options.gptq.enabled);
}

std::vector<uint8_t> PackImage(const ModelSource& source, const QuantOptions& options, const PackProgress& progress,
                               unsigned threads) {
  return Pack(source, options, progress, threads, nullptr);
}

ModelSource SourceOf(Checkpoint checkpoint) {
  ValidateCheckpoint(checkpoint);
  struct Tensors {
    std::mutex mutex;
    std::map<std::string, Tensor> map;
  };
  auto tensors = std::make_shared<Tensors>();
  tensors->map = std::move(checkpoint.tensors);
  return {checkpoint.config, checkpoint.detail, std::move(checkpoint.tokenizer),
          [tensors](size_t, const TensorSpec& spec) {
            const std::lock_guard<std::mutex> lock(tensors->mutex);
            const auto it = tensors->map.find(spec.name);
            Tensor tensor = std::move(it->second);
            tensors->map.erase(it);
            return tensor;
          },
          nullptr};
}

PackedModel PackModel(const Checkpoint& checkpoint, const QuantOptions& options, const PackProgress& progress,
                      std::shared_ptr<const Calibration> calibration) {
  ValidateOptions(options);
  ValidateCheckpoint(checkpoint);
  const ModelSource source{checkpoint.config, checkpoint.detail, checkpoint.tokenizer,
                           [&checkpoint](size_t, const TensorSpec& spec) { return checkpoint.tensors.at(spec.name); },
                           std::move(calibration)};
  PackedModel packed;
  packed.image = Pack(source, options, progress, 0, &packed.tensors);
  return packed;
}

}  // namespace qmc::host
