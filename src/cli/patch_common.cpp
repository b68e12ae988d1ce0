#include "cli/patch_common.h"

#include <nlohmann/json.hpp>

#include <fstream>

#include "core/error.h"
#include "core/fs.h"
#include "core/fs_guard.h"
#include "core/json.h"
#include "core/utf8.h"
#include "io/safetensors.h"
#include "report/label.h"

namespace mechscope::cli {

namespace P = analysis::patching;

void add_answer_flags(Args& a) {
  a.opt("answer", "TEXT", "the correct answer, one token (e.g. \" John\")");
  a.opt("wrong", "TEXT", "the wrong answer for the logit difference, one token (e.g. \" Mary\")");
  a.opt("answer-id", "N", "the correct answer as a token id");
  a.opt("wrong-id", "N", "the wrong answer as a token id");
  a.opt("metric", "M", "logit-diff (answer - wrong), prob or logprob (of the answer)", "logit-diff");
  a.opt("position", "N", "position whose logits the metric reads (negative: from the end)", "-1");
  add_encoding_flags(a);
}

void add_prompt_pair_flags(Args& a) {
  a.opt("clean", "TEXT", "the clean prompt");
  a.opt("corrupt", "TEXT", "the corrupted prompt (same number of tokens)");
  a.opt("clean-ids", "IDS", "the clean prompt as token ids");
  a.opt("corrupt-ids", "IDS", "the corrupted prompt as token ids");
  a.opt("clean-pair", "TEXT",
        "second segment of --clean (BERT-family: the tokenizer's pair template, token types 0/1)");
  a.opt("corrupt-pair", "TEXT", "second segment of --corrupt");
  add_answer_flags(a);
}

int64_t single_token(const Loaded& m, const std::string& text, const std::string& flag) {
  size_t bad = utf8::find_invalid(text);
  if (bad != std::string::npos) fail(flag, " is not valid UTF-8 (byte ", bad, ")");
  const auto& tok = need_tokenizer(m, flag);
  auto ids = tok.encode(text);
  if (ids.size() != 1) {
    std::string list;
    for (auto id : ids) list += (list.empty() ? "" : ", ") + std::to_string(id) + " '" + tok.display(id) + "'";
    fail(flag, " '", text, "' is ", ids.size(), " tokens (", list.empty() ? "none" : list,
         "); the metric needs a single token (give one with ", flag, "-id N)");
  }
  if (ids[0] >= m.model->config().d_vocab) fail(flag, ": token id ", ids[0], " is outside the model's vocabulary");
  return ids[0];
}

static int64_t id_flag(const Args& a, const Loaded& m, const std::string& flag) {
  long long v = a.integer(flag);
  if (v < 0 || v >= m.model->config().d_vocab)
    fail("--", flag, " ", v, " is outside the vocabulary (0 .. ", m.model->config().d_vocab - 1, ")");
  return v;
}

P::Metric metric_from_flags(const Args& a, const Loaded& m, bool need_answer) {
  P::Metric metric;
  metric.kind = P::parse_metric(a.str("metric"));
  metric.position = a.integer("position");
  if (a.has("answer") && a.has("answer-id")) fail("give --answer or --answer-id, not both");
  if (a.has("wrong") && a.has("wrong-id")) fail("give --wrong or --wrong-id, not both");
  if (a.has("answer")) metric.answer = single_token(m, a.str("answer"), "--answer");
  if (a.has("answer-id")) metric.answer = id_flag(a, m, "answer-id");
  if (a.has("wrong")) metric.wrong = single_token(m, a.str("wrong"), "--wrong");
  if (a.has("wrong-id")) metric.wrong = id_flag(a, m, "wrong-id");
  if (need_answer) {
    if (metric.answer < 0) fail("the metric needs the correct answer: --answer TEXT or --answer-id N");
    if (metric.kind == P::MetricKind::LogitDiff && metric.wrong < 0)
      fail("--metric logit-diff needs the wrong answer too: --wrong TEXT or --wrong-id N");
  }
  return metric;
}

std::vector<int64_t> prompt_ids(const Args& a, const Loaded& m, const std::string& text, const std::string& what) {
  return encode_text(a, m, text, what).ids;
}

tokenizers::Encoding prompt_encoding(const Args& a, const Loaded& m, const std::string& text, const std::string& what,
                                     const std::optional<std::string>& pair) {
  tokenizers::Encoding e = encode_text(a, m, text, what, pair);
  if (m.model->config().n_token_types == 0) e.type_ids.clear();
  else if (pair) check_token_types(e.type_ids, e.ids.size(), m.model->config(), what);
  return e;
}

static std::vector<int64_t> ids_of(const std::string& list, const Loaded& m, const std::string& what) {
  std::vector<int64_t> ids;
  for (long long x : parse_int_list(list, what)) ids.push_back(x);
  check_ids(ids, m.model->config(), what);
  return ids;
}

std::vector<std::string> token_strings(const Loaded& m, const std::vector<int64_t>& ids) {
  std::vector<std::string> out;
  for (int64_t id : ids) {
    if (m.tokenizer && id < m.tokenizer->size()) {
      report::LabelStyle st;
      st.dot_spaces = false;
      st.max_chars = 14;
      std::string s = report::token_label(m.tokenizer->display(id), st);
      // A token that is all spaces would vanish from an axis label.
      out.push_back(s.find_first_not_of(' ') == std::string::npos ? report::token_label(m.tokenizer->display(id)) : s);
    } else {
      out.push_back("#" + std::to_string(id));
    }
  }
  return out;
}

std::vector<std::string> position_labels(const std::vector<std::string>& a, const std::vector<std::string>& b) {
  std::vector<std::string> out;
  for (size_t i = 0; i < a.size(); ++i) {
    auto trim = [](std::string s) {
      size_t k = s.find_first_not_of(' ');
      return k == std::string::npos ? s : s.substr(k);
    };
    std::string t = trim(a[i]);
    if (i < b.size() && b[i] != a[i]) t += "/" + trim(b[i]);
    out.push_back(std::to_string(i) + " " + t);
  }
  return out;
}

PairInputs pairs_from_flags(const Args& a, const Loaded& m) {
  PairInputs in;
  P::Metric base = metric_from_flags(a, m, !a.has("pairs"));
  in.metric_kind = base.kind;
  in.position = base.position;
  auto need_answers = [&](P::Metric& mt, const std::string& where) {
    if (mt.answer < 0) fail(where, ": no answer (answer / answer_id, or --answer on the command line)");
    if (mt.kind == P::MetricKind::LogitDiff && mt.wrong < 0)
      fail(where, ": no wrong answer (wrong / wrong_id, or --wrong on the command line)");
  };
  if (a.has("pairs")) {
    for (const char* f : {"clean", "corrupt", "clean-ids", "corrupt-ids", "clean-pair", "corrupt-pair"})
      if (a.has(f)) fail("--pairs and --", f, " exclude each other");
    std::string path = a.str("pairs");
    if (!file_exists(path)) fail("--pairs: cannot open '", path, "'");
    for_each_line(path, [&](const std::string& line, long long lineno) {
      if (line.find_first_not_of(" \t\r") == std::string::npos) return;
      std::string where = path + ":" + std::to_string(lineno);
      nlohmann::json j = parse_json(line, where);
      if (!j.is_object()) fail(where, ": expected a JSON object");
      P::PromptPair pair;
      pair.metric = base;
      for (const char* side : {"clean", "corrupt"}) {
        tokenizers::Encoding enc;
        std::string k = side, kid = std::string(side) + "_ids", kpair = std::string(side) + "_pair";
        try {
          std::optional<std::string> second;
          if (j.contains(kpair)) second = j[kpair].get<std::string>(), in.segments = true;
          if (j.contains(kid)) enc.ids = ids_of(nlohmann::json(j[kid]).dump(), m, where + " " + kid);
          else if (j.contains(k) && j[k].is_string())
            enc = prompt_encoding(a, m, j[k].get<std::string>(), where + " " + k, second);
          else fail(where, ": needs \"", k, "\" (text) or \"", kid, "\" (token ids)");
          if (second && j.contains(kid))
            fail(where, ": \"", kpair, "\" goes with \"", k, "\" (text), not \"", kid, "\"");
        } catch (const nlohmann::json::exception& e) {
          fail(where, ": bad \"", kid, "\" or \"", kpair, "\" (", e.what(), ")");
        }
        (std::string(side) == "clean" ? pair.clean : pair.corrupt) = enc.ids;
        (std::string(side) == "clean" ? pair.clean_types : pair.corrupt_types) = enc.type_ids;
      }
      try {
        if (j.contains("answer"))
          pair.metric.answer = single_token(m, j["answer"].get<std::string>(), where + " answer");
        if (j.contains("wrong")) pair.metric.wrong = single_token(m, j["wrong"].get<std::string>(), where + " wrong");
        if (j.contains("answer_id")) pair.metric.answer = j["answer_id"].get<int64_t>();
        if (j.contains("wrong_id")) pair.metric.wrong = j["wrong_id"].get<int64_t>();
      } catch (const nlohmann::json::exception& e) {
        fail(where, ": bad answer field (", e.what(), ")");
      }
      for (int64_t id : {pair.metric.answer, pair.metric.wrong})
        if (id >= m.model->config().d_vocab) fail(where, ": answer id ", id, " is outside the vocabulary");
      need_answers(pair.metric, where);
      in.pairs.push_back(pair);
    });
    if (in.pairs.empty()) fail("--pairs: '", path, "' has no pairs");
  } else {
    P::PromptPair pair;
    pair.metric = base;
    if (a.has("clean") == a.has("clean-ids"))
      fail("give the clean prompt with --clean TEXT or --clean-ids IDS (one of them)");
    if (a.has("corrupt") == a.has("corrupt-ids"))
      fail("give the corrupt prompt with --corrupt TEXT or --corrupt-ids IDS (one of them)");
    for (const char* side : {"clean", "corrupt"}) {
      std::string s = side, flag = "--" + s;
      std::optional<std::string> second;
      if (a.has(s + "-pair")) {
        if (!a.has(s)) fail("--", s, "-pair goes with --", s, " TEXT (the first segment), not with --", s, "-ids");
        second = a.str(s + "-pair");
        in.segments = true;
      }
      tokenizers::Encoding enc;
      if (a.has(s)) enc = prompt_encoding(a, m, a.str(s), flag, second);
      else enc.ids = ids_of(a.str(s + "-ids"), m, flag + "-ids");
      (s == "clean" ? pair.clean : pair.corrupt) = enc.ids;
      (s == "clean" ? pair.clean_types : pair.corrupt_types) = enc.type_ids;
    }
    in.pairs.push_back(pair);
  }
  const auto& p0 = in.pairs[0];
  if (p0.clean.size() != p0.corrupt.size())
    fail("the clean prompt has ", p0.clean.size(), " tokens and the corrupt prompt ", p0.corrupt.size(),
         "; patching needs prompts of the same token length");
  P::metric_position(base, (int64_t)p0.clean.size());
  in.clean_tokens = token_strings(m, p0.clean);
  in.corrupt_tokens = token_strings(m, p0.corrupt);
  in.position_labels = position_labels(in.clean_tokens, in.corrupt_tokens);
  return in;
}

std::string tensor_json(const at::Tensor& t_in) {
  at::Tensor t = t_in.to(at::kDouble).contiguous();
  std::function<nlohmann::json(const at::Tensor&)> rec = [&](const at::Tensor& x) -> nlohmann::json {
    if (x.dim() == 0) {
      double v = x.item<double>();
      return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr);
    }
    nlohmann::json arr = nlohmann::json::array();
    for (int64_t i = 0; i < x.size(0); ++i) arr.push_back(rec(x[i]));
    return arr;
  };
  return rec(t).dump();
}

nlohmann::json target_json(const P::TargetResult& t, const at::Tensor& v) {
  return {{"name", t.name},
          {"axes", t.axes},
          {"shape", v.sizes().vec()},
          {"seconds", t.seconds},
          {"values", nlohmann::json::parse(tensor_json(v))}};
}

void write_target_files(report::RunOutput& out, const std::string& stem,
                        const std::vector<std::pair<std::string, at::Tensor>>& tensors,
                        const std::map<std::string, std::string>& meta, const nlohmann::json& j) {
  io::write_safetensors(join_path(out.dir(), stem + ".safetensors"), tensors, meta);
  out.add_file(stem + ".safetensors");
  write_file_atomic(join_path(out.dir(), stem + ".json"), j.dump(1));
  out.add_file(stem + ".json");
}

void save_layer_pos_figures(report::RunOutput& out, const P::TargetResult& t, const at::Tensor& v,
                            const P::FigureLabels& labels) {
  if (t.axes != std::vector<std::string>{"layer", "pos"}) return;
  out.save_figure(P::surface_figure(t.name + "_surface", t.name, v, labels));
  out.save_figure(P::layer_animation(t.name + "_by_layer", t.name, v, labels));
}

}  // namespace mechscope::cli
