// Figures of AttentionViz: the joint query-key scatter of one head with its lines, the paper's
// Fig. 4(b) (q·k against distance, before and after normalisation) and the matrix view (all heads
// of a layer as small multiples).
#pragma once
#include <ATen/ATen.h>

#include <string>
#include <vector>

#include "analysis/attnviz/attnviz.h"
#include "report/figure.h"

namespace mechscope::analysis::attnviz {

// A highlighted pair of words: the tokens each covers, per text.
struct Highlight {
  std::string query_word, key_word;
  std::vector<std::vector<int64_t>> query_tokens, key_tokens;  // per text
};

// One head's points in its group's embedding, with the lines drawn between them.
struct HeadView {
  std::string title;
  std::vector<double> x, y;
  std::vector<bool> key;
  std::vector<std::string> label, hover;
  std::vector<size_t> from, to;  // point indices of each line (query -> key)
  std::vector<double> attention;
  std::vector<bool> red;  // a highlighted pair that is the query's top key
  std::vector<std::string> line_hover;
};

// The view of head `h` of extracted layer `li`: coords [n, >= 2] are the group's projected points
// (meta as points()), tokens[text][pos] the token labels.
HeadView make_view(const Extracted& ex, size_t li, int64_t h, const PointSet& ps, const at::Tensor& coords,
                   const std::vector<std::vector<std::string>>& tokens, const LineRule& rule,
                   const std::vector<Highlight>& highlights, const std::string& title);

report::Figure joint_figure(const std::string& id, const std::string& title, const HeadView& v,
                            const std::string& axis);
// shared: one range for every panel (the heads were embedded jointly: --scope layer or model).
report::Figure grid_figure(const std::string& id, const std::string& title, const std::vector<HeadView>& heads,
                           const std::string& axis, bool shared);
// Fig. 4(b) for one head: q, k [text, pos, d] before (raw) and after normalisation, attn/allowed
// [text, pos, pos]; each panel titled with the attention-weighted correlation of q·k with -distance.
report::Figure dot_distance_figure(const std::string& id, const std::string& title, const at::Tensor& q0,
                                   const at::Tensor& k0, const at::Tensor& q1, const at::Tensor& k1,
                                   const at::Tensor& attn, const at::Tensor& allowed);

}  // namespace mechscope::analysis::attnviz
