#include "train/transfer.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <random>

#include "base/fp16.h"

namespace pcv::train {

using ir::DType;
using ir::OpType;
using ir::ValueId;

namespace {

Expected<ir::Tensor> dequantize_constant(const ir::Value& v) {
  const ir::Tensor& t = v.data;
  const int64_t n = t.num_elements();
  ir::Tensor out(DType::kF32, t.shape());
  float* o = out.data<float>();
  if (t.dtype() == DType::kF16) {
    for (int64_t i = 0; i < n; ++i) o[i] = f32_from_fp16(t.data<uint16_t>()[i]);
    return out;
  }
  const ir::QuantParams& q = v.quant;
  if (q.empty()) {
    // Integer constants without quantization (e.g. shape tensors): plain casts.
    for (int64_t i = 0; i < n; ++i) {
      switch (t.dtype()) {
        case DType::kI8: o[i] = t.data<int8_t>()[i]; break;
        case DType::kU8: o[i] = t.data<uint8_t>()[i]; break;
        case DType::kI32: o[i] = static_cast<float>(t.data<int32_t>()[i]); break;
        case DType::kI64: o[i] = static_cast<float>(t.data<int64_t>()[i]); break;
        default: return unsupported(fmt::format("constant '{}': dtype {}", v.name, ir::dtype_name(t.dtype())));
      }
    }
    return out;
  }
  // Per-channel: channel of element i along `axis`.
  const ir::Shape& s = t.shape();
  int64_t inner = 1, dim = 1;
  if (q.per_channel()) {
    if (q.axis < 0 || q.axis >= static_cast<int>(s.size()) || s[static_cast<size_t>(q.axis)] != static_cast<int64_t>(q.scale.size())) {
      return invalid_model(fmt::format("constant '{}': {} per-channel scales for shape {} axis {}", v.name,
                                       q.scale.size(), ir::shape_to_string(s), q.axis));
    }
    dim = s[static_cast<size_t>(q.axis)];
    for (size_t k = static_cast<size_t>(q.axis) + 1; k < s.size(); ++k) inner *= s[k];
  }
  for (int64_t i = 0; i < n; ++i) {
    const size_t c = q.per_channel() ? static_cast<size_t>((i / inner) % dim) : 0;
    const float scale = q.scale[c];
    const int32_t zp = c < q.zero_point.size() ? q.zero_point[c] : (q.zero_point.empty() ? 0 : q.zero_point[0]);
    int64_t qv = 0;
    switch (t.dtype()) {
      case DType::kI8: qv = t.data<int8_t>()[i]; break;
      case DType::kU8: qv = t.data<uint8_t>()[i]; break;
      case DType::kI32: qv = t.data<int32_t>()[i]; break;
      case DType::kI64: qv = t.data<int64_t>()[i]; break;
      case DType::kF32: o[i] = t.data<float>()[i]; continue;
      default: return unsupported(fmt::format("constant '{}': dtype {}", v.name, ir::dtype_name(t.dtype())));
    }
    o[i] = scale * static_cast<float>(qv - zp);
  }
  return out;
}

// Makes the conv/dense weights and biases and batch-norm gamma/beta trainable.
void mark_trainable(ir::Graph& g) {
  for (const ir::Node& n : g.nodes) {
    auto mark = [&](size_t k) {
      if (k < n.inputs.size() && n.inputs[k] != ir::kNoValue && g.value(n.inputs[k]).is_constant()) {
        g.value(n.inputs[k]).trainable = true;
      }
    };
    if (n.op == OpType::kConv2d || n.op == OpType::kFullyConnected || n.op == OpType::kBatchNorm) {
      mark(1);
      mark(2);
    }
  }
}

// Copies the nodes needed to compute `target` (and the values they touch) into a new graph.
// Returns the new id of `target` through *new_target.
ir::Graph extract(const ir::Graph& g, ValueId target, ValueId* new_target) {
  std::vector<bool> need_value(g.values.size(), false), need_node(g.nodes.size(), false);
  need_value[static_cast<size_t>(target)] = true;
  for (size_t i = g.nodes.size(); i-- > 0;) {
    const ir::Node& n = g.nodes[i];
    bool needed = false;
    for (ValueId o : n.outputs) needed = needed || need_value[static_cast<size_t>(o)];
    if (!needed) continue;
    need_node[i] = true;
    for (ValueId v : n.inputs) {
      if (v != ir::kNoValue) need_value[static_cast<size_t>(v)] = true;
    }
    for (ValueId o : n.outputs) need_value[static_cast<size_t>(o)] = true;
  }
  for (ValueId in : g.inputs) need_value[static_cast<size_t>(in)] = true;
  ir::Graph out;
  std::vector<ValueId> remap(g.values.size(), ir::kNoValue);
  for (size_t v = 0; v < g.values.size(); ++v) {
    if (!need_value[v]) continue;
    remap[v] = static_cast<ValueId>(out.values.size());
    out.values.push_back(g.values[v]);
  }
  for (ValueId in : g.inputs) out.inputs.push_back(remap[static_cast<size_t>(in)]);
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    if (!need_node[i]) continue;
    ir::Node n = g.nodes[i];
    for (ValueId& v : n.inputs) {
      if (v != ir::kNoValue) v = remap[static_cast<size_t>(v)];
    }
    for (ValueId& v : n.outputs) v = remap[static_cast<size_t>(v)];
    out.nodes.push_back(std::move(n));
  }
  *new_target = remap[static_cast<size_t>(target)];
  return out;
}

bool is_global_pool(const ir::Graph& g, const ir::Node& n) {
  const ir::Shape& x = g.value(n.inputs[0]).shape;
  if (x.size() != 4) return false;
  if (n.op == OpType::kMean) {
    std::vector<int64_t> axes = n.attr<ir::MeanAttrs>().axes;
    for (int64_t& a : axes) a = a < 0 ? a + 4 : a;
    std::sort(axes.begin(), axes.end());
    return axes == std::vector<int64_t>{1, 2};
  }
  if (n.op == OpType::kAveragePool) {
    const ir::Shape& y = g.value(n.outputs[0]).shape;
    return y.size() == 4 && y[1] == 1 && y[2] == 1;
  }
  return false;
}

std::string unique_name(const ir::Graph& g, const std::string& base) {
  std::string name = base;
  for (int i = 1; g.find_value(name) != ir::kNoValue; ++i) name = fmt::format("{}_{}", base, i);
  return name;
}

}  // namespace

Status dequantize_model(ir::Model* model) {
  ir::Graph& g = model->graph;
  for (ir::Value& v : g.values) {
    if (v.is_constant()) {
      if (v.data.dtype() != DType::kF32) {
        PCV_ASSIGN_OR_RETURN(v.data, dequantize_constant(v));
      }
      v.dtype = DType::kF32;
      v.quant = {};
    } else if (v.dtype != DType::kF32) {
      PCV_ENSURE(v.dtype == DType::kI8 || v.dtype == DType::kU8 || v.dtype == DType::kF16,
                 StatusCode::kUnsupported, "value '{}': dtype {} cannot be made float", v.name,
                 ir::dtype_name(v.dtype));
      v.dtype = DType::kF32;
      v.quant = {};
    } else {
      v.quant = {};
    }
  }
  // Drop quantize/dequantize nodes: consumers read the node's input.
  std::vector<ValueId> alias(g.values.size());
  for (size_t v = 0; v < alias.size(); ++v) alias[v] = static_cast<ValueId>(v);
  auto resolve = [&](ValueId v) {
    while (v != ir::kNoValue && alias[static_cast<size_t>(v)] != v) v = alias[static_cast<size_t>(v)];
    return v;
  };
  std::vector<ir::Node> kept;
  for (ir::Node& n : g.nodes) {
    for (ValueId& v : n.inputs) v = resolve(v);
    if (n.op == OpType::kQuantize || n.op == OpType::kDequantize) {
      alias[static_cast<size_t>(n.outputs[0])] = n.inputs[0];
      continue;
    }
    kept.push_back(std::move(n));
  }
  g.nodes = std::move(kept);
  for (ValueId& v : g.outputs) {
    const ValueId r = resolve(v);
    if (r != v) {
      // Keep the output's name on the value that now carries it when that is unambiguous.
      v = r;
    }
  }
  PCV_RETURN_IF_ERROR(ir::infer_shapes(g).with_context("dequantized model"));
  return Status::ok();
}

Expected<HeadReplacement> replace_head(const ir::Model& source_in,
                                       const std::vector<std::string>& labels, uint64_t seed) {
  PCV_ENSURE(labels.size() >= 2, StatusCode::kInvalidArgument, "a classifier head needs >= 2 classes, got {}",
             labels.size());
  ir::Model source = source_in;
  PCV_RETURN_IF_ERROR(dequantize_model(&source));
  const ir::Graph& g = source.graph;
  PCV_ENSURE(g.inputs.size() == 1, StatusCode::kUnsupported, "transfer learning needs a model with one input");
  // Find the feature value.
  ValueId features = ir::kNoValue;
  for (size_t i = g.nodes.size(); i-- > 0 && features == ir::kNoValue;) {
    if (is_global_pool(g, g.nodes[i])) features = g.nodes[i].outputs[0];
  }
  if (features == ir::kNoValue) {
    for (size_t i = g.nodes.size(); i-- > 0 && features == ir::kNoValue;) {
      const ir::Node& n = g.nodes[i];
      if (n.op == OpType::kFullyConnected) features = n.inputs[0];
      if (n.op == OpType::kConv2d) {
        const ir::Shape& x = g.value(n.inputs[0]).shape;
        if (x.size() == 4 && x[1] == 1 && x[2] == 1) features = n.inputs[0];
      }
    }
  }
  PCV_ENSURE(features != ir::kNoValue, StatusCode::kUnsupported,
             "no feature layer found (no global pooling and no fully_connected layer)");
  HeadReplacement r;
  r.feature_name = g.value(features).name;
  ValueId f = ir::kNoValue;
  ir::Graph bb = extract(g, features, &f);
  r.removed_nodes = static_cast<int>(g.nodes.size() - bb.nodes.size());
  const ir::Shape fs = bb.value(f).shape;
  PCV_ENSURE(fs.size() == 2 || (fs.size() == 4 && fs[1] == 1 && fs[2] == 1), StatusCode::kUnsupported,
             "feature value '{}' has shape {}: expected (N, C) or (N, 1, 1, C)", r.feature_name,
             ir::shape_to_string(fs));
  r.feature_channels = fs.back();
  if (fs.size() == 4) {
    ir::ReshapeAttrs ra;
    ra.shape = {-1, r.feature_channels};
    f = bb.add_node(OpType::kReshape, unique_name(bb, "head/features"), {f}, ra);
  }
  mark_trainable(bb);
  // Backbone model (features out).
  ir::Model backbone;
  backbone.graph = bb;
  backbone.graph.outputs = {f};
  PCV_RETURN_IF_ERROR(ir::infer_shapes(backbone.graph).with_context("backbone"));
  backbone.input_spec = source.input_spec;
  backbone.metadata = source.metadata;
  // Head.
  const int64_t classes = static_cast<int64_t>(labels.size());
  ir::Tensor w(DType::kF32, {classes, r.feature_channels});
  std::mt19937_64 rng(seed);
  const float limit = std::sqrt(6.0f / static_cast<float>(classes + r.feature_channels));
  std::uniform_real_distribution<float> d(-limit, limit);
  for (int64_t i = 0; i < w.num_elements(); ++i) w.data<float>()[i] = d(rng);
  ValueId wid = bb.add_constant(unique_name(bb, "head/logits/weights"), std::move(w), {}, true);
  ValueId bid = bb.add_constant(unique_name(bb, "head/logits/bias"), ir::Tensor(DType::kF32, {classes}), {}, true);
  ValueId logits = bb.add_node(OpType::kFullyConnected, unique_name(bb, "head/logits"), {f, wid, bid},
                               ir::FullyConnectedAttrs{});
  ValueId probs = bb.add_node(OpType::kSoftmax, unique_name(bb, "head/probabilities"), {logits});
  bb.outputs = {probs};
  PCV_RETURN_IF_ERROR(ir::infer_shapes(bb).with_context("model with the new head"));
  r.model.graph = std::move(bb);
  r.model.input_spec = source.input_spec;
  r.model.input_spec.labels = labels;
  r.model.metadata = source.metadata;
  r.model.metadata.description = fmt::format("{} classes on the features of {} ({})", classes,
                                             source.metadata.name.empty() ? "a pretrained model" : source.metadata.name,
                                             r.feature_name);
  r.backbone = std::move(backbone);
  return r;
}

}  // namespace pcv::train
