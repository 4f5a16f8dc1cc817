#include "ir/passes/passes.h"

namespace pcv::ir {

Expected<int> remove_identity(Graph& g) {
  int removed = 0;
  for (size_t i = 0; i < g.nodes.size();) {
    const Node& n = g.nodes[i];
    bool identity = false;
    if (n.inputs.size() == 1 && n.outputs.size() == 1) {
      const Value& in = g.value(n.inputs[0]);
      const Value& out = g.value(n.outputs[0]);
      const bool same = in.dtype == out.dtype && in.quant == out.quant;
      identity = same && (n.op == OpType::kDropout ||
                          (n.op == OpType::kReshape && in.shape == out.shape));
    }
    if (!identity) {
      ++i;
      continue;
    }
    const ValueId t = n.inputs[0];
    const ValueId y = n.outputs[0];
    if (!is_graph_output(g, y)) {
      g.nodes.erase(g.nodes.begin() + static_cast<std::ptrdiff_t>(i));
      replace_uses(g, y, t);
      ++removed;
      continue;
    }
    // y is a graph output: keep y (and its name) and move t's producer onto it.
    const int pi = g.producer(t);
    if (pi < 0 || is_graph_output(g, t)) {
      ++i;
      continue;
    }
    g.nodes.erase(g.nodes.begin() + static_cast<std::ptrdiff_t>(i));
    replace_uses(g, t, y);
    g.nodes[static_cast<size_t>(pi)].outputs[0] = y;
    ++removed;
  }
  return removed;
}

}  // namespace pcv::ir
