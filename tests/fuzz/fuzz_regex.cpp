// The tokenizer regex engine (tokenizer.json Split/Replace patterns) and the Python re.match layer of
// token sets (`--token-set NAME=REGEX`): pattern "\0\0" subject. Matches must be ordered,
// non-overlapping byte ranges of the subject that start and end on code-point boundaries.
#include "fuzz.h"
#include "core/error.h"
#include "analysis/sae/token_sets.h"
#include "core/utf8.h"
#include "tokenizers/regex.h"

using namespace mechscope;

MECHSCOPE_FUZZ_TARGET(regex) {
  auto [pattern, subject] = fuzz::split2(data, size);
  if (!utf8::valid(pattern) || !utf8::valid(subject)) return;
  std::string p(pattern), s(subject);
  try {
    tokenizers::Regex re(p);
    size_t last = 0;
    for (auto [b, e] : re.find_all(s)) {
      FUZZ_CHECK(last <= b && b <= e && e <= s.size(), "regex", "match ranges out of order");
      FUZZ_CHECK(utf8::valid(std::string_view(s).substr(b, e - b)), "regex", "match splits a code point");
      last = e;
    }
  } catch (const Error&) {}
  analysis::sae::PyRegex py(p);
  (void)py.match(s);
}
