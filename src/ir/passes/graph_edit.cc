// Small graph-editing helpers shared by the passes.
#include <algorithm>

#include "ir/passes/passes.h"

namespace pcv::ir {

void replace_uses(Graph& graph, ValueId from, ValueId to) {
  for (Node& n : graph.nodes) {
    for (ValueId& in : n.inputs) {
      if (in == from) in = to;
    }
  }
  for (ValueId& o : graph.outputs) {
    if (o == from) o = to;
  }
}

int count_uses(const Graph& graph, ValueId v) {
  int uses = 0;
  for (const Node& n : graph.nodes) {
    uses += static_cast<int>(std::count(n.inputs.begin(), n.inputs.end(), v));
  }
  uses += static_cast<int>(std::count(graph.outputs.begin(), graph.outputs.end(), v));
  return uses;
}

bool is_graph_output(const Graph& graph, ValueId v) {
  return std::find(graph.outputs.begin(), graph.outputs.end(), v) != graph.outputs.end();
}

}  // namespace pcv::ir
