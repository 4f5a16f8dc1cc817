#include "ir/graph.h"

namespace pcv::ir {

const char* color_order_name(ColorOrder c) {
  switch (c) {
    case ColorOrder::kRGB: return "rgb";
    case ColorOrder::kBGR: return "bgr";
    case ColorOrder::kGray: return "gray";
  }
  return "?";
}

ValueId Graph::add_input(std::string name, DType dtype, Shape shape, QuantParams quant) {
  Value v;
  v.name = std::move(name);
  v.dtype = dtype;
  v.shape = std::move(shape);
  v.quant = std::move(quant);
  values.push_back(std::move(v));
  const auto id = static_cast<ValueId>(values.size() - 1);
  inputs.push_back(id);
  return id;
}

ValueId Graph::add_constant(std::string name, Tensor data, QuantParams quant, bool trainable) {
  Value v;
  v.name = std::move(name);
  v.dtype = data.dtype();
  v.shape = data.shape();
  v.data = std::move(data);
  v.quant = std::move(quant);
  v.trainable = trainable;
  values.push_back(std::move(v));
  return static_cast<ValueId>(values.size() - 1);
}

ValueId Graph::add_node(OpType op, std::string name, std::vector<ValueId> node_inputs,
                        Attrs attrs, DType out_dtype) {
  Value out;
  out.name = name;
  out.dtype = out_dtype;
  values.push_back(std::move(out));
  const auto id = static_cast<ValueId>(values.size() - 1);
  Node n;
  n.op = op;
  n.name = std::move(name);
  n.inputs = std::move(node_inputs);
  n.outputs = {id};
  n.attrs = std::move(attrs);
  nodes.push_back(std::move(n));
  return id;
}

ValueId Graph::find_value(const std::string& name) const {
  for (size_t i = 0; i < values.size(); ++i) {
    if (values[i].name == name) return static_cast<ValueId>(i);
  }
  return kNoValue;
}

int Graph::producer(ValueId v) const {
  for (size_t i = 0; i < nodes.size(); ++i) {
    for (ValueId o : nodes[i].outputs) {
      if (o == v) return static_cast<int>(i);
    }
  }
  return -1;
}

int64_t Graph::parameter_count() const {
  int64_t n = 0;
  for (auto& v : values) {
    if (v.is_constant()) n += v.data.num_elements();
  }
  return n;
}

int64_t Graph::parameter_bytes() const {
  int64_t n = 0;
  for (auto& v : values) {
    if (v.is_constant()) n += static_cast<int64_t>(v.data.size_bytes());
  }
  return n;
}

}  // namespace pcv::ir
