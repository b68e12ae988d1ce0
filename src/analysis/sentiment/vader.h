// VADER sentiment (Hutto & Gilbert, ICWSM-14) exactly as the npm package `vader-sentiment` 1.1.3 scores
// it: lexicon valences with ALL-CAPS emphasis, boosters/dampeners of the three preceding words,
// negation ("not", "n't", "never so", "least"), "kind of", idioms, the contrastive "but", and "!"/"?"
// emphasis; the four scores rounded as the JS rounds them (toFixed(3) for neg/neu/pos, 4 for compound).
// Lower-casing is Unicode simple case mapping (utf8proc), which equals JS toLowerCase except for the
// few context-dependent special cases (final sigma, dotted capital I).
#pragma once
#include <string>

namespace mechscope::analysis::sentiment {

struct VaderScores {
  double neg = 0, neu = 0, pos = 0, compound = 0;
};

// text: valid UTF-8.
VaderScores vader(const std::string& text);

// Lexicon size (entries after duplicates, the later one winning as in the JS object literal).
size_t vader_lexicon_size();

}  // namespace mechscope::analysis::sentiment
