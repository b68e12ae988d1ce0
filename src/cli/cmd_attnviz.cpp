// mechscope attnviz: AttentionViz (seed 003) - each head's queries and keys, normalised without
// changing attention and embedded jointly, with the paper's figures.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <nlohmann/json.hpp>
#include <torch/version.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <map>

#include "analysis/attnviz/attnviz.h"
#include "analysis/attnviz/figures.h"
#include "analysis/attnviz/text.h"
#include "cli/common.h"
#include "cli/distribute.h"
#include "cli/registry.h"
#include "cli/wire.h"
#include "core/error.h"
#include "core/fs.h"
#include "core/fs_guard.h"
#include "io/safetensors.h"
#include "report/output.h"
#include "report/run.h"

namespace mechscope::cli {
namespace {

namespace V = analysis::attnviz;
using Clock = std::chrono::steady_clock;
using nlohmann::json;

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// (line number, text) of each non-empty line.
std::vector<std::pair<int, std::string>> read_texts(const std::string& path) {
  std::vector<std::pair<int, std::string>> out;
  for_each_line(path, [&](std::string line, long long number) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.find_first_not_of(" \t") != std::string::npos) out.push_back({(int)number, line});
  });
  if (out.empty()) fail("--texts ", path, ": no text in the file (one text per line)");
  return out;
}

// Through the one prompt encoder (texts are encoded exactly as every command encodes prompts), with
// its messages naming this command's inputs.
std::vector<std::vector<int64_t>> encode_texts(const std::vector<std::string>& texts,
                                               const std::vector<std::string>& names, const Args& a, const Loaded& m) {
  std::vector<std::vector<int64_t>> out;
  for (size_t i = 0; i < texts.size(); ++i) out.push_back(encode_text(a, m, texts[i], names[i]).ids);
  return out;
}

std::vector<int64_t> selection(const std::string& s, int64_t n, const std::string& flag, const std::string& what) {
  std::vector<int64_t> out;
  if (s == "all") {
    for (int64_t i = 0; i < n; ++i) out.push_back(i);
    return out;
  }
  for (long long v : parse_int_list(s, flag)) {
    if (v < 0 || v >= n)
      fail(flag, ": ", what, " ", v, " is out of range (the model has ", n, " ", what, "s: 0 .. ", n - 1, ")");
    if (std::find(out.begin(), out.end(), v) == out.end()) out.push_back(v);
  }
  if (out.empty()) fail(flag, ": no ", what, " given");
  return out;
}

std::string joined_tokens(const std::vector<std::string>& toks) {
  std::string s;
  for (auto& t : toks) s += (s.empty() ? "" : " ") + t;
  return s;
}

at::Tensor scatter_coords(const V::Extracted& ex, const V::PointSet& ps, const at::Tensor& c, size_t li, bool key,
                          const std::vector<int64_t>& heads, at::Tensor& into) {
  // into: [text, pos, selected head, dims]
  auto C = c.accessor<double, 2>();
  for (size_t i = 0; i < ps.meta.size(); ++i) {
    const auto& m = ps.meta[i];
    if (m.layer_index != li || m.key != key) continue;
    int64_t hs = std::find(heads.begin(), heads.end(), m.head) - heads.begin();
    for (int64_t d = 0; d < into.size(3); ++d) into[m.text][m.pos][hs][d] = C[i][d];
  }
  return into;
}

double rms_radius(const at::Tensor& x) { return (x - x.mean(0, true)).pow(2).sum(1).mean().sqrt().item<double>(); }

int run_attnviz(int argc, char** argv) {
  Args a("attnviz",
         "--model M (--text TEXT ... | --texts FILE) [--layers all|0,3] [--heads all|0,2] [--normalize "
         "paper|search|none]\n"
         "       [--scope head|layer|model] [--projection pca|tsne] [--lines top1|topk:K|mass:P] [--highlight Q:K ...] "
         "--out DIR",
         "AttentionViz (Yeh et al., IEEE VIS 2023): every head's queries and keys as the attention uses them (after "
         "biases,\n"
         "after rotary, GQA keys expanded), checked against the model's hook_pattern, normalised without changing "
         "attention\n"
         "(paper: keys translated onto the query centroid, queries x c and keys x 1/c with c maximising the "
         "attention-weighted\n"
         "correlation of q.k with -|q - k|; search: the seed's grid over keys += a and c maximising |corr(q.k, cosine "
         "distance)|),\n"
         "and embedded jointly (PCA or Barnes-Hut t-SNE) per head, per layer or over the whole model. Writes "
         "attnviz.json,\n"
         "attnviz.safetensors, result_layer{L}.html per layer, PNGs for --png-heads, and index.html.");
  add_model_flags(a);
  a.multi("text", "TEXT", "an input text (repeatable)");
  a.opt("texts", "FILE", "a file with one text per line (empty lines skipped)");
  a.flag("prepend-bos", "put the BOS token before each text (when the tokenizer does not already)");
  a.flag("no-special-tokens", "tokenize without the tokenizer's special tokens (BERT's [CLS]/[SEP], Llama's <s>)");
  a.opt("layers", "all|LIST", "layers to extract", "all");
  a.opt("heads", "all|LIST", "heads to normalise, embed and draw", "all");
  a.opt("normalize", "MODE", "paper, search or none", "paper");
  a.opt("search-a", "LO:HI:N", "--normalize search: grid of the scalar added to every key coordinate (linear)",
        "-1:1:21");
  a.opt("search-c", "LO:HI:N", "--normalize search: grid of c (log-spaced)", "0.25:4:17");
  a.opt("paper-c", "LO:HI:N", "--normalize paper: coarse log grid of c before golden-section refinement",
        "0.01:100:81");
  a.opt("scope", "S", "normalise and embed per head, per layer (all its heads jointly) or model (all layers jointly)",
        "head");
  a.opt("projection", "P", "pca or tsne", "pca");
  a.opt("dims", "2|3", "PCA components kept in attnviz.safetensors (figures use the first two; t-SNE is 2-D)", "2");
  a.opt("perplexity", "X", "t-SNE perplexity (lowered to (points - 1) / 3 when larger)", "30");
  a.opt("tsne-iterations", "N", "t-SNE iterations", "1000");
  a.opt("seed", "N", "t-SNE seed", "0");
  a.opt("lines", "RULE",
        "lines from each query: top1, topk:K, or mass:P (its smallest set of keys holding P of its attention)", "top1");
  a.multi("highlight", "Q:K",
          "a query word and a key word (every word piece matched); red when the key is the query's top key");
  a.opt("png-heads", "LIST", "heads drawn as PNG: first (first head of each layer), all, none, or L:H,L:H", "first");
  a.opt("formats", "LIST", "static figure formats: png, svg, pdf", "png");
  a.opt("out", "DIR", "output folder");
  if (!a.parse(argc, argv)) return 0;
  auto t_start = Clock::now();
  if (!a.has("out")) fail("--out DIR is required");
  if (a.has("text") == a.has("texts"))
    fail("give the input with --text TEXT (repeatable) or --texts FILE, not both or neither");
  V::NormalizeOptions nopt;
  nopt.mode = V::parse_mode(a.str("normalize"));
  nopt.search_a = V::parse_range(a.str("search-a"), "--search-a");
  nopt.search_c = V::parse_range(a.str("search-c"), "--search-c");
  nopt.paper_c = V::parse_range(a.str("paper-c"), "--paper-c");
  if (!(nopt.search_c.lo > 0)) fail("--search-c: c must be > 0, got '", a.str("search-c"), "'");
  if (!(nopt.paper_c.lo > 0)) fail("--paper-c: c must be > 0, got '", a.str("paper-c"), "'");
  V::Scope scope = V::parse_scope(a.str("scope"));
  std::string projection = a.str("projection");
  if (projection != "pca" && projection != "tsne") fail("--projection: expected pca or tsne, got '", projection, "'");
  long long dims = a.integer("dims");
  if (dims != 2 && dims != 3) fail("--dims: expected 2 or 3, got ", dims);
  if (projection == "tsne" && dims == 3) fail("--dims 3 goes with --projection pca (t-SNE here is 2-D)");
  V::TsneOptions topt;
  topt.perplexity = a.number("perplexity");
  if (!(topt.perplexity > 0)) fail("--perplexity must be > 0, got ", a.str("perplexity"));
  topt.iterations = (int)a.integer("tsne-iterations");
  if (topt.iterations < 1) fail("--tsne-iterations must be >= 1");
  topt.seed = (uint64_t)a.integer("seed");
  V::LineRule rule = V::parse_lines(a.str("lines"));
  auto formats = report::parse_formats(a.str("formats"));
  std::vector<std::pair<std::string, std::string>> hl_words;
  for (auto& h : a.all("highlight")) {
    auto c = h.find(':');
    if (c == std::string::npos || c == 0 || c + 1 == h.size() || h.find(':', c + 1) != std::string::npos)
      fail("--highlight: expected QUERY_WORD:KEY_WORD (e.g. brown:capybara), got '", h, "'");
    hl_words.push_back({h.substr(0, c), h.substr(c + 1)});
  }

  std::vector<std::string> texts, names;
  if (a.has("texts")) {
    for (auto& [line, text] : read_texts(a.str("texts"))) {
      texts.push_back(text);
      names.push_back(a.str("texts") + " line " + std::to_string(line));
    }
  } else {
    texts = a.all("text");
    for (size_t i = 0; i < texts.size(); ++i) names.push_back("--text #" + std::to_string(i + 1));
  }
  // Under mpirun (issue 18) rank 0 alone writes the folder.
  if (dist::rank() == 0) report::claim_output_dir(a.str("out"), "attnviz");
  Loaded m = load_from_flags(a);
  const auto& cfg = m.model->config();
  const auto& tok = need_tokenizer(m, "attnviz (--text/--texts)");
  auto layers64 = selection(a.str("layers"), cfg.n_layers, "--layers", "layer");
  auto heads = selection(a.str("heads"), cfg.n_heads, "--heads", "head");
  std::vector<int> layers(layers64.begin(), layers64.end());
  auto ids = encode_texts(texts, names, a, m);
  for (size_t t = 0; t < ids.size(); ++t)
    if (ids[t].empty()) fail("attnviz: ", names[t], " has no tokens");

  // Tokens and highlighted words, before any model work.
  std::vector<std::vector<std::string>> tokens;
  std::vector<V::TokenText> tt;
  for (auto& s : ids) {
    std::vector<std::string> t;
    for (int64_t id : s) t.push_back(id < tok.size() ? tok.display(id) : "#" + std::to_string(id));
    tokens.push_back(t);
    tt.push_back(V::token_text(tok, s));
  }
  std::vector<V::Highlight> highlights;
  for (auto& [qw, kw] : hl_words) {
    V::Highlight h{qw, kw, {}, {}};
    bool any_q = false, any_k = false, both = false;
    for (size_t t = 0; t < ids.size(); ++t) {
      h.query_tokens.push_back(V::match_word(tt[t], qw));
      h.key_tokens.push_back(V::match_word(tt[t], kw));
      any_q = any_q || !h.query_tokens.back().empty();
      any_k = any_k || !h.key_tokens.back().empty();
      both = both || (!h.query_tokens.back().empty() && !h.key_tokens.back().empty());
    }
    if (!both) {
      std::string why = !any_q   ? "'" + qw + "' is not a word of any text"
                        : !any_k ? "'" + kw + "' is not a word of any text"
                                 : "no text holds both words";
      fail("--highlight ", qw, ":", kw, ": ", why, " (tokens of ", names[0], ": ", joined_tokens(tokens[0]), ")");
    }
    highlights.push_back(h);
  }
  std::vector<std::pair<int, int64_t>> png_heads;
  std::string ph = a.str("png-heads");
  if (ph == "first" || ph == "all") {
    for (int l : layers)
      for (int64_t h : heads) {
        png_heads.push_back({l, h});
        if (ph == "first") break;
      }
  } else if (ph != "none") {
    for (auto& item : split(ph, ',')) {
      auto c = item.find(':');
      long long l = -1, h = -1;
      try {
        if (c == std::string::npos) throw std::invalid_argument(item);
        l = std::stoll(item.substr(0, c)), h = std::stoll(item.substr(c + 1));
      } catch (const std::exception&) {
        fail("--png-heads: expected first, all, none or L:H,L:H, got '", ph, "'");
      }
      if (std::find(layers.begin(), layers.end(), l) == layers.end() ||
          std::find(heads.begin(), heads.end(), h) == heads.end())
        fail("--png-heads: ", item, " is not among the chosen --layers and --heads");
      png_heads.push_back({(int)l, (int64_t)h});
    }
  }

  // Extraction and the attention check.
  // One text at a time, so that a text is computed the same by any process: under mpirun each text is an
  // item, its q, k and pattern reach rank 0 exactly (cli/wire.h), and the normalisation, embedding and
  // figures below run on rank 0 alone.
  auto t0 = Clock::now();
  std::vector<V::Extracted> parts(ids.size());
  auto extract_text = [&](size_t t) { return V::extract(*m.model, {V::Input{ids[t], {}}}, layers); };
  if (!dist::active()) {
    for (size_t t = 0; t < ids.size(); ++t) parts[t] = extract_text(t);
  } else {
    std::map<long long, std::string> each =
        dist::compute_items("attnviz texts", (long long)ids.size(), [&](long long t) {
          V::Extracted e = extract_text((size_t)t);
          wire::Writer w;
          w.pod<int64_t>(e.n_pos);
          for (size_t li = 0; li < layers.size(); ++li) {
            w.pod<double>(e.max_diff[li]);
            w.tensor(e.q[li]), w.tensor(e.k[li]), w.tensor(e.pattern[li]);
          }
          return w.take();
        });
    if (dist::rank() != 0) return 0;
    for (size_t t = 0; t < ids.size(); ++t) {
      wire::Reader rd(each.at((long long)t));
      V::Extracted& e = parts[t];
      e.n_texts = 1, e.n_heads = cfg.n_heads, e.d_head = cfg.d_head, e.layers = layers;
      e.device = m.model->device();
      e.n_pos = rd.pod<int64_t>();
      e.lengths = {e.n_pos};
      for (size_t li = 0; li < layers.size(); ++li) {
        e.rules.push_back(V::attention_rule(cfg, layers[li]));
        e.max_diff.push_back(rd.pod<double>());
        for (auto* v : {&e.q, &e.k, &e.pattern}) v->push_back(rd.tensor().to(e.device));
      }
    }
  }
  V::Extracted ex = V::join_texts(parts);
  parts.clear();
  double t_extract = seconds_since(t0);

  // Normalisation and projection per group.
  t0 = Clock::now();
  std::vector<V::Group> groups = V::scope_groups(scope, ex, heads);
  std::vector<at::Tensor> qn, kn;
  std::vector<V::Normalization> norms = V::normalize_all(ex, groups, nopt, qn, kn);
  double t_norm = seconds_since(t0);
  t0 = Clock::now();
  std::vector<V::PointSet> pts, pts_raw;
  std::vector<at::Tensor> coords, coords_raw;
  std::vector<std::vector<double>> explained;
  // The raw vectors' projection: PCA's is cheap and always written; t-SNE's only for highlights.
  bool need_raw = projection == "pca" || !highlights.empty();
  for (auto& g : groups) {
    pts.push_back(V::points(ex, g, qn, kn));
    if (need_raw) pts_raw.push_back(V::points(ex, g, ex.q, ex.k));
  }
  V::Projection how = projection == "pca" ? V::Projection::Pca : V::Projection::Tsne;
  coords = V::project_all(pts, how, (int)dims, topt, &explained);
  if (need_raw) coords_raw = V::project_all(pts_raw, how, (int)dims, topt);
  // The vectors come back from --device once, for the lines, figures and files (the coordinates
  // already are on the host).
  ex.to_host();
  for (auto* v : {&qn, &kn})
    for (auto& t : *v)
      if (t.defined()) t = t.to(at::kCPU);
  for (auto* v : {&pts, &pts_raw})
    for (auto& p : *v) p.x = p.x.to(at::kCPU);
  double t_project = seconds_since(t0);

  // Which group each (layer, head) is in.
  std::map<std::pair<size_t, int64_t>, size_t> group_of;
  for (size_t gi = 0; gi < groups.size(); ++gi)
    for (auto& mb : groups[gi].members) group_of[mb] = gi;

  // Highlight results: is the pair the query's top key, and did it get closer (distances relative to
  // the group's RMS radius, since c rescales the whole cloud).
  json hl_json = json::array();
  for (auto& h : highlights) {
    json hj{{"query_word", h.query_word}, {"key_word", h.key_word}, {"pairs", json::array()}};
    int closer = 0, total = 0, top = 0;
    for (size_t li = 0; li < ex.layers.size(); ++li)
      for (int64_t head : heads) {
        size_t gi = group_of.at({li, head});
        const auto& ps = pts[gi];
        std::map<std::tuple<int64_t, int64_t, bool>, size_t> idx;
        for (size_t i = 0; i < ps.meta.size(); ++i)
          if (ps.meta[i].layer_index == li && ps.meta[i].head == head)
            idx[{ps.meta[i].text, ps.meta[i].pos, ps.meta[i].key}] = i;
        double r_full1 = rms_radius(ps.x), r_proj1 = rms_radius(coords[gi].narrow(1, 0, 2));
        double r_full0 = rms_radius(pts_raw[gi].x), r_proj0 = rms_radius(coords_raw[gi].narrow(1, 0, 2));
        at::Tensor attn = ex.pattern[li].select(1, head);
        at::Tensor ok = ex.allowed(li);
        for (int64_t t = 0; t < ex.n_texts; ++t)
          for (int64_t qi : h.query_tokens[t])
            for (int64_t kj : h.key_tokens[t]) {
              if (!ok[t][qi][kj].item<bool>()) continue;
              size_t a_ = idx.at({t, qi, false}), b_ = idx.at({t, kj, true});
              auto dist = [](const at::Tensor& x, size_t i, size_t j) { return (x[i] - x[j]).norm().item<double>(); };
              double f0 = dist(pts_raw[gi].x, a_, b_) / r_full0, f1 = dist(ps.x, a_, b_) / r_full1;
              double p0 = dist(coords_raw[gi].narrow(1, 0, 2), a_, b_) / r_proj0,
                     p1 = dist(coords[gi].narrow(1, 0, 2), a_, b_) / r_proj1;
              at::Tensor row = attn[t][qi].masked_fill(ok[t][qi].logical_not(), -1);
              bool is_top = row.argmax().item<int64_t>() == kj;
              hj["pairs"].push_back({{"layer", ex.layers[li]},
                                     {"head", head},
                                     {"text", t},
                                     {"query_pos", qi},
                                     {"key_pos", kj},
                                     {"query_token", tokens[t][qi]},
                                     {"key_token", tokens[t][kj]},
                                     {"attention", attn[t][qi][kj].item<double>()},
                                     {"top_key", is_top},
                                     {"distance_before", f0},
                                     {"distance_after", f1},
                                     {"projected_distance_before", p0},
                                     {"projected_distance_after", p1},
                                     {"closer", p1 < p0}});
              ++total, closer += p1 < p0, top += is_top;
            }
      }
    hj["summary"] = {{"pairs", total}, {"closer_in_projection", closer}, {"top_key", top}};
    hl_json.push_back(hj);
  }

  // Nothing is written before this point: every user error above leaves no output folder.
  report::RunOutput out(a.str("out"), argc, argv, "attnviz", "AttentionViz: " + m.dir,
                        std::to_string(texts.size()) + " text(s), normalisation " + V::mode_name(nopt.mode) +
                            ", scope " + V::scope_name(scope) + ", " + projection);
  out.formats = formats;
  out.manifest.model = m.dir;
  out.manifest.seed = topt.seed;
  out.manifest.versions["libtorch"] = TORCH_VERSION;
  std::string axis = projection == "pca" ? "PC" : "t-SNE";

  std::vector<std::pair<std::string, at::Tensor>> tensors;
  at::Tensor hsel = at::tensor(heads, at::kLong);
  at::Tensor id_t = at::zeros({ex.n_texts, ex.n_pos}, at::kLong);
  for (int64_t t = 0; t < ex.n_texts; ++t)
    for (int64_t p = 0; p < ex.lengths[t]; ++p) id_t[t][p] = ids[t][p];
  tensors.emplace_back("input_ids", id_t);
  tensors.emplace_back("lengths", at::tensor(ex.lengths, at::kLong));
  tensors.emplace_back("heads", hsel);
  int64_t cd = projection == "pca" ? dims : 2;
  for (size_t li = 0; li < ex.layers.size(); ++li) {
    std::string b = "blocks." + std::to_string(ex.layers[li]) + ".";
    tensors.emplace_back(b + "q", ex.q[li].index_select(2, hsel).to(at::kFloat));
    tensors.emplace_back(b + "k", ex.k[li].index_select(2, hsel).to(at::kFloat));
    tensors.emplace_back(b + "q_normalized", qn[li].index_select(2, hsel).to(at::kFloat));
    tensors.emplace_back(b + "k_normalized", kn[li].index_select(2, hsel).to(at::kFloat));
    tensors.emplace_back(b + "pattern", ex.pattern[li].index_select(1, hsel).to(at::kFloat));
    for (int raw = 0; raw < 2; ++raw) {
      if (raw && coords_raw.empty()) continue;
      for (int key = 0; key < 2; ++key) {
        at::Tensor c = at::zeros({ex.n_texts, ex.n_pos, (int64_t)heads.size(), cd}, at::kDouble);
        for (size_t gi = 0; gi < groups.size(); ++gi)
          scatter_coords(ex, raw ? pts_raw[gi] : pts[gi], raw ? coords_raw[gi] : coords[gi], li, key, heads, c);
        tensors.emplace_back(b + (key ? "k" : "q") + (raw ? "_coords_raw" : "_coords"), c.to(at::kFloat));
      }
    }
  }
  io::write_safetensors(join_path(out.dir(), "attnviz.safetensors"), tensors,
                        {{"model", m.dir},
                         {"normalize", V::mode_name(nopt.mode)},
                         {"scope", V::scope_name(scope)},
                         {"projection", projection}});
  out.add_file("attnviz.safetensors");

  // Figures: per layer, a page with every head's scatter and Fig. 4(b); the matrix view in index.html.
  t0 = Clock::now();
  double worst = *std::max_element(ex.max_diff.begin(), ex.max_diff.end());
  out.html.add_number("model", m.dir);
  out.html.add_number("texts", std::to_string(texts.size()));
  out.html.add_number("layers x heads", std::to_string(layers.size()) + " x " + std::to_string(heads.size()));
  out.html.add_number("attention reproduced to (max |diff|)", worst);
  out.html.add_number("normalisation", V::mode_name(nopt.mode) + " (scope " + V::scope_name(scope) + ")");
  out.html.add_number("projection", projection);
  for (size_t li = 0; li < ex.layers.size(); ++li) {
    int L = ex.layers[li];
    report::HtmlReport page(
        "AttentionViz: layer " + std::to_string(L) + " of " + m.dir,
        V::mode_name(nopt.mode) + " normalisation, scope " + V::scope_name(scope) + ", " + projection);
    std::vector<V::HeadView> views;
    for (int64_t h : heads) {
      size_t gi = group_of.at({li, h});
      std::string title = "layer " + std::to_string(L) + ", head " + std::to_string(h);
      views.push_back(V::make_view(ex, li, h, pts[gi], coords[gi], tokens, rule, highlights, "H" + std::to_string(h)));
      std::string id = "L" + std::to_string(L) + "_H" + std::to_string(h);
      auto joint = V::joint_figure(id + "_joint", "Queries and keys: " + title, views.back(), axis);
      auto dd = V::dot_distance_figure(id + "_dot_distance", "Dot product against distance: " + title,
                                       ex.q[li].select(2, h), ex.k[li].select(2, h), qn[li].select(2, h),
                                       kn[li].select(2, h), ex.pattern[li].select(1, h), ex.allowed(li));
      page.add_figure(joint);
      page.add_figure(dd);
      if (std::find(png_heads.begin(), png_heads.end(), std::make_pair(L, h)) != png_heads.end()) {
        out.save_figure(joint);
        out.save_figure(dd);
      }
    }
    std::string page_name = "result_layer" + std::to_string(L) + ".html";
    page.write(join_path(out.dir(), page_name));
    out.add_file(page_name);
    auto gf = V::grid_figure("layer" + std::to_string(L) + "_heads", "Layer " + std::to_string(L) + ": all heads",
                             views, axis, scope != V::Scope::Head);
    std::vector<std::string> files;
    for (auto f : formats) {
      std::string name = gf.id + "." + report::extension(f);
      report::render(gf, f, join_path(out.dir(), name), out.render_options);
      out.add_file(name);
      files.push_back(name);
    }
    files.push_back(page_name);  // the layer's page, linked under its matrix view
    out.html.add_figure(gf, files);
  }
  double t_figures = seconds_since(t0);

  json j;
  j["model"] = m.dir;
  j["model_type"] = cfg.model_type;
  j["settings"] = {{"normalize", V::mode_name(nopt.mode)},
                   {"scope", V::scope_name(scope)},
                   {"projection", projection},
                   {"dims", cd},
                   {"lines", a.str("lines")},
                   {"layers", layers},
                   {"heads", heads},
                   {"search_a", a.str("search-a")},
                   {"search_c", a.str("search-c")},
                   {"paper_c", a.str("paper-c")},
                   {"perplexity", topt.perplexity},
                   {"tsne_iterations", topt.iterations},
                   {"seed", topt.seed},
                   {"threads", at::get_num_threads()}};
  j["texts"] = json::array();
  for (size_t t = 0; t < texts.size(); ++t)
    j["texts"].push_back({{"text", texts[t]}, {"ids", ids[t]}, {"tokens", tokens[t]}});
  j["attention_check"] = json::array();
  for (size_t li = 0; li < ex.layers.size(); ++li) {
    const auto& r = ex.rules[li];
    j["attention_check"].push_back({{"layer", ex.layers[li]},
                                    {"max_abs_diff", ex.max_diff[li]},
                                    {"scale", r.scale},
                                    {"causal", r.causal},
                                    {"window", r.window},
                                    {"softcap", r.softcap}});
  }
  j["attention_max_abs_diff"] = worst;
  j["normalization"] = json::array();
  for (size_t gi = 0; gi < groups.size(); ++gi) {
    const auto& n = norms[gi];
    json gj{{"group", groups[gi].name},
            {"translation", n.translation},
            {"c", n.c},
            {"weighted_corr_before", n.weighted_corr_before},
            {"weighted_corr_after", n.weighted_corr_after},
            {"cosine_corr_before", n.cosine_corr_before},
            {"cosine_corr_after", n.cosine_corr_after},
            {"max_pattern_change", n.max_pattern_change}};
    if (nopt.mode == V::Mode::Search) gj["a"] = n.a, gj["c_effect"] = n.c_effect;
    if (!n.note.empty()) gj["note"] = n.note;
    if (projection == "pca") gj["explained_variance_ratio"] = explained[gi];
    if (projection == "tsne") gj["perplexity_used"] = std::min(topt.perplexity, double(pts[gi].x.size(0) - 1) / 3);
    j["normalization"].push_back(gj);
  }
  j["highlights"] = hl_json;
  j["timings"] = {{"extract_s", t_extract},
                  {"normalize_s", t_norm},
                  {"project_s", t_project},
                  {"figures_s", t_figures},
                  {"total_s", seconds_since(t_start)}};
  write_file_atomic(join_path(out.dir(), "attnviz.json"), j.dump(1));
  out.add_file("attnviz.json");
  out.manifest.extra = j["settings"];
  out.finish();

  double wb = 0, wa = 0;
  for (auto& n : norms) wb += n.weighted_corr_before, wa += n.weighted_corr_after;
  std::fprintf(
      stderr,
      "attnviz: %zu text(s), %zu layer(s) x %zu head(s); attention reproduced to %.2g; %s normalisation (scope %s): "
      "weighted corr(q.k, -distance) %.3f -> %.3f (mean over %zu group(s)); wrote %s\n",
      texts.size(), layers.size(), heads.size(), worst, V::mode_name(nopt.mode).c_str(), V::scope_name(scope).c_str(),
      wb / norms.size(), wa / norms.size(), norms.size(), out.dir().c_str());
  for (auto& h : hl_json)
    std::fprintf(stderr,
                 "highlight %s:%s: %d pair(s) over the chosen heads, %d with the key as the query's top key, %d closer "
                 "after normalisation (%s plane)\n",
                 h["query_word"].get<std::string>().c_str(), h["key_word"].get<std::string>().c_str(),
                 h["summary"]["pairs"].get<int>(), h["summary"]["top_key"].get<int>(),
                 h["summary"]["closer_in_projection"].get<int>(), axis.c_str());
  return 0;
}

const Register reg{"attnviz", "AttentionViz: joint query-key embeddings of every head, normalised as the paper", 75,
                   run_attnviz};

}  // namespace
}  // namespace mechscope::cli
