#include "analysis/sentiment/vader.h"

#include <utf8proc.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "core/utf8.h"

namespace mechscope::analysis::sentiment {

extern const std::string_view kVaderLexicon;  // generated from third_party/vader-sentiment

namespace {

// The constants and word lists of vaderSentiment.js, in its order.
constexpr double B_INCR = 0.293, B_DECR = -0.293, C_INCR = 0.733, N_SCALAR = -0.74;

const std::vector<std::string> kPuncList = {".",  "!",   "?",  ",",   ";",   ":",   "-",    "'",   "\"",
                                            "!!", "!!!", "??", "???", "?!?", "!?!", "?!?!", "!?!?"};

const std::unordered_set<std::string> kNegate = {
    "aint",    "arent",    "cannot",  "cant",    "couldnt", "darent",   "didnt",   "doesnt",    "ain't",    "aren't",
    "can't",   "couldn't", "daren't", "didn't",  "doesn't", "dont",     "hadnt",   "hasnt",     "havent",   "isnt",
    "mightnt", "mustnt",   "neither", "don't",   "hadn't",  "hasn't",   "haven't", "isn't",     "mightn't", "mustn't",
    "neednt",  "needn't",  "never",   "none",    "nope",    "nor",      "not",     "nothing",   "nowhere",  "oughtnt",
    "shant",   "shouldnt", "uhuh",    "wasnt",   "werent",  "oughtn't", "shan't",  "shouldn't", "uh-uh",    "wasn't",
    "weren't", "without",  "wont",    "wouldnt", "won't",   "wouldn't", "rarely",  "seldom",    "despite"};

const std::unordered_map<std::string, double> kBooster = {
    {"absolutely", B_INCR},   {"amazingly", B_INCR},     {"awfully", B_INCR},      {"completely", B_INCR},
    {"considerably", B_INCR}, {"decidedly", B_INCR},     {"deeply", B_INCR},       {"effing", B_INCR},
    {"enormously", B_INCR},   {"entirely", B_INCR},      {"especially", B_INCR},   {"exceptionally", B_INCR},
    {"extremely", B_INCR},    {"fabulously", B_INCR},    {"flipping", B_INCR},     {"flippin", B_INCR},
    {"fricking", B_INCR},     {"frickin", B_INCR},       {"frigging", B_INCR},     {"friggin", B_INCR},
    {"fully", B_INCR},        {"fucking", B_INCR},       {"greatly", B_INCR},      {"hella", B_INCR},
    {"highly", B_INCR},       {"hugely", B_INCR},        {"incredibly", B_INCR},   {"intensely", B_INCR},
    {"majorly", B_INCR},      {"more", B_INCR},          {"most", B_INCR},         {"particularly", B_INCR},
    {"purely", B_INCR},       {"quite", B_INCR},         {"really", B_INCR},       {"remarkably", B_INCR},
    {"so", B_INCR},           {"substantially", B_INCR}, {"thoroughly", B_INCR},   {"totally", B_INCR},
    {"tremendously", B_INCR}, {"uber", B_INCR},          {"unbelievably", B_INCR}, {"unusually", B_INCR},
    {"utterly", B_INCR},      {"very", B_INCR},          {"almost", B_DECR},       {"barely", B_DECR},
    {"hardly", B_DECR},       {"just enough", B_DECR},   {"kind of", B_DECR},      {"kinda", B_DECR},
    {"kindof", B_DECR},       {"kind-of", B_DECR},       {"less", B_DECR},         {"little", B_DECR},
    {"marginally", B_DECR},   {"occasionally", B_DECR},  {"partly", B_DECR},       {"scarcely", B_DECR},
    {"slightly", B_DECR},     {"somewhat", B_DECR},      {"sort of", B_DECR},      {"sorta", B_DECR},
    {"sortof", B_DECR},       {"sort-of", B_DECR}};

const std::unordered_map<std::string, double> kIdioms = {
    {"the shit", 3},        {"the bomb", 3},         {"bad ass", 1.5},     {"yeah right", -2},
    {"cut the mustard", 2}, {"kiss of death", -1.5}, {"hand to mouth", -2}};

const std::unordered_map<std::string, double>& lexicon() {
  static const std::unordered_map<std::string, double> lex = [] {
    std::unordered_map<std::string, double> m;
    std::string_view all = kVaderLexicon;
    size_t start = 0;
    while (start < all.size()) {
      size_t end = all.find('\n', start);
      if (end == std::string_view::npos) end = all.size();
      std::string_view line = all.substr(start, end - start);
      start = end + 1;
      size_t tab = line.find('\t');
      if (tab == std::string_view::npos) continue;
      size_t tab2 = line.find('\t', tab + 1);
      std::string value(line.substr(tab + 1, tab2 == std::string_view::npos ? std::string_view::npos : tab2 - tab - 1));
      m[std::string(line.substr(0, tab))] = std::strtod(value.c_str(), nullptr);  // later duplicates win, as in JS
    }
    return m;
  }();
  return lex;
}

bool in_lexicon(const std::string& w) { return lexicon().count(w) > 0; }

// JS String.prototype.toLowerCase, by simple case mapping.
std::string lower(const std::string& s) {
  std::string out;
  for (char32_t c : utf8::decode(s)) utf8::append(out, (char32_t)utf8proc_tolower((utf8proc_int32_t)c));
  return out;
}

// JS string length (UTF-16 code units).
size_t js_length(const std::string& s) {
  size_t n = 0;
  for (char32_t c : utf8::decode(s)) n += c >= 0x10000 ? 2 : 1;
  return n;
}

// The characters JS's /\s/ matches.
bool js_space(char32_t c) {
  return (c >= 0x09 && c <= 0x0d) || c == 0x20 || c == 0xa0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200a) ||
         c == 0x2028 || c == 0x2029 || c == 0x202f || c == 0x205f || c == 0x3000 || c == 0xfeff;
}

// text.split(/\s/): every single whitespace character separates (empty pieces included).
std::vector<std::string> js_split_space(const std::string& text) {
  std::vector<std::string> out(1);
  for (char32_t c : utf8::decode(text)) {
    if (js_space(c)) out.emplace_back();
    else utf8::append(out.back(), c);
  }
  return out;
}

// Python's str.isupper as the JS port has it: no a-z and at least one A-Z.
bool is_upper(const std::string& w) {
  bool any = false;
  for (char c : w) {
    if (c >= 'a' && c <= 'z') return false;
    any |= c >= 'A' && c <= 'Z';
  }
  return any;
}

bool negated_word(const std::string& w) { return kNegate.count(w) > 0 || w.find("n't") != std::string::npos; }

// SentiText.get_words_and_emoticons: tokens longer than one character, with leading or trailing
// punctuation (one PUNC_LIST entry) stripped when what remains is a word of the punctuation-free text.
std::vector<std::string> words_and_emoticons(const std::string& text) {
  std::string no_punc;
  for (char c : text)
    if (!(c >= 0 && c < 0x80 && std::ispunct((unsigned char)c))) no_punc += c;
  std::unordered_set<std::string> words;
  for (auto& w : js_split_space(no_punc))
    if (js_length(w) > 1) words.insert(w);
  std::vector<std::string> out;
  for (auto& t : js_split_space(text)) {
    if (js_length(t) <= 1) continue;
    std::string word = t;
    for (auto& p : kPuncList) {
      if (t.size() <= p.size()) continue;
      if (t.compare(0, p.size(), p) == 0 && words.count(t.substr(p.size()))) word = t.substr(p.size());
      else if (t.compare(t.size() - p.size(), p.size(), p) == 0 && words.count(t.substr(0, t.size() - p.size())))
        word = t.substr(0, t.size() - p.size());
    }
    out.push_back(word);
  }
  return out;
}

bool allcap_differential(const std::vector<std::string>& words) {
  size_t caps = 0;
  for (auto& w : words) caps += is_upper(w);
  size_t diff = words.size() - caps;
  return diff > 0 && diff < words.size();
}

double scalar_inc_dec(const std::string& word, double valence, bool cap_diff) {
  double scalar = 0.0;
  auto it = kBooster.find(lower(word));
  if (it != kBooster.end()) {
    scalar = it->second;
    if (valence < 0) scalar *= -1;
    if (cap_diff && is_upper(word)) {
      if (valence > 0) scalar += C_INCR;
      else scalar -= C_INCR;
    }
  }
  return scalar;
}

using Words = std::vector<std::string>;

double never_check(double valence, const Words& w, int start_i, size_t i) {
  if (start_i == 0) {
    if (negated_word(w[i - 1])) valence *= N_SCALAR;
  } else if (start_i == 1) {
    if (w[i - 2] == "never" && (w[i - 1] == "so" || w[i - 1] == "this")) valence *= 1.5;
    else if (negated_word(w[i - 2])) valence *= N_SCALAR;
  } else {
    if ((w[i - 3] == "never" && (w[i - 2] == "so" || w[i - 2] == "this")) || w[i - 1] == "so" || w[i - 1] == "this")
      valence *= 1.25;
    else if (negated_word(w[i - 3])) valence *= N_SCALAR;
  }
  return valence;
}

double idioms_check(double valence, const Words& w, size_t i) {
  std::string onezero = w[i - 1] + " " + w[i];
  std::string twoonezero = w[i - 2] + " " + w[i - 1] + " " + w[i];
  std::string twoone = w[i - 2] + " " + w[i - 1];
  std::string threetwoone = w[i - 3] + " " + w[i - 2] + " " + w[i - 1];
  std::string threetwo = w[i - 3] + " " + w[i - 2];
  for (const std::string* s : {&onezero, &twoonezero, &twoone, &threetwoone, &threetwo}) {
    auto it = kIdioms.find(*s);
    if (it != kIdioms.end()) {
      valence = it->second;
      break;
    }
  }
  if (w.size() - 1 > i) {
    auto it = kIdioms.find(w[i] + " " + w[i + 1]);
    if (it != kIdioms.end()) valence = it->second;
  }
  if (w.size() - 1 > i + 1) {
    auto it = kIdioms.find(w[i] + " " + w[i + 1] + " " + w[i + 2]);
    if (it != kIdioms.end()) valence = it->second;
  }
  if (kBooster.count(threetwo) || kBooster.count(twoone)) valence += B_DECR;
  return valence;
}

double least_check(double valence, const Words& w, size_t i) {
  if (i > 1 && lower(w[i - 1]) == "least" && !in_lexicon(lower(w[i - 1]))) {
    std::string before = lower(w[i - 2]);
    if (before != "at" && before != "very") valence *= N_SCALAR;
  } else if (i > 0 && lower(w[i - 1]) == "least" && !in_lexicon(lower(w[i - 1]))) {
    valence *= N_SCALAR;
  }
  return valence;
}

double sentiment_valence(const Words& w, size_t i, bool cap_diff) {
  double valence = 0;
  const std::string& item = w[i];
  auto it = lexicon().find(lower(item));
  if (it == lexicon().end()) return valence;
  valence = it->second;
  if (is_upper(item) && cap_diff) {
    if (valence > 0) valence += C_INCR;
    else valence -= C_INCR;
  }
  for (int start_i = 0; start_i < 3; ++start_i) {
    if (i > (size_t)start_i && !in_lexicon(lower(w[i - (start_i + 1)]))) {
      double s = scalar_inc_dec(w[i - (start_i + 1)], valence, cap_diff);
      if (start_i == 1 && s != 0) s = s * 0.95;
      else if (start_i == 2 && s != 0) s = s * 0.9;
      valence = valence + s;
      valence = never_check(valence, w, start_i, i);
      if (start_i == 2) valence = idioms_check(valence, w, i);
    }
  }
  return least_check(valence, w, i);
}

// Number.prototype.toFixed then parseFloat: round half away from zero on the exact binary value.
double js_round(double x, int digits) {
  char buf[512];
  std::snprintf(buf, sizeof buf, "%.120f", std::fabs(x));  // exact far enough that no carry reaches digit `digits`
  std::string s(buf);
  size_t dot = s.find('.');
  std::string kept = s.substr(0, dot) + s.substr(dot + 1, digits);
  if (s[dot + 1 + digits] >= '5') {
    int k = (int)kept.size() - 1;
    while (k >= 0 && kept[k] == '9') kept[k--] = '0';
    if (k < 0) kept.insert(kept.begin(), '1');
    else ++kept[k];
  }
  std::string out = kept.substr(0, kept.size() - digits) + "." + kept.substr(kept.size() - digits);
  double v = std::strtod(out.c_str(), nullptr);
  return x < 0 && v != 0 ? -v : v;  // -0 prints as 0, as JSON.stringify does
}

}  // namespace

size_t vader_lexicon_size() { return lexicon().size(); }

VaderScores vader(const std::string& text) {
  Words w = words_and_emoticons(text);
  bool cap_diff = allcap_differential(w);
  std::vector<double> sentiments;
  for (size_t i = 0; i < w.size(); ++i) {
    if ((i < w.size() - 1 && lower(w[i]) == "kind" && lower(w[i + 1]) == "of") || kBooster.count(lower(w[i]))) {
      sentiments.push_back(0);
      continue;
    }
    sentiments.push_back(sentiment_valence(w, i, cap_diff));
  }
  // The contrastive "but": halve what comes before it, weigh what follows by 1.5.
  size_t but = w.size();
  for (size_t i = 0; i < w.size() && but == w.size(); ++i)
    if (w[i] == "but") but = i;
  for (size_t i = 0; i < w.size() && but == w.size(); ++i)
    if (w[i] == "BUT") but = i;
  if (but < w.size())
    for (size_t i = 0; i < sentiments.size(); ++i) {
      if (i < but) sentiments[i] *= 0.5;
      else if (i > but) sentiments[i] *= 1.5;
    }

  VaderScores r;
  if (sentiments.empty()) return r;
  double sum_s = 0;
  for (double s : sentiments) sum_s += s;
  int ep = 0, qm = 0;
  for (char c : text) {
    ep += c == '!';
    qm += c == '?';
  }
  double ep_amp = std::min(ep, 4) * 0.292;
  double qm_amp = qm > 1 ? (qm <= 3 ? qm * 0.18 : 0.96) : 0;
  double amp = ep_amp + qm_amp;
  if (sum_s > 0) sum_s += amp;
  else if (sum_s < 0) sum_s -= amp;
  double compound = sum_s / std::sqrt(sum_s * sum_s + 15);
  compound = std::min(1.0, std::max(-1.0, compound));
  double pos_sum = 0, neg_sum = 0;
  int neu_count = 0;
  for (double s : sentiments) {
    if (s > 0) pos_sum += s + 1;
    else if (s < 0) neg_sum += s - 1;
    else neu_count += 1;
  }
  if (pos_sum > std::fabs(neg_sum)) pos_sum += amp;
  else if (pos_sum < std::fabs(neg_sum)) neg_sum -= amp;
  double total = pos_sum + std::fabs(neg_sum) + neu_count;
  r.pos = js_round(std::fabs(pos_sum / total), 3);
  r.neg = js_round(std::fabs(neg_sum / total), 3);
  r.neu = js_round(std::fabs(neu_count / total), 3);
  r.compound = js_round(compound, 4);
  return r;
}

}  // namespace mechscope::analysis::sentiment
