// mechscope sentiment: VADER scores (as the npm package vader-sentiment computes them) of many texts.
#include <cstdio>
#include <fstream>
#include <iostream>

#include "analysis/sentiment/vader.h"
#include "cli/args.h"
#include "cli/registry.h"
#include "core/error.h"
#include "core/json.h"
#include "core/utf8.h"

namespace mechscope::cli {
namespace {

int run_sentiment(int argc, char** argv) {
  Args a("sentiment", "(--texts FILE.jsonl | --text TEXT...)",
         "Scores each text with VADER (neg, neu, pos, compound, as the npm package vader-sentiment 1.1.3)\n"
         "and prints one JSON object per text: {\"text\": ..., \"vader\": {\"neg\", \"neu\", \"pos\", \"compound\"}}.\n"
         "FILE holds one text per line: a JSON string, or an object with a \"text\" string (- for stdin).");
  a.opt("texts", "FILE", "JSONL file of texts");
  a.multi("text", "TEXT", "a text to score (repeatable)");
  if (!a.parse(argc, argv)) return 0;
  if (a.has("texts") == a.has("text")) fail("give the texts with --texts FILE.jsonl or --text TEXT (one of them)");

  // Every line is read and checked before anything is printed.
  std::vector<std::string> texts = a.all("text");
  for (auto& t : texts)
    if (!utf8::valid(t)) fail("--text is not valid UTF-8 (byte ", utf8::find_invalid(t), ")");
  if (a.has("texts")) {
    std::string file = a.str("texts");
    std::ifstream f;
    if (file != "-") {
      f.open(file);
      if (!f) fail("cannot read --texts file '", file, "'");
    }
    std::istream& in = file == "-" ? std::cin : f;
    std::string line;
    for (long long n = 1; std::getline(in, line); ++n) {
      if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
      nlohmann::json j = parse_json(line, cat("--texts ", file, ":", n));
      if (j.is_object() && j.contains("text")) j = j["text"];
      if (!j.is_string()) fail("--texts ", file, ":", n, ": expected a JSON string or an object with a \"text\" string");
      texts.push_back(j.get<std::string>());
    }
    if (texts.empty()) fail("--texts file '", file, "' has no texts");
  }
  for (auto& t : texts) {
    auto s = analysis::sentiment::vader(t);
    nlohmann::ordered_json j;
    j["text"] = t;
    j["vader"] = {{"neg", s.neg}, {"neu", s.neu}, {"pos", s.pos}, {"compound", s.compound}};
    std::printf("%s\n", j.dump().c_str());
  }
  return 0;
}

const Register reg{"sentiment", "VADER sentiment scores of texts (as the npm vader-sentiment package)", 45, run_sentiment};

}  // namespace
}  // namespace mechscope::cli
