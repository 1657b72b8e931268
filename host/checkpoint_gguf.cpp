// GGUF (llama.cpp) checkpoints, versions 2 and 3: "GGUF", u32 version, u64
// tensor count, u64 metadata count, the metadata key/values, the tensor infos,
// then the tensor data, aligned to general.alignment. Tensor names are already
// canonical. llama.cpp's converter stores Llama q/k rows interleaved but keeps
// Qwen2's (NEOX RoPE) rotate-half, so only Qwen2 is reordered.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <map>
#include <optional>

#include "common/model_tensors.h"
#include "host/byte_reader.h"
#include "host/checkpoint.h"
#include "host/mapped_file.h"
#include "host/reader_support.h"
#include "host/rope_permutation.h"

namespace qmc::host {
namespace {

constexpr uint32_t kMagic = 0x46554747;  // "GGUF" as a little-endian uint32
constexpr uint64_t kDefaultAlignment = 32;
constexpr uint32_t kMaxDims = 4;     // GGML_MAX_DIMS
constexpr int kMaxArrayNesting = 8;  // real files nest one level; bounds the recursion

enum ValueType : uint32_t {
  kU8 = 0,
  kI8 = 1,
  kU16 = 2,
  kI16 = 3,
  kU32 = 4,
  kI32 = 5,
  kF32 = 6,
  kBool = 7,
  kString = 8,
  kArray = 9,
  kU64 = 10,
  kI64 = 11,
  kF64 = 12,
};

// ggml tensor types by number, for messages; only F32, F16 and BF16 are read.
const char* GgmlTypeName(uint32_t type) {
  static constexpr const char* kNames[] = {
      "F32",   "F16",    "Q4_0", "Q4_1", "Q4_2", "Q4_3",    "Q5_0",   "Q5_1",    "Q8_0",  "Q8_1",   "Q2_K",
      "Q3_K",  "Q4_K",   "Q5_K", "Q6_K", "Q8_K", "IQ2_XXS", "IQ2_XS", "IQ3_XXS", "IQ1_S", "IQ4_NL", "IQ3_S",
      "IQ2_S", "IQ4_XS", "I8",   "I16",  "I32",  "I64",     "F64",    "IQ1_M",   "BF16"};
  return type < std::size(kNames) ? kNames[type] : "unknown";
}

// A metadata value. Scalars keep their numeric value; arrays of strings or of
// numbers keep their elements (the tokenizer needs them); nested arrays are skipped.
struct Value {
  uint32_t type = 0;
  bool is_integer = false;
  bool is_negative = false;  // an integer below zero
  uint64_t integer = 0;      // magnitude when is_integer
  double number = 0;         // every numeric scalar, as a double
  std::string string;
  uint32_t element_type = 0;  // arrays
  std::vector<std::string> strings;
  std::vector<double> numbers;
};

uint64_t ScalarSize(uint32_t type) {
  switch (type) {
    case kU8:
    case kI8:
    case kBool:
      return 1;
    case kU16:
    case kI16:
      return 2;
    case kU32:
    case kI32:
    case kF32:
      return 4;
    case kU64:
    case kI64:
    case kF64:
      return 8;
    default:
      return 0;
  }
}

std::string ReadString(ByteReader& in, const char* what) {
  const uint64_t length = in.Read<uint64_t>(what);
  const std::span<const uint8_t> bytes = in.Bytes(length, what);
  return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
}

// Keys and names come from the file: keep messages one line.
std::string Printable(const std::string& text) {
  std::string out = text;
  for (char& ch : out) {
    if (static_cast<unsigned char>(ch) < 0x20) ch = '?';
  }
  return out;
}

// Reads one numeric scalar of `type` into `value`.
void ReadScalar(ByteReader& in, uint32_t type, Value& value) {
  auto set_signed = [&](int64_t v) {
    value.is_integer = true;
    value.is_negative = v < 0;
    value.integer = v < 0 ? 0 - static_cast<uint64_t>(v) : static_cast<uint64_t>(v);
    value.number = static_cast<double>(v);
  };
  auto set_unsigned = [&](uint64_t v) {
    value.is_integer = true;
    value.integer = v;
    value.number = static_cast<double>(v);
  };
  switch (type) {
    case kU8:
      set_unsigned(in.Read<uint8_t>("a metadata value"));
      break;
    case kI8:
      set_signed(in.Read<int8_t>("a metadata value"));
      break;
    case kU16:
      set_unsigned(in.Read<uint16_t>("a metadata value"));
      break;
    case kI16:
      set_signed(in.Read<int16_t>("a metadata value"));
      break;
    case kU32:
      set_unsigned(in.Read<uint32_t>("a metadata value"));
      break;
    case kI32:
      set_signed(in.Read<int32_t>("a metadata value"));
      break;
    case kU64:
      set_unsigned(in.Read<uint64_t>("a metadata value"));
      break;
    case kI64:
      set_signed(in.Read<int64_t>("a metadata value"));
      break;
    case kBool:
      set_unsigned(in.Read<uint8_t>("a metadata value"));
      break;
    case kF32:
      value.number = in.Read<float>("a metadata value");
      break;
    case kF64:
      value.number = in.Read<double>("a metadata value");
      break;
  }
}

Value ReadValue(ByteReader& in, uint32_t type, const std::string& key, int depth) {
  Value value;
  value.type = type;
  if (type == kString) {
    value.string = ReadString(in, "a metadata string");
  } else if (type == kArray) {
    if (depth >= kMaxArrayNesting) in.Fail("metadata '" + Printable(key) + "' nests arrays too deeply");
    value.element_type = in.Read<uint32_t>("an array type");
    const uint64_t count = in.Read<uint64_t>("an array length");
    if (value.element_type == kString) {
      for (uint64_t i = 0; i < count; ++i) value.strings.push_back(ReadString(in, "a metadata string"));
    } else if (value.element_type == kArray) {
      for (uint64_t i = 0; i < count; ++i) ReadValue(in, kArray, key, depth + 1);
    } else if (const uint64_t size = ScalarSize(value.element_type); size != 0) {
      if (count > in.remaining() / size)
        in.Fail("truncated: metadata '" + Printable(key) + "' array runs past the end");
      value.numbers.reserve(count);
      for (uint64_t i = 0; i < count; ++i) {
        Value element;
        ReadScalar(in, value.element_type, element);
        value.numbers.push_back(element.number);
      }
    } else {
      in.Fail("metadata '" + Printable(key) + "' has unknown array element type " + std::to_string(value.element_type));
    }
  } else if (ScalarSize(type) != 0) {
    ReadScalar(in, type, value);
  } else {
    in.Fail("metadata '" + Printable(key) + "' has unknown value type " + std::to_string(type));
  }
  return value;
}

struct TensorInfo {
  std::vector<uint64_t> dims;  // GGUF order: dims[0] varies fastest (the columns)
  uint32_t type = 0;
  uint64_t offset = 0;  // from the start of the data section
};

class GgufFile {
 public:
  explicit GgufFile(const std::filesystem::path& path) : file_(path), in_(file_.bytes(), file_.name()) {
    if (in_.size() < 4 || in_.Read<uint32_t>("the magic") != kMagic) in_.Fail("bad magic: not a GGUF file");
    const uint32_t version = in_.Read<uint32_t>("the version");
    if (version != 2 && version != 3)
      in_.Fail("unsupported GGUF version " + std::to_string(version) + " (2 and 3 are read)");
    const uint64_t tensor_count = in_.Read<uint64_t>("the tensor count");
    const uint64_t kv_count = in_.Read<uint64_t>("the metadata count");
    // The counts are untrusted: every entry is read (bounds-checked) before the next, nothing is reserved.
    for (uint64_t i = 0; i < kv_count; ++i) {
      std::string key = ReadString(in_, "a metadata key");
      const uint32_t type = in_.Read<uint32_t>("a metadata type");
      Value value = ReadValue(in_, type, key, 0);
      if (!metadata_.emplace(key, std::move(value)).second) in_.Fail("duplicate metadata key '" + Printable(key) + "'");
    }
    for (uint64_t i = 0; i < tensor_count; ++i) {
      std::string name = ReadString(in_, "a tensor name");
      TensorInfo info;
      const uint32_t n_dims = in_.Read<uint32_t>("a tensor's dimension count");
      if (n_dims == 0 || n_dims > kMaxDims) {
        in_.Fail("tensor '" + Printable(name) + "' has " + std::to_string(n_dims) + " dimensions");
      }
      for (uint32_t d = 0; d < n_dims; ++d) info.dims.push_back(in_.Read<uint64_t>("a tensor dimension"));
      info.type = in_.Read<uint32_t>("a tensor type");
      info.offset = in_.Read<uint64_t>("a tensor offset");
      if (!tensors_.emplace(name, std::move(info)).second) in_.Fail("duplicate tensor '" + Printable(name) + "'");
    }
    const uint64_t alignment = UintOr("general.alignment", kDefaultAlignment);
    if (alignment == 0 || (alignment & (alignment - 1)) != 0) {
      in_.Fail("general.alignment is " + std::to_string(alignment) + ", expected a power of two");
    }
    data_start_ = (in_.position() + alignment - 1) / alignment * alignment;  // position <= file size: no overflow
  }

  const std::string& name() const { return file_.name(); }
  [[noreturn]] void Fail(const std::string& message) const { in_.Fail(message); }

  const Value* Find(const std::string& key) const {
    const auto it = metadata_.find(key);
    return it == metadata_.end() ? nullptr : &it->second;
  }
  std::optional<uint64_t> Uint(const std::string& key) const {
    const Value* value = Find(key);
    if (value == nullptr) return std::nullopt;
    if (!value->is_integer || value->is_negative || value->type == kBool) {
      Fail("metadata '" + key + "' is not a non-negative integer");
    }
    return value->integer;
  }
  uint64_t UintOr(const std::string& key, uint64_t fallback) const { return Uint(key).value_or(fallback); }
  // A model dimension: a required integer that fits a uint32.
  uint32_t Dim(const std::string& key) const {
    const std::optional<uint64_t> value = Uint(key);
    if (!value) Fail("missing metadata '" + key + "'");
    if (*value > UINT32_MAX) Fail("metadata '" + key + "' is " + std::to_string(*value) + ", too large");
    return static_cast<uint32_t>(*value);
  }
  std::optional<float> Float(const std::string& key) const {
    const Value* value = Find(key);
    if (value == nullptr) return std::nullopt;
    if (ScalarSize(value->type) == 0 || value->type == kBool ||
        !(std::fabs(value->number) <= std::numeric_limits<float>::max())) {
      Fail("metadata '" + key + "' is not a finite number");
    }
    return static_cast<float>(value->number);
  }

  const TensorInfo* FindTensor(const std::string& tensor) const {
    const auto it = tensors_.find(tensor);
    return it == tensors_.end() ? nullptr : &it->second;
  }

  // The tensor `tensor`, checked against `spec` and decoded.
  Tensor Convert(const std::string& tensor, const TensorSpec& spec) const {
    const TensorInfo* info = FindTensor(tensor);
    if (info == nullptr) Fail("missing tensor '" + tensor + "'");
    ElementType type;
    switch (info->type) {
      case 0:
        type = ElementType::kF32;
        break;
      case 1:
        type = ElementType::kF16;
        break;
      case 30:
        type = ElementType::kBf16;
        break;
      default:
        Fail("tensor '" + tensor + "' has unsupported ggml type " + std::to_string(info->type) + " (" +
             GgmlTypeName(info->type) + "); F32, F16 and BF16 are read");
    }
    // The data's extent follows from the shape: multiply with overflow checks, then bound it by the file.
    uint64_t bytes = ElementSize(type);
    for (const uint64_t extent : info->dims) {
      if (__builtin_mul_overflow(bytes, extent, &bytes)) Fail("tensor '" + tensor + "' has an impossible shape");
    }
    const uint64_t available = in_.size() > data_start_ ? in_.size() - data_start_ : 0;
    if (info->offset > available || bytes > available - info->offset) {
      Fail("tensor '" + tensor + "' (" + std::to_string(bytes) + " bytes at data offset " +
           std::to_string(info->offset) + ") lies outside the file");
    }
    const std::vector<uint64_t> shape(info->dims.rbegin(), info->dims.rend());  // outermost first
    return ConvertTensor({tensor, shape, type, file_.bytes().subspan(data_start_ + info->offset, bytes)}, spec, name());
  }

 private:
  MappedFile file_;
  ByteReader in_;
  std::map<std::string, Value> metadata_;
  std::map<std::string, TensorInfo> tensors_;
  uint64_t data_start_ = 0;
};

image::ModelConfig ReadConfig(const GgufFile& gguf) {
  const Value* arch = gguf.Find("general.architecture");
  if (arch == nullptr || arch->type != kString) gguf.Fail("missing metadata 'general.architecture'");
  image::ModelConfig c{};
  bool qkv_bias = gguf.FindTensor("blk.0.attn_q.bias") != nullptr;
  if (arch->string == "llama") {
    c.arch = static_cast<uint32_t>(image::Arch::kLlama);
  } else if (arch->string == "qwen2") {
    c.arch = static_cast<uint32_t>(image::Arch::kQwen2);
    qkv_bias = true;  // Qwen2 always has q/k/v biases
  } else {
    gguf.Fail("unsupported architecture '" + Printable(arch->string) + "' (llama and qwen2 are read)");
  }
  const std::string p = arch->string + ".";
  c.dim = gguf.Dim(p + "embedding_length");
  c.hidden_dim = gguf.Dim(p + "feed_forward_length");
  c.n_layers = gguf.Dim(p + "block_count");
  c.n_heads = gguf.Dim(p + "attention.head_count");
  c.n_kv_heads = gguf.Find(p + "attention.head_count_kv") ? gguf.Dim(p + "attention.head_count_kv") : c.n_heads;
  c.seq_len = gguf.Dim(p + "context_length");
  if (c.n_heads == 0) gguf.Fail("metadata '" + p + "attention.head_count' is 0");

  const std::string key_length = p + "attention.key_length";
  const std::string rope_dims = p + "rope.dimension_count";
  if (gguf.Find(key_length)) {
    c.head_dim = gguf.Dim(key_length);
  } else if (gguf.Find(rope_dims)) {
    c.head_dim = gguf.Dim(rope_dims);
  } else {
    if (c.dim % c.n_heads != 0) gguf.Fail("embedding_length is not a multiple of attention.head_count");
    c.head_dim = c.dim / c.n_heads;
  }
  if (gguf.Find(rope_dims) && gguf.Dim(rope_dims) != c.head_dim) {
    gguf.Fail("partial rotary embedding (rope.dimension_count " + std::to_string(gguf.Dim(rope_dims)) + ", head_dim " +
              std::to_string(c.head_dim) + ") is not supported");
  }

  if (gguf.Find(p + "vocab_size")) {
    c.vocab_size = gguf.Dim(p + "vocab_size");
  } else {
    const TensorInfo* embedding = gguf.FindTensor("token_embd.weight");
    if (embedding == nullptr) gguf.Fail("missing tensor 'token_embd.weight'");
    if (embedding->dims.size() != 2 || embedding->dims[1] > UINT32_MAX) {
      gguf.Fail("tensor 'token_embd.weight' is not a [vocab, dim] matrix");
    }
    c.vocab_size = static_cast<uint32_t>(embedding->dims[1]);
  }
  const std::optional<float> eps = gguf.Float(p + "attention.layer_norm_rms_epsilon");
  if (!eps) gguf.Fail("missing metadata '" + p + "attention.layer_norm_rms_epsilon'");
  c.norm_eps = *eps;
  c.rope_theta = gguf.Float(p + "rope.freq_base").value_or(10000.0f);
  const bool shared = gguf.FindTensor("output.weight") == nullptr;
  c.flags = (shared ? image::kModelSharedClassifier : 0u) | (qkv_bias ? image::kModelQkvBias : 0u);
  CheckModelConfig(c, gguf.name());
  return c;
}

void AppendBytes(std::vector<uint8_t>& out, const void* data, size_t size) {
  const auto* bytes = static_cast<const uint8_t*>(data);
  out.insert(out.end(), bytes, bytes + size);
}

// SentencePiece vocabularies (tokens with scores) as llama2.c tokenizer.bin
// bytes; empty when the file has none.
std::vector<uint8_t> ConvertTokenizer(const GgufFile& gguf, uint32_t vocab_size) {
  const Value* tokens = gguf.Find("tokenizer.ggml.tokens");
  const Value* scores = gguf.Find("tokenizer.ggml.scores");
  if (tokens == nullptr || scores == nullptr) return {};
  if (tokens->type != kArray || tokens->element_type != kString)
    gguf.Fail("tokenizer.ggml.tokens is not a string array");
  if (scores->type != kArray || ScalarSize(scores->element_type) == 0 ||
      scores->numbers.size() != tokens->strings.size()) {
    gguf.Fail("tokenizer.ggml.scores is not a number array as long as tokenizer.ggml.tokens");
  }
  if (tokens->strings.size() != vocab_size) {
    gguf.Fail("tokenizer has " + std::to_string(tokens->strings.size()) + " tokens, the model's vocab_size is " +
              std::to_string(vocab_size));
  }
  static const std::string kSpaceMarker = "\xE2\x96\x81";  // U+2581, SentencePiece's word boundary
  std::vector<uint8_t> out(sizeof(int32_t));               // max_token_length, filled in at the end
  size_t max_length = 0;
  for (size_t i = 0; i < tokens->strings.size(); ++i) {
    std::string text = tokens->strings[i];
    for (size_t at = text.find(kSpaceMarker); at != std::string::npos; at = text.find(kSpaceMarker, at + 1)) {
      text.replace(at, kSpaceMarker.size(), " ");
    }
    const double score_value = scores->numbers[i];
    if (text.empty() || text.size() > INT32_MAX || !(std::fabs(score_value) <= std::numeric_limits<float>::max())) {
      gguf.Fail("token " + std::to_string(i) + " is empty or too long, or has a non-finite score");
    }
    const float score = static_cast<float>(score_value);
    const int32_t length = static_cast<int32_t>(text.size());
    AppendBytes(out, &score, sizeof score);
    AppendBytes(out, &length, sizeof length);
    AppendBytes(out, text.data(), text.size());
    max_length = std::max(max_length, text.size());
  }
  const int32_t max_token_length = static_cast<int32_t>(max_length);
  std::memcpy(out.data(), &max_token_length, sizeof max_token_length);
  return out;
}

}  // namespace

Checkpoint LoadGguf(const std::filesystem::path& path) {
  const GgufFile gguf(path);
  Checkpoint checkpoint;
  checkpoint.format = "gguf";
  checkpoint.config = ReadConfig(gguf);
  checkpoint.detail = image::DefaultDetail(checkpoint.config);
  for (const TensorSpec& spec : RequiredTensors(checkpoint.config, checkpoint.detail)) {
    checkpoint.tensors[spec.name] = gguf.Convert(spec.name, spec);
  }
  if (checkpoint.config.arch == static_cast<uint32_t>(image::Arch::kQwen2)) RotateHalfToInterleaved(checkpoint);
  checkpoint.tokenizer = ConvertTokenizer(gguf, checkpoint.config.vocab_size);
  return checkpoint;
}

}  // namespace qmc::host
