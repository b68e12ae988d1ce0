// Prompt profiles: the shipped baseline/extended profiles are well-formed minimal pairs (under the real
// GPT-2 tokenizer, the emotional phrase sits between a shared prefix and a shared suffix), alignment and
// keyword counting on hand-checked cases, and one clear error per malformed profile.
#include <gtest/gtest.h>

#include <fstream>

#include "analysis/heads/profile.h"
#include "core/error.h"
#include "core/fs.h"
#include "test_util.h"
#include "tokenizers/tokenizer.h"

using namespace mechscope;
namespace H = mechscope::analysis::heads;

namespace {

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

void write(const std::string& path, const std::string& text) {
  std::ofstream f(path);
  f << text;
}

TEST(Profile, ShippedProfilesAreMinimalPairsUnderGpt2) {
  auto tok = tokenizers::load_tokenizer(mstest::fixture("gpt2/model"));
  for (auto [name, n] : {std::pair<const char*, size_t>{"baseline", 70}, {"extended", 200}}) {
    auto p = H::load_profile(mstest::source_dir() + "/examples/emotion/profiles/" + name);
    EXPECT_EQ(p.emotions(), (std::vector<std::string>{"anger", "apology", "gratitude"})) << name;
    size_t mismatched = 0;
    for (auto& e : p.emotions()) {
      const auto& pairs = p.of(e);
      if (std::string(name) == "baseline") EXPECT_EQ(pairs.size(), n);
      else EXPECT_GE(pairs.size(), n);
      EXPECT_FALSE(p.keywords.at(e).empty());
      for (auto& pr : pairs) {
        auto a = H::align_pair(tok->encode(pr.emotion), tok->encode(pr.neutral));
        // A shared opening before the phrase and shared tokens after it, which the screen reads.
        EXPECT_GT(a.emotion_phrase_begin, 0) << pr.emotion;
        EXPECT_LT(a.emotion_phrase_end, (int64_t)a.emotion_ids.size()) << pr.emotion;
        EXPECT_LT(a.emotion_phrase_begin, a.emotion_phrase_end) << pr.emotion;
        EXPECT_EQ(a.emotion_ids.back(), a.neutral_ids.back());
        mismatched += a.offset != 0;
      }
    }
    // make_profiles.py picks each neutral phrase with its emotional phrase's GPT-2 token count.
    EXPECT_EQ(mismatched, 0u) << name;
  }
}

TEST(Profile, AlignmentAndKeywords) {
  auto a = H::align_pair({1, 2, 3, 4, 5}, {1, 9, 4, 5});
  EXPECT_EQ(a.emotion_phrase_begin, 1);
  EXPECT_EQ(a.emotion_phrase_end, 3);
  EXPECT_EQ(a.neutral_phrase_begin, 1);
  EXPECT_EQ(a.neutral_phrase_end, 2);
  EXPECT_EQ(a.offset, 1);
  // The suffix never overlaps the prefix: {7, 7} vs {7} shares one token, and the phrase is the other.
  auto b = H::align_pair({7, 7}, {7});
  EXPECT_EQ(b.emotion_phrase_begin, 1);
  EXPECT_EQ(b.emotion_phrase_end, 2);
  EXPECT_EQ(b.neutral_phrase_end, 1);
  EXPECT_EQ(H::count_keywords("Thanks! I am so THANKFUL, thank-you; thanksgiving, Thank.", {"thank", "thankful"}), 3);
  EXPECT_EQ(H::count_keywords("sorry_not sorry", {"sorry"}), 1);
  EXPECT_EQ(H::count_keywords("", {"sorry"}), 0);
}

TEST(Profile, ErrorsNameTheFileLineAndKnownEmotions) {
  std::string dir = mstest::tmp_dir("profile-bad");
  write(join_path(dir, "joy.jsonl"), "{\"emotion\": \"I am glad about it.\", \"neutral\": \"I am told about it.\"}\n");
  write(join_path(dir, "keywords.json"), "{\"joy\": [\"glad\"]}");
  auto p = H::load_profile(dir);
  EXPECT_EQ(p.of("joy").size(), 1u);
  std::string e = error_of([&] { p.select("anger"); });
  EXPECT_NE(e.find("unknown emotion 'anger'"), std::string::npos) << e;
  EXPECT_NE(e.find("(known: joy)"), std::string::npos) << e;
  EXPECT_EQ(p.select("all"), (std::vector<std::string>{"joy"}));

  write(join_path(dir, "fear.jsonl"), "\n\n");
  e = error_of([&] { H::load_profile(dir); });
  EXPECT_NE(e.find("fear.jsonl' has no pairs"), std::string::npos) << e;
  write(join_path(dir, "fear.jsonl"), "{\"emotion\": \"a b\", \"neutral\": \"a c\"}\n{\"emotion\": \"x\n");
  e = error_of([&] { H::load_profile(dir); });
  EXPECT_NE(e.find("fear.jsonl:2 is not valid JSON"), std::string::npos) << e;
  write(join_path(dir, "fear.jsonl"), "{\"emotion\": \"a b\"}\n");
  e = error_of([&] { H::load_profile(dir); });
  EXPECT_NE(e.find("fear.jsonl:1: expected {\"emotion\""), std::string::npos) << e;
  write(join_path(dir, "fear.jsonl"), "{\"emotion\": \"same\", \"neutral\": \"same\"}\n");
  e = error_of([&] { H::load_profile(dir); });
  EXPECT_NE(e.find("identical"), std::string::npos) << e;
  write(join_path(dir, "fear.jsonl"), "{\"emotion\": \"I fear it\", \"neutral\": \"I see it\"}\n");
  e = error_of([&] { H::load_profile(dir); });
  EXPECT_NE(e.find("no keywords for emotion 'fear'"), std::string::npos) << e;
  e = error_of([&] { H::load_profile(join_path(dir, "nowhere")); });
  EXPECT_NE(e.find("is not a directory"), std::string::npos) << e;
}

}  // namespace
