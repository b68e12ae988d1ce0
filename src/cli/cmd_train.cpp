// mechscope train: a GPT-2-architecture model memorising a knowledge graph's facts, or learning a text
// corpus (next-token loss) with a word-level tokenizer built from it.
#include <cstdio>
#include <functional>
#include <limits>

#include "analysis/kg/kg.h"
#include "analysis/train/corpus.h"
#include "analysis/train/train.h"
#include "cli/args.h"
#include "cli/common.h"
#include "cli/distribute.h"
#include "cli/registry.h"
#include "cli/threads.h"
#include "core/error.h"
#include "core/fs.h"
#include "core/progress.h"
#include "report/output.h"

namespace mechscope::cli {
namespace {

// The progress bar's note: loss, and the last accuracy once evaluated.
std::function<void(const analysis::TrainStatus&)> progress_callback(Progress& progress, const char* what) {
  return [&progress, what, last = 0, acc = -1.0](const analysis::TrainStatus& s) mutable {
    if (s.accuracy >= 0) acc = s.accuracy;
    char note[96];
    if (acc >= 0) std::snprintf(note, sizeof note, "loss %.4f  %s acc %.3f", s.loss, what, acc);
    else std::snprintf(note, sizeof note, "loss %.4f", s.loss);
    progress.set_note(note);
    progress.tick(s.step - last);
    last = s.step;
  };
}

int train_corpus(const Args& a, const analysis::TrainOptions& o) {
  auto corpus = analysis::read_corpus(a.str("corpus"));
  std::string tok_json, where;
  if (a.has("tokenizer")) {
    where = a.str("tokenizer");
    if (!file_exists(where) || dir_exists(where)) fail("--tokenizer '", where, "' is not a tokenizer.json file");
    tok_json = read_file(where);
  } else {
    where = "the tokenizer built from " + corpus.path;
    tok_json = analysis::build_word_tokenizer(corpus, a.on("lowercase")).dump(1) + "\n";
  }
  analysis::TrainResult r;
  {
    Progress progress("train", o.steps);
    r = analysis::train_text_model(corpus, tok_json, where, o, a.str("out"), progress_callback(progress, "token"));
  }
  if (dist::rank() != 0) return 0;
  std::printf("trained %d steps in %.1f s: loss %.4f, next-token accuracy %.1f%% (%zu texts), %lld parameters -> %s\n",
              r.steps, r.seconds, r.final_loss, 100 * r.accuracy, r.examples, (long long)r.parameters,
              a.str("out").c_str());
  return 0;
}

int run_train(int argc, char** argv) {
  Args a("train", "(--kg graph.jsonl | --corpus texts.jsonl) --out DIR [options]",
         "Trains a GPT-2-architecture model (libtorch autograd, AdamW, warm-up + cosine schedule, gradient\n"
         "clipping) and saves a Hugging Face model directory, on either\n"
         "  --kg      the facts of a knowledge graph (prompt -> answer), or\n"
         "  --corpus  a JSONL of {\"text\": ...}: next-token loss over every text (each followed by\n"
         "            <|endoftext|>), with a WordLevel tokenizer.json built from the corpus (whitespace and\n"
         "            punctuation split, lowercased with --lowercase) unless --tokenizer gives one.\n"
         "With --device cuda the model, AdamW's moments and every batch live on the GPU; checkpoints and the\n"
         "saved model are written from host copies, once per save.");
  a.opt("kg", "FILE", "graph.jsonl from `mechscope kg generate`");
  a.opt("corpus", "FILE", "JSONL of {\"text\": ...} to train on (instead of --kg)");
  a.opt("tokenizer", "PATH", "tokenizer.json (default: --kg: the one beside graph.jsonl; --corpus: built from it)");
  a.flag("lowercase", "--corpus: the built tokenizer lowercases text (a Lowercase normalizer)");
  a.opt("out", "DIR", "output model directory");
  analysis::TrainOptions d;
  a.opt("layers", "N", "transformer blocks", std::to_string(d.n_layers));
  a.opt("d-model", "N", "residual width", std::to_string(d.d_model));
  a.opt("heads", "N", "attention heads", std::to_string(d.n_heads)).fills("n_heads");
  a.opt("n-ctx", "N", "context length (positions)", std::to_string(d.n_ctx));
  a.opt("steps", "N", "optimizer steps", std::to_string(d.steps));
  a.opt("batch", "N", "facts or texts per batch", std::to_string(d.batch));
  a.opt("lr", "X", "peak learning rate", "0.001");
  a.opt("warmup", "N", "linear warm-up steps", std::to_string(d.warmup));
  a.opt("weight-decay", "X", "AdamW weight decay (matrices only)", "0.01");
  a.opt("clip", "X", "gradient-norm clipping (0 = off)", "1.0");
  a.opt("seed", "S", "random seed (initialisation and batches)", "0");
  a.opt("eval-every", "N", "steps between accuracy evaluations (facts' answers; texts' next tokens)",
        std::to_string(d.eval_every));
  a.opt("checkpoint-every", "N", "steps between checkpoints (DIR/checkpoint)", std::to_string(d.checkpoint_every));
  a.opt("save-dtype", "TYPE", "dtype of the saved weights: float16 or float32", d.save_dtype);
  a.opt("threads", "N", "CPU threads (0 = all cores)", "0");
  add_device_flag(a);
  a.flag("resume", "continue from DIR/checkpoint");
  if (!a.parse(argc, argv)) return 0;
  if (a.has("kg") == a.has("corpus")) fail("give one of --kg FILE and --corpus FILE");
  if (!a.has("out")) fail("--out DIR is required");
  if (a.on("lowercase") && (!a.has("corpus") || a.has("tokenizer")))
    fail("--lowercase applies to the tokenizer built from --corpus; it cannot change a --tokenizer or a --kg's");
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
  o.device = device_from_flags(a);  // a device not usable here ends the run before any file is made
  // Under mpirun (issue 18): data-parallel, each rank a part of every batch, gradients summed over ranks.
  o.parallel.rank = dist::rank();
  o.parallel.size = dist::size();
  o.parallel.sum_doubles = [](double* p, size_t n) { dist::allreduce_sum(p, n); };
  o.parallel.sum_floats = [](float* p, size_t n) { dist::allreduce_sum(p, n); };
  o.parallel.barrier = [] { dist::barrier(); };
  if (a.has("corpus")) return train_corpus(a, o);
  std::string kg_path = a.str("kg");
  auto kg = analysis::read_kg(kg_path);
  std::string tok =
      a.has("tokenizer")
          ? a.str("tokenizer")
          : join_path(kg_path.substr(0, kg_path.find_last_of('/') == std::string::npos ? 0 : kg_path.find_last_of('/')),
                      "tokenizer.json");
  if (!file_exists(tok)) fail("no tokenizer at '", tok, "' (give --tokenizer PATH)");
  if (dist::rank() == 0)  // rank 0 alone writes the model
    report::claim_output_dir(a.str("out"), "train",
                             report::OutputMode::InPlace);  // issue 17: lock, status, no foreign folder

  analysis::TrainResult r;
  {
    Progress progress("train", o.steps);
    r = analysis::train_kg_model(kg, tok, o, a.str("out"), progress_callback(progress, "fact"));
  }
  if (dist::rank() != 0) return 0;
  std::printf("trained %d steps in %.1f s: loss %.4f, fact accuracy %.1f%% (%zu facts), %lld parameters -> %s\n",
              r.steps, r.seconds, r.final_loss, 100 * r.accuracy, r.examples, (long long)r.parameters,
              a.str("out").c_str());
  return 0;
}

const Register reg{"train", "train a GPT-2-architecture model on a knowledge graph's facts or a text corpus", 81,
                   run_train};

}  // namespace
}  // namespace mechscope::cli
