// mechscope train: a GPT-2-architecture model memorising a knowledge graph's facts.
#include <cstdio>
#include <limits>

#include "analysis/kg/kg.h"
#include "analysis/train/train.h"
#include "cli/args.h"
#include "cli/registry.h"
#include "cli/threads.h"
#include "core/error.h"
#include "core/fs.h"
#include "core/progress.h"
#include "report/output.h"

namespace mechscope::cli {
namespace {

int run_train(int argc, char** argv) {
  Args a("train", "--kg graph.jsonl --out DIR [options]",
         "Trains a GPT-2-architecture model (libtorch autograd, AdamW, warm-up + cosine schedule, gradient\n"
         "clipping) on the facts of a knowledge graph and saves a Hugging Face model directory.");
  a.opt("kg", "FILE", "graph.jsonl from `mechscope kg generate`");
  a.opt("tokenizer", "PATH", "tokenizer.json (default: the one beside graph.jsonl)");
  a.opt("out", "DIR", "output model directory");
  analysis::TrainOptions d;
  a.opt("layers", "N", "transformer blocks", std::to_string(d.n_layers));
  a.opt("d-model", "N", "residual width", std::to_string(d.d_model));
  a.opt("heads", "N", "attention heads", std::to_string(d.n_heads));
  a.opt("n-ctx", "N", "context length (positions)", std::to_string(d.n_ctx));
  a.opt("steps", "N", "optimizer steps", std::to_string(d.steps));
  a.opt("batch", "N", "facts per batch", std::to_string(d.batch));
  a.opt("lr", "X", "peak learning rate", "0.001");
  a.opt("warmup", "N", "linear warm-up steps", std::to_string(d.warmup));
  a.opt("weight-decay", "X", "AdamW weight decay (matrices only)", "0.01");
  a.opt("clip", "X", "gradient-norm clipping (0 = off)", "1.0");
  a.opt("seed", "S", "random seed (initialisation and batches)", "0");
  a.opt("eval-every", "N", "steps between fact-accuracy evaluations", std::to_string(d.eval_every));
  a.opt("checkpoint-every", "N", "steps between checkpoints (DIR/checkpoint)", std::to_string(d.checkpoint_every));
  a.opt("save-dtype", "TYPE", "dtype of the saved weights: float16 or float32", d.save_dtype);
  a.opt("threads", "N", "CPU threads (0 = all cores)", "0");
  a.flag("resume", "continue from DIR/checkpoint");
  if (!a.parse(argc, argv)) return 0;
  if (!a.has("kg") || !a.has("out")) fail("--kg FILE and --out DIR are required");
  analysis::TrainOptions o;
  const long long kBig = 1 << 30;  // sizes beyond this are refused by the memory estimate anyway
  o.n_layers = (int)a.integer("layers", 1, 1024);
  o.d_model = (int)a.integer("d-model", 1, kBig);
  o.n_heads = (int)a.integer("heads", 1, kBig);
  o.n_ctx = (int)a.integer("n-ctx", 2, kBig);
  o.steps = (int)a.integer("steps", 1, kBig);
  o.batch = (int)a.integer("batch", 1, kBig);
  o.lr = a.number("lr", 0, 10, true);
  o.warmup = (int)a.integer("warmup", 0, kBig);
  o.weight_decay = a.number("weight-decay", 0, 10);
  o.clip = a.number("clip", 0, 1e6);
  o.seed = (uint64_t)a.integer("seed", 0, std::numeric_limits<long long>::max());
  o.eval_every = (int)a.integer("eval-every", 1, kBig);
  o.checkpoint_every = (int)a.integer("checkpoint-every", 1, kBig);
  o.save_dtype = a.str("save-dtype");
  o.resume = a.on("resume");
  set_threads(a.str("threads"));
  std::string kg_path = a.str("kg");
  auto kg = analysis::read_kg(kg_path);
  std::string tok = a.has("tokenizer") ? a.str("tokenizer") : join_path(kg_path.substr(0, kg_path.find_last_of('/') == std::string::npos ? 0 : kg_path.find_last_of('/')), "tokenizer.json");
  if (!file_exists(tok)) fail("no tokenizer at '", tok, "' (give --tokenizer PATH)");
  report::claim_output_dir(a.str("out"), "train", report::OutputMode::InPlace);  // issue 17: lock, status, no foreign folder

  analysis::TrainResult r;
  {
    Progress progress("train", o.steps);
    int last = 0;
    double acc = -1;
    r = analysis::train_kg_model(kg, tok, o, a.str("out"), [&](const analysis::TrainStatus& s) {
      if (s.accuracy >= 0) acc = s.accuracy;
      char note[96];
      std::snprintf(note, sizeof note, "loss %.4f%s", s.loss,
                    acc >= 0 ? (std::string("  fact acc ") + std::to_string(acc).substr(0, 5)).c_str() : "");
      progress.set_note(note);
      progress.tick(s.step - last);
      last = s.step;
    });
  }
  std::printf("trained %d steps in %.1f s: loss %.4f, fact accuracy %.1f%% (%zu facts), %lld parameters -> %s\n",
              r.steps, r.seconds, r.final_loss, 100 * r.accuracy, r.facts, (long long)r.parameters, a.str("out").c_str());
  return 0;
}

const Register reg{"train", "train a GPT-2-architecture model on a knowledge graph's facts", 81, run_train};

}  // namespace
}  // namespace mechscope::cli
