#include <fmt/core.h>

#include "ir/graph.h"

namespace pcv::ir {
namespace {

std::string value_type(const Value& v) {
  std::string s = fmt::format("{}{}", dtype_name(v.dtype), shape_to_string(v.shape));
  if (!v.quant.empty()) {
    if (v.quant.per_channel()) {
      s += fmt::format(" q[axis {}: {} scales]", v.quant.axis, v.quant.scale.size());
    } else {
      s += fmt::format(" q[scale {:g} zp {}]", v.quant.scale[0], v.quant.zero_point[0]);
    }
  }
  return s;
}

}  // namespace

std::string to_text(const Model& model) {
  const Graph& g = model.graph;
  std::string out;
  if (!model.metadata.name.empty()) out += fmt::format("model \"{}\"\n", model.metadata.name);
  const InputSpec& s = model.input_spec;
  if (s.is_image()) {
    out += fmt::format("input_spec {}x{}x{} {} mean=[{:g},{:g},{:g}] std=[{:g},{:g},{:g}] crop={:g}\n",
                       s.height, s.width, s.channels, color_order_name(s.color), s.mean[0],
                       s.mean[1], s.mean[2], s.std[0], s.std[1], s.std[2], s.crop_fraction);
  }
  if (!s.labels.empty()) {
    out += fmt::format("labels ({}):", s.labels.size());
    for (size_t i = 0; i < s.labels.size() && i < 10; ++i) out += " " + s.labels[i];
    if (s.labels.size() > 10) out += " ...";
    out += "\n";
  }
  for (ValueId i : g.inputs) out += fmt::format("input  %{} {}: {}\n", i, g.value(i).name, value_type(g.value(i)));
  for (size_t i = 0; i < g.values.size(); ++i) {
    const Value& v = g.values[i];
    if (v.is_constant()) {
      out += fmt::format("const  %{} {}: {}{}\n", i, v.name, value_type(v), v.trainable ? " trainable" : "");
    }
  }
  for (const Node& n : g.nodes) {
    std::string args;
    for (size_t i = 0; i < n.inputs.size(); ++i) {
      if (i) args += ", ";
      args += n.inputs[i] == kNoValue ? std::string("_") : fmt::format("%{}", n.inputs[i]);
    }
    const std::string attrs = attrs_to_string(n.attrs);
    out += fmt::format("%{} = {}({}){}{} -> {}  # {}\n", n.outputs[0], op_name(n.op), args,
                       attrs.empty() ? "" : " ", attrs, value_type(g.value(n.outputs[0])), n.name);
  }
  for (ValueId o : g.outputs) out += fmt::format("output %{} {}: {}\n", o, g.value(o).name, value_type(g.value(o)));
  return out;
}

}  // namespace pcv::ir
