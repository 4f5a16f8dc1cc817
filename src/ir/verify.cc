#include <fmt/core.h>

#include <cmath>

#include "ir/graph.h"

namespace pcv::ir {
namespace {

Status check_value(const Value& v, size_t id) {
  const std::string who = fmt::format("value {} '{}'", id, v.name);
  if (!checked_num_elements(v.shape)) {
    return invalid_model(who + ": shape " + shape_to_string(v.shape) + " is negative or too large");
  }
  for (int64_t d : v.shape) {
    if (d > INT32_MAX) return invalid_model(who + ": dimension " + std::to_string(d) + " is too large");
  }
  if (v.is_constant()) {
    if (v.data.dtype() != v.dtype || v.data.shape() != v.shape) {
      return invalid_model(who + ": constant data does not match its dtype/shape");
    }
  }
  const auto& q = v.quant;
  if (!q.empty()) {
    if (q.zero_point.size() != q.scale.size()) {
      return invalid_model(who + ": quantization has " + std::to_string(q.scale.size()) +
                           " scales but " + std::to_string(q.zero_point.size()) + " zero points");
    }
    if (q.per_channel()) {
      if (q.axis < 0 || static_cast<size_t>(q.axis) >= v.shape.size() ||
          v.shape[static_cast<size_t>(q.axis)] != static_cast<int64_t>(q.scale.size())) {
        return invalid_model(who + ": per-channel quantization axis/size does not match shape " +
                             shape_to_string(v.shape));
      }
    }
    for (float s : q.scale) {
      if (!(s > 0.f) || !std::isfinite(s)) {
        return invalid_model(who + ": quantization scale must be positive and finite");
      }
    }
  }
  return Status::ok();
}

}  // namespace

Status verify(const Graph& g) {
  const size_t nv = g.values.size();
  std::vector<int8_t> defined(nv, 0);
  for (size_t i = 0; i < nv; ++i) {
    PCV_RETURN_IF_ERROR(check_value(g.values[i], i));
    if (g.values[i].is_constant()) defined[i] = 1;
  }
  for (ValueId in : g.inputs) {
    if (in < 0 || static_cast<size_t>(in) >= nv) return invalid_model(fmt::format("graph input id {} out of range", in));
    if (defined[static_cast<size_t>(in)]) return invalid_model(fmt::format("graph input '{}' defined twice", g.value(in).name));
    defined[static_cast<size_t>(in)] = 1;
  }
  for (size_t ni = 0; ni < g.nodes.size(); ++ni) {
    const Node& n = g.nodes[ni];
    const std::string who = fmt::format("node {} '{}' ({})", ni, n.name, op_name(n.op));
    if (static_cast<int>(n.op) >= kNumOps) {
      return invalid_model(fmt::format("node {} '{}': unknown op", ni, n.name));
    }
    const int count = static_cast<int>(n.inputs.size());
    if (count < op_min_inputs(n.op) || count > op_max_inputs(n.op)) {
      return invalid_model(fmt::format("{}: has {} inputs, expects {} to {}", who, count,
                                       op_min_inputs(n.op), op_max_inputs(n.op)));
    }
    if (!attrs_match_op(n.op, n.attrs)) return invalid_model(who + ": attributes of the wrong kind");
    for (int i = 0; i < count; ++i) {
      const ValueId in = n.inputs[static_cast<size_t>(i)];
      if (in == kNoValue && i >= op_min_inputs(n.op)) continue;
      if (in < 0 || static_cast<size_t>(in) >= nv) {
        return invalid_model(fmt::format("{}: input {} has id {}, out of range", who, i, in));
      }
      if (!defined[static_cast<size_t>(in)]) {
        return invalid_model(fmt::format("{}: input '{}' is used before it is defined", who,
                                         g.value(in).name));
      }
    }
    if (n.outputs.size() != 1) return invalid_model(who + ": must have exactly one output");
    const ValueId out = n.outputs[0];
    if (out < 0 || static_cast<size_t>(out) >= nv) return invalid_model(who + ": output id out of range");
    if (defined[static_cast<size_t>(out)]) {
      return invalid_model(fmt::format("{}: output '{}' is already defined", who, g.value(out).name));
    }
    defined[static_cast<size_t>(out)] = 1;
    const Value& ov = g.value(out);
    if (n.op == OpType::kQuantize && (!is_quantized_dtype(ov.dtype) || ov.quant.empty())) {
      return invalid_model(who + ": output must be i8/u8 with quantization parameters");
    }
    if (n.op == OpType::kDequantize && ov.dtype != DType::kF32) {
      return invalid_model(who + ": output must be f32");
    }
    if (is_quantized_dtype(ov.dtype) && ov.quant.empty()) {
      return invalid_model(who + ": quantized output needs quantization parameters");
    }
  }
  for (ValueId o : g.outputs) {
    if (o < 0 || static_cast<size_t>(o) >= nv || !defined[static_cast<size_t>(o)]) {
      return invalid_model(fmt::format("graph output id {} is not a defined value", o));
    }
  }
  if (g.outputs.empty()) return invalid_model("graph has no outputs");
  // Shapes must be what the ops say.
  Graph copy = g;
  PCV_RETURN_IF_ERROR(infer_shapes(copy));
  for (size_t i = 0; i < nv; ++i) {
    if (copy.values[i].shape != g.values[i].shape) {
      return invalid_model(fmt::format("value '{}' has shape {} but its op gives {}", g.values[i].name,
                                       shape_to_string(g.values[i].shape),
                                       shape_to_string(copy.values[i].shape)));
    }
  }
  return Status::ok();
}

}  // namespace pcv::ir
