// Training a GPT-2-architecture model, with libtorch autograd and AdamW, on a knowledge graph's facts
// (seed 000's gpt_small) or on a text corpus (issue 14's emotion model), saved as a Hugging Face model
// directory that mechscope and transformers both load.
#pragma once
#include <functional>
#include <string>
#include <vector>

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include "analysis/kg/kg.h"
#include "analysis/train/corpus.h"

namespace mechscope::analysis {

// Data-parallel training (issue 18): this process is `rank` of `size`; each takes its part of every
// global batch and the gradients are summed over all of them, so any number of processes trains the
// same model as one (to float reduction order). The reductions are the caller's (the CLI's MPI).
struct DataParallel {
  int rank = 0, size = 1;
  std::function<void(double*, size_t)> sum_doubles;  // in place, over all ranks
  std::function<void(float*, size_t)> sum_floats;
  std::function<void()> barrier;
};

struct TrainOptions {
  int n_layers = 6, d_model = 128, n_heads = 4, n_ctx = 32;
  int steps = 3000, batch = 64;
  double lr = 1e-3, min_lr_ratio = 0.1;  // cosine decay from lr to lr * min_lr_ratio
  int warmup = 100;                      // linear warm-up steps
  double weight_decay = 0.01, clip = 1.0;
  double answer_weight = 4.0;  // extra loss weight on the answer token
  uint64_t seed = 0;
  int eval_every = 250, checkpoint_every = 500;
  std::string save_dtype = "float16";  // weights of the final model.safetensors
  bool resume = false;
  // Where the model, AdamW's moments and each batch live (--device); checkpoints and the saved model
  // are written from host copies, once per save.
  at::Device device = at::kCPU;
  DataParallel parallel;  // not a setting of the model: not recorded, not compared on resume
};

struct TrainStatus {
  int step = 0;
  double loss = 0, accuracy = -1;  // accuracy: -1 until evaluated
  double seconds = 0;
};

struct TrainResult {
  int steps = 0;
  double final_loss = 0, accuracy = 0, seconds = 0;
  int64_t parameters = 0;
  size_t examples = 0;  // facts, or texts
  // accuracy: top-1 of each fact's answer (facts), or of every next token (texts, over the first
  // kTextEvalLimit texts).
  // Last-position logits of the first example without its last token (a fact's prompt; a text without
  // its <|endoftext|>) from the in-memory model, to check that the saved directory reloads to the same
  // model.
  std::vector<double> probe_logits;
};

// Trains on every fact of `kg` tokenized with the tokenizer.json at `tokenizer_path`; writes the model
// directory `out` (config.json, model.safetensors, tokenizer.json, tokenizer_config.json,
// training_log.jsonl, train_summary.json) and checkpoints under out/checkpoint/ every
// checkpoint_every steps (resume continues from there, with the same batches as an uninterrupted run).
// `on_status` is called after every step (for progress display).
TrainResult train_kg_model(const KnowledgeGraph& kg, const std::string& tokenizer_path, const TrainOptions& opts,
                           const std::string& out, const std::function<void(const TrainStatus&)>& on_status = {});

// Trains on every text of `corpus` (next-token loss at every position, each text followed by
// <|endoftext|>, batches right-padded and masked) tokenized with `tokenizer_json` (the text of a
// tokenizer.json, e.g. build_word_tokenizer's; `where` names it in errors), which is saved with the
// model. Checkpoints and resume as train_kg_model; a resume on a different corpus or tokenizer is an
// Error. Error naming the corpus line of a text with no tokens or longer than n_ctx.
TrainResult train_text_model(const TextCorpus& corpus, const std::string& tokenizer_json, const std::string& where,
                             const TrainOptions& opts, const std::string& out,
                             const std::function<void(const TrainStatus&)>& on_status = {});
constexpr size_t kTextEvalLimit = 2048;

// Top-1 accuracy of the model in `model_dir` on the facts (answer = argmax after the prompt).
double fact_accuracy(const std::string& model_dir, const KnowledgeGraph& kg);

}  // namespace mechscope::analysis
