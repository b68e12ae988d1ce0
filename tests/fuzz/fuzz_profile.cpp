// A heads profile's pairs JSONL (emotion/neutral prompts) and its keywords.json. The first byte picks
// which of the two files the rest is; the other is a valid one.
#include <filesystem>

#include "fuzz.h"
#include "analysis/heads/profile.h"

using namespace mechscope;

MECHSCOPE_FUZZ_TARGET(profile) {
  if (size < 1) return;
  std::string dir = fuzz::scratch() + "/profile";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  std::string_view rest(reinterpret_cast<const char*>(data + 1), size - 1);
  if (data[0] & 1) {
    fuzz::put(dir + "/gratitude.jsonl", rest);
    fuzz::put(dir + "/keywords.json", R"({"gratitude": ["thanks", "grateful"]})");
  } else {
    fuzz::put(dir + "/gratitude.jsonl",
              "{\"emotion\": \"Thank you so much, I said.\", \"neutral\": \"I see, I said.\"}\n");
    fuzz::put(dir + "/keywords.json", rest);
  }
  (void)analysis::heads::read_pairs(dir + "/gratitude.jsonl");
  auto prof = analysis::heads::load_profile(dir);
  (void)prof.select("all");
}
