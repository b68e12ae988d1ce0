// mechscope sentiment: VADER scores (as the npm package vader-sentiment computes them) of many texts,
// and with --sentiment-model a sequence classifier's P(POSITIVE).
#include <cstdio>
#include <fstream>
#include <iostream>

#include "analysis/sentiment/classifier.h"
#include "analysis/sentiment/vader.h"
#include "cli/args.h"
#include "cli/common.h"
#include "cli/registry.h"
#include "cli/threads.h"
#include "core/fs_guard.h"
#include "core/error.h"
#include "core/json.h"
#include "core/utf8.h"

namespace mechscope::cli {
namespace {

int run_sentiment(int argc, char** argv) {
  Args a("sentiment", "(--texts FILE.jsonl | --text TEXT...) [--sentiment-model DIR|HUB_ID]",
         "Scores each text with VADER (neg, neu, pos, compound, as the npm package vader-sentiment 1.1.3)\n"
         "and prints one JSON object per text: {\"text\": ..., \"vader\": {\"neg\", \"neu\", \"pos\", \"compound\"}}.\n"
         "With --sentiment-model (a DistilBertForSequenceClassification / BertForSequenceClassification\n"
         "checkpoint, e.g. distilbert-base-uncased-finetuned-sst-2-english) each object also has \"positive\":\n"
         "P(POSITIVE), the softmax of its class logits. FILE holds one text per line: a JSON string, or an\n"
         "object with a \"text\" string (- for stdin).");
  a.opt("texts", "FILE", "JSONL file of texts");
  a.multi("text", "TEXT", "a text to score (repeatable)");
  a.opt("sentiment-model", "DIR|HUB_ID", "sequence classifier scoring P(POSITIVE) too");
  a.opt("batch-size", "N", "texts classified together (with --sentiment-model)", "32");
  a.opt("threads", "N", "CPU threads for tensor ops (0 = all cores)", "0");
  add_device_flag(a);
  if (!a.parse(argc, argv)) return 0;
  if (a.has("texts") == a.has("text")) fail("give the texts with --texts FILE.jsonl or --text TEXT (one of them)");
  int64_t batch = a.integer("batch-size", 1, 1 << 20);

  // Every line is read and checked before anything is printed.
  std::vector<std::string> texts = a.all("text");
  for (auto& t : texts)
    if (!utf8::valid(t)) fail("--text is not valid UTF-8 (byte ", utf8::find_invalid(t), ")");
  if (a.has("texts")) {
    std::string file = a.str("texts");
    if (file != "-" && !std::ifstream(file)) fail("cannot read --texts file '", file, "'");
    // Line by line, a line longer than 16 MiB refused before it is held (issue 17).
    for_each_line(file == "-" ? "/dev/stdin" : file, [&](const std::string& line, long long n) {
      if (line.find_first_not_of(" \t\r") == std::string::npos) return;
      nlohmann::json j = parse_json(line, cat("--texts ", file, ":", n));
      if (j.is_object() && j.contains("text")) j = j["text"];
      if (!j.is_string())
        fail("--texts ", file, ":", n, ": expected a JSON string or an object with a \"text\" string");
      texts.push_back(j.get<std::string>());
    });
    if (texts.empty()) fail("--texts file '", file, "' has no texts");
  }
  analysis::sentiment::ClassifierScores cls;
  if (a.has("sentiment-model")) {
    set_threads(a.str("threads"));
    auto c = analysis::sentiment::load_sentiment_classifier(a.str("sentiment-model"), "--sentiment-model",
                                                            device_from_flags(a));
    cls = analysis::sentiment::classify_positive(c, texts, batch);
    if (cls.truncated)
      std::fprintf(stderr, "note: %lld texts were longer than the classifier's context and were truncated\n",
                   (long long)cls.truncated);
  }
  for (size_t i = 0; i < texts.size(); ++i) {
    const auto& t = texts[i];
    auto s = analysis::sentiment::vader(t);
    nlohmann::ordered_json j;
    j["text"] = t;
    j["vader"] = {{"neg", s.neg}, {"neu", s.neu}, {"pos", s.pos}, {"compound", s.compound}};
    if (!cls.positive.empty()) j["positive"] = cls.positive[i];
    std::printf("%s\n", j.dump().c_str());
  }
  return 0;
}

const Register reg{
    "sentiment", "VADER sentiment scores of texts (as the npm vader-sentiment package), or a classifier's P(POSITIVE)",
    45, run_sentiment};

}  // namespace
}  // namespace mechscope::cli
