#include "ir/passes/passes.h"

namespace pcv::ir {
namespace {

// The producer's activation field, or nullptr when it has none.
Activation* activation_field(Node& n) {
  switch (n.op) {
    case OpType::kConv2d: return &n.attr<Conv2dAttrs>().activation;
    case OpType::kFullyConnected: return &n.attr<FullyConnectedAttrs>().activation;
    case OpType::kAdd:
    case OpType::kMul: return &n.attr<EltwiseAttrs>().activation;
    case OpType::kConcat: return &n.attr<ConcatAttrs>().activation;
    case OpType::kMaxPool:
    case OpType::kAveragePool: return &n.attr<Pool2dAttrs>().activation;
    default: return nullptr;
  }
}

}  // namespace

Expected<int> fuse_activations(Graph& g) {
  int fusions = 0;
  for (size_t ai = 0; ai < g.nodes.size();) {
    const Node& act = g.nodes[ai];
    if ((act.op != OpType::kRelu && act.op != OpType::kRelu6) || act.inputs.size() != 1) {
      ++ai;
      continue;
    }
    const ValueId t = act.inputs[0];
    const ValueId y = act.outputs[0];
    const int pi = g.producer(t);
    Activation* field = pi >= 0 ? activation_field(g.nodes[static_cast<size_t>(pi)]) : nullptr;
    const Value& tv = g.value(t);
    const Value& yv = g.value(y);
    const bool same_type = tv.dtype == yv.dtype && tv.quant == yv.quant;
    if (field == nullptr || *field != Activation::kNone || count_uses(g, t) != 1 ||
        is_graph_output(g, t) || !same_type) {
      ++ai;
      continue;
    }
    *field = act.op == OpType::kRelu ? Activation::kRelu : Activation::kRelu6;
    g.nodes[static_cast<size_t>(pi)].outputs[0] = y;
    g.nodes.erase(g.nodes.begin() + static_cast<std::ptrdiff_t>(ai));
    ++fusions;
  }
  return fusions;
}

}  // namespace pcv::ir
