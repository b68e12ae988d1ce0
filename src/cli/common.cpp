#include "cli/common.h"

#include "cli/threads.h"

#include <ATen/Parallel.h>

#include <cstdio>
#include <thread>

#include "core/error.h"
#include "core/utf8.h"
#include "io/checkpoint.h"
#include "tokenizers/hf_tokenizer.h"
#include <nlohmann/json.hpp>

namespace mechscope::cli {

void add_model_flags(Args& a) {
  a.opt("model", "DIR|HUB_ID", "model directory (config.json + safetensors) or hub id in the local HF cache");
  a.opt("tokenizer", "PATH", "tokenizer.json or a directory with tokenizer files (default: the model's own)");
  a.opt("dtype", "TYPE", "compute dtype: float32, bfloat16, float64", "float32");
  a.opt("threads", "N", "CPU threads for tensor ops (0 = all cores)", "0");
}

void add_prompt_flags(Args& a, bool repeatable) {
  if (repeatable) {
    a.multi("prompt", "TEXT", "input text");
    a.multi("ids", "1,2,3", "input token ids, used exactly as given");
  } else {
    a.opt("prompt", "TEXT", "input text");
    a.opt("ids", "1,2,3", "input token ids, used exactly as given");
  }
  a.flag("prepend-bos", "put the BOS token before each --prompt (when the tokenizer does not already)");
  a.flag("no-special-tokens", "tokenize --prompt without the tokenizer's special tokens (BERT's [CLS]/[SEP], Llama's <s>)");
}

Loaded load_from_flags(const Args& a) {
  if (!a.has("model")) fail("--model is required (a model directory or a hub id)");
  set_threads(a.str("threads"));

  models::LoadOptions opts;
  std::string dt = a.str("dtype");
  if (dt == "float32" || dt == "f32") opts.dtype = at::kFloat;
  else if (dt == "bfloat16" || dt == "bf16") opts.dtype = at::kBFloat16;
  else if (dt == "float64" || dt == "f64") opts.dtype = at::kDouble;
  else if (dt == "float16" || dt == "f16") fail("--dtype float16 has no CPU kernels in libtorch; use float32 or bfloat16");
  else fail("--dtype: expected float32, bfloat16 or float64, got '", dt, "'");

  Loaded m;
  m.dir = io::resolve_model_dir(a.str("model"));
  m.model = models::load_model(m.dir, opts);
  std::string tok = a.has("tokenizer") ? a.str("tokenizer") : m.dir;
  if (a.has("tokenizer") || tokenizers::has_tokenizer(tok)) m.tokenizer = tokenizers::load_tokenizer(tok);

  return m;
}

const tokenizers::Tokenizer& need_tokenizer(const Loaded& m, const std::string& why) {
  if (!m.tokenizer)
    fail(why, " needs a tokenizer, and '", m.dir,
         "' has none (tokenizer.json, or vocab.json + merges.txt); pass --tokenizer PATH or give token ids with --ids");
  return *m.tokenizer;
}

void check_ids(const std::vector<int64_t>& ids, const models::ModelConfig& cfg, const std::string& what,
               int64_t extra) {
  if (ids.empty()) fail(what, " has no tokens");
  for (int64_t id : ids)
    if (id < 0 || id >= cfg.d_vocab) fail(what, ": token id ", id, " is outside the vocabulary (0 .. ", cfg.d_vocab - 1, ")");
  if (cfg.n_ctx > 0 && (int64_t)ids.size() + extra > cfg.n_ctx) {
    if (extra) fail(what, " has ", ids.size(), " tokens + ", extra, " to generate, more than the model's context of ", cfg.n_ctx);
    fail(what, " has ", ids.size(), " tokens, more than the model's context of ", cfg.n_ctx);
  }
}

std::vector<std::vector<int64_t>> inputs_from_flags(const Args& a, const Loaded& m, int64_t extra) {
  std::vector<std::vector<int64_t>> out;
  auto given = a.ordered({"prompt", "ids"});
  if (given.empty()) fail("give the input with --prompt TEXT or --ids 1,2,3");
  int n = 0;
  for (auto& [flag, value] : given) {
    ++n;
    std::vector<int64_t> ids;
    std::string what = cat("--", flag, " #", n);
    if (flag == "ids") {
      for (long long x : parse_int_list(value, "--ids")) ids.push_back(x);
    } else {
      size_t bad = utf8::find_invalid(value);
      if (bad != std::string::npos) fail("--prompt #", n, " is not valid UTF-8 (byte ", bad, ")");
      const auto& tok = need_tokenizer(m, "--prompt");
      // As transformers' tokenizer(text): the post-processor's special tokens are added (none for
      // GPT-2, <s> for Llama 2, [CLS] … [SEP] for BERT) unless --no-special-tokens.
      auto enc = a.on("no-special-tokens") ? tok.encode(value) : tokenizers::encode_with_special(tok, value);
      if (a.on("prepend-bos")) {
        auto bos = tok.bos_id() ? tok.bos_id() : m.model->config().bos_token_id;
        if (!bos) fail("--prepend-bos: the tokenizer and config.json name no BOS token");
        if (enc.empty() || enc[0] != *bos) ids.push_back(*bos);
      }
      if (enc.empty() && !value.empty())
        fail("--prompt #", n, " encodes to no tokens: the tokenizer has ", tok.size(), " tokens for a model vocabulary of ",
             m.model->config().d_vocab, "; pass the model's real tokenizer with --tokenizer PATH");      ids.insert(ids.end(), enc.begin(), enc.end());
    }
    check_ids(ids, m.model->config(), what, extra);
    out.push_back(std::move(ids));
  }
  return out;
}

std::string decode_known(const tokenizers::Tokenizer& tok, const std::vector<int64_t>& ids) {
  std::vector<int64_t> known;
  for (int64_t id : ids)
    if (id >= 0 && id < tok.size()) known.push_back(id);
  return tok.decode(known);
}

std::string json_quote(const std::string& s) { return nlohmann::json(s).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace); }

}  // namespace mechscope::cli
