// Figures of patching results (seed 002): a heatmap per target (RdBu centred on 0, token labels), the
// 3-D surface and the per-layer animation of a [layer, pos] sweep, and attribution against exact.
#pragma once
#include <ATen/ATen.h>

#include <string>
#include <vector>

#include "report/figure.h"

namespace mechscope::analysis::patching {

struct FigureLabels {
  std::vector<std::string> positions;  // one label per position ("3 Mary/John")
  std::string value_name;              // colour bar / z axis title
  std::string title_prefix;            // "Activation patching" / "Zero ablation"
};

// values: [layer, pos], [layer, head], [layer, pos, head] or [layer, head, dest_pos] as `axes` names.
report::Figure heatmap_figure(const std::string& id, const std::string& target, const at::Tensor& values,
                              const std::vector<std::string>& axes, const FigureLabels& labels);
// [layer, pos] values as a surface (x position, y layer, z value).
report::Figure surface_figure(const std::string& id, const std::string& target, const at::Tensor& values,
                              const FigureLabels& labels);
// [layer, pos] values as bars per position, one frame per layer.
report::Figure layer_animation(const std::string& id, const std::string& target, const at::Tensor& values,
                               const FigureLabels& labels);
// Attribution estimate against exact patching, one panel per target, with the y = x diagonal.
report::Figure attribution_scatter(const std::string& id, const std::vector<std::string>& targets,
                                   const std::vector<at::Tensor>& exact, const std::vector<at::Tensor>& attribution,
                                   const std::string& value_name);

}  // namespace mechscope::analysis::patching
