// `qmc tokenize`: the tokens an image's tokenizer (or a tokenizer file, as
// `qmc pack` would embed it) gives a text, through the firmware's encoder.
#include <cstdio>
#include <iostream>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

#include "common/image_reader.h"
#include "common/tokenizer.h"
#include "host/atomic_file.h"
#include "host/checkpoint.h"
#include "host/cli/commands.h"
#include "host/image_summary.h"

namespace qmc::cli {
namespace {

struct TokenizeArgs {
  std::string image;
  std::string tokenizer;
  std::string text;
  bool no_special = false;
  bool ids = false;
};

// The piece with control bytes escaped, so each token stays on its line.
std::string Escaped(std::string_view piece) {
  std::string out;
  for (const char c : piece) {
    const auto byte = static_cast<unsigned char>(c);
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else if (byte < 0x20 || byte == 0x7F) {
      char hex[8];
      std::snprintf(hex, sizeof hex, "\\x%02X", byte);
      out += hex;
    } else {
      out += c;
    }
  }
  return out;
}

void RunTokenize(const TokenizeArgs& args) {
  std::vector<uint8_t> image_bytes, section;
  image::ImageView view;
  if (!args.image.empty()) {
    image_bytes = host::ReadWholeFile(args.image);
    const Result<image::ImageView> opened = image::ImageView::OpenFile(image_bytes);
    const Status valid = opened.ok() ? opened.value().Validate() : opened.status();
    if (!valid.ok()) {
      std::fprintf(stderr, "qmc tokenize: %s: %s\n", args.image.c_str(), host::DescribeStatus(valid).c_str());
      throw CommandFailed{kExitBadImage};
    }
    view = opened.value();
  } else {
    section = host::LoadTokenizerFile(args.tokenizer);
  }
  std::string text;
  if (!args.text.empty()) {
    const std::vector<uint8_t> bytes = host::ReadWholeFile(args.text);
    text.assign(bytes.begin(), bytes.end());
  } else {
    text.assign(std::istreambuf_iterator<char>(std::cin), {});
  }

  const uint32_t vocab_size = args.image.empty() ? host::TokenizerTokenCount(section) : view.model().vocab_size;
  std::vector<uint8_t> workspace(args.image.empty() ? Tokenizer::WorkspaceBytes(section, vocab_size, text.size())
                                                    : Tokenizer::WorkspaceBytes(view, text.size()));
  Tokenizer tokenizer;
  const Status init = args.image.empty() ? tokenizer.Init(section, vocab_size, workspace, text.size())
                                         : tokenizer.Init(view, workspace, text.size());
  if (!init.ok()) throw host::InputError(host::DescribeStatus(init));
  std::vector<uint32_t> tokens(tokenizer.MaxTokens(text.size()));
  const Result<uint32_t> count =
      tokenizer.Encode(text, !args.no_special && tokenizer.add_bos(), !args.no_special && tokenizer.add_eos(), tokens);
  if (!count.ok()) throw host::InputError(host::DescribeStatus(count.status()));
  tokens.resize(count.value());

  if (args.ids) {
    std::string line;
    for (const uint32_t t : tokens) line += (line.empty() ? "" : " ") + std::to_string(t);
    std::printf("%s\n", line.c_str());
    return;
  }
  for (size_t i = 0; i < tokens.size(); ++i) {
    const uint32_t prev = i == 0 ? Tokenizer::kNoToken : tokens[i - 1];
    std::printf("%u\t%s\n", tokens[i], Escaped(tokenizer.Decode(prev, tokens[i])).c_str());
  }
}

}  // namespace

void AddTokenizeCommand(CLI::App& app) {
  auto args = std::make_shared<TokenizeArgs>();
  CLI::App* cmd = app.add_subcommand(
      "tokenize",
      "Show the tokens of a text: an image's tokenizer, or a tokenizer file as qmc pack would embed it, "
      "run through the firmware's encoder.");
  CLI::Option* image = cmd->add_option("image", args->image, "a QMC image whose tokenizer to use");
  CLI::Option* file = cmd->add_option("--tokenizer", args->tokenizer,
                                      "a tokenizer file instead of an image: llama2.c tokenizer.bin or HuggingFace "
                                      "tokenizer.json (with the tokenizer_config.json beside it, if any)");
  image->excludes(file);
  cmd->add_option("--text", args->text, "file holding the text, as bytes (default: standard input)");
  cmd->add_flag("--no-special", args->no_special,
                "add no BOS or EOS (HuggingFace's add_special_tokens=False); special tokens written in the text "
                "are still recognised");
  cmd->add_flag("--ids", args->ids, "print only the ids, space-separated, on one line");
  cmd->footer(
      "Without --ids, one token per line: its id, a tab, and its text (control bytes escaped).\n"
      "BOS and EOS are added as the model does by default (Llama 3 and Hymba add BOS; Qwen2 and GPT-2 add\n"
      "nothing; llama2.c adds BOS) unless --no-special.\n"
      "Example: echo -n 'Hello world' | qmc tokenize --tokenizer ../shared/models/paper/llama-3.2-3b/tokenizer.json "
      "--ids");
  cmd->callback([args, image, file] {
    if (image->count() == 0 && file->count() == 0) throw CLI::ValidationError("give an IMAGE or --tokenizer FILE");
    RunTokenize(*args);
  });
}

}  // namespace qmc::cli
