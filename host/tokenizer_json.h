// HuggingFace tokenizer.json to the image's BPE tokenizer section
// (common/bpe_format.h): the vocabulary, merges and added tokens as sorted
// tables, the normalizer, pre-tokenizer and post-processor as flags.
#pragma once

#include <cstdint>
#include <filesystem>
#include <vector>

namespace qmc::host {

// Compiles `path`, with the tokenizer_config.json beside it when there is
// one (add_bos_token, add_eos_token, bos_token, eos_token). Throws
// InputError (one line, naming the file) for anything the encoder does not
// implement exactly: another model type, normalizer, pre-tokenizer pattern,
// decoder or post-processor, single_word added tokens.
std::vector<uint8_t> CompileTokenizerJson(const std::filesystem::path& path);

// Takes a model's config.json's word on a BPE section's special tokens:
// eos_token_id (an id or a list of ids: the first) replaces the EOS,
// bos_token_id fills in a missing BOS (not added by default). A llama2.c
// section is left alone: its ids are fixed.
void ApplyConfigSpecialTokens(std::vector<uint8_t>& section, const std::filesystem::path& config_json);

}  // namespace qmc::host
