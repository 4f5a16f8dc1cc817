#include <fmt/core.h>

#include <cmath>

#include "ir/passes/passes.h"

namespace pcv::ir {
namespace {

bool is_f32_constant(const Graph& g, ValueId v) {
  return v != kNoValue && g.value(v).is_constant() && g.value(v).dtype == DType::kF32 &&
         g.value(v).quant.empty();
}

Activation producer_activation(const Node& n) {
  return n.op == OpType::kConv2d ? n.attr<Conv2dAttrs>().activation
                                 : n.attr<FullyConnectedAttrs>().activation;
}

// A unique constant name derived from `base`.
std::string fresh_name(const Graph& g, const std::string& base) {
  std::string name = base;
  for (int i = 1; g.find_value(name) != kNoValue; ++i) name = fmt::format("{}_{}", base, i);
  return name;
}

}  // namespace

Expected<int> fold_batch_norm(Graph& g) {
  int folds = 0;
  for (size_t bi = 0; bi < g.nodes.size();) {
    const Node& bn = g.nodes[bi];
    if (bn.op != OpType::kBatchNorm || bn.inputs.size() != 5) {
      ++bi;
      continue;
    }
    const ValueId t = bn.inputs[0];
    const int pi = g.producer(t);
    bool ok = pi >= 0 && count_uses(g, t) == 1 && !is_graph_output(g, t);
    if (ok) {
      const Node& p = g.nodes[static_cast<size_t>(pi)];
      ok = (p.op == OpType::kConv2d || p.op == OpType::kFullyConnected) &&
           producer_activation(p) == Activation::kNone && is_f32_constant(g, p.inputs[1]) &&
           (p.inputs.size() < 3 || p.inputs[2] == kNoValue || is_f32_constant(g, p.inputs[2]));
    }
    for (size_t i = 1; ok && i < 5; ++i) ok = is_f32_constant(g, bn.inputs[i]);
    if (!ok) {
      ++bi;
      continue;
    }
    Node& p = g.nodes[static_cast<size_t>(pi)];
    const Value& w = g.value(p.inputs[1]);
    const int64_t out_c = w.shape[0];
    const float eps = bn.attr<BatchNormAttrs>().epsilon;
    const float* gamma = g.value(bn.inputs[1]).data.data<float>();
    const float* beta = g.value(bn.inputs[2]).data.data<float>();
    const float* mean = g.value(bn.inputs[3]).data.data<float>();
    const float* var = g.value(bn.inputs[4]).data.data<float>();
    if (g.value(bn.inputs[1]).data.num_elements() != out_c) {
      return internal_error(fmt::format("fold_batch_norm: '{}' has {} channels, '{}' has {}",
                                        bn.name, g.value(bn.inputs[1]).data.num_elements(),
                                        p.name, out_c));
    }
    const bool has_bias = p.inputs.size() >= 3 && p.inputs[2] != kNoValue;
    const float* bias = has_bias ? g.value(p.inputs[2]).data.data<float>() : nullptr;

    // (out_c, ...) weights: channel c is the c-th contiguous block of `per_c` elements.
    Tensor nw(DType::kF32, w.shape);
    Tensor nb(DType::kF32, {out_c});
    const int64_t per_c = w.data.num_elements() / out_c;
    const float* src = w.data.data<float>();
    float* dst = nw.data<float>();
    float* db = nb.data<float>();
    for (int64_t c = 0; c < out_c; ++c) {
      const float s = gamma[c] / std::sqrt(var[c] + eps);
      for (int64_t k = 0; k < per_c; ++k) dst[c * per_c + k] = src[c * per_c + k] * s;
      db[c] = ((bias ? bias[c] : 0.f) - mean[c]) * s + beta[c];
    }
    const bool trainable = w.trainable;
    const std::string wname = fresh_name(g, p.name + "/weights_folded");
    const std::string bname = fresh_name(g, p.name + "/bias_folded");
    const ValueId y = bn.outputs[0];
    // add_constant may reallocate g.values: no Value references are held past this point.
    const ValueId nw_id = g.add_constant(wname, std::move(nw), {}, trainable);
    const ValueId nb_id = g.add_constant(bname, std::move(nb), {}, trainable);
    Node& prod = g.nodes[static_cast<size_t>(pi)];
    prod.inputs.resize(3);
    prod.inputs[1] = nw_id;
    prod.inputs[2] = nb_id;
    prod.outputs[0] = y;  // the producer now defines the BN's output (name kept)
    g.nodes.erase(g.nodes.begin() + static_cast<std::ptrdiff_t>(bi));
    ++folds;
  }
  return folds;
}

}  // namespace pcv::ir
