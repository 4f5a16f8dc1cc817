// Weight-only passes: prepare_for_inference, dequantize_constants, to_fp16_weights,
// quantize_dynamic_range (see passes.h).
#include <fmt/core.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <map>

#include "base/fp16.h"
#include "ir/passes/passes.h"
#include "optimize/graph_util.h"
#include "optimize/passes.h"

namespace pcv::optimize {

using ir::DType;
using ir::Graph;
using ir::OpType;
using ir::ValueId;

std::vector<WeightUse> find_weights(const Graph& g, const std::set<std::string>& exclude, int64_t min_elements) {
  std::vector<WeightUse> out;
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    const ir::Node& n = g.nodes[i];
    if (n.op != OpType::kConv2d && n.op != OpType::kFullyConnected) continue;
    if (exclude.count(n.name) || n.inputs.size() < 2 || n.inputs[1] == ir::kNoValue) continue;
    const ir::Value& w = g.value(n.inputs[1]);
    if (!w.is_constant() || w.dtype != DType::kF32 || w.data.num_elements() < min_elements) continue;
    if (exclude.count(w.name)) continue;
    WeightUse u;
    u.node = static_cast<int>(i);
    u.weight = n.inputs[1];
    if (n.op == OpType::kConv2d) {
      const auto& a = n.attr<ir::Conv2dAttrs>();
      const ir::Value& x = g.value(n.inputs[0]);
      u.depthwise = a.groups > 1 && !x.shape.empty() && a.groups == x.shape.back();
    }
    out.push_back(u);
  }
  return out;
}

namespace {

// real = scale * (q - zero_point) as the runtime's dequantize kernels compute it (the product
// in double, rounded once to f32); f16 exactly.
Expected<ir::Tensor> dequantized(const ir::Value& v) {
  const int64_t n = v.data.num_elements();
  ir::Tensor out(DType::kF32, v.shape);
  float* y = out.data<float>();
  if (v.dtype == DType::kF16) {
    for (int64_t i = 0; i < n; ++i) y[i] = f32_from_fp16(v.data.data<uint16_t>()[i]);
    return out;
  }
  if (!ir::is_quantized_dtype(v.dtype) || v.quant.empty()) {
    return unsupported(fmt::format("{}: cannot dequantize a {} constant", v.name, ir::dtype_name(v.dtype)));
  }
  const auto q = [&](int64_t i) {
    return v.dtype == DType::kI8 ? int32_t{v.data.data<int8_t>()[i]} : int32_t{v.data.data<uint8_t>()[i]};
  };
  const size_t channels = v.quant.scale.size();
  int64_t inner = 1, axis_dim = 1;
  if (channels > 1) {
    const auto axis = static_cast<size_t>(v.quant.axis);
    if (axis >= v.shape.size() || v.shape[axis] != static_cast<int64_t>(channels)) {
      return invalid_model(fmt::format("{}: {} scales for axis {} of {}", v.name, channels, axis,
                                       ir::shape_to_string(v.shape)));
    }
    axis_dim = v.shape[axis];
    for (size_t d = axis + 1; d < v.shape.size(); ++d) inner *= v.shape[d];
  }
  for (int64_t i = 0; i < n; ++i) {
    const size_t c = channels > 1 ? static_cast<size_t>((i / inner) % axis_dim) : 0;
    const int32_t zp = v.quant.zero_point.empty() ? 0 : v.quant.zero_point[std::min(c, v.quant.zero_point.size() - 1)];
    y[i] = static_cast<float>(static_cast<double>(v.quant.scale[c]) * (q(i) - zp));
  }
  return out;
}

}  // namespace

Expected<int> dequantize_constants(Graph& g) {
  int folded = 0;
  for (size_t i = 0; i < g.nodes.size();) {
    const ir::Node& n = g.nodes[i];
    if (n.op != OpType::kDequantize || !g.value(n.inputs[0]).is_constant()) {
      ++i;
      continue;
    }
    PCV_ASSIGN_OR_RETURN(ir::Tensor t, dequantized(g.value(n.inputs[0])));
    ir::Value& ov = g.value(n.outputs[0]);
    ov.data = std::move(t);
    ov.dtype = DType::kF32;
    ov.shape = ov.data.shape();
    ov.quant = {};
    ov.trainable = true;
    g.nodes.erase(g.nodes.begin() + static_cast<std::ptrdiff_t>(i));
    ++folded;
  }
  if (folded) PCV_RETURN_IF_ERROR(ir::prune_unused(g).status());
  return folded;
}

Status prepare_for_inference(Graph& g) {
  PCV_RETURN_IF_ERROR(ir::infer_shapes(g));
  PCV_RETURN_IF_ERROR(dequantize_constants(g).status());
  PCV_RETURN_IF_ERROR(ir::remove_identity(g).status());
  PCV_RETURN_IF_ERROR(ir::fold_batch_norm(g).status());
  PCV_RETURN_IF_ERROR(ir::fuse_activations(g).status());
  PCV_RETURN_IF_ERROR(ir::prune_unused(g).status());
  return ir::infer_shapes(g);
}

namespace {

// Replaces each selected weight by make(weight) -> (constant, QuantParams) read through a
// dequantize node inserted just before the first reader. A weight shared by several nodes is
// converted once.
using MakeConstant = std::function<std::pair<ir::Tensor, ir::QuantParams>(const ir::Value& w)>;

Expected<int> weights_through_dequantize(Graph& g, const WeightPassOptions& o, const std::string& suffix,
                                         const MakeConstant& make) {
  const auto uses = find_weights(g, o.exclude, o.min_elements);
  std::map<ValueId, ValueId> replaced;                 // old weight -> dequantized value
  std::map<int, std::vector<ir::Node>> insert_before;  // node index -> new nodes
  for (const WeightUse& u : uses) {
    if (replaced.count(u.weight)) {
      g.nodes[static_cast<size_t>(u.node)].inputs[1] = replaced[u.weight];
      continue;
    }
    const ir::Value w = g.value(u.weight);
    auto [tensor, quant] = make(w);
    const ValueId c = detail::add_constant(g, w.name + suffix, std::move(tensor), std::move(quant));
    const ValueId d = detail::add_value(g, w.name + "/dequantized", DType::kF32, w.shape);
    insert_before[u.node].push_back(detail::unary_node(OpType::kDequantize, w.name + "/dequantize", c, d));
    g.nodes[static_cast<size_t>(u.node)].inputs[1] = d;
    replaced[u.weight] = d;
  }
  std::vector<ir::Node> nodes;
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    if (auto it = insert_before.find(static_cast<int>(i)); it != insert_before.end()) {
      for (ir::Node& n : it->second) nodes.push_back(std::move(n));
    }
    nodes.push_back(std::move(g.nodes[i]));
  }
  g.nodes = std::move(nodes);
  PCV_RETURN_IF_ERROR(ir::prune_unused(g).status());
  PCV_RETURN_IF_ERROR(ir::infer_shapes(g));
  return static_cast<int>(replaced.size());
}

}  // namespace

Expected<int> to_fp16_weights(Graph& g, const WeightPassOptions& o) {
  return weights_through_dequantize(g, o, "_fp16", [](const ir::Value& w) {
    ir::Tensor h(DType::kF16, w.shape);
    const float* src = detail::f32_data(w);
    uint16_t* dst = h.data<uint16_t>();
    for (int64_t i = 0; i < h.num_elements(); ++i) dst[i] = fp16_from_f32(src[i]);
    return std::make_pair(std::move(h), ir::QuantParams{});
  });
}

Expected<int> quantize_dynamic_range(Graph& g, const WeightPassOptions& o) {
  return weights_through_dequantize(g, o, "_int8", [](const ir::Value& w) {
    const int64_t rows = w.shape.empty() ? 1 : w.shape[0];
    const int64_t cols = rows ? w.data.num_elements() / rows : 0;
    ir::Tensor q(DType::kI8, w.shape);
    ir::QuantParams qp;
    qp.axis = 0;
    const float* src = detail::f32_data(w);
    int8_t* dst = q.data<int8_t>();
    for (int64_t r = 0; r < rows; ++r) {
      float amax = 0.f;
      for (int64_t c = 0; c < cols; ++c) amax = std::max(amax, std::fabs(src[r * cols + c]));
      const float scale = amax > 0.f ? amax / 127.f : 1.f / 127.f;
      qp.scale.push_back(scale);
      qp.zero_point.push_back(0);
      for (int64_t c = 0; c < cols; ++c) {
        const float v = std::round(src[r * cols + c] / scale);
        dst[r * cols + c] = static_cast<int8_t>(std::clamp(v, -127.f, 127.f));
      }
    }
    return std::make_pair(std::move(q), std::move(qp));
  });
}

}  // namespace pcv::optimize
