// tokenizer.json "post_processor" -> the special tokens HF adds with add_special_tokens=True.
// Only single sequences are encoded here, so only the "single" templates matter.
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "tokenizers/pipeline.h"

namespace mechscope::tokenizers {

namespace {

// A template: a list of items, each a run of special ids or the sequence itself.
class Template : public PostProcessor {
 public:
  struct Item {
    bool sequence;
    std::vector<int32_t> ids;
  };
  explicit Template(std::vector<Item> items) : items_(std::move(items)) {}
  std::vector<int32_t> process(const std::vector<int32_t>& ids) const override {
    std::vector<int32_t> out;
    for (const auto& it : items_) {
      const auto& src = it.sequence ? ids : it.ids;
      out.insert(out.end(), src.begin(), src.end());
    }
    return out;
  }

 private:
  std::vector<Item> items_;
};

class Chain : public PostProcessor {
 public:
  explicit Chain(std::vector<std::unique_ptr<PostProcessor>> steps) : steps_(std::move(steps)) {}
  std::vector<int32_t> process(const std::vector<int32_t>& ids) const override {
    std::vector<int32_t> out = ids;
    for (const auto& s : steps_) out = s->process(out);
    return out;
  }

 private:
  std::vector<std::unique_ptr<PostProcessor>> steps_;
};

Template::Item special_item(const nlohmann::json& pair, const char* type,
                            const std::function<int32_t(const std::string&)>& token_to_id) {
  // [token, id] as BertProcessing/RobertaProcessing store them; the id is authoritative.
  if (!pair.is_array() || pair.size() != 2)
    fail("post_processor ", type, ": expected [token, id], got ", pair.dump());
  return Template::Item{false, {pair[1].get<int32_t>()}};
}

}  // namespace

std::unique_ptr<PostProcessor> make_post_processor(
    const nlohmann::json& j, const std::function<int32_t(const std::string&)>& token_to_id) {
  if (j.is_null()) return nullptr;
  std::string type = j.at("type").get<std::string>();
  if (type == "ByteLevel") return nullptr;  // trims offsets only; ids unchanged
  if (type == "BertProcessing" || type == "RobertaProcessing") {
    std::vector<Template::Item> items;
    items.push_back(special_item(j.at("cls"), type.c_str(), token_to_id));
    items.push_back(Template::Item{true, {}});
    items.push_back(special_item(j.at("sep"), type.c_str(), token_to_id));
    return std::make_unique<Template>(std::move(items));
  }
  if (type == "TemplateProcessing") {
    const auto& specials = j.contains("special_tokens") ? j["special_tokens"] : nlohmann::json();
    std::vector<Template::Item> items;
    for (const auto& piece : j.at("single")) {
      if (piece.contains("Sequence")) {
        if (piece["Sequence"].value("id", "A") != "A")
          fail("post_processor TemplateProcessing: single template uses sequence B");
        items.push_back(Template::Item{true, {}});
      } else if (piece.contains("SpecialToken")) {
        std::string name = piece["SpecialToken"].at("id").get<std::string>();
        Template::Item item{false, {}};
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
    return std::make_unique<Template>(std::move(items));
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
