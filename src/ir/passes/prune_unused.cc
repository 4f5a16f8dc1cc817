#include <fmt/core.h>

#include "ir/passes/passes.h"

namespace pcv::ir {

Expected<int> prune_unused(Graph& g) {
  const size_t nv = g.values.size();
  auto in_range = [nv](ValueId v) { return v >= 0 && static_cast<size_t>(v) < nv; };
  // Live values, walking nodes backwards from the graph outputs.
  std::vector<char> live(nv, 0);
  for (ValueId o : g.outputs) {
    if (!in_range(o)) return internal_error(fmt::format("prune_unused: graph output id {} out of range", o));
    live[static_cast<size_t>(o)] = 1;
  }
  std::vector<char> keep_node(g.nodes.size(), 0);
  for (size_t i = g.nodes.size(); i-- > 0;) {
    const Node& n = g.nodes[i];
    bool needed = false;
    for (ValueId o : n.outputs) {
      if (!in_range(o)) return internal_error(fmt::format("prune_unused: node '{}' output out of range", n.name));
      needed = needed || live[static_cast<size_t>(o)];
    }
    if (!needed) continue;
    keep_node[i] = 1;
    for (ValueId in : n.inputs) {
      if (in == kNoValue) continue;
      if (!in_range(in)) return internal_error(fmt::format("prune_unused: node '{}' input out of range", n.name));
      live[static_cast<size_t>(in)] = 1;
    }
  }
  std::vector<Node> nodes;
  nodes.reserve(g.nodes.size());
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    if (keep_node[i]) nodes.push_back(std::move(g.nodes[i]));
  }
  g.nodes = std::move(nodes);
  for (const Node& n : g.nodes) {
    for (ValueId o : n.outputs) live[static_cast<size_t>(o)] = 1;
  }
  for (ValueId in : g.inputs) {
    if (!in_range(in)) return internal_error(fmt::format("prune_unused: graph input id {} out of range", in));
    live[static_cast<size_t>(in)] = 1;
  }
  // Renumber.
  std::vector<ValueId> remap(nv, kNoValue);
  std::vector<Value> values;
  values.reserve(nv);
  for (size_t i = 0; i < nv; ++i) {
    if (!live[i]) continue;
    remap[i] = static_cast<ValueId>(values.size());
    values.push_back(std::move(g.values[i]));
  }
  const int removed = static_cast<int>(nv - values.size());
  g.values = std::move(values);
  auto map = [&remap](ValueId v) { return v == kNoValue ? kNoValue : remap[static_cast<size_t>(v)]; };
  for (Node& n : g.nodes) {
    for (ValueId& v : n.inputs) v = map(v);
    for (ValueId& v : n.outputs) v = map(v);
  }
  for (ValueId& v : g.inputs) v = map(v);
  for (ValueId& v : g.outputs) v = map(v);
  return removed;
}

}  // namespace pcv::ir
