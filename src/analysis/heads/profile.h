// Prompt profiles of the emotion head experiments (issue 14): a folder with one <emotion>.jsonl per
// emotion, each line {"emotion": "...", "neutral": "..."} (the same sentence with the emotional phrase
// replaced by a neutral one), and keywords.json {"<emotion>": ["word", ...]} with the words counted in
// generations. The shipped profiles are examples/emotion/profiles/{baseline,extended}.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace mechscope::analysis::heads {

struct PromptPair {
  std::string emotion, neutral;
  int64_t line = 0;           // 1-based line in its file, for messages
  std::string file;           // that file
  std::string where() const;  // "file:line"
};

struct Profile {
  std::string dir;
  std::map<std::string, std::vector<PromptPair>> pairs;      // emotion -> pairs in file order
  std::map<std::string, std::vector<std::string>> keywords;  // emotion -> keywords
  std::vector<std::string> emotions() const;                 // sorted
  // The pairs of `emotion`; Error listing the known emotions when it has none.
  const std::vector<PromptPair>& of(const std::string& emotion) const;
  // "all" -> every emotion; a name -> that one (Error listing the known ones when unknown).
  std::vector<std::string> select(const std::string& emotion_arg) const;
};

// Reads one pairs file. Errors name the file and line: not JSON, not an object with string "emotion" and
// "neutral", the two prompts identical or empty, or no pairs at all.
std::vector<PromptPair> read_pairs(const std::string& path);

// One prompt per line (the seed's --emotion-prompts / --neutral-prompts files): a JSON string, an object
// with a "text" (or "prompt") string, or plain text; blank lines are skipped. Returned as pairs with only
// `emotion` set (text) and line/file. Errors name the file and line; no prompts at all is an error.
std::vector<PromptPair> read_prompt_lines(const std::string& path);

// Replaces one emotion's prompts: its emotion side from `emotion_file`, its neutral side from
// `neutral_file` (either may be empty = keep the current side). The files' prompt counts must equal each
// other, or the pairs they replace one side of; a pair whose two prompts are identical is an error.
void override_prompts(Profile& p, const std::string& emotion, const std::string& emotion_file,
                      const std::string& neutral_file);

// Reads a profile folder: every *.jsonl in it, and keywords.json, which must list keywords for each.
Profile load_profile(const std::string& dir);

// A pair tokenized and lined up. The phrase is what differs: the tokens between the common prefix and
// the common suffix of the two id sequences. Prompts of different lengths are aligned on their last
// tokens: position p of the neutral prompt corresponds to p + offset of the emotion prompt.
struct AlignedPair {
  std::vector<int64_t> emotion_ids, neutral_ids;
  int64_t emotion_phrase_begin = 0, emotion_phrase_end = 0;  // [begin, end) in emotion_ids
  int64_t neutral_phrase_begin = 0, neutral_phrase_end = 0;  // [begin, end) in neutral_ids
  int64_t offset = 0;                                        // emotion length - neutral length
};
AlignedPair align_pair(std::vector<int64_t> emotion_ids, std::vector<int64_t> neutral_ids);

// Occurrences of each keyword in `text` as a whole word (case-insensitive for ASCII letters; letters,
// digits, '_' and any non-ASCII character count as word characters, as Python's \b with re.UNICODE
// treats letters), summed over the keywords.
int64_t count_keywords(const std::string& text, const std::vector<std::string>& keywords);

}  // namespace mechscope::analysis::heads
