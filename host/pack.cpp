#include "host/pack.h"

#include "host/image_writer.h"

namespace qmc::host {

PackedModel PackModel(const Checkpoint& checkpoint, const QuantOptions& options, const PackProgress& progress) {
  ValidateOptions(options);
  ValidateCheckpoint(checkpoint);
  if (checkpoint.tokenizer.empty()) throw InputError("the checkpoint carries no tokenizer: pass --tokenizer FILE");
  ValidateTokenizer(checkpoint.tokenizer, checkpoint.config.vocab_size);

  ImageContents contents;
  contents.config = checkpoint.config;
  contents.quantizer = options.quantizer;
  contents.outlier_ratio = options.quantizer == image::Quantizer::kQmc ? static_cast<float>(options.outlier_ratio) : 0.0f;
  contents.preset = options.preset;
  contents.tokenizer = checkpoint.tokenizer;
  const std::vector<TensorSpec> specs = RequiredTensors(checkpoint.config);
  for (size_t i = 0; i < specs.size(); ++i) {
    if (progress) progress(i, specs.size(), specs[i]);
    contents.tensors.push_back(QuantizeTensor(specs[i], checkpoint.tensors.at(specs[i].name), options));
  }
  PackedModel packed;
  packed.image = BuildImage(contents);
  packed.tensors = std::move(contents.tensors);
  return packed;
}

}  // namespace qmc::host
