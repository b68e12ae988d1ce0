#include "analysis/sae/token_sets.h"

#include <utf8proc.h>

#include <algorithm>
#include <set>

#include "core/error.h"
#include "core/fs.h"
#include "core/utf8.h"
#include "tokenizers/regex.h"

namespace mechscope::analysis::sae {

std::vector<std::string> vocab_strings(const tokenizers::Tokenizer& tok, int64_t d_vocab) {
  std::vector<std::string> v(d_vocab);
  int64_t n = std::min<int64_t>(d_vocab, tok.size());
  for (int64_t i = 0; i < n; ++i) {
    try {
      v[i] = tok.id_to_token(i);
    } catch (const Error&) {
      // an id the tokenizer has no entry for: stays "" and joins no set
    }
  }
  return v;
}

std::string PyRegex::translate(const std::string& p) {
  static const std::string W = "\\p{L}\\p{N}_", S = "\\s\\x1c-\\x1f";
  std::string out;
  bool in_class = false;
  size_t class_start = 0;
  for (size_t i = 0; i < p.size(); ++i) {
    char c = p[i];
    if (c == '\\' && i + 1 < p.size()) {
      char e = p[++i];
      if (e == 'w') out += in_class ? W : "[" + W + "]";
      else if (e == 's') out += in_class ? S : "[" + S + "]";
      else if ((e == 'W' || e == 'S') && in_class)
        fail("regex '", p, "': \\", e, " inside [...] is not supported (write the complement class out)");
      else if (e == 'W') out += "[^" + W + "]";
      else if (e == 'S') out += "[^" + S + "]";
      else if (e == 'A' && !in_class) out += "^";
      else if (e == 'Z' && !in_class) out += "$";
      else if (e == 'b' || e == 'B') fail("regex '", p, "': word boundaries (\\", e, ") are not supported");
      else if (e >= '1' && e <= '9' && !in_class) fail("regex '", p, "': backreferences (\\", e, ") are not supported");
      else out += std::string(1, '\\') + e;
      continue;
    }
    if (in_class) {
      if (c == ']' && i > class_start) in_class = false;
      out += c;
      continue;
    }
    if (c == '[') {
      in_class = true;
      out += c;
      // a ']' right after '[' or '[^' is a literal
      if (i + 1 < p.size() && p[i + 1] == '^') out += p[++i];
      class_start = i + 1;
      if (i + 1 < p.size() && p[i + 1] == ']') out += "\\]", ++i;
      continue;
    }
    if (c == '$') {
      out += "(?=\\n?$)";  // Python: at the end, or before a newline that ends the string
      continue;
    }
    out += c;
  }
  return out;
}

PyRegex::PyRegex(const std::string& pattern) : pattern_(pattern) {
  std::string t = translate(pattern);
  try {
    re_ = std::make_unique<tokenizers::Regex>("^(?:" + t + ")");
  } catch (const Error& e) {
    fail("regex '", pattern, "' does not compile: ", e.raw());
  }
}
PyRegex::~PyRegex() = default;
PyRegex::PyRegex(PyRegex&&) noexcept = default;

bool PyRegex::match(const std::string& text) const { return !re_->find_all(text).empty(); }

namespace {

bool is_alpha_cp(char32_t c) {
  int k = utf8proc_category(static_cast<utf8proc_int32_t>(c));
  return k >= UTF8PROC_CATEGORY_LU && k <= UTF8PROC_CATEGORY_LO;
}

}  // namespace

std::vector<TokenSet> letter_sets(const std::vector<std::string>& vocab) {
  std::vector<TokenSet> sets(26);
  for (int i = 0; i < 26; ++i) sets[i].name = std::string(1, char('a' + i)), sets[i].group = "letters";
  const std::u32string G = U"\u0120";
  for (size_t id = 0; id < vocab.size(); ++id) {
    if (vocab[id].empty() || !utf8::valid(vocab[id])) continue;
    std::vector<char32_t> cp = utf8::decode(vocab[id]);
    size_t a = 0, b = cp.size();
    while (a < b && cp[a] == 0x120) ++a;  // str.strip("Ġ") strips both ends
    while (b > a && cp[b - 1] == 0x120) --b;
    if (a == b) continue;
    bool alpha = true;
    for (size_t i = a; i < b && alpha; ++i) alpha = is_alpha_cp(cp[i]);
    if (!alpha) continue;
    char32_t f = cp[a];
    // str.lower() lands in a-z only from A-Z, a-z and KELVIN SIGN (U+212A -> 'k').
    int letter = f >= 'a' && f <= 'z'   ? int(f - 'a')
                 : f >= 'A' && f <= 'Z' ? int(f - 'A')
                 : f == 0x212A          ? 'k' - 'a'
                                        : -1;
    if (letter >= 0) sets[letter].ids.push_back((int64_t)id);
  }
  return sets;
}

const std::vector<std::pair<std::string, std::string>>& seed_regexes() {
  static const std::vector<std::pair<std::string, std::string>> r = {
      {"starts_with_space", "Ġ.*"},
      {"starts_with_capital", "^Ġ*[A-Z].*"},
      {"starts_with_lower", "^Ġ*[a-z].*"},
      {"all_digits", "^Ġ*\\d+$"},
      {"is_punctuation", "^[^\\w\\s]+$"},
      {"contains_close_bracket", ".*\\).*"},
      {"contains_open_bracket", ".*\\(.*"},
      {"all_caps", "Ġ*[A-Z]+$"},
      {"1 digit", "Ġ*\\d{1}$"},
      {"2 digits", "Ġ*\\d{2}$"},
      {"3 digits", "Ġ*\\d{3}$"},
      {"4 digits", "Ġ*\\d{4}$"},
      {"length_1", "^Ġ*\\w{1}$"},
      {"length_2", "^Ġ*\\w{2}$"},
      {"length_3", "^Ġ*\\w{3}$"},
      {"length_4", "^Ġ*\\w{4}$"},
      {"length_5", "^Ġ*\\w{5}$"},
  };
  return r;
}

TokenSet regex_set(const std::string& name, const std::string& pattern, const std::vector<std::string>& vocab,
                   const std::string& group) {
  std::unique_ptr<PyRegex> re;
  try {
    re = std::make_unique<PyRegex>(pattern);
  } catch (const Error& e) {
    fail("token set '", name, "': ", e.raw());
  }
  TokenSet s{name, group, {}};
  for (size_t id = 0; id < vocab.size(); ++id)
    if (!vocab[id].empty() && utf8::valid(vocab[id]) && re->match(vocab[id])) s.ids.push_back((int64_t)id);
  return s;
}

TokenSet user_set(const std::string& spec, const std::vector<std::string>& vocab, const tokenizers::Tokenizer& tok) {
  size_t eq = spec.find('=');
  if (eq == std::string::npos || eq == 0 || eq + 1 == spec.size())
    fail(option("token_set"), " '", spec, "' is not NAME=REGEX or NAME=@FILE");
  std::string name = spec.substr(0, eq), rhs = spec.substr(eq + 1);
  if (rhs[0] != '@') return regex_set(name, rhs, vocab, "user");
  std::string path = rhs.substr(1);
  std::string text;
  try {
    text = read_file(path);
  } catch (const Error& e) {
    fail(option("token_set"), " ", name, ": ", e.raw());
  }
  TokenSet s{name, "user", {}};
  std::set<int64_t> ids;
  size_t line_no = 0, pos = 0;
  while (pos <= text.size()) {
    size_t nl = text.find('\n', pos);
    std::string line = text.substr(pos, nl == std::string::npos ? std::string::npos : nl - pos);
    pos = nl == std::string::npos ? text.size() + 1 : nl + 1;
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty() || line[0] == '#') continue;
    int64_t id = tok.token_to_id(line);
    if (id < 0 || id >= (int64_t)vocab.size())
      fail(option("token_set"), " ", name, ": line ", line_no, " of ", path, " ('", line,
           "') is not a token of the vocabulary");
    ids.insert(id);
  }
  s.ids.assign(ids.begin(), ids.end());
  return s;
}

std::vector<TokenSet> name_sets(const std::vector<std::string>& vocab) {
  std::set<std::string> boys, girls;
  for (auto& n : male_first_names()) boys.insert("\u0120" + n);
  for (auto& n : female_first_names()) girls.insert("\u0120" + n);
  TokenSet b{"boy_names", "names", {}}, g{"girl_names", "names", {}};
  for (size_t id = 0; id < vocab.size(); ++id) {
    if (boys.count(vocab[id])) b.ids.push_back((int64_t)id);
    else if (girls.count(vocab[id])) g.ids.push_back((int64_t)id);
  }
  return {b, g};
}

std::vector<TokenSet> test_gene_sets(const tokenizers::Tokenizer& tok, int64_t d_vocab) {
  std::vector<TokenSet> out;
  for (const auto& [name, words] : test_gene_words()) {
    std::set<int64_t> ids;
    for (const auto& w : words)
      for (int64_t id : tok.encode(" " + w))
        if (id >= 0 && id < d_vocab) ids.insert(id);
    out.push_back({name, "test", std::vector<int64_t>(ids.begin(), ids.end())});
  }
  return out;
}

}  // namespace mechscope::analysis::sae
