// tokenizer.json "post_processor" -> the special tokens and token type ids HF adds with
// add_special_tokens=True, for one sequence ("single" template) or a pair ("pair" template).
#include <nlohmann/json.hpp>

#include <optional>

#include "core/error.h"
#include "tokenizers/pipeline.h"

namespace mechscope::tokenizers {

Processed concat_sequences(const std::vector<int32_t>& a, const std::vector<int32_t>* b) {
  Processed p;
  p.ids = a;
  p.type_ids.assign(a.size(), 0);
  p.a_end = p.b_begin = p.b_end = a.size();
  if (b) {
    p.ids.insert(p.ids.end(), b->begin(), b->end());
    p.type_ids.resize(p.ids.size(), 1);
    p.b_end = p.ids.size();
  }
  return p;
}

namespace {

// A template: a list of items, each a run of special ids or one of the sequences, with its type id.
struct Item {
  enum Kind { Special, SeqA, SeqB } kind;
  std::vector<int32_t> ids;  // Special only
  int32_t type_id = 0;
};
using Items = std::vector<Item>;

Processed apply(const Items& items, const std::vector<int32_t>& a, const std::vector<int32_t>* b) {
  Processed p;
  for (const auto& it : items) {
    const std::vector<int32_t>& src = it.kind == Item::SeqA ? a : it.kind == Item::SeqB ? *b : it.ids;
    size_t begin = p.ids.size();
    p.ids.insert(p.ids.end(), src.begin(), src.end());
    p.type_ids.resize(p.ids.size(), it.type_id);
    if (it.kind == Item::SeqA) p.a_begin = begin, p.a_end = p.ids.size();
    if (it.kind == Item::SeqB) p.b_begin = begin, p.b_end = p.ids.size();
  }
  if (!b) p.b_begin = p.b_end = p.ids.size();
  return p;
}

class Template : public PostProcessor {
 public:
  Template(Items single, std::optional<Items> pair, std::string type)
      : single_(std::move(single)), pair_(std::move(pair)), type_(std::move(type)) {}
  Processed process(const std::vector<int32_t>& a, const std::vector<int32_t>* b) const override {
    if (!b) return apply(single_, a, nullptr);
    if (!pair_) fail("post_processor ", type_, " has no \"pair\" template: this tokenizer does not encode text pairs");
    return apply(*pair_, a, b);
  }

 private:
  Items single_;
  std::optional<Items> pair_;
  std::string type_;
};

class Chain : public PostProcessor {
 public:
  explicit Chain(std::vector<std::unique_ptr<PostProcessor>> steps) : steps_(std::move(steps)) {}
  Processed process(const std::vector<int32_t>& a, const std::vector<int32_t>* b) const override {
    if (steps_.empty()) return concat_sequences(a, b);
    // As HF's Sequence: the first step merges the pair; later ones see the merged sequence, so the
    // ranges of the sequences shift by what they put in front.
    Processed p = steps_[0]->process(a, b);
    for (size_t i = 1; i < steps_.size(); ++i) {
      Processed q = steps_[i]->process(p.ids, nullptr);
      for (size_t k = 0; k < p.ids.size(); ++k) q.type_ids[q.a_begin + k] = p.type_ids[k];
      q.b_begin = q.a_begin + p.b_begin;
      q.b_end = q.a_begin + p.b_end;
      q.a_end = q.a_begin + p.a_end;
      q.a_begin += p.a_begin;
      p = std::move(q);
    }
    return p;
  }

 private:
  std::vector<std::unique_ptr<PostProcessor>> steps_;
};

Item special_item(const nlohmann::json& pair, const char* type, int32_t type_id) {
  // [token, id] as BertProcessing/RobertaProcessing store them; the id is authoritative.
  if (!pair.is_array() || pair.size() != 2) fail("post_processor ", type, ": expected [token, id], got ", pair.dump());
  return Item{Item::Special, {pair[1].get<int32_t>()}, type_id};
}

Items template_items(const nlohmann::json& pieces, const nlohmann::json& specials, bool pair,
                     const std::function<int32_t(const std::string&)>& token_to_id) {
  Items items;
  for (const auto& piece : pieces) {
    if (piece.contains("Sequence")) {
      const auto& s = piece["Sequence"];
      std::string id = s.value("id", "A");
      if (id != "A" && id != "B") fail("post_processor TemplateProcessing: unknown sequence '", id, "'");
      if (id == "B" && !pair) fail("post_processor TemplateProcessing: single template uses sequence B");
      items.push_back(Item{id == "A" ? Item::SeqA : Item::SeqB, {}, s.value("type_id", 0)});
    } else if (piece.contains("SpecialToken")) {
      const auto& s = piece["SpecialToken"];
      std::string name = s.at("id").get<std::string>();
      Item item{Item::Special, {}, s.value("type_id", 0)};
      if (specials.is_object() && specials.contains(name)) {
        for (const auto& id : specials[name].at("ids")) item.ids.push_back(id.get<int32_t>());
      } else {
        item.ids.push_back(token_to_id(name));
      }
      items.push_back(std::move(item));
    } else {
      fail("post_processor TemplateProcessing: unknown template piece ", piece.dump());
    }
  }
  return items;
}

}  // namespace

std::unique_ptr<PostProcessor> make_post_processor(const nlohmann::json& j,
                                                   const std::function<int32_t(const std::string&)>& token_to_id) {
  if (j.is_null()) return nullptr;
  std::string type = j.at("type").get<std::string>();
  if (type == "ByteLevel") return nullptr;  // trims offsets only; ids unchanged
  if (type == "BertProcessing") {
    // [CLS] A [SEP] (type 0) and, for a pair, B [SEP] with type 1.
    const char* t = type.c_str();
    Items single{special_item(j.at("cls"), t, 0), Item{Item::SeqA, {}, 0}, special_item(j.at("sep"), t, 0)};
    Items pair = single;
    pair.push_back(Item{Item::SeqB, {}, 1});
    pair.push_back(special_item(j.at("sep"), t, 1));
    return std::make_unique<Template>(std::move(single), std::move(pair), type);
  }
  if (type == "RobertaProcessing") {
    // <s> A </s> and </s> B </s> for a pair; RoBERTa has one token type: every type id is 0.
    const char* t = type.c_str();
    Items single{special_item(j.at("cls"), t, 0), Item{Item::SeqA, {}, 0}, special_item(j.at("sep"), t, 0)};
    Items pair = single;
    pair.push_back(special_item(j.at("sep"), t, 0));
    pair.push_back(Item{Item::SeqB, {}, 0});
    pair.push_back(special_item(j.at("sep"), t, 0));
    return std::make_unique<Template>(std::move(single), std::move(pair), type);
  }
  if (type == "TemplateProcessing") {
    const auto& specials = j.contains("special_tokens") ? j["special_tokens"] : nlohmann::json();
    Items single = template_items(j.at("single"), specials, false, token_to_id);
    std::optional<Items> pair;
    if (j.contains("pair") && !j["pair"].is_null()) pair = template_items(j["pair"], specials, true, token_to_id);
    return std::make_unique<Template>(std::move(single), std::move(pair), type);
  }
  if (type == "Sequence") {
    std::vector<std::unique_ptr<PostProcessor>> steps;
    for (const auto& p : j.at("processors"))
      if (auto s = make_post_processor(p, token_to_id)) steps.push_back(std::move(s));
    return std::make_unique<Chain>(std::move(steps));
  }
  fail("post_processor type '", type,
       "' is not supported (supported: TemplateProcessing, BertProcessing, RobertaProcessing, "
       "ByteLevel, Sequence)");
}

}  // namespace mechscope::tokenizers
