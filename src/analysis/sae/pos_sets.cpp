// The pos_* token sets from the embedded en-lexicon (generated/pos_lexicon.cpp, from
// third_party/en-lexicon/lexicon.tsv: one "word<TAB>TAG|TAG|..." line per entry).
#include <string_view>
#include <unordered_map>

#include "analysis/sae/token_sets.h"

namespace mechscope::analysis::sae {

extern const std::string_view kPosLexicon, kPosLexiconLicense;  // generated/pos_lexicon.cpp

namespace {

// word -> index into pos_tags() of its first tag, or -1 when that tag is no word class.
const std::unordered_map<std::string_view, int>& lexicon() {
  static const std::unordered_map<std::string_view, int> m = [] {
    std::unordered_map<std::string_view, int> tag_index;
    const auto& tags = pos_tags();
    for (size_t i = 0; i < tags.size(); ++i) tag_index[tags[i]] = (int)i;
    tag_index["NP"] = tag_index["NNP"];
    tag_index["NPS"] = tag_index["NNPS"];
    std::unordered_map<std::string_view, int> out;
    out.reserve(120000);
    std::string_view s = kPosLexicon;
    size_t pos = 0;
    while (pos < s.size()) {
      size_t nl = s.find('\n', pos);
      std::string_view line = s.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos);
      pos = nl == std::string_view::npos ? s.size() : nl + 1;
      size_t tab = line.find('\t');
      if (tab == std::string_view::npos || tab == 0) continue;
      std::string_view first = line.substr(tab + 1);
      first = first.substr(0, first.find('|'));
      auto it = tag_index.find(first);
      out.emplace(line.substr(0, tab), it == tag_index.end() ? -1 : it->second);
    }
    return out;
  }();
  return m;
}

// str.strip of 'Ġ' (U+0120) and '▁' (U+2581) at both ends.
std::string_view strip_markers(std::string_view t) {
  static const std::string_view G = "\xC4\xA0", U = "\xE2\x96\x81";
  bool changed = true;
  while (changed && !t.empty()) {
    changed = false;
    for (std::string_view m : {G, U}) {
      if (t.size() >= m.size() && t.substr(0, m.size()) == m) t.remove_prefix(m.size()), changed = true;
      if (t.size() >= m.size() && t.substr(t.size() - m.size()) == m) t.remove_suffix(m.size()), changed = true;
    }
  }
  return t;
}

}  // namespace

const std::vector<std::string>& pos_tags() {
  static const std::vector<std::string> t = {"CC",   "CD",  "DT",  "EX",  "FW",  "IN",   "JJ",  "JJR", "JJS",
                                             "LS",   "MD",  "NN",  "NNS", "NNP", "NNPS", "PDT", "POS", "PRP",
                                             "PRP$", "RB",  "RBR", "RBS", "RP",  "SYM",  "TO",  "UH",  "VB",
                                             "VBD",  "VBG", "VBN", "VBP", "VBZ", "WDT",  "WP",  "WP$", "WRB"};
  return t;
}

std::vector<TokenSet> pos_sets(const std::vector<std::string>& vocab) {
  const auto& tags = pos_tags();
  std::vector<TokenSet> sets(tags.size());
  for (size_t i = 0; i < tags.size(); ++i) sets[i].name = "pos_" + tags[i], sets[i].group = "pos";
  const auto& lex = lexicon();
  std::string lower;
  for (size_t id = 0; id < vocab.size(); ++id) {
    std::string_view w = strip_markers(vocab[id]);
    if (w.empty()) continue;
    auto it = lex.find(w);
    if (it == lex.end()) {
      lower.assign(w);
      for (char& c : lower) c = (c >= 'A' && c <= 'Z') ? char(c - 'A' + 'a') : c;
      it = lex.find(lower);
    }
    if (it != lex.end() && it->second >= 0) sets[it->second].ids.push_back((int64_t)id);
  }
  return sets;
}

std::string_view pos_lexicon_notice() { return kPosLexiconLicense; }

}  // namespace mechscope::analysis::sae
