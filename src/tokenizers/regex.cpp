#include "tokenizers/regex.h"

#include <utf8proc.h>

#include <algorithm>

#include "core/error.h"
#include "tokenizers/unicode.h"

namespace mechscope::tokenizers {

namespace {

// One class item: a code point range, or a predicate (category mask / \s / \w), maybe negated.
struct Item {
  enum Kind { kRange, kCats, kSpace, kWord } kind;
  bool neg = false;
  char32_t lo = 0, hi = 0;
  uint32_t cats = 0;  // bit per utf8proc category
};

uint32_t cat_bits(std::initializer_list<int> cs) {
  uint32_t m = 0;
  for (int c : cs) m |= 1u << c;
  return m;
}

bool item_matches(const Item& it, char32_t c) {
  bool r = false;
  switch (it.kind) {
    case Item::kRange: r = c >= it.lo && c <= it.hi; break;
    case Item::kCats: r = (it.cats >> utf8proc_category(static_cast<utf8proc_int32_t>(c))) & 1u; break;
    case Item::kSpace: r = uni::is_space(c); break;
    case Item::kWord: r = uni::is_word(c); break;
  }
  return r != it.neg;
}

// utf8proc category numbering: CN=0, LU..LO=1..5, MN..ME=6..8, ND..NO=9..11, PC..PO=12..18,
// SM..SO=19..22, ZS..ZP=23..25, CC..CO=26..29.
uint32_t category_mask(const std::string& name) {
  static const std::pair<const char*, std::pair<int, int>> table[] = {{"L", {1, 5}},
                                                                      {"Letter", {1, 5}},
                                                                      {"Lu", {1, 1}},
                                                                      {"Ll", {2, 2}},
                                                                      {"Lt", {3, 3}},
                                                                      {"Lm", {4, 4}},
                                                                      {"Lo", {5, 5}},
                                                                      {"M", {6, 8}},
                                                                      {"Mark", {6, 8}},
                                                                      {"Mn", {6, 6}},
                                                                      {"Mc", {7, 7}},
                                                                      {"Me", {8, 8}},
                                                                      {"N", {9, 11}},
                                                                      {"Number", {9, 11}},
                                                                      {"Nd", {9, 9}},
                                                                      {"Nl", {10, 10}},
                                                                      {"No", {11, 11}},
                                                                      {"P", {12, 18}},
                                                                      {"Punctuation", {12, 18}},
                                                                      {"Pc", {12, 12}},
                                                                      {"Pd", {13, 13}},
                                                                      {"Ps", {14, 14}},
                                                                      {"Pe", {15, 15}},
                                                                      {"Pi", {16, 16}},
                                                                      {"Pf", {17, 17}},
                                                                      {"Po", {18, 18}},
                                                                      {"S", {19, 22}},
                                                                      {"Symbol", {19, 22}},
                                                                      {"Sm", {19, 19}},
                                                                      {"Sc", {20, 20}},
                                                                      {"Sk", {21, 21}},
                                                                      {"So", {22, 22}},
                                                                      {"Z", {23, 25}},
                                                                      {"Separator", {23, 25}},
                                                                      {"Zs", {23, 23}},
                                                                      {"Zl", {24, 24}},
                                                                      {"Zp", {25, 25}},
                                                                      {"C", {26, 29}},
                                                                      {"Other", {26, 29}},
                                                                      {"Cc", {26, 26}},
                                                                      {"Cf", {27, 27}},
                                                                      {"Cs", {28, 28}},
                                                                      {"Co", {29, 29}},
                                                                      {"Cn", {0, 0}}};
  for (const auto& [n, r] : table) {
    if (name == n) {
      uint32_t m = 0;
      for (int c = r.first; c <= r.second; ++c) m |= 1u << c;
      if (name == "C" || name == "Other") m |= 1u;
      return m;
    }
  }
  return 0;
}

}  // namespace

struct Regex::Node {
  enum Kind { kSet, kSeq, kAlt, kRepeat, kLook, kBegin, kEnd } kind;
  std::vector<Item> items;  // kSet
  bool set_neg = false, icase = false;
  std::vector<std::unique_ptr<Node>> kids;                  // kSeq, kAlt; kRepeat/kLook: kids[0]
  int min = 0, max = -1;                                    // kRepeat; max -1 = unbounded
  bool lazy = false, possessive = false, negative = false;  // kRepeat / kLook

  bool matches(char32_t c) const {
    auto any = [&](char32_t x) {
      for (const auto& it : items)
        if (item_matches(it, x)) return true;
      return false;
    };
    bool r = any(c);
    if (!r && icase) {
      // Simple case folding closure: c, its lower and upper forms, and the lower of its upper
      // (so U+017F long s matches 's', as Oniguruma and Rust regex do).
      char32_t l = uni::to_lower(c), u = uni::to_upper(c), ul = uni::to_lower(u);
      r = (l != c && any(l)) || (u != c && any(u)) || (ul != c && ul != l && any(ul));
    }
    return r != set_neg;
  }
};

namespace {

using Node = Regex::Node;

class Parser {
 public:
  explicit Parser(const std::string& p) : pat_(p) {
    for (size_t i = 0; i < p.size();) cps_.push_back(uni::next(p, i));
  }

  std::unique_ptr<Node> parse() {
    auto n = alt(false);
    if (i_ != cps_.size()) bad("unbalanced ')'");
    return n;
  }

 private:
  [[noreturn]] void bad(const std::string& what) const {
    fail("regex '", pat_, "': ", what, " at character ", i_, " is not supported");
  }
  [[noreturn]] void malformed(const std::string& what) const {
    fail("regex '", pat_, "': ", what, " at character ", i_);
  }
  // The code point written by hex digits cps_[begin, end) of an escape: between min and max digits,
  // all hex, a Unicode scalar value. Anything else is an Error, never a silently shorter escape.
  char32_t hex_code_point(size_t begin, size_t end, size_t min, size_t max, const char* escape) const {
    size_t n = end - begin;
    if (n < min || n > max)
      malformed(cat(escape, " needs ", min == max ? std::to_string(min) : cat(min, " to ", max), " hex digits"));
    uint32_t v = 0;
    for (size_t k = begin; k < end; ++k) {
      char32_t c = cps_[k];
      int d = c >= '0' && c <= '9'   ? int(c - '0')
              : c >= 'a' && c <= 'f' ? int(c - 'a' + 10)
              : c >= 'A' && c <= 'F' ? int(c - 'A' + 10)
                                     : -1;
      if (d < 0) malformed(cat(escape, " has a character that is not a hex digit"));
      v = v * 16 + uint32_t(d);
    }
    if (v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) malformed(cat(escape, " is not a Unicode scalar value"));
    return static_cast<char32_t>(v);
  }
  bool more() const { return i_ < cps_.size(); }
  char32_t peek() const { return cps_[i_]; }
  bool eat(char32_t c) {
    if (more() && peek() == c) {
      ++i_;
      return true;
    }
    return false;
  }

  std::unique_ptr<Node> alt(bool icase) {
    auto a = std::make_unique<Node>();
    a->kind = Node::kAlt;
    a->kids.push_back(seq(icase));
    while (eat('|')) a->kids.push_back(seq(icase));
    if (a->kids.size() == 1) return std::move(a->kids[0]);
    return a;
  }

  std::unique_ptr<Node> seq(bool icase) {
    auto s = std::make_unique<Node>();
    s->kind = Node::kSeq;
    while (more() && peek() != '|' && peek() != ')') {
      if (peek() == '(' && i_ + 2 < cps_.size() && cps_[i_ + 1] == '?' && cps_[i_ + 2] == 'i' && i_ + 3 < cps_.size() &&
          cps_[i_ + 3] == ')') {
        i_ += 4;  // (?i) applies to the rest of the enclosing group
        icase = true;
        continue;
      }
      auto a = atom(icase);
      s->kids.push_back(quantified(std::move(a)));
    }
    return s;
  }

  std::unique_ptr<Node> quantified(std::unique_ptr<Node> a) {
    if (!more()) return a;
    int mn, mx;
    char32_t c = peek();
    if (c == '?') mn = 0, mx = 1;
    else if (c == '*') mn = 0, mx = -1;
    else if (c == '+') mn = 1, mx = -1;
    else if (c == '{') {
      size_t save = i_++;
      auto num = [&](int& v) {
        size_t st = i_;
        v = 0;
        while (more() && peek() >= '0' && peek() <= '9') {
          v = v * 10 + int(cps_[i_++] - '0');
          // Oniguruma's ONIG_MAX_REPEAT_NUM; checked per digit, so the count never overflows.
          if (v > 100000) malformed("a repeat count above 100000");
        }
        return i_ > st;
      };
      if (!num(mn)) {
        i_ = save;
        return a;
      }  // a literal '{' (Oniguruma's reading)
      mx = mn;
      if (eat(',')) {
        if (!num(mx)) mx = -1;
      }
      if (!eat('}')) bad("malformed {m,n}");
      --i_;
    } else {
      return a;
    }
    ++i_;
    if (a->kind == Node::kBegin || a->kind == Node::kEnd || a->kind == Node::kLook) bad("quantified assertion");
    auto r = std::make_unique<Node>();
    r->kind = Node::kRepeat;
    r->min = mn, r->max = mx;
    if (eat('?')) r->lazy = true;
    else if (eat('+')) r->possessive = true;
    if (r->possessive && a->kind != Node::kSet) bad("possessive quantifier on a group");
    r->kids.push_back(std::move(a));
    if (more() && (peek() == '?' || peek() == '*' || peek() == '+' || peek() == '{')) bad("nested quantifier");
    return r;
  }

  std::unique_ptr<Node> set_node(bool icase) {
    auto n = std::make_unique<Node>();
    n->kind = Node::kSet;
    n->icase = icase;
    return n;
  }

  std::unique_ptr<Node> atom(bool icase) {
    char32_t c = cps_[i_++];
    if (c == '(') {
      bool inner_icase = icase;
      std::unique_ptr<Node> look;
      if (eat('?')) {
        if (eat(':')) {
        } else if (eat('i')) {
          if (!eat(':')) bad("inline flags other than (?i:...) and (?i)");
          inner_icase = true;
        } else if (more() && (peek() == '=' || peek() == '!')) {
          look = std::make_unique<Node>();
          look->kind = Node::kLook;
          look->negative = cps_[i_++] == '!';
        } else {
          bad("group kind (?" + std::string(1, char(more() ? peek() : '?')) + "...)");
        }
      }
      auto body = alt(inner_icase);
      if (!eat(')')) bad("missing ')'");
      if (look) {
        look->kids.push_back(std::move(body));
        return look;
      }
      return body;
    }
    if (c == '[') return char_class(icase);
    if (c == '^' || c == '$') {
      auto n = std::make_unique<Node>();
      n->kind = c == '^' ? Node::kBegin : Node::kEnd;
      return n;
    }
    auto n = set_node(icase);
    if (c == '.') {
      n->set_neg = true;
      n->items.push_back(Item{Item::kRange, false, '\n', '\n', 0});
      return n;
    }
    if (c == '\\') {
      escape(n->items, false);
      return n;
    }
    if (c == ')' || c == '*' || c == '+' || c == '?') bad("misplaced '" + std::string(1, char(c)) + "'");
    n->items.push_back(Item{Item::kRange, false, c, c, 0});
    return n;
  }

  // After a backslash: appends the item; returns the literal code point for ranges, or -1.
  int64_t escape(std::vector<Item>& items, bool in_class) {
    if (!more()) bad("trailing backslash");
    char32_t c = cps_[i_++];
    auto lit = [&](char32_t v) {
      items.push_back(Item{Item::kRange, false, v, v, 0});
      return int64_t(v);
    };
    switch (c) {
      case 'n': return lit('\n');
      case 'r': return lit('\r');
      case 't': return lit('\t');
      case 'f': return lit('\f');
      case 'v': return lit('\v');
      case '0': return lit(0);
      case 's':
      case 'S': items.push_back(Item{Item::kSpace, c == 'S', 0, 0, 0}); return -1;
      case 'w':
      case 'W': items.push_back(Item{Item::kWord, c == 'W', 0, 0, 0}); return -1;
      case 'd':
      case 'D': items.push_back(Item{Item::kCats, c == 'D', 0, 0, cat_bits({UTF8PROC_CATEGORY_ND})}); return -1;
      case 'p':
      case 'P': {
        std::string name;
        if (eat('{')) {
          while (more() && peek() != '}') name += char(cps_[i_++]);
          if (!eat('}')) bad("unterminated \\p{");
        } else if (more()) {
          name = std::string(1, char(cps_[i_++]));
        }
        bool neg = c == 'P';
        if (!name.empty() && name[0] == '^') neg = !neg, name.erase(0, 1);
        uint32_t m = category_mask(name);
        if (!m) bad("Unicode property \\p{" + name + "}");
        items.push_back(Item{Item::kCats, neg, 0, 0, m});
        return -1;
      }
      case 'x': {
        if (eat('{')) {
          size_t begin = i_;
          while (more() && peek() != '}') ++i_;
          if (!eat('}')) bad("\\x{...} without its closing }");
          return lit(hex_code_point(begin, i_ - 1, 1, 6, "\\x{...}"));
        }
        size_t begin = i_;
        i_ = std::min(i_ + 2, cps_.size());
        return lit(hex_code_point(begin, i_, 2, 2, "\\x"));
      }
      case 'u': {
        size_t begin = i_;
        i_ = std::min(i_ + 4, cps_.size());
        return lit(hex_code_point(begin, i_, 4, 4, "\\u"));
      }
      default:
        if ((c < 0x80 && !uni::is_letter(c) && !uni::is_number(c)) || c >= 0x80) return lit(c);
        --i_;
        bad(std::string("escape \\") + char(c) + (in_class ? " in a class" : ""));
    }
  }

  std::unique_ptr<Node> char_class(bool icase) {
    auto n = set_node(icase);
    if (eat('^')) n->set_neg = true;
    bool first = true;
    while (more() && (peek() != ']' || first)) {
      first = false;
      int64_t lo;
      char32_t c = cps_[i_++];
      if (c == '[') bad("nested class");
      if (c == '&' && more() && peek() == '&') bad("class intersection");
      if (c == '\\') lo = escape(n->items, true);
      else lo = c, n->items.push_back(Item{Item::kRange, false, c, c, 0});
      if (lo >= 0 && more() && peek() == '-' && i_ + 1 < cps_.size() && cps_[i_ + 1] != ']') {
        ++i_;
        char32_t hc = cps_[i_++];
        int64_t hi;
        if (hc == '\\') {
          std::vector<Item> tmp;
          hi = escape(tmp, true);
          if (hi < 0) bad("class range ending in a class escape");
        } else {
          hi = hc;
        }
        if (hi < lo) bad("reversed class range");
        n->items.back().hi = static_cast<char32_t>(hi);
      }
    }
    if (!eat(']')) bad("unterminated class");
    return n;
  }

  std::string pat_;
  std::vector<char32_t> cps_;
  size_t i_ = 0;
};

// Backtracking with explicit continuations: a Cont says what remains after the current node.
struct Cont {
  enum Kind { kSeqRest, kRepeatMore } kind;
  const Node* node;
  size_t index;  // kSeqRest: next child; kRepeatMore: repetitions done
  size_t start;  // kRepeatMore: where this repetition began (stops empty loops)
  const Cont* next;
};

class Matcher {
 public:
  explicit Matcher(const std::vector<char32_t>& cp) : cp_(cp) {}
  bool at(const Node& root, size_t pos, size_t& end) {
    if (!node(root, pos, nullptr)) return false;
    end = end_;
    return true;
  }

 private:
  bool run(const Cont* k, size_t pos) {
    if (!k) {
      end_ = pos;
      return true;
    }
    if (k->kind == Cont::kSeqRest) {
      if (k->index == k->node->kids.size()) return run(k->next, pos);
      Cont rest{Cont::kSeqRest, k->node, k->index + 1, 0, k->next};
      return node(*k->node->kids[k->index], pos, &rest);
    }
    if (pos == k->start) return false;  // an empty repetition cannot loop
    return repeat(*k->node, pos, k->index, k->next);
  }

  bool repeat(const Node& r, size_t pos, size_t done, const Cont* k) {
    const Node& sub = *r.kids[0];
    bool can_more = r.max < 0 || done < static_cast<size_t>(r.max);
    Cont more{Cont::kRepeatMore, &r, done + 1, pos, k};
    if (done < static_cast<size_t>(r.min)) return node(sub, pos, &more);
    if (r.lazy) return run(k, pos) || (can_more && node(sub, pos, &more));
    return (can_more && node(sub, pos, &more)) || run(k, pos);
  }

  bool node(const Node& n, size_t pos, const Cont* k) {
    switch (n.kind) {
      case Node::kSet: return pos < cp_.size() && n.matches(cp_[pos]) && run(k, pos + 1);
      case Node::kSeq: {
        Cont c{Cont::kSeqRest, &n, 0, 0, k};
        return run(&c, pos);
      }
      case Node::kAlt:
        for (const auto& a : n.kids)
          if (node(*a, pos, k)) return true;
        return false;
      case Node::kBegin: return pos == 0 && run(k, pos);
      case Node::kEnd: return pos == cp_.size() && run(k, pos);
      case Node::kLook: {
        size_t saved = end_;
        bool found = node(*n.kids[0], pos, nullptr);
        end_ = saved;
        return found != n.negative && run(k, pos);
      }
      case Node::kRepeat: {
        const Node& sub = *n.kids[0];
        if (sub.kind != Node::kSet) return repeat(n, pos, 0, k);
        // A single-character atom: count the run once, then back off without recursion depth.
        size_t limit = n.max < 0 ? cp_.size() - pos : std::min<size_t>(n.max, cp_.size() - pos);
        size_t cnt = 0;
        while (cnt < limit && sub.matches(cp_[pos + cnt])) ++cnt;
        size_t mn = static_cast<size_t>(n.min);
        if (cnt < mn) return false;
        if (n.possessive) return run(k, pos + cnt);
        if (n.lazy) {
          for (size_t j = mn; j <= cnt; ++j)
            if (run(k, pos + j)) return true;
          return false;
        }
        for (size_t j = cnt + 1; j-- > mn;)
          if (run(k, pos + j)) return true;
        return false;
      }
    }
    return false;
  }

  const std::vector<char32_t>& cp_;
  size_t end_ = 0;
};

}  // namespace

Regex::Regex(const std::string& pattern) : pattern_(pattern), root_(Parser(pattern).parse()) {}
Regex::~Regex() = default;
Regex::Regex(Regex&&) noexcept = default;

std::vector<std::pair<size_t, size_t>> Regex::find_all(std::string_view text) const {
  std::vector<char32_t> cp;
  std::vector<size_t> at;
  for (size_t i = 0; i < text.size();) {
    at.push_back(i);
    cp.push_back(uni::next(text, i));
  }
  at.push_back(text.size());
  Matcher m(cp);
  std::vector<std::pair<size_t, size_t>> out;
  size_t pos = 0;
  while (pos <= cp.size()) {
    size_t end = 0, start = pos;
    bool found = false;
    for (; start <= cp.size(); ++start)
      if ((found = m.at(*root_, start, end))) break;
    if (!found) break;
    out.emplace_back(at[start], at[end]);
    pos = end > start ? end : end + 1;  // after an empty match, move on one character
  }
  return out;
}

}  // namespace mechscope::tokenizers
