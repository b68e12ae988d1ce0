#include "cli/trace_common.h"

#include "analysis/causal_trace/facts.h"

#include <cctype>

#include "analysis/causal_trace/facts.h"
#include "core/error.h"
#include "core/utf8.h"
#include "report/run.h"

namespace mechscope::cli {

namespace ct = analysis::causal_trace;

void add_trace_flags(Args& a, bool locate) {
  if (locate) {
    a.opt("noise-level", "K|RULE",
          "noise: K = K x the std of the subjects' token embeddings (ROME's s<K>); or a rule "
          "s<k>, a=<level> (absolute), u<x> (uniform), t<d> (Student-t)",
          "3.0");
    a.opt("num-noise-samples", "N", "corrupted copies per traced run", "10").fills("samples");
  } else {
    a.opt("noise", "RULE",
          "s<k>: k x std of the subject's token embeddings; a number: absolute level; u<x>: "
          "uniform(-x, x); t<d>: Student-t, d degrees of freedom, scaled to the embedding std",
          "s3");
    a.opt("samples", "N", "corrupted copies per traced run", "10");
  }
  a.opt("window", "W", "layers restored together for mlp/attn: [L - W/2, L + W/2)", "10");
  a.opt("kinds", "LIST", "what to restore: all (block output), mlp, attn", "all,mlp,attn");
  a.opt("seed", "N", "numpy RandomState seed of the noise (ROME: 1)", "1");
  a.flag("replace", "replace the subject embeddings by the noise instead of adding it (ROME's --replace)");
  a.flag("naive", "ROME's way: one full forward of 1 + samples rows per cell (slow; for checking)");
  a.opt("max-batch-tokens", "N",
        "fast path: at most N packed rows (run x position) per batch; 0 = about 8 MB of "
        "residual stream",
        "0");
  a.opt("formats", "LIST", "static figure formats: png, svg, pdf", "png");
}

TraceSettings trace_settings_from_flags(const Args& a, bool locate) {
  TraceSettings s;
  if (locate) {
    // The seed's run_locating.sh: --noise-level 3.0 is ROME's "s3"; "a=0.1" is an absolute level.
    s.rule = ct::parse_noise(a.str("noise-level"), "--noise-level", true);
  } else {
    s.rule = ct::parse_noise(a.str("noise"), "--noise");
  }
  long long samples = a.integer(locate ? "num-noise-samples" : "samples");
  if (samples < 1 || samples > 100000)
    fail(locate ? "--num-noise-samples" : "--samples", " must be in 1 .. 100000, got ", samples);
  s.opt.samples = (int)samples;
  long long w = a.integer("window");
  if (w < 1 || w > 100000) fail("--window must be >= 1, got ", w);
  s.opt.window = (int)w;
  s.opt.kinds = ct::parse_kinds(a.str("kinds"));
  long long seed = a.integer("seed");
  if (seed < 0 || seed > 4294967295LL) fail("--seed must be in 0 .. 2^32 - 1 (numpy's RandomState), got ", seed);
  s.opt.seed = (uint32_t)seed;
  s.opt.naive = a.on("naive");
  long long mbt = a.integer("max-batch-tokens");
  if (mbt < 0) fail("--max-batch-tokens must be >= 0 (0 = automatic)");
  s.opt.max_batch_tokens = mbt;
  s.formats = report::parse_formats(a.str("formats"));
  return s;
}

tokenizers::Encoding encode_prompt(const Args& a, const Loaded& m, const std::string& text, const std::string& what) {
  return encode_text(a, m, text, what);
}

std::pair<int64_t, int64_t> subject_range(const Loaded& m, const tokenizers::Encoding& e, const std::string& subject,
                                          const std::string& prompt, const std::string& what) {
  const auto& tok = need_tokenizer(m, what);
  // ROME's find_token_range over the prompt's own tokens, then past the special tokens the tokenizer
  // put before them (Llama's <s>, BERT's [CLS]), which decode to text a subject could match.
  std::vector<int64_t> own(e.ids.begin() + e.a_begin, e.ids.begin() + e.a_end);
  auto [b, end] = ct::find_token_range(tok, own, subject, prompt);
  return {b + (int64_t)e.a_begin, end + (int64_t)e.a_begin};
}

std::vector<int64_t> subject_ids(const Args& a, const Loaded& m, const std::string& subject, const std::string& what) {
  // As ROME's collect_embedding_std, which runs each subject through make_inputs (tokenizer(subject)).
  return encode_text(a, m, subject, what).ids;
}

int64_t answer_token(const Loaded& m, const std::string& text, const std::string& prompt, const std::string& what) {
  const auto& tok = need_tokenizer(m, what);
  analysis::causal_trace::check_known_words(tok, text, what);
  std::vector<std::string> tries;
  bool space_before = !prompt.empty() && !std::isspace((unsigned char)prompt.back());
  if (space_before && !text.empty() && text[0] != ' ') tries.push_back(" " + text);
  tries.push_back(text);
  for (auto& t : tries) {
    auto ids = tok.encode(t);
    if (ids.size() == 1) {
      if (ids[0] >= m.model->config().d_vocab)
        fail(what, " '", text, "' is token ", ids[0], ", outside the model's vocabulary");
      return ids[0];
    }
  }
  fail(what, " '", text, "' is ", tok.encode(tries[0]).size(),
       " tokens; causal tracing scores one token (give its first token, or --answer-id N)");
}

std::vector<std::string> token_labels(const Loaded& m, const std::vector<int64_t>& ids) {
  std::vector<std::string> out;
  for (int64_t id : ids)
    out.push_back(m.tokenizer && id < m.tokenizer->size() ? m.tokenizer->display(id) : std::to_string(id));
  return out;
}

std::string token_text(const Loaded& m, int64_t id) {
  if (m.tokenizer && id < m.tokenizer->size()) return m.tokenizer->decode({id});
  return std::to_string(id);
}

nlohmann::json settings_json(const TraceSettings& s, double embedding_std) {
  nlohmann::json kinds = nlohmann::json::array();
  for (auto k : s.opt.kinds) kinds.push_back(ct::kind_name(k));
  const char* dist = s.opt.noise.dist == ct::Noise::Gaussian  ? "gaussian"
                     : s.opt.noise.dist == ct::Noise::Uniform ? "uniform"
                                                              : "student_t";
  nlohmann::json j{{"noise_rule", s.rule.text},
                   {"noise_level", s.opt.noise.scale},
                   {"noise_distribution", dist},
                   {"replace", s.opt.noise.replace},
                   {"samples", s.opt.samples},
                   {"window", s.opt.window},
                   {"kinds", kinds},
                   {"seed", s.opt.seed},
                   {"naive", s.opt.naive}};
  if (s.rule.needs_embedding_std()) j["embedding_std"] = embedding_std;
  if (s.opt.noise.dist == ct::Noise::StudentT) j["degrees_of_freedom"] = s.opt.noise.df;
  return j;
}

nlohmann::json trace_json(const ct::TraceResult& r, const ct::TraceInput& in, const std::vector<std::string>& tokens,
                          const std::string& answer, const TraceSettings& s, double embedding_std) {
  nlohmann::json j = settings_json(s, embedding_std);
  j["answer_id"] = r.answer_id;
  j["answer"] = answer;
  j["low_score"] = r.low_score;
  j["high_score"] = r.high_score;
  j["method"] = r.method;
  j["subject_range"] = {in.subject_begin, in.subject_end};
  j["input_ids"] = in.ids;
  j["input_tokens"] = tokens;
  return j;
}

}  // namespace mechscope::cli
