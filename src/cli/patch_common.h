// What `patch` and `ablate` share: prompts and answers to token ids (one token per answer), position
// labels for figures, tensors as JSON, and the writing of their targets' numbers and figures.
#pragma once
#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include <map>

#include <string>
#include <vector>

#include "analysis/patching/figures.h"
#include "analysis/patching/patching.h"
#include "cli/args.h"
#include "cli/common.h"
#include "report/run.h"

namespace mechscope::cli {

// --answer/--wrong (text, one token each) or --answer-id/--wrong-id, --metric, --position, and the
// encoding flags (--prepend-bos, --no-special-tokens).
void add_answer_flags(Args& a);
// --clean/--corrupt (with --clean-pair/--corrupt-pair, their second segments), --clean-ids/--corrupt-ids
// and the answer flags.
void add_prompt_pair_flags(Args& a);

// The metric of the flags (answer/wrong as given on the command line; -1 when absent).
analysis::patching::Metric metric_from_flags(const Args& a, const Loaded& m, bool need_answer = true);
// One token id for an answer text; Error naming the flag when it is not exactly one token.
int64_t single_token(const Loaded& m, const std::string& text, const std::string& flag);
// Prompt text -> checked ids, by the one encoder of every command (encode_text).
std::vector<int64_t> prompt_ids(const Args& a, const Loaded& m, const std::string& text, const std::string& what);
// The same with an optional second segment (BERT); type ids are kept only for models that take them.
tokenizers::Encoding prompt_encoding(const Args& a, const Loaded& m, const std::string& text, const std::string& what,
                                     const std::optional<std::string>& pair);

struct PairInputs {
  std::vector<analysis::patching::PromptPair> pairs;
  analysis::patching::MetricKind metric_kind = analysis::patching::MetricKind::LogitDiff;
  int64_t position = -1;
  std::vector<std::string> clean_tokens, corrupt_tokens;  // of the first pair
  bool segments = false;                                  // a second segment was given
  std::vector<std::string> position_labels;               // "3 Mary/John" (clean/corrupt where they differ)
};
PairInputs pairs_from_flags(const Args& a, const Loaded& m);

// Display strings of ids (the tokenizer's, else "#id").
std::vector<std::string> token_strings(const Loaded& m, const std::vector<int64_t>& ids);
// "i tok" or "i clean/corrupt".
std::vector<std::string> position_labels(const std::vector<std::string>& a, const std::vector<std::string>& b);

// A tensor as nested JSON arrays.
std::string tensor_json(const at::Tensor& t);

// The outputs patch and ablate write alike (issue 13). A target's entry of <stem>.json's "targets":
// name, axes, shape, seconds, and `v` (what the safetensors file holds) as values.
nlohmann::json target_json(const analysis::patching::TargetResult& t, const at::Tensor& v);
// <stem>.safetensors (the tensors, with meta) and <stem>.json into out, both listed in the manifest.
void write_target_files(report::RunOutput& out, const std::string& stem,
                        const std::vector<std::pair<std::string, at::Tensor>>& tensors,
                        const std::map<std::string, std::string>& meta, const nlohmann::json& j);
// A [layer, pos] target's surface and per-layer animation of v (nothing for other targets).
void save_layer_pos_figures(report::RunOutput& out, const analysis::patching::TargetResult& t, const at::Tensor& v,
                            const analysis::patching::FigureLabels& labels);

}  // namespace mechscope::cli
