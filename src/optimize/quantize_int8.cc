// Full integer quantization (passes.h: quantize_int8).
//
// Plan: (1) decide per node whether it runs in int8; (2) tie values that must share one
// quantization (pool / reshape / pad in and out, concat inputs and output) with a union-find
// and give each group its parameters (fixed for softmax / sigmoid outputs, else from the union
// of the members' calibrated ranges); (3) rewrite in node order: int8 nodes read int8 versions
// of their inputs (a quantize node makes one from an f32 value on first use), f32 nodes read
// f32 versions (a dequantize node), weights and biases become int8 / int32 constants; (4) fix
// the model I/O types.
#include <fmt/core.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "ir/passes/passes.h"
#include "optimize/graph_util.h"
#include "optimize/passes.h"

namespace pcv::optimize {

using ir::DType;
using ir::Graph;
using ir::OpType;
using ir::QuantParams;
using ir::ValueId;

const char* io_type_name(IoType t) {
  switch (t) {
    case IoType::kFloat: return "float";
    case IoType::kInt8: return "int8";
    case IoType::kUInt8: return "uint8";
  }
  return "?";
}

Expected<IoType> io_type_from_name(const std::string& name) {
  if (name == "float" || name == "float32" || name == "f32") return IoType::kFloat;
  if (name == "int8" || name == "i8") return IoType::kInt8;
  if (name == "uint8" || name == "u8") return IoType::kUInt8;
  return invalid_argument(fmt::format("unknown I/O type '{}' (float, int8, uint8)", name));
}

namespace {

const QuantParams kProbabilityParams = QuantParams::per_tensor(1.f / 256.f, -128);

bool has_int8_form(OpType op) {
  switch (op) {
    case OpType::kBatchNorm:
    case OpType::kQuantize:
    case OpType::kDequantize:
      return false;
    default:
      return true;
  }
}

// Ops whose int8 output must carry their input's quantization (TFLite and our kernels).
bool shares_input_quant(OpType op) {
  switch (op) {
    case OpType::kMaxPool:
    case OpType::kAveragePool:
    case OpType::kReshape:
    case OpType::kFlatten:
    case OpType::kPad:
    case OpType::kDropout:
      return true;
    default:
      return false;
  }
}

struct UnionFind {
  std::vector<int> parent;
  explicit UnionFind(size_t n) : parent(n) { std::iota(parent.begin(), parent.end(), 0); }
  int find(int x) {
    while (parent[static_cast<size_t>(x)] != x) x = parent[static_cast<size_t>(x)] = parent[static_cast<size_t>(parent[static_cast<size_t>(x)])];
    return x;
  }
  void unite(int a, int b) { parent[static_cast<size_t>(find(a))] = find(b); }
};

// Symmetric per-output-channel int8 weights: scale[c] = max|w[c, ...]| / 127.
std::pair<ir::Tensor, QuantParams> quantize_weights(const ir::Value& w) {
  const int64_t rows = w.shape.empty() ? 1 : w.shape[0];
  const int64_t cols = rows ? w.data.num_elements() / rows : 0;
  ir::Tensor q(DType::kI8, w.shape);
  QuantParams qp;
  qp.axis = 0;
  const float* src = w.data.data<float>();
  for (int64_t r = 0; r < rows; ++r) {
    float amax = 0.f;
    for (int64_t c = 0; c < cols; ++c) amax = std::max(amax, std::fabs(src[r * cols + c]));
    const float scale = amax > 0.f ? amax / 127.f : 1.f / 127.f;
    qp.scale.push_back(scale);
    qp.zero_point.push_back(0);
    for (int64_t c = 0; c < cols; ++c) {
      const float v = std::round(src[r * cols + c] / scale);
      q.data<int8_t>()[r * cols + c] = static_cast<int8_t>(std::clamp(v, -127.f, 127.f));
    }
  }
  return {std::move(q), std::move(qp)};
}

// int32 bias with scale in_scale * w_scale[c], zero point 0 (absent bias: zeros).
std::pair<ir::Tensor, QuantParams> quantize_bias(const ir::Value* b, int64_t out_c, float in_scale,
                                                 const QuantParams& wq) {
  ir::Tensor q(DType::kI32, {out_c});
  QuantParams qp;
  qp.axis = 0;
  for (int64_t c = 0; c < out_c; ++c) {
    const float ws = wq.scale[wq.scale.size() == 1 ? 0 : static_cast<size_t>(c)];
    const double s = static_cast<double>(in_scale) * static_cast<double>(ws);
    qp.scale.push_back(static_cast<float>(s));
    qp.zero_point.push_back(0);
    const double v = b ? std::round(static_cast<double>(b->data.data<float>()[c]) / s) : 0.0;
    q.data<int32_t>()[c] = static_cast<int32_t>(std::clamp(v, -2147483647.0, 2147483647.0));
  }
  return {std::move(q), std::move(qp)};
}

// Per-tensor asymmetric int8 constant (a constant operand of add / mul / concat).
std::pair<ir::Tensor, QuantParams> quantize_constant(const ir::Value& v) {
  const float* src = v.data.data<float>();
  const int64_t n = v.data.num_elements();
  const Range r = range_minmax(std::span<const float>(src, static_cast<size_t>(n)));
  QuantParams qp = int8_params(r);
  ir::Tensor q(DType::kI8, v.shape);
  for (int64_t i = 0; i < n; ++i) {
    const float x = std::round(src[i] / qp.scale[0]) + static_cast<float>(qp.zero_point[0]);
    q.data<int8_t>()[i] = static_cast<int8_t>(std::clamp(x, -128.f, 127.f));
  }
  return {std::move(q), std::move(qp)};
}

}  // namespace

Expected<int> quantize_int8(Graph& g, const std::map<std::string, Range>& ranges, const Int8Options& o) {
  PCV_RETURN_IF_ERROR(ir::infer_shapes(g));
  for (const ir::Value& v : g.values) {
    if (!v.is_constant() && v.dtype != DType::kF32) {
      return unsupported(fmt::format("{} is {}: quantize_int8 takes an f32 model", v.name, ir::dtype_name(v.dtype)));
    }
  }
  const size_t nv = g.values.size();
  // (1) Which nodes run in int8.
  std::vector<bool> int8_node(g.nodes.size(), false);
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    const ir::Node& n = g.nodes[i];
    bool ok = has_int8_form(n.op) && !o.exclude.count(n.name);
    if (ok && (n.op == OpType::kConv2d || n.op == OpType::kFullyConnected)) {
      ok = g.value(n.inputs[1]).is_constant() &&
           (n.inputs.size() < 3 || n.inputs[2] == ir::kNoValue || g.value(n.inputs[2]).is_constant());
    }
    if (ok && n.op == OpType::kConcat) ok = n.attr<ir::ConcatAttrs>().activation == ir::Activation::kNone;
    int8_node[i] = ok;
  }
  // Values that exist in int8: outputs of int8 nodes and non-constant inputs of int8 nodes.
  std::vector<bool> needs_q(nv, false);
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    if (!int8_node[i]) continue;
    for (ValueId v : g.nodes[i].inputs) {
      if (v != ir::kNoValue && !g.value(v).is_constant()) needs_q[static_cast<size_t>(v)] = true;
    }
    for (ValueId v : g.nodes[i].outputs) needs_q[static_cast<size_t>(v)] = true;
  }
  if (o.io != IoType::kFloat) {
    for (ValueId v : g.inputs) needs_q[static_cast<size_t>(v)] = true;
    for (ValueId v : g.outputs) needs_q[static_cast<size_t>(v)] = true;
  }
  // (2) Tie groups and their parameters.
  UnionFind uf(nv);
  std::vector<const QuantParams*> fixed(nv, nullptr);
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    if (!int8_node[i]) continue;
    const ir::Node& n = g.nodes[i];
    if (shares_input_quant(n.op)) uf.unite(n.inputs[0], n.outputs[0]);
    if (n.op == OpType::kConcat) {
      for (ValueId v : n.inputs) {
        if (!g.value(v).is_constant()) uf.unite(v, n.outputs[0]);
      }
    }
    if (n.op == OpType::kSoftmax || n.op == OpType::kSigmoid) fixed[static_cast<size_t>(n.outputs[0])] = &kProbabilityParams;
  }
  std::vector<Range> group_range(nv, Range{std::numeric_limits<float>::infinity(), -std::numeric_limits<float>::infinity()});
  std::vector<const QuantParams*> group_fixed(nv, nullptr);
  for (size_t v = 0; v < nv; ++v) {
    if (!needs_q[v]) continue;
    const int root = uf.find(static_cast<int>(v));
    if (fixed[v]) {
      group_fixed[static_cast<size_t>(root)] = fixed[v];
      continue;
    }
    auto it = ranges.find(g.values[v].name);
    if (it == ranges.end()) continue;
    Range& r = group_range[static_cast<size_t>(root)];
    r.min = std::min(r.min, it->second.min);
    r.max = std::max(r.max, it->second.max);
  }
  std::vector<QuantParams> params(nv);
  for (size_t v = 0; v < nv; ++v) {
    if (!needs_q[v]) continue;
    const auto root = static_cast<size_t>(uf.find(static_cast<int>(v)));
    if (group_fixed[root]) {
      params[v] = *group_fixed[root];
    } else if (group_range[root].min <= group_range[root].max) {
      params[v] = int8_params(group_range[root]);
    } else {
      return invalid_argument(fmt::format("no calibrated range for value '{}' (calibrate the prepared graph)",
                                          g.values[v].name));
    }
  }

  // (3) Rewrite in node order.
  std::vector<ValueId> q_of(nv, ir::kNoValue), f_of(nv, ir::kNoValue);
  std::vector<bool> is_int8(nv, false);  // value lives in int8 after the rewrite
  std::vector<ir::Node> nodes;
  // Graph inputs.
  for (ValueId in : g.inputs) {
    const auto k = static_cast<size_t>(in);
    if (!needs_q[k]) continue;
    if (o.io == IoType::kInt8) {
      g.value(in).dtype = DType::kI8;
      g.value(in).quant = params[k];
      is_int8[k] = true;
      q_of[k] = in;
    } else if (o.io == IoType::kUInt8) {
      ir::Value& v = g.value(in);
      v.dtype = DType::kU8;
      v.quant = QuantParams::per_tensor(params[k].scale[0], params[k].zero_point[0] + 128);
      const ValueId q = detail::add_value(g, v.name + "/int8", DType::kI8, g.value(in).shape, params[k]);
      nodes.push_back(detail::unary_node(OpType::kQuantize, g.value(in).name + "/to_int8", in, q));
      q_of[k] = q;
    }
  }
  auto int8_version = [&](ValueId v) -> ValueId {
    const auto k = static_cast<size_t>(v);
    if (q_of[k] != ir::kNoValue) return q_of[k];
    const ir::Value src = g.value(v);
    const ValueId q = detail::add_value(g, src.name + "/quantized", DType::kI8, src.shape, params[k]);
    nodes.push_back(detail::unary_node(OpType::kQuantize, src.name + "/quantize", v, q));
    return q_of[k] = q;
  };
  auto float_version = [&](ValueId v) -> ValueId {
    const auto k = static_cast<size_t>(v);
    if (!is_int8[k] || g.value(v).is_constant()) return v;
    if (f_of[k] != ir::kNoValue) return f_of[k];
    const ir::Value src = g.value(v);
    const ValueId f = detail::add_value(g, src.name + "/dequantized", DType::kF32, src.shape);
    nodes.push_back(detail::unary_node(OpType::kDequantize, src.name + "/dequantize", v, f));
    return f_of[k] = f;
  };
  int count = 0;
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    ir::Node n = std::move(g.nodes[i]);
    if (!int8_node[i]) {
      for (ValueId& v : n.inputs) {
        if (v != ir::kNoValue) v = float_version(v);
      }
      nodes.push_back(std::move(n));
      continue;
    }
    ++count;
    const bool weighted = n.op == OpType::kConv2d || n.op == OpType::kFullyConnected;
    for (size_t k = 0; k < n.inputs.size(); ++k) {
      const ValueId v = n.inputs[k];
      if (v == ir::kNoValue) continue;
      if (weighted && k >= 1) continue;  // below
      if (g.value(v).is_constant()) {
        if (g.value(v).dtype != DType::kF32) {
          return unsupported(fmt::format("node '{}': constant input {} is {}", n.name, g.value(v).name,
                                         ir::dtype_name(g.value(v).dtype)));
        }
        auto [t, qp] = quantize_constant(g.value(v));
        n.inputs[k] = detail::add_constant(g, g.value(v).name + "_int8", std::move(t), std::move(qp));
        continue;
      }
      n.inputs[k] = int8_version(v);
    }
    if (weighted) {
      const ir::Value w = g.value(n.inputs[1]);
      if (w.dtype != DType::kF32) {
        return unsupported(fmt::format("node '{}': weights {} are {}", n.name, w.name, ir::dtype_name(w.dtype)));
      }
      const int64_t out_c = w.shape[0];
      const float in_scale = g.value(n.inputs[0]).quant.scale[0];
      auto [wt, wq] = quantize_weights(w);
      const ir::Value* b = n.inputs.size() > 2 && n.inputs[2] != ir::kNoValue ? &g.value(n.inputs[2]) : nullptr;
      if (b && (b->dtype != DType::kF32 || b->data.num_elements() != out_c)) {
        return unsupported(fmt::format("node '{}': bias {} is not f32 ({})", n.name, b->name, out_c));
      }
      auto [bt, bq] = quantize_bias(b, out_c, in_scale, wq);
      const std::string bname = b ? b->name : n.name + "/bias";
      const ValueId wi = detail::add_constant(g, w.name + "_int8", std::move(wt), std::move(wq));
      const ValueId bi = detail::add_constant(g, bname + "_int32", std::move(bt), std::move(bq));
      n.inputs.resize(3);
      n.inputs[1] = wi;
      n.inputs[2] = bi;
    }
    for (ValueId y : n.outputs) {
      const auto k = static_cast<size_t>(y);
      g.value(y).dtype = DType::kI8;
      g.value(y).quant = params[k];
      is_int8[k] = true;
      q_of[k] = y;
    }
    nodes.push_back(std::move(n));
  }
  g.nodes = std::move(nodes);

  // (4) Outputs: the value keeps its id and name and gets the I/O type; the int8 result moves
  // to a new value "<name>/int8" (or "<name>/float") converted by a node at the end.
  for (size_t oi = 0; oi < g.outputs.size(); ++oi) {
    const ValueId y = g.outputs[oi];
    const DType want = o.io == IoType::kFloat ? DType::kF32 : o.io == IoType::kInt8 ? DType::kI8 : DType::kU8;
    ir::Value& yv = g.value(y);
    if (yv.dtype == want) continue;
    const int p = g.producer(y);
    if (p < 0) continue;  // an input passed through: leave it
    const bool was_int8 = yv.dtype == DType::kI8;
    const ValueId moved = detail::add_value(g, g.value(y).name + (was_int8 ? "/int8" : "/float"), g.value(y).dtype,
                                            g.value(y).shape, g.value(y).quant);
    ir::replace_uses(g, y, moved);
    for (ValueId& out : g.outputs) {
      if (out == moved) out = y;
    }
    for (ValueId& out : g.nodes[static_cast<size_t>(p)].outputs) {
      if (out == y) out = moved;
    }
    ir::Value& yy = g.value(y);
    const QuantParams q8 = was_int8 ? g.value(moved).quant : params[static_cast<size_t>(y)];
    yy.dtype = want;
    yy.quant = want == DType::kF32 ? QuantParams{} : want == DType::kI8 ? q8 : QuantParams::per_tensor(q8.scale[0], q8.zero_point[0] + 128);
    ValueId src = moved;
    if (!was_int8 && want != DType::kF32) {
      // f32 island at the end: quantize to int8 first (uint8 then requantizes).
      if (want == DType::kU8) {
        src = detail::add_value(g, yy.name + "/int8", DType::kI8, yy.shape, q8);
        g.nodes.push_back(detail::unary_node(OpType::kQuantize, g.value(y).name + "/quantize", moved, src));
      }
    }
    g.nodes.push_back(detail::unary_node(want == DType::kF32 ? OpType::kDequantize : OpType::kQuantize,
                                         g.value(y).name + (want == DType::kF32 ? "/dequantize" : "/quantize_out"), src, y));
  }
  PCV_RETURN_IF_ERROR(ir::prune_unused(g).status());
  PCV_RETURN_IF_ERROR(ir::infer_shapes(g));
  return count;
}

}  // namespace pcv::optimize
