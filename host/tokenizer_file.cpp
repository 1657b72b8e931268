// llama2.c tokenizer.bin: int32 max_token_length, then per token
// {float score, int32 length, length bytes}. The image embeds these bytes as
// they are, so they are checked entry by entry here.
#include <cmath>

#include "host/byte_reader.h"
#include "host/checkpoint.h"
#include "host/mapped_file.h"

namespace qmc::host {
namespace {

int32_t ReadMaxTokenLength(ByteReader& in) {
  const int32_t max_length = in.Read<int32_t>("the max_token_length header");
  if (max_length <= 0) in.Fail("max_token_length is " + std::to_string(max_length) + ", expected a positive number");
  return max_length;
}

// Reads `count` entries, failing on the first malformed one or if fewer remain.
void ReadEntries(ByteReader& in, int32_t max_length, uint32_t count) {
  for (uint32_t i = 0; i < count; ++i) {
    if (in.remaining() == 0) {
      in.Fail("tokenizer has only " + std::to_string(i) + " entries, the model's vocab_size is " +
              std::to_string(count));
    }
    const float score = in.Read<float>("a token score");
    if (!std::isfinite(score)) in.Fail("token " + std::to_string(i) + " has a non-finite score");
    const int32_t length = in.Read<int32_t>("a token length");
    if (length < 1 || length > max_length) {
      in.Fail("token " + std::to_string(i) + " has length " + std::to_string(length) + ", expected 1 to " +
              std::to_string(max_length) + " (max_token_length)");
    }
    in.Bytes(static_cast<uint64_t>(length), "a token's bytes");
  }
}

}  // namespace

std::vector<uint8_t> LoadTokenizerFile(const std::filesystem::path& path, uint32_t vocab_size) {
  const MappedFile file(path);
  ByteReader in(file.bytes(), file.name());
  ReadEntries(in, ReadMaxTokenLength(in), vocab_size);
  const std::span<const uint8_t> used = file.bytes().first(in.position());
  return {used.begin(), used.end()};
}

void ValidateTokenizer(const std::vector<uint8_t>& bytes, uint32_t vocab_size) {
  ByteReader in(bytes, "tokenizer");
  ReadEntries(in, ReadMaxTokenLength(in), vocab_size);
  if (in.remaining() != 0) {
    in.Fail(std::to_string(in.remaining()) + " bytes follow the " + std::to_string(vocab_size) +
            " entries vocab_size allows");
  }
}

}  // namespace qmc::host
