#include "optimize/graph_util.h"

#include <fmt/core.h>

namespace pcv::optimize::detail {

std::string unique_name(const ir::Graph& g, const std::string& base) {
  if (g.find_value(base) == ir::kNoValue) return base;
  for (int i = 2;; ++i) {
    std::string n = fmt::format("{}#{}", base, i);
    if (g.find_value(n) == ir::kNoValue) return n;
  }
}

ir::ValueId add_value(ir::Graph& g, const std::string& name, ir::DType dtype, const ir::Shape& shape,
                      ir::QuantParams quant) {
  ir::Value v;
  v.name = unique_name(g, name);
  v.dtype = dtype;
  v.shape = shape;
  v.quant = std::move(quant);
  g.values.push_back(std::move(v));
  return static_cast<ir::ValueId>(g.values.size() - 1);
}

ir::ValueId add_constant(ir::Graph& g, const std::string& base, ir::Tensor data, ir::QuantParams quant) {
  return g.add_constant(unique_name(g, base), std::move(data), std::move(quant));
}

ir::Node unary_node(ir::OpType op, const std::string& name, ir::ValueId in, ir::ValueId out) {
  ir::Node n;
  n.op = op;
  n.name = name;
  n.inputs = {in};
  n.outputs = {out};
  n.attrs = ir::NoAttrs{};
  return n;
}

}  // namespace pcv::optimize::detail
