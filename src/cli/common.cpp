#include "cli/common.h"

#include "cli/threads.h"

#include <ATen/Parallel.h>

#include <cstdio>
#include <cstdlib>
#include <thread>

#include "core/error.h"
#include "core/utf8.h"
#include "io/checkpoint.h"
#include "models/device.h"
#include "report/manifest.h"
#include "tokenizers/hf_tokenizer.h"
#include <nlohmann/json.hpp>

namespace mechscope::cli {

namespace {
std::string& default_model() {
  static std::string dir;
  return dir;
}
}  // namespace

void set_default_model(const std::string& dir) { default_model() = dir; }

void add_model_flags(Args& a) {
  a.opt("model", "DIR|HUB_ID", "model directory (config.json + safetensors) or hub id in the local HF cache",
        default_model());
  a.opt("tokenizer", "PATH", "tokenizer.json or a directory with tokenizer files (default: the model's own)");
  a.opt("dtype", "TYPE", "compute dtype: float32, bfloat16, float64 (float16 on cuda)", "float32");
  a.opt("threads", "N", "CPU threads for tensor ops (0 = all cores)", "0");
  add_device_flag(a);
}

void add_device_flag(Args& a) {
  // $MECHSCOPE_DEVICE sets the default, so a whole session (or the test suite) can move to a GPU at once.
  const char* env = std::getenv("MECHSCOPE_DEVICE");
  a.opt("device", "DEV",
        "where the model runs: cpu, cuda, cuda:N, or auto (cuda when a GPU is usable); "
        "default $MECHSCOPE_DEVICE, else cpu",
        env && *env ? env : "cpu");
}

at::Device device_from_flags(const Args& a) {
  at::Device dev = models::parse_device(a.str("device"));
  report::set_manifest_runtime(models::runtime_json(models::runtime_info(), dev));
  return dev;
}

void add_encoding_flags(Args& a) {
  a.flag("prepend-bos",
         "put the BOS token first when the tokenizer does not start with a special token itself "
         "(as TransformerLens's to_tokens)");
  a.flag("no-special-tokens", "encode text without the tokenizer's special tokens (BERT's [CLS]/[SEP], Llama's <s>)");
}

void add_prompt_flags(Args& a, bool repeatable, bool segments) {
  if (repeatable) {
    a.multi("prompt", "TEXT", "input text");
    a.multi("ids", "1,2,3", "input token ids, used exactly as given");
  } else {
    a.opt("prompt", "TEXT", "input text");
    a.opt("ids", "1,2,3", "input token ids, used exactly as given");
  }
  if (segments) {
    a.multi("pair", "TEXT",
            "second segment of the --prompt before it (BERT-family: the tokenizer's pair template, "
            "token types 0 then 1)");
    a.multi("token-type-ids", "0,0,1", "token type (segment) ids of the --ids before it");
  }
  add_encoding_flags(a);
}

Loaded load_from_flags(const Args& a) {
  if (!a.has("model") && default_model().empty()) fail("--model is required (a model directory or a hub id)");
  set_threads(a.str("threads"));

  models::LoadOptions opts;
  opts.device = device_from_flags(a);
  std::string dt = a.str("dtype");
  if (dt == "float32" || dt == "f32") opts.dtype = at::kFloat;
  else if (dt == "bfloat16" || dt == "bf16") opts.dtype = at::kBFloat16;
  else if (dt == "float64" || dt == "f64") opts.dtype = at::kDouble;
  else if (dt == "float16" || dt == "f16") opts.dtype = at::kHalf;
  else fail("--dtype: expected float32, bfloat16, float64 or float16, got '", dt, "'");
  models::check_dtype_on(opts.dtype, opts.device);

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
    if (id < 0 || id >= cfg.d_vocab)
      fail(what, ": token id ", id, " is outside the vocabulary (0 .. ", cfg.d_vocab - 1, ")");
  if (cfg.n_ctx > 0 && (int64_t)ids.size() + extra > cfg.n_ctx) {
    if (extra)
      fail(what, " has ", ids.size(), " tokens + ", extra, " to generate, more than the model's context of ",
           cfg.n_ctx);
    fail(what, " has ", ids.size(), " tokens, more than the model's context of ", cfg.n_ctx);
  }
}

tokenizers::EncodeOptions encode_options(const Args& a, const Loaded& m) {
  tokenizers::EncodeOptions o;
  o.special_tokens = !a.on("no-special-tokens");
  o.prepend_bos = a.on("prepend-bos");
  o.bos_fallback = m.model->config().bos_token_id;
  return o;
}

tokenizers::Encoding encode_text(const Args& a, const Loaded& m, const std::string& text, const std::string& what,
                                 const std::optional<std::string>& pair, int64_t extra) {
  for (const std::string* t : {&text, pair ? &*pair : nullptr}) {
    if (!t) continue;
    size_t bad = utf8::find_invalid(*t);
    if (bad != std::string::npos) fail(what, t == &text ? "" : " (its pair)", " is not valid UTF-8 (byte ", bad, ")");
  }
  const auto& tok = need_tokenizer(m, what);
  tokenizers::Encoding e;
  try {
    e = tokenizers::encode_input(tok, text, encode_options(a, m), pair);
  } catch (const Error& err) {
    if (err.raw().rfind(option("prepend_bos"), 0) == 0) throw;  // the flag's own error, not the text's
    fail(what, ": ", err.raw());
  }
  if (e.a_end == e.a_begin && !text.empty())
    fail(what, " encodes to no tokens: the tokenizer has ", tok.size(), " tokens for a model vocabulary of ",
         m.model->config().d_vocab, "; pass the model's real tokenizer with --tokenizer PATH");
  check_ids(e.ids, m.model->config(), what, extra);
  return e;
}

void check_token_types(const std::vector<int64_t>& types, size_t n_ids, const models::ModelConfig& cfg,
                       const std::string& what) {
  if (cfg.n_token_types == 0)
    fail(what, ": ", cfg.model_type, " models take no token type ids (segments are for BERT-family encoders)");
  if (types.size() != n_ids) fail(what, " has ", types.size(), " token type ids for ", n_ids, " token ids");
  for (int64_t t : types)
    if (t < 0 || t >= cfg.n_token_types)
      fail(what, ": token type id ", t, " is outside 0 .. ", cfg.n_token_types - 1, " (type_vocab_size ",
           cfg.n_token_types, ")");
}

Inputs inputs_from_flags(const Args& a, const Loaded& m, int64_t extra) {
  Inputs in;
  auto given = a.ordered({"prompt", "ids", "pair", "token-type-ids"});
  int n = 0;
  const auto& cfg = m.model->config();
  for (size_t i = 0; i < given.size(); ++i) {
    const auto& [flag, value] = given[i];
    std::string next = i + 1 < given.size() ? given[i + 1].first : "";
    if (flag == "pair" || flag == "token-type-ids") {
      const char* after = flag == "pair" ? "--prompt" : "--ids";
      fail("--", flag, " '", value, "' must come right after the ", after, " it belongs to");
    }
    ++n;
    std::string what = cat("--", flag, " #", n);
    tokenizers::Encoding e;
    if (flag == "ids") {
      for (long long x : parse_int_list(value, "--ids")) e.ids.push_back(x);
      check_ids(e.ids, cfg, what, extra);
      e.type_ids.assign(e.ids.size(), 0);
      e.a_end = e.b_begin = e.b_end = e.ids.size();
      if (next == "token-type-ids") {
        std::string tw = cat("--token-type-ids of ", what);
        std::vector<int64_t> types;
        for (long long x : parse_int_list(given[++i].second, "--token-type-ids")) types.push_back(x);
        check_token_types(types, e.ids.size(), cfg, tw);
        e.type_ids = types;
        in.segments = true;
      }
    } else {
      std::optional<std::string> pair;
      if (next == "pair") pair = given[++i].second, in.segments = true;
      e = encode_text(a, m, value, what, pair, extra);
      if (pair && cfg.n_token_types > 0) check_token_types(e.type_ids, e.ids.size(), cfg, what);
    }
    in.seqs.push_back(std::move(e));
  }
  if (in.seqs.empty()) fail("give the input with --prompt TEXT or --ids 1,2,3");
  return in;
}

void need_lm_head(const Loaded& m, const std::string& command) {
  const auto& c = m.model->config();
  if (m.model->has_classifier()) {
    std::string labels;
    for (auto& l : c.labels) labels += (labels.empty() ? "" : ", ") + l;
    fail(command, ": '", m.dir, "' is a sequence classifier (", c.architecture, ", labels ", labels,
         "): it has no language-model head to predict tokens with; use mechscope run for its class logits");
  }
  if (!m.model->has_lm_head())
    fail(command, ": '", m.dir, "' has no language-model head (a bare ",
         c.architecture.empty() ? c.model_type : c.architecture,
         "): it predicts no tokens; use mechscope run --cache ... for its activations");
}

std::string decode_known(const tokenizers::Tokenizer& tok, const std::vector<int64_t>& ids) {
  std::vector<int64_t> known;
  for (int64_t id : ids)
    if (id >= 0 && id < tok.size()) known.push_back(id);
  return tok.decode(known);
}

std::string json_quote(const std::string& s) {
  return nlohmann::json(s).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace mechscope::cli
