// Channel recalibration after pruning (passes.h).
#include <fmt/core.h>

#include <algorithm>
#include <cmath>
#include <set>

#include "ir/passes/passes.h"
#include "optimize/passes.h"
#include "runtime/session.h"

namespace pcv::optimize {

using ir::DType;
using ir::Graph;
using ir::OpType;
using ir::ValueId;

namespace {

// Per-channel (last axis) mean of node `node`'s output before its fused activation, over the
// samples: the model cut at that node, the activation removed.
struct ChannelStats {
  std::vector<double> mean, stddev;
};

Expected<ChannelStats> channel_stats(const ir::Model& model, int node, const std::vector<ir::Tensor>& samples) {
  ir::Model cut = model;
  ir::Node& n = cut.graph.nodes[static_cast<size_t>(node)];
  if (n.op == OpType::kConv2d) n.attr<ir::Conv2dAttrs>().activation = ir::Activation::kNone;
  if (n.op == OpType::kFullyConnected) n.attr<ir::FullyConnectedAttrs>().activation = ir::Activation::kNone;
  cut.graph.outputs = {n.outputs[0]};
  runtime::SessionOptions so;
  so.threads = 2;
  PCV_ASSIGN_OR_RETURN(auto session, runtime::Session::create(cut, so));
  const ir::Shape& shape = cut.graph.value(n.outputs[0]).shape;
  const size_t channels = shape.empty() ? 1 : static_cast<size_t>(shape.back());
  std::vector<double> sum(channels, 0.0), sq(channels, 0.0);
  size_t rows = 0;
  for (const ir::Tensor& x : samples) {
    PCV_ASSIGN_OR_RETURN(auto out, session->run({x}));
    const float* y = out[0].data<float>();
    const size_t count = static_cast<size_t>(out[0].num_elements());
    for (size_t i = 0; i < count; ++i) {
      sum[i % channels] += y[i];
      sq[i % channels] += static_cast<double>(y[i]) * y[i];
    }
    rows += count / channels;
  }
  ChannelStats st;
  const double count_rows = static_cast<double>(std::max<size_t>(rows, 1));
  for (size_t c = 0; c < channels; ++c) {
    st.mean.push_back(sum[c] / count_rows);
    st.stddev.push_back(std::sqrt(std::max(0.0, sq[c] / count_rows - st.mean.back() * st.mean.back())));
  }
  return st;
}

}  // namespace

Expected<int> recalibrate_channels(const ir::Model& original, ir::Model& pruned, const std::set<std::string>& weights,
                             const std::vector<ir::Tensor>& samples) {
  if (samples.empty()) return 0;
  Graph& g = pruned.graph;
  if (g.nodes.size() != original.graph.nodes.size()) {
    return invalid_argument("recalibration needs the pruned model to have the original's nodes");
  }
  int corrected = 0;
  for (size_t ni = 0; ni < g.nodes.size(); ++ni) {
    ir::Node& n = g.nodes[ni];
    if ((n.op != OpType::kConv2d && n.op != OpType::kFullyConnected) || n.inputs.size() < 2) continue;
    if (!weights.count(g.value(n.inputs[1]).name)) continue;
    PCV_ASSIGN_OR_RETURN(ChannelStats want, channel_stats(original, static_cast<int>(ni), samples));
    PCV_ASSIGN_OR_RETURN(ChannelStats got, channel_stats(pruned, static_cast<int>(ni), samples));
    const size_t channels = want.mean.size();
    ir::Tensor bias(DType::kF32, {static_cast<int64_t>(channels)});
    float* b = bias.data<float>();
    const bool has_bias = n.inputs.size() > 2 && n.inputs[2] != ir::kNoValue;
    if (has_bias) {
      const ir::Value& old = g.value(n.inputs[2]);
      if (!old.is_constant() || old.dtype != DType::kF32 || static_cast<size_t>(old.data.num_elements()) != channels) {
        continue;
      }
      std::copy_n(old.data.data<float>(), channels, b);
    } else {
      std::fill_n(b, channels, 0.f);
    }
    ir::Value& wv = g.value(n.inputs[1]);
    const bool rescale = !wv.shape.empty() && wv.shape[0] == static_cast<int64_t>(channels) && wv.is_constant() &&
                         wv.dtype == DType::kF32;
    ir::Tensor w = wv.data.clone();
    const size_t row = static_cast<size_t>(w.num_elements()) / channels;
    for (size_t c = 0; c < channels; ++c) {
      double a = 1.0;
      if (rescale && got.stddev[c] > 1e-12 * (1.0 + std::fabs(got.mean[c])) && want.stddev[c] > 0) {
        a = want.stddev[c] / got.stddev[c];
      }
      if (a != 1.0) {
        float* wr = w.data<float>() + c * row;
        for (size_t i = 0; i < row; ++i) wr[i] = static_cast<float>(wr[i] * a);
      }
      b[c] = static_cast<float>(a * (b[c] - got.mean[c]) + want.mean[c]);
    }
    if (rescale) wv.data = std::move(w);
    if (has_bias) {
      g.value(n.inputs[2]).data = std::move(bias);
    } else {
      const ValueId v = g.add_constant(fmt::format("{}/recalibrated_bias", n.name), std::move(bias), {}, true);
      g.nodes[ni].inputs.resize(3, ir::kNoValue);
      g.nodes[ni].inputs[2] = v;
    }
    ++corrected;
  }
  return corrected;
}

}  // namespace pcv::optimize
