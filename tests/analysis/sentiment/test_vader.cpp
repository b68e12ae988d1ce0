// VADER against the npm package it reimplements (vader-sentiment 1.1.3, run by node on the same texts):
// all four scores equal on 600 generated sentences that exercise every rule (negation, boosters and
// dampeners, ALL CAPS, "but", "kind of", "least", idioms, emoticons, attached punctuation, "!"/"?").
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <fstream>
#include <random>
#include <sstream>

#include "analysis/sentiment/vader.h"
#include "core/fs.h"
#include "test_util.h"

namespace S = mechscope::analysis::sentiment;

namespace {

std::vector<std::string> corpus() {
  std::vector<std::string> texts = {
      "VADER is smart, handsome, and funny.",
      "VADER is smart, handsome, and funny!",
      "VADER is very smart, handsome, and funny.",
      "VADER is VERY SMART, handsome, and FUNNY.",
      "VADER is VERY SMART, handsome, and FUNNY!!!",
      "VADER is VERY SMART, uber handsome, and FRIGGIN FUNNY!!!",
      "VADER is not smart, handsome, nor funny.",
      "The book was good.",
      "At least it isn't a horrible book.",
      "The book was only kind of good.",
      "The plot was good, but the characters are uncompelling and the dialog is not great.",
      "Today SUX!",
      "Today only kinda sux! But I'll get by, lol",
      "Make sure you :) or :D today!",
      "Catch utf-8 emoji such as such as 💘 and 💋 and 😁",
      "Not bad at all",
      "",
      "   ",
      "!!!",
      "a b c",
      "It was the least bad option",
      "He is the very least helpful person",
      "yeah right, that was the shit",
      "This will be the kiss of death for them",
      "We live hand to mouth these days",
      "It does not cut the mustard",
      "I never so loved anything",
      "never this good",
      "Thank you so much for your help!!",
      "I am so sorry :(",
      "Þ :-Þ ÞÞ",
      "Crème brûlée was wonderful",
      "Ça va? Oui!",
      "WHY?? WHY???? why?!?",
      "lol!!! good!!!!!!",
      "The food, however, was awful... and the service... TERRIBLE.",
      "(great) [bad] {ok} 'fine' \"nice\"",
      "isn't it great",
      "I don't hate it",
      "uh-uh, not good",
      "without doubt the best",
      "nothing good came of it"};
  const std::vector<std::string> subjects = {"I",   "We",   "The service", "this movie",    "My friend", "THE FOOD",
                                             "She", "They", "the staff",   "Our neighbour", "You",       "HE"};
  const std::vector<std::string> verbs = {"is", "was", "felt", "seems", "looked", "am", "are", "became"};
  const std::vector<std::string> negs = {"not",    "never",  "isn't", "don't", "without", "hardly",
                                         "wasn't", "cannot", "nor",   "aint",  "seldom",  "rarely"};
  const std::vector<std::string> boosters = {
      "very",     "extremely",  "kind of", "sort of",  "slightly", "VERY", "so",       "really",      "barely", "least",
      "at least", "very least", "TOTALLY", "somewhat", "kinda",    "this", "never so", "just enough", "utterly"};
  const std::vector<std::string> words = {
      "good",          "GOOD",     "bad",       "great",      "horrible",      "love",
      "hate",          "happy",    "angry",     "sorry",      "thank",         "thanks",
      "grateful",      "furious",  "apologize", "okay",       "fine",          "wonderful",
      "terrible",      "lol",      ":)",        ":(",         ":-D",           "<3",
      "the shit",      "the bomb", "bad ass",   "yeah right", "kiss of death", "cut the mustard",
      "hand to mouth", "HATE",     "Love",      "annoyed",    "regret",        "appreciate",
      "forgive",       "mad",      "upset",     "kind",       "nice",          "ugly",
      "table",         "window",   "blue",      "afternoon",  "WONDERFUL",     "sux",
      "lmao",          "meh",      "ok",        "wtf",        "rage"};
  const std::vector<std::string> joins = {" and ", " but ", " BUT ", ", ", "; ", " so ", " yet ", " while ", ". "};
  const std::vector<std::string> ends = {".",   "!", "!!",  "!!!!!", "?",   "??",   "????",
                                         "?!?", "",  " :)", "...",   "!?!", " lol", ","};
  std::mt19937 rng(20240601);
  auto pick = [&](const std::vector<std::string>& v) { return v[rng() % v.size()]; };
  while (texts.size() < 600) {
    std::string t;
    int clauses = 1 + (int)(rng() % 3);
    for (int c = 0; c < clauses; ++c) {
      if (c) t += pick(joins);
      t += pick(subjects) + " " + pick(verbs);
      if (rng() % 3 == 0) t += " " + pick(negs);
      if (rng() % 2 == 0) t += " " + pick(boosters);
      if (rng() % 4 == 0) t += " " + pick(boosters);
      std::string w = pick(words);
      switch (rng() % 6) {
        case 0: w = "(" + w + ")"; break;
        case 1: w += ","; break;
        case 2: w += "!"; break;
        default: break;
      }
      t += " " + w;
    }
    t += pick(ends);
    texts.push_back(t);
  }
  return texts;
}

TEST(Vader, EqualsTheNpmPackageOnGeneratedSentences) {
  auto texts = corpus();
  std::string in = mechscope::join_path(mstest::tmp_dir("vader"), "texts.jsonl");
  {
    std::ofstream f(in);
    for (auto& t : texts) f << nlohmann::json(t).dump() << "\n";
  }
  auto r = mstest::run_shell("node '" + mstest::source_dir() + "/tests/analysis/sentiment/vader_ref.js' '" + in + "'");
  ASSERT_EQ(r.code, 0) << r.out;
  std::istringstream lines(r.out);
  std::string line;
  size_t i = 0, bad = 0, nonzero = 0;
  for (; std::getline(lines, line) && i < texts.size(); ++i) {
    auto want = nlohmann::json::parse(line);
    S::VaderScores got = S::vader(texts[i]);
    bool same = got.neg == want["neg"].get<double>() && got.neu == want["neu"].get<double>() &&
                got.pos == want["pos"].get<double>() && got.compound == want["compound"].get<double>();
    nonzero += got.compound != 0;
    if (!same && ++bad <= 10)
      ADD_FAILURE() << "'" << texts[i] << "': npm " << line << ", mechscope neg " << got.neg << " neu " << got.neu
                    << " pos " << got.pos << " compound " << got.compound;
  }
  EXPECT_EQ(i, texts.size());
  EXPECT_EQ(bad, 0u);
  EXPECT_GT(nonzero, texts.size() / 2);  // the corpus is mostly sentiment-laden
}

TEST(Vader, KnownScoresAndLexicon) {
  EXPECT_EQ(S::vader_lexicon_size(), 7503u);
  auto s = S::vader("VADER is smart, handsome, and funny!!! But not GOOD at all :)");
  EXPECT_EQ(s.neg, 0.13);
  EXPECT_EQ(s.neu, 0.309);
  EXPECT_EQ(s.pos, 0.56);
  EXPECT_EQ(s.compound, 0.8666);
  auto none = S::vader("");
  EXPECT_EQ(none.compound, 0.0);
  EXPECT_EQ(none.neu, 0.0);
}

}  // namespace
