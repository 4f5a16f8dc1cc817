#include <fmt/core.h>

#include <algorithm>

#include "ir/graph.h"

namespace pcv::ir {
namespace {

Status node_error(const Node& n, const std::string& what) {
  return invalid_model(fmt::format("node '{}' ({}): {}", n.name, op_name(n.op), what));
}

const Shape* input_shape(const Graph& g, const Node& n, size_t i) {
  if (i >= n.inputs.size() || n.inputs[i] == kNoValue) return nullptr;
  return &g.value(n.inputs[i]).shape;
}

// Numpy broadcasting of two shapes, right-aligned.
Expected<Shape> broadcast(const Shape& a, const Shape& b) {
  const size_t rank = std::max(a.size(), b.size());
  Shape out(rank);
  for (size_t i = 0; i < rank; ++i) {
    const int64_t da = i < rank - a.size() ? 1 : a[i - (rank - a.size())];
    const int64_t db = i < rank - b.size() ? 1 : b[i - (rank - b.size())];
    if (da != db && da != 1 && db != 1) {
      return invalid_model(fmt::format("shapes {} and {} do not broadcast", shape_to_string(a),
                                       shape_to_string(b)));
    }
    out[i] = da == 1 ? db : da;
  }
  return out;
}

int64_t norm_axis(int64_t axis, size_t rank) { return axis < 0 ? axis + static_cast<int64_t>(rank) : axis; }

Expected<Shape> infer_node(const Graph& g, const Node& n) {
  const Shape* x = input_shape(g, n, 0);
  if (x == nullptr) return node_error(n, "missing first input");
  switch (n.op) {
    case OpType::kConv2d: {
      const auto& a = n.attr<Conv2dAttrs>();
      const Shape* w = input_shape(g, n, 1);
      if (x->size() != 4) return node_error(n, "input must be NHWC (rank 4), got " + shape_to_string(*x));
      if (!w || w->size() != 4) return node_error(n, "filter must be OHWI (rank 4)");
      if (a.groups < 1 || (*x)[3] % a.groups != 0 || (*w)[0] % a.groups != 0) {
        return node_error(n, fmt::format("groups={} must divide input channels {} and output channels {}",
                                         a.groups, (*x)[3], (*w)[0]));
      }
      if ((*w)[3] * a.groups != (*x)[3]) {
        return node_error(n, fmt::format("filter {} expects {} input channels, input has {}",
                                         shape_to_string(*w), (*w)[3] * a.groups, (*x)[3]));
      }
      if (const Shape* b = input_shape(g, n, 2); b && (b->size() != 1 || (*b)[0] != (*w)[0])) {
        return node_error(n, "bias must have shape (out_channels,)");
      }
      if (a.stride_h < 1 || a.stride_w < 1 || a.dilation_h < 1 || a.dilation_w < 1) {
        return node_error(n, "strides and dilations must be >= 1");
      }
      auto p = resolve_padding(a.padding, static_cast<int>((*x)[1]), static_cast<int>((*x)[2]),
                               static_cast<int>((*w)[1]), static_cast<int>((*w)[2]), a.stride_h,
                               a.stride_w, a.dilation_h, a.dilation_w, a.pad_top, a.pad_bottom,
                               a.pad_left, a.pad_right);
      if (!p) return node_error(n, p.status().message());
      return Shape{(*x)[0], p->out_h, p->out_w, (*w)[0]};
    }
    case OpType::kFullyConnected: {
      const Shape* w = input_shape(g, n, 1);
      if (x->size() != 2) return node_error(n, "input must be (batch, features), got " + shape_to_string(*x));
      if (!w || w->size() != 2 || (*w)[1] != (*x)[1]) {
        return node_error(n, fmt::format("weights must be (out, {}), got {}", (*x)[1],
                                         w ? shape_to_string(*w) : "none"));
      }
      if (const Shape* b = input_shape(g, n, 2); b && (b->size() != 1 || (*b)[0] != (*w)[0])) {
        return node_error(n, "bias must have shape (out,)");
      }
      return Shape{(*x)[0], (*w)[0]};
    }
    case OpType::kBatchNorm: {
      if (x->empty()) return node_error(n, "input must have a channel axis");
      for (size_t i = 1; i < 5; ++i) {
        const Shape* p = input_shape(g, n, i);
        if (!p || p->size() != 1 || (*p)[0] != x->back()) {
          return node_error(n, fmt::format("parameter {} must have shape ({},)", i, x->back()));
        }
      }
      return *x;
    }
    case OpType::kAdd:
    case OpType::kMul: {
      const Shape* y = input_shape(g, n, 1);
      if (!y) return node_error(n, "missing second input");
      auto s = broadcast(*x, *y);
      if (!s) return node_error(n, s.status().message());
      return s;
    }
    case OpType::kConcat: {
      const auto& a = n.attr<ConcatAttrs>();
      const int64_t axis = norm_axis(a.axis, x->size());
      if (axis < 0 || axis >= static_cast<int64_t>(x->size())) return node_error(n, "axis out of range");
      Shape out = *x;
      for (size_t i = 1; i < n.inputs.size(); ++i) {
        const Shape* y = input_shape(g, n, i);
        if (!y || y->size() != x->size()) return node_error(n, "inputs must have the same rank");
        for (size_t d = 0; d < x->size(); ++d) {
          if (static_cast<int64_t>(d) == axis) continue;
          if ((*y)[d] != (*x)[d]) return node_error(n, "inputs differ outside the concat axis");
        }
        out[static_cast<size_t>(axis)] += (*y)[static_cast<size_t>(axis)];
      }
      return out;
    }
    case OpType::kMaxPool:
    case OpType::kAveragePool: {
      const auto& a = n.attr<Pool2dAttrs>();
      if (x->size() != 4) return node_error(n, "input must be NHWC (rank 4)");
      if (a.kernel_h < 1 || a.kernel_w < 1 || a.stride_h < 1 || a.stride_w < 1) {
        return node_error(n, "kernel and stride must be >= 1");
      }
      auto p = resolve_padding(a.padding, static_cast<int>((*x)[1]), static_cast<int>((*x)[2]),
                               a.kernel_h, a.kernel_w, a.stride_h, a.stride_w, 1, 1, a.pad_top,
                               a.pad_bottom, a.pad_left, a.pad_right);
      if (!p) return node_error(n, p.status().message());
      return Shape{(*x)[0], p->out_h, p->out_w, (*x)[3]};
    }
    case OpType::kMean: {
      const auto& a = n.attr<MeanAttrs>();
      std::vector<bool> reduced(x->size(), false);
      for (int64_t ax : a.axes) {
        const int64_t r = norm_axis(ax, x->size());
        if (r < 0 || r >= static_cast<int64_t>(x->size())) return node_error(n, "axis out of range");
        reduced[static_cast<size_t>(r)] = true;
      }
      Shape out;
      for (size_t d = 0; d < x->size(); ++d) {
        if (!reduced[d]) out.push_back((*x)[d]);
        else if (a.keep_dims) out.push_back(1);
      }
      return out;
    }
    case OpType::kReshape: {
      const auto& a = n.attr<ReshapeAttrs>();
      const int64_t total = num_elements(*x);
      Shape out = a.shape;
      int infer = -1;
      int64_t known = 1;
      for (size_t i = 0; i < out.size(); ++i) {
        if (out[i] == -1) {
          if (infer >= 0) return node_error(n, "more than one -1 in the new shape");
          infer = static_cast<int>(i);
        } else if (out[i] < 0) {
          return node_error(n, "negative dimension in the new shape");
        } else {
          known *= out[i];
        }
      }
      if (infer >= 0) {
        if (known == 0 || total % known != 0) return node_error(n, "cannot infer the -1 dimension");
        out[static_cast<size_t>(infer)] = total / known;
      }
      if (num_elements(out) != total) {
        return node_error(n, fmt::format("cannot reshape {} into {}", shape_to_string(*x),
                                         shape_to_string(a.shape)));
      }
      return out;
    }
    case OpType::kFlatten: {
      if (x->empty()) return node_error(n, "input must have a batch axis");
      int64_t rest = 1;
      for (size_t d = 1; d < x->size(); ++d) rest *= (*x)[d];
      return Shape{(*x)[0], rest};
    }
    case OpType::kPad: {
      const auto& a = n.attr<PadAttrs>();
      if (a.pads.size() != 2 * x->size()) {
        return node_error(n, fmt::format("pads needs {} entries (before, after per dim)", 2 * x->size()));
      }
      Shape out = *x;
      for (size_t d = 0; d < x->size(); ++d) {
        if (a.pads[2 * d] < 0 || a.pads[2 * d + 1] < 0) return node_error(n, "negative padding");
        out[d] += a.pads[2 * d] + a.pads[2 * d + 1];
      }
      return out;
    }
    case OpType::kSoftmax:
      if (x->empty()) return node_error(n, "softmax needs rank >= 1");
      return *x;
    case OpType::kRelu:
    case OpType::kRelu6:
    case OpType::kLeakyRelu:
    case OpType::kHardSwish:
    case OpType::kSigmoid:
    case OpType::kDropout:
    case OpType::kQuantize:
    case OpType::kDequantize:
      return *x;
  }
  return node_error(n, "unknown op");
}

}  // namespace

Expected<Padding2d> resolve_padding(Padding mode, int in_h, int in_w, int kernel_h, int kernel_w,
                                    int stride_h, int stride_w, int dilation_h, int dilation_w,
                                    int pad_top, int pad_bottom, int pad_left, int pad_right) {
  Padding2d p;
  const int eff_h = (kernel_h - 1) * dilation_h + 1;
  const int eff_w = (kernel_w - 1) * dilation_w + 1;
  switch (mode) {
    case Padding::kSame: {
      p.out_h = (in_h + stride_h - 1) / stride_h;
      p.out_w = (in_w + stride_w - 1) / stride_w;
      const int total_h = std::max((p.out_h - 1) * stride_h + eff_h - in_h, 0);
      const int total_w = std::max((p.out_w - 1) * stride_w + eff_w - in_w, 0);
      p.pad_top = total_h / 2;
      p.pad_bottom = total_h - p.pad_top;
      p.pad_left = total_w / 2;
      p.pad_right = total_w - p.pad_left;
      break;
    }
    case Padding::kValid:
      p.out_h = in_h >= eff_h ? (in_h - eff_h) / stride_h + 1 : 0;
      p.out_w = in_w >= eff_w ? (in_w - eff_w) / stride_w + 1 : 0;
      break;
    case Padding::kExplicit: {
      if (pad_top < 0 || pad_bottom < 0 || pad_left < 0 || pad_right < 0) {
        return invalid_model("negative padding");
      }
      const int h = in_h + pad_top + pad_bottom;
      const int w = in_w + pad_left + pad_right;
      p.out_h = h >= eff_h ? (h - eff_h) / stride_h + 1 : 0;
      p.out_w = w >= eff_w ? (w - eff_w) / stride_w + 1 : 0;
      p.pad_top = pad_top;
      p.pad_bottom = pad_bottom;
      p.pad_left = pad_left;
      p.pad_right = pad_right;
      break;
    }
  }
  if (p.out_h < 1 || p.out_w < 1) {
    return invalid_model(fmt::format("window {}x{} (dilated {}x{}) does not fit the {}x{} input",
                                     kernel_h, kernel_w, eff_h, eff_w, in_h, in_w));
  }
  return p;
}

Status infer_shapes(Graph& graph) {
  for (const Node& n : graph.nodes) {
    for (ValueId in : n.inputs) {
      if (in != kNoValue && (in < 0 || static_cast<size_t>(in) >= graph.values.size())) {
        return node_error(n, fmt::format("input id {} out of range", in));
      }
    }
    if (n.outputs.size() != 1 || n.outputs[0] < 0 ||
        static_cast<size_t>(n.outputs[0]) >= graph.values.size()) {
      return node_error(n, "must have exactly one valid output");
    }
    if (!attrs_match_op(n.op, n.attrs)) return node_error(n, "attributes of the wrong kind");
    auto shape = infer_node(graph, n);
    if (!shape) return shape.status();
    if (!checked_num_elements(*shape)) {
      return node_error(n, "output shape " + shape_to_string(*shape) + " is too large");
    }
    graph.value(n.outputs[0]).shape = std::move(shape).value();
  }
  return Status::ok();
}

}  // namespace pcv::ir
