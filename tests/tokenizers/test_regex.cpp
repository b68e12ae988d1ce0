// The code-point regex engine against JavaScript's regex engine (node), which shares the
// backtracking, leftmost-first semantics of Oniguruma / fancy-regex used by HF `tokenizers`.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "test_util.h"
#include "tokenizers/byte_level.h"
#include "tokenizers/corpus.h"
#include "tokenizers/regex.h"

using namespace mechscope;
using namespace mechscope::tokenizers;
using nlohmann::json;

namespace {

std::vector<std::vector<std::string>> node_split(const std::string& js_pattern, const std::vector<std::string>& texts) {
  std::string dir = mstest::tmp_dir("regex-split");
  {
    std::ofstream f(dir + "/in.jsonl");
    f << json(js_pattern).dump() << "\n";
    for (const auto& t : texts) f << json(t).dump() << "\n";
  }
  auto r = mstest::run_shell("/usr/bin/node '" + mstest::source_dir() + "/tests/tokenizers/regex_split.js' '" + dir +
                             "/in.jsonl'");
  EXPECT_EQ(r.code, 0) << r.err;
  std::vector<std::vector<std::string>> out;
  std::istringstream lines(r.out);
  std::string line;
  while (std::getline(lines, line)) out.push_back(json::parse(line).get<std::vector<std::string>>());
  EXPECT_EQ(out.size(), texts.size());
  return out;
}

std::vector<std::string> pieces(const Regex& re, const std::string& s) {
  std::vector<std::string> out;
  for (auto [b, e] : re.find_all(s)) out.push_back(s.substr(b, e - b));
  return out;
}

// Compares on the seeded corpus (which leaves out U+0085 and U+FEFF, where JavaScript's \s
// differs from Unicode White_Space) plus `extra` texts.
void compare_with_node(const std::string& pattern, const std::string& js_pattern, std::vector<std::string> extra) {
  auto texts = mstest::make_corpus(2000, 99);
  texts.insert(texts.end(), extra.begin(), extra.end());
  auto want = node_split(js_pattern, texts);
  ASSERT_EQ(want.size(), texts.size());
  Regex re(pattern);
  size_t bad = 0;
  for (size_t i = 0; i < texts.size() && bad < 5; ++i) {
    auto got = pieces(re, texts[i]);
    if (got != want[i]) ++bad, ADD_FAILURE() << "text: " << json(texts[i]).dump();
  }
}

const std::vector<std::string> kContractions = {"I'm you're they've we'll she'd IT'S DON'T",
                                                "'S'T'RE'VE'M'LL'D",
                                                "x\xC5\xBF's 'ſ'",
                                                "abc\r\n\r\n  def\n\n\n",
                                                "12345678 3.14159",
                                                "  \n  x",
                                                "\t\t\ny"};

}  // namespace

TEST(Regex, Llama3PatternMatchesJavaScript) {
  // JavaScript has no (?i:...): the same contractions spelled out with their case-fold closure
  // (U+017F long s folds to s).
  compare_with_node(
      "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| "
      "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
      "'[sS\\u017F]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD]|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|"
      "\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
      kContractions);
}

TEST(Regex, Cl100kPossessivePatternMatchesJavaScript) {
  // The possessive ?+ and ++ here cannot change a match (what follows never needs them to give
  // back), so JavaScript's pattern without them is the reference.
  compare_with_node(
      "'(?i:[sdmt]|ll|ve|re)|[^\\r\\n\\p{L}\\p{N}]?+\\p{L}+|\\p{N}{1,3}| "
      "?[^\\s\\p{L}\\p{N}]++[\\r\\n]*|\\s*[\\r\\n]|\\s+(?!\\S)|\\s+",
      "'(?:[sdmtSDMT\\u017F]|[lL][lL]|[vV][eE]|[rR][eE])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| "
      "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]|\\s+(?!\\S)|\\s+",
      kContractions);
}

TEST(Regex, Gpt2PatternAgreesWithHandWrittenSplit) {
  const std::string gpt2 = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";
  compare_with_node(gpt2, gpt2, kContractions);
  Regex re(gpt2);
  for (const auto& s : mstest::make_corpus(2000, 5)) {
    std::vector<std::string_view> hand;
    gpt2_split(s, hand);
    EXPECT_EQ(pieces(re, s), std::vector<std::string>(hand.begin(), hand.end())) << json(s).dump();
  }
}

TEST(Regex, Features) {
  EXPECT_EQ(pieces(Regex("a{2,3}"), "aaaaaaa"), (std::vector<std::string>{"aaa", "aaa"}));
  EXPECT_EQ(pieces(Regex("a+?b"), "aaab"), (std::vector<std::string>{"aaab"}));
  EXPECT_EQ(pieces(Regex("(?:ab)+"), "ababxab"), (std::vector<std::string>{"abab", "ab"}));
  EXPECT_EQ(pieces(Regex("x(?=y)"), "xyxz"), (std::vector<std::string>{"x"}));
  EXPECT_EQ(pieces(Regex("[a-c\\d]+"), "abz19c"), (std::vector<std::string>{"ab", "19c"}));
  EXPECT_EQ(pieces(Regex("(?i)hello"), "HeLLo hello"), (std::vector<std::string>{"HeLLo", "hello"}));
  EXPECT_EQ(pieces(Regex("^a|b$"), "aab"), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(pieces(Regex("\\p{Lu}\\p{Ll}*"), "HelloWorld"), (std::vector<std::string>{"Hello", "World"}));
  EXPECT_EQ(pieces(Regex("a?+a"), "a"), std::vector<std::string>{});  // possessive keeps the a
}

TEST(Regex, UnsupportedFeaturesNameThePattern) {
  for (const char* p : {"(?<=a)b", "(?<name>a)", "a\\bb", "[[a]]", "(a", "\\p{Greek}", "a**"}) {
    try {
      Regex re(p);
      ADD_FAILURE() << "no error for " << p;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(p), std::string::npos) << e.what();
    }
  }
}

// Found by the regex fuzz target (tests/fuzz/regressions/regex/): "\u}" made std::stoul throw
// std::invalid_argument out of the engine, and "\u4z" was read as \u4.
TEST(Regex, HexEscapesAreWholeOrAnError) {
  EXPECT_EQ(pieces(Regex("\\u00e9+"), "caf\xc3\xa9\xc3\xa9!"), (std::vector<std::string>{"\xc3\xa9\xc3\xa9"}));
  EXPECT_EQ(pieces(Regex("\\x41\\x{1F600}"), "zA\xf0\x9f\x98\x80"), (std::vector<std::string>{"A\xf0\x9f\x98\x80"}));
  for (const char* p :
       {"\\u}", "\\u4z00", "\\u12", "\\x4", "\\xg1", "\\x{}", "\\x{110000}", "\\x{D800}", "\\x{41", "\\x{1234567}"}) {
    try {
      Regex re(p);
      ADD_FAILURE() << "no error for " << p;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(p), std::string::npos) << e.what();
    }
  }
}
