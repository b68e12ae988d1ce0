#include "tokenizers/hf_tokenizer.h"

#include "core/error.h"
#include "core/utf8.h"

namespace mechscope::tokenizers {

namespace {
bool flag(const nlohmann::json& j, const char* key, bool dflt) {
  auto it = j.find(key);
  return it == j.end() || it->is_null() ? dflt : it->get<bool>();
}
}  // namespace

HfTokenizer::HfTokenizer(const nlohmann::json& j, const std::string& where) : where_(where) {
  try {
    if (!j.is_object() || !j.contains("model")) fail("has no \"model\" (expected a Hugging Face tokenizer.json)");
    auto get = [&](const char* key) -> const nlohmann::json& {
      static const nlohmann::json null;
      auto it = j.find(key);
      return it == j.end() ? null : *it;
    };
    normalizer_ = make_normalizer(get("normalizer"));
    pre_tokenizer_ = make_pre_tokenizer(get("pre_tokenizer"));
    model_ = make_model(j.at("model"));
    decoder_ = make_decoder(get("decoder"));
    std::vector<AddedToken> added;
    for (const auto& a : get("added_tokens")) {
      AddedToken t;
      t.id = a.at("id").get<int32_t>();
      t.content = a.at("content").get<std::string>();
      t.single_word = flag(a, "single_word", false);
      t.lstrip = flag(a, "lstrip", false);
      t.rstrip = flag(a, "rstrip", false);
      t.normalized = flag(a, "normalized", !flag(a, "special", false));
      t.special = flag(a, "special", false);
      added.push_back(std::move(t));
    }
    size_ = model_->size();
    for (const auto& t : added) size_ = std::max<int64_t>(size_, t.id + 1);
    added_.build(std::move(added), normalizer_.get());
    const auto& unk = j.at("model").find("unk_token");
    if (unk != j.at("model").end() && unk->is_string()) {
      int64_t id = token_to_id(unk->get<std::string>());
      if (id >= 0) unk_ = id;
    }
    post_processor_ = make_post_processor(get("post_processor"), [this](const std::string& tok) {
      int64_t id = token_to_id(tok);
      if (id < 0) fail("post_processor: special token '", tok, "' is not in the vocabulary");
      return static_cast<int32_t>(id);
    });
  } catch (const Error& e) {
    throw Error(cat(where, ": ", e.raw()));
  } catch (const nlohmann::json::exception& e) {
    throw Error(cat(where, ": malformed tokenizer.json: ", e.what()));
  }
}

std::vector<int64_t> HfTokenizer::encode(std::string_view text) const {
  size_t bad = utf8::find_invalid(text);
  if (bad != std::string_view::npos) fail("tokenizer: text is not valid UTF-8 (byte ", bad, " of ", text.size(), ")");
  Pieces pieces{Piece{std::string(text), true, -1}};
  added_.split(pieces, false);
  if (normalizer_) {
    for (auto& p : pieces)
      if (p.added_id < 0) p.text = normalizer_->normalize(p.text);
  }
  added_.split(pieces, true);
  if (pre_tokenizer_) pre_tokenizer_->pre_tokenize(pieces);
  std::vector<int32_t> ids;
  ids.reserve(text.size() / 3 + 4);
  for (const auto& p : pieces) {
    if (p.added_id >= 0) ids.push_back(p.added_id);
    else model_->tokenize(p.text, ids);
  }
  return std::vector<int64_t>(ids.begin(), ids.end());
}

std::vector<int64_t> HfTokenizer::encode_with_special(std::string_view text) const {
  return encode_full(text, nullptr, true).ids;
}

Encoding HfTokenizer::encode_full(std::string_view text, const std::string_view* pair, bool special) const {
  auto narrow = [this](std::string_view t) {
    std::vector<int64_t> ids = encode(t);
    return std::vector<int32_t>(ids.begin(), ids.end());
  };
  std::vector<int32_t> a = narrow(text), b;
  if (pair) b = narrow(*pair);
  Processed p;
  try {
    p = special && post_processor_ ? post_processor_->process(a, pair ? &b : nullptr)
                                   : concat_sequences(a, pair ? &b : nullptr);
  } catch (const Error& e) {
    throw Error(cat(where_, ": ", e.raw()));
  }
  Encoding e;
  e.ids.assign(p.ids.begin(), p.ids.end());
  e.type_ids.assign(p.type_ids.begin(), p.type_ids.end());
  e.a_begin = p.a_begin;
  e.a_end = p.a_end;
  e.b_begin = p.b_begin;
  e.b_end = p.b_end;
  return e;
}

const std::string& HfTokenizer::token_ref(int64_t id) const {
  if (id >= 0 && id <= INT32_MAX) {
    if (const AddedToken* t = added_.by_id(static_cast<int32_t>(id))) return t->content;
    if (const std::string* s = model_->id_to_token(static_cast<int32_t>(id))) return *s;
  }
  fail(where_, ": token id ", id, " is out of range (vocabulary size ", size_, ")");
}

bool HfTokenizer::is_special(int64_t id) const {
  const AddedToken* t = id >= 0 && id <= INT32_MAX ? added_.by_id(static_cast<int32_t>(id)) : nullptr;
  return t && t->special;
}

std::string HfTokenizer::decode_tokens(std::vector<std::string> toks, bool escape) const {
  if (!decoder_) {
    // HF joins with spaces when there is no decoder.
    std::string out;
    for (size_t i = 0; i < toks.size(); ++i) out += (i ? " " : "") + toks[i];
    return out;
  }
  decoder_->decode_chain(toks, escape);
  std::string out;
  for (const auto& t : toks) out += t;
  return out;
}

std::string HfTokenizer::decode(const std::vector<int64_t>& ids, bool skip_special) const {
  std::vector<std::string> toks;
  toks.reserve(ids.size());
  for (int64_t id : ids) {
    const std::string& t = token_ref(id);
    if (skip_special && is_special(id)) continue;
    toks.push_back(t);
  }
  return decode_tokens(std::move(toks), false);
}

std::string HfTokenizer::decode(const std::vector<int64_t>& ids) const { return decode(ids, false); }

std::vector<std::string> HfTokenizer::tokens(const std::vector<int64_t>& ids) const {
  std::vector<std::string> out;
  out.reserve(ids.size());
  for (int64_t id : ids) out.push_back(token_ref(id));
  return out;
}

std::string HfTokenizer::id_to_token(int64_t id) const { return token_ref(id); }

int64_t HfTokenizer::token_to_id(std::string_view token) const {
  if (const AddedToken* t = added_.by_content(std::string(token))) return t->id;
  return model_->token_to_id(token);
}

std::string HfTokenizer::display(int64_t id) const { return decode_tokens({token_ref(id)}, true); }

int64_t HfTokenizer::size() const { return size_; }

void HfTokenizer::set_bos_eos(const std::optional<std::string>& bos, const std::optional<std::string>& eos,
                              const std::string& where) {
  auto resolve = [&](const std::optional<std::string>& tok, const char* key) {
    std::optional<int64_t> id;
    if (!tok) return id;
    int64_t i = token_to_id(*tok);
    if (i < 0) fail(where, ": ", key, " '", *tok, "' is not in the vocabulary of ", where_);
    id = i;
    return id;
  };
  bos_ = resolve(bos, "bos_token");
  eos_ = resolve(eos, "eos_token");
}

const HfTokenizer& as_hf(const Tokenizer& t) {
  auto* h = dynamic_cast<const HfTokenizer*>(&t);
  if (!h) fail("tokenizer: not a tokenizer.json pipeline");
  return *h;
}

std::vector<int64_t> encode_with_special(const Tokenizer& t, std::string_view text) {
  return as_hf(t).encode_with_special(text);
}

Encoding encode_full(const Tokenizer& t, std::string_view text, const std::string_view* pair, bool special) {
  return as_hf(t).encode_full(text, pair, special);
}

std::string decode_skip_special(const Tokenizer& t, const std::vector<int64_t>& ids) {
  return as_hf(t).decode(ids, true);
}

}  // namespace mechscope::tokenizers
