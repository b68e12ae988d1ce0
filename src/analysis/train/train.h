// Training a GPT-2-architecture model on a knowledge graph's facts (seed 000's gpt_small), with
// libtorch autograd and AdamW, saved as a Hugging Face model directory that mechscope and
// transformers both load.
#pragma once
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "analysis/kg/kg.h"

namespace mechscope::analysis {

struct TrainOptions {
  int n_layers = 6, d_model = 128, n_heads = 4, n_ctx = 32;
  int steps = 3000, batch = 64;
  double lr = 1e-3, min_lr_ratio = 0.1;  // cosine decay from lr to lr * min_lr_ratio
  int warmup = 100;                      // linear warm-up steps
  double weight_decay = 0.01, clip = 1.0;
  double answer_weight = 4.0;            // extra loss weight on the answer token
  uint64_t seed = 0;
  int eval_every = 250, checkpoint_every = 500;
  std::string save_dtype = "float16";    // weights of the final model.safetensors
  bool resume = false;
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
  size_t facts = 0;
  // Last-position logits of the first fact's prompt from the in-memory model (float32), to check
  // that the saved directory reloads to the same model.
  std::vector<double> probe_logits;
};

// Trains on every fact of `kg` tokenized with the tokenizer.json at `tokenizer_path`; writes the model
// directory `out` (config.json, model.safetensors, tokenizer.json, tokenizer_config.json,
// training_log.jsonl, train_summary.json) and checkpoints under out/checkpoint/ every
// checkpoint_every steps (resume continues from there, with the same batches as an uninterrupted run).
// `on_status` is called after every step (for progress display).
TrainResult train_kg_model(const KnowledgeGraph& kg, const std::string& tokenizer_path, const TrainOptions& opts,
                           const std::string& out, const std::function<void(const TrainStatus&)>& on_status = {});

// Top-1 accuracy of the model in `model_dir` on the facts (answer = argmax after the prompt).
double fact_accuracy(const std::string& model_dir, const KnowledgeGraph& kg);

}  // namespace mechscope::analysis
