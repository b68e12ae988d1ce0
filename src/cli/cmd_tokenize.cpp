// mechscope tokenize: text -> ids with the model's tokenizer; --jsonl for many texts in one process.
#include <cstdio>
#include <fstream>

#include "cli/common.h"
#include "cli/registry.h"
#include "core/fs_guard.h"
#include "core/error.h"
#include "core/json.h"
#include "core/utf8.h"
#include "io/checkpoint.h"
#include "models/model.h"
#include "tokenizers/encoding.h"
#include <iostream>

namespace mechscope::cli {
namespace {

int run_tokenize(int argc, char** argv) {
  Args a("tokenize", "--model M [--json] [--pair TEXT] TEXT | --jsonl FILE",
         "Token ids and token strings of TEXT, encoded as transformers' tokenizer(TEXT) does (and as every other\n"
         "command encodes its prompts). With --jsonl, FILE holds one JSON string per line and one JSON array of\n"
         "ids is printed per line.");
  a.opt("model", "DIR|HUB_ID", "model directory or hub id (only its tokenizer is read)");
  a.opt("tokenizer", "PATH", "tokenizer.json or a directory with tokenizer files (instead of --model)");
  a.flag("json", "print {\"ids\": [...], \"tokens\": [...]}");
  a.opt("jsonl", "FILE", "tokenize every line of FILE (a JSON string each; - for stdin)");
  a.opt("pair", "TEXT", "second segment (BERT-family: the tokenizer's pair template; token types are shown)");
  add_encoding_flags(a);
  a.positional("TEXT", "text to tokenize", false);
  if (!a.parse(argc, argv)) return 0;
  if (!a.has("model") && !a.has("tokenizer")) fail("--model or --tokenizer is required");
  std::string dir = a.has("model") ? io::resolve_model_dir(a.str("model")) : "";
  std::string path = a.has("tokenizer") ? a.str("tokenizer") : dir;
  auto tok = tokenizers::load_tokenizer(path);
  // The encoder every command uses (tokenizers/encoding.h), so these are the ids `run` and the analyses see.
  tokenizers::EncodeOptions opt;
  opt.special_tokens = !a.on("no-special-tokens");
  opt.prepend_bos = a.on("prepend-bos");
  if (opt.prepend_bos && !tok->bos_id() && !dir.empty()) opt.bos_fallback = models::read_config(dir).bos_token_id;
  if (opt.prepend_bos && !tok->bos_id() && !opt.bos_fallback)
    fail("--prepend-bos: the tokenizer names no BOS token", dir.empty() ? "" : " and neither does config.json");
  std::optional<std::string> pair;
  if (a.has("pair")) {
    pair = a.str("pair");
    size_t bad = utf8::find_invalid(*pair);
    if (bad != std::string::npos) fail("--pair is not valid UTF-8 (byte ", bad, ")");
  }
  auto encode_full = [&](const std::string& text) {
    if (!pair) return tokenizers::encode_input(*tok, text, opt);
    try {
      return tokenizers::encode_input(*tok, text, opt, pair);
    } catch (const Error& e) {
      fail("--pair: ", e.raw());
    }
  };
  auto encode = [&](const std::string& text) { return encode_full(text).ids; };

  if (a.has("jsonl")) {
    if (a.has("TEXT")) fail("give either TEXT or --jsonl, not both");
    if (pair) fail("--pair goes with one TEXT, not with --jsonl");
    std::string file = a.str("jsonl");
    if (file != "-" && !std::ifstream(file)) fail("cannot read --jsonl file '", file, "'");
    std::string out;
    // Line by line, a line longer than 16 MiB refused before it is held (issue 17).
    for_each_line(file == "-" ? "/dev/stdin" : file, [&](const std::string& line, long long n) {
      if (line.empty()) return;
      nlohmann::json j = parse_json(line, cat(file, ":", n));
      if (!j.is_string()) fail(file, ":", n, ": expected a JSON string");
      out = nlohmann::json(encode(j.get<std::string>())).dump();
      out += '\n';
      std::fwrite(out.data(), 1, out.size(), stdout);
    });
    return 0;
  }
  if (!a.has("TEXT")) fail("give the TEXT to tokenize (or --jsonl FILE)");
  std::string text = a.str("TEXT");
  size_t bad = utf8::find_invalid(text);
  if (bad != std::string::npos) fail("TEXT is not valid UTF-8 (byte ", bad, ")");
  auto enc = encode_full(text);
  const auto& ids = enc.ids;
  std::vector<std::string> tokens;
  for (int64_t id : ids) tokens.push_back(tok->id_to_token(id));
  if (a.on("json")) {
    nlohmann::json j{{"ids", ids}, {"tokens", tokens}};
    if (pair) j["token_type_ids"] = enc.type_ids;
    std::printf("%s\n", j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
    return 0;
  }
  std::printf("%zu tokens\n", ids.size());
  for (size_t i = 0; i < ids.size(); ++i) {
    if (pair)
      std::printf("%6zu %8lld %4lld  %s\n", i, (long long)ids[i], (long long)enc.type_ids[i],
                  json_quote(tok->display(ids[i])).c_str());
    else std::printf("%6zu %8lld  %s\n", i, (long long)ids[i], json_quote(tok->display(ids[i])).c_str());
  }
  return 0;
}

const Register reg{"tokenize", "token ids and strings of a text (or of many texts with --jsonl)", 20, run_tokenize};

}  // namespace
}  // namespace mechscope::cli
