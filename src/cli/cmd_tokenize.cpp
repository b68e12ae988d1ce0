// mechscope tokenize: text -> ids with the model's tokenizer; --jsonl for many texts in one process.
#include <cstdio>
#include <fstream>

#include "cli/common.h"
#include "cli/registry.h"
#include "core/error.h"
#include "core/json.h"
#include "core/utf8.h"
#include "io/checkpoint.h"
#include "tokenizers/hf_tokenizer.h"
#include <iostream>

namespace mechscope::cli {
namespace {

int run_tokenize(int argc, char** argv) {
  Args a("tokenize", "--model M [--json] TEXT | --jsonl FILE",
         "Token ids and token strings of TEXT. With --jsonl, FILE holds one JSON string per line and one JSON\n"
         "array of ids is printed per line.");
  a.opt("model", "DIR|HUB_ID", "model directory or hub id (only its tokenizer is read)");
  a.opt("tokenizer", "PATH", "tokenizer.json or a directory with tokenizer files (instead of --model)");
  a.flag("json", "print {\"ids\": [...], \"tokens\": [...]}");
  a.opt("jsonl", "FILE", "tokenize every line of FILE (a JSON string each; - for stdin)");
  a.flag("prepend-bos", "put the BOS token first (when the tokenizer does not already)");
  a.flag("no-special-tokens", "leave out the tokenizer's special tokens (BERT's [CLS]/[SEP], Llama's <s>)");
  a.positional("TEXT", "text to tokenize", false);
  if (!a.parse(argc, argv)) return 0;
  if (!a.has("model") && !a.has("tokenizer")) fail("--model or --tokenizer is required");
  std::string path = a.has("tokenizer") ? a.str("tokenizer") : io::resolve_model_dir(a.str("model"));
  auto tok = tokenizers::load_tokenizer(path);
  std::vector<int64_t> bos;
  if (a.on("prepend-bos")) {
    if (!tok->bos_id()) fail("--prepend-bos: the tokenizer names no BOS token");
    bos.push_back(*tok->bos_id());
  }
  // As transformers' tokenizer(text): with the post-processor's special tokens unless told not to.
  bool special = !a.on("no-special-tokens");
  auto encode = [&](const std::string& text) {
    auto ids = special ? tokenizers::encode_with_special(*tok, text) : tok->encode(text);
    if (!bos.empty() && (ids.empty() || ids[0] != bos[0])) ids.insert(ids.begin(), bos[0]);
    return ids;
  };

  if (a.has("jsonl")) {
    if (a.has("TEXT")) fail("give either TEXT or --jsonl, not both");
    std::string file = a.str("jsonl");
    std::ifstream f;
    if (file != "-") {
      f.open(file);
      if (!f) fail("cannot read --jsonl file '", file, "'");
    }
    std::istream& in = file == "-" ? std::cin : f;
    std::string line, out;
    for (long long n = 1; std::getline(in, line); ++n) {
      if (line.empty()) continue;
      nlohmann::json j = parse_json(line, cat(file, ":", n));
      if (!j.is_string()) fail(file, ":", n, ": expected a JSON string");
      out = nlohmann::json(encode(j.get<std::string>())).dump();
      out += '\n';
      std::fwrite(out.data(), 1, out.size(), stdout);
    }
    return 0;
  }
  if (!a.has("TEXT")) fail("give the TEXT to tokenize (or --jsonl FILE)");
  std::string text = a.str("TEXT");
  size_t bad = utf8::find_invalid(text);
  if (bad != std::string::npos) fail("TEXT is not valid UTF-8 (byte ", bad, ")");
  auto ids = encode(text);
  std::vector<std::string> tokens;
  for (int64_t id : ids) tokens.push_back(tok->id_to_token(id));
  if (a.on("json")) {
    nlohmann::json j{{"ids", ids}, {"tokens", tokens}};
    std::printf("%s\n", j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
    return 0;
  }
  std::printf("%zu tokens\n", ids.size());
  for (size_t i = 0; i < ids.size(); ++i)
    std::printf("%6zu %8lld  %s\n", i, (long long)ids[i], json_quote(tok->display(ids[i])).c_str());
  return 0;
}

const Register reg{"tokenize", "token ids and strings of a text (or of many texts with --jsonl)", 20, run_tokenize};

}  // namespace
}  // namespace mechscope::cli
