// AttentionViz on a BERT-base-shaped model (12 layers, d_model 768, 12 heads, 30522 tokens; random
// weights, generated once) over 50 random sentences: extraction with the attention check (as one batch,
// and text by text as the attnviz command runs it), paper
// normalisation and PCA of all 144 heads, Barnes-Hut t-SNE of the first TSNE_HEADS heads. The same
// steps in plain PyTorch + a Python loop are bench/torch_attnviz.py, on the inputs written here.
// Prints one JSON object.
//
//   bench_attnviz [MODEL_DIR=build/bench/bert-base-random] [THREADS=0 (all)] [TSNE_HEADS=4] [TSNE_ITERS=500]
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <initializer_list>
#include <chrono>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "bench_device.h"
#include "analysis/attnviz/attnviz.h"
#include "core/fs.h"
#include "io/safetensors.h"
#include "models/model.h"

using namespace mechscope;
namespace V = mechscope::analysis::attnviz;
using Clock = std::chrono::steady_clock;

static double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// BertModel (no MLM head) with BERT-base's shape, weights ~ N(0, 0.02), biases ~ N(0, 0.02).
static void ensure_bert_base(const std::string& dir) {
  if (file_exists(join_path(dir, "model.safetensors")) && file_exists(join_path(dir, "config.json"))) return;
  std::fprintf(stderr, "generating %s ...\n", dir.c_str());
  make_dirs(dir);
  const int64_t d = 768, L = 12, V = 30522, P = 512, M = 3072;
  at::manual_seed(0);
  auto normal = [](std::vector<int64_t> s) { return at::randn(s) * 0.02; };
  std::vector<std::pair<std::string, at::Tensor>> w{{"bert.embeddings.word_embeddings.weight", normal({V, d})},
                                                    {"bert.embeddings.position_embeddings.weight", normal({P, d})},
                                                    {"bert.embeddings.token_type_embeddings.weight", normal({2, d})},
                                                    {"bert.embeddings.LayerNorm.weight", at::ones({d})},
                                                    {"bert.embeddings.LayerNorm.bias", at::zeros({d})}};
  for (int64_t l = 0; l < L; ++l) {
    std::string p = "bert.encoder.layer." + std::to_string(l) + ".";
    for (const char* n : {"query", "key", "value"}) {
      w.emplace_back(p + "attention.self." + n + ".weight", normal({d, d}));
      w.emplace_back(p + "attention.self." + n + ".bias", normal({d}));
    }
    w.emplace_back(p + "attention.output.dense.weight", normal({d, d}));
    w.emplace_back(p + "attention.output.dense.bias", normal({d}));
    w.emplace_back(p + "attention.output.LayerNorm.weight", at::ones({d}));
    w.emplace_back(p + "attention.output.LayerNorm.bias", at::zeros({d}));
    w.emplace_back(p + "intermediate.dense.weight", normal({M, d}));
    w.emplace_back(p + "intermediate.dense.bias", normal({M}));
    w.emplace_back(p + "output.dense.weight", normal({d, M}));
    w.emplace_back(p + "output.dense.bias", normal({d}));
    w.emplace_back(p + "output.LayerNorm.weight", at::ones({d}));
    w.emplace_back(p + "output.LayerNorm.bias", at::zeros({d}));
  }
  io::write_safetensors(join_path(dir, "model.safetensors"), w, {{"format", "pt"}});
  nlohmann::json cfg{{"model_type", "bert"},   {"architectures", {"BertModel"}}, {"hidden_size", d},
                     {"num_hidden_layers", L}, {"num_attention_heads", 12},      {"intermediate_size", M},
                     {"hidden_act", "gelu"},   {"max_position_embeddings", P},   {"type_vocab_size", 2},
                     {"vocab_size", V},        {"layer_norm_eps", 1e-12},        {"pad_token_id", 0}};
  write_file_atomic(join_path(dir, "config.json"), cfg.dump(2));
}

int main(int argc, char** argv) {
  std::string dir = argc > 1 ? argv[1] : "build/bench/bert-base-random";
  int threads = argc > 2 ? std::atoi(argv[2]) : 0;
  int tsne_heads = argc > 3 ? std::atoi(argv[3]) : 4;
  int tsne_iters = argc > 4 ? std::atoi(argv[4]) : 500;
  if (threads > 0) at::set_num_threads(threads);
  ensure_bert_base(dir);
  auto model = bench::load(dir);
  const auto& cfg = model->config();

  // 50 "sentences": [CLS] + 8..23 random word ids + [SEP], written for the PyTorch baseline.
  std::mt19937_64 rng(1);
  std::vector<V::Input> in;
  nlohmann::json ids_json = nlohmann::json::array();
  for (int t = 0; t < 50; ++t) {
    int n = 8 + int(rng() % 16);
    std::vector<int64_t> ids{101};
    for (int i = 0; i < n; ++i) ids.push_back(1000 + int64_t(rng() % 29000));
    ids.push_back(102);
    in.push_back({ids, {}});
    ids_json.push_back(ids);
  }
  write_file_atomic(join_path(dir, "attnviz_inputs.json"), ids_json.dump());
  std::vector<int> layers;
  for (int l = 0; l < cfg.n_layers; ++l) layers.push_back(l);
  std::vector<int64_t> heads;
  for (int64_t h = 0; h < cfg.n_heads; ++h) heads.push_back(h);

  nlohmann::json out{{"model", dir},       {"threads", at::get_num_threads()}, {"device", bench::device_name()},
                     {"texts", in.size()}, {"tsne_heads", tsne_heads},         {"tsne_iterations", tsne_iters}};
  V::Extracted ex = V::extract(*model, in, layers);  // warm-up
  double best = 1e9;
  for (int r = 0; r < 3; ++r) {
    auto t = Clock::now();
    ex = V::extract(*model, in, layers);
    best = std::min(best, seconds_since(t));
  }
  out["extract_s"] = best;
  // What `mechscope attnviz` does (so that MPI ranks give the same bits): each text through the model
  // on its own, then joined into the padded tensors of one batch.
  double best_each = 1e9, each_diff = 0;
  V::Extracted joined;
  for (int r = 0; r < 3; ++r) {
    auto t = Clock::now();
    std::vector<V::Extracted> parts;
    for (auto& one : in) parts.push_back(V::extract(*model, {one}, layers));
    joined = V::join_texts(parts);
    best_each = std::min(best_each, seconds_since(t));
  }
  for (size_t l = 0; l < layers.size(); ++l)  // every repetition computes the same bits
    each_diff = std::max({each_diff, (joined.q[l] - ex.q[l]).abs().max().item<double>(),
                          (joined.k[l] - ex.k[l]).abs().max().item<double>()});
  out["extract_per_text_s"] = best_each;
  out["per_text_vs_batch_max_abs_diff"] = each_diff;
  out["attention_max_abs_diff"] = *std::max_element(ex.max_diff.begin(), ex.max_diff.end());
  int64_t tokens = 0;
  for (auto n : ex.lengths) tokens += n;
  out["tokens"] = tokens;

  auto groups = V::scope_groups(V::Scope::Head, ex, heads);
  std::vector<at::Tensor> qn, kn;
  std::vector<double> cs;
  auto t = Clock::now();
  for (auto& n : V::normalize_all(ex, groups, {}, qn, kn)) cs.push_back(n.c);
  out["normalize_s"] = seconds_since(t);
  out["c"] = cs;

  std::vector<V::PointSet> pts;
  for (auto& g : groups) pts.push_back(V::points(ex, g, qn, kn));
  t = Clock::now();
  std::vector<std::vector<double>> ev;
  V::project_all(pts, V::Projection::Pca, 2, {}, &ev);
  out["pca_s"] = seconds_since(t);
  std::vector<double> ev0;
  for (auto& e : ev) ev0.push_back(e[0]);
  out["pca_explained0"] = ev0;
  out["points_per_head"] = pts[0].x.size(0);

  V::TsneOptions topt;
  topt.iterations = tsne_iters;
  topt.exaggeration_iters = std::min(250, tsne_iters / 2);
  t = Clock::now();
  V::project_all(std::vector<V::PointSet>(pts.begin(), pts.begin() + std::min<size_t>(tsne_heads, pts.size())),
                 V::Projection::Tsne, 2, topt);
  double ts = seconds_since(t);
  out["tsne_s"] = ts;
  out["tsne_s_per_head"] = ts / std::max(1, tsne_heads);
  std::printf("%s\n", out.dump(1).c_str());
  return 0;
}
