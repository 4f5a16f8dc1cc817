#include "zoo/zoo.h"

#include <fmt/core.h>

#include <algorithm>
#include <cmath>
#include <random>

namespace pcv::zoo {
namespace {

using namespace pcv::ir;

class Builder {
 public:
  Builder(Graph* g, uint64_t seed) : g_(g), rng_(seed) {}

  ValueId weights(const std::string& name, Shape shape, float stddev, bool uniform) {
    Tensor t(DType::kF32, shape);
    float* w = t.data<float>();
    const int64_t n = t.num_elements();
    if (uniform) {
      std::uniform_real_distribution<float> d(-stddev, stddev);
      for (int64_t i = 0; i < n; ++i) w[i] = d(rng_);
    } else {
      std::normal_distribution<float> d(0.f, stddev);
      for (int64_t i = 0; i < n; ++i) w[i] = d(rng_);
    }
    return g_->add_constant(name, std::move(t), {}, /*trainable=*/true);
  }
  ValueId filled(const std::string& name, int64_t n, float value, bool trainable) {
    Tensor t(DType::kF32, {n});
    std::fill_n(t.data<float>(), n, value);
    return g_->add_constant(name, std::move(t), {}, trainable);
  }

  // conv (+ bias when no batch norm) (+ batch norm) (+ activation).
  ValueId conv(ValueId x, const std::string& name, int64_t in_c, int64_t out_c, int k, int stride,
               int groups, Padding padding, bool batch_norm, Activation act) {
    const int64_t fan_in = k * k * (in_c / groups);
    ValueId w = weights(name + "/weights", {out_c, k, k, in_c / groups},
                        std::sqrt(2.0f / static_cast<float>(fan_in)), false);
    std::vector<ValueId> in{x, w};
    if (!batch_norm) in.push_back(filled(name + "/bias", out_c, 0.f, true));
    Conv2dAttrs a;
    a.stride_h = a.stride_w = stride;
    a.groups = groups;
    a.padding = padding;
    ValueId y = g_->add_node(OpType::kConv2d, name, in, a);
    if (batch_norm) {
      BatchNormAttrs bn;
      bn.epsilon = 1e-3f;
      y = g_->add_node(OpType::kBatchNorm, name + "/bn",
                       {y, filled(name + "/bn/gamma", out_c, 1.f, true),
                        filled(name + "/bn/beta", out_c, 0.f, true),
                        filled(name + "/bn/mean", out_c, 0.f, false),
                        filled(name + "/bn/variance", out_c, 1.f, false)},
                       bn);
    }
    // The activation stays a separate node after batch norm (the exporters fold and fuse).
    if (act == Activation::kRelu) y = g_->add_node(OpType::kRelu, name + "/relu", {y});
    if (act == Activation::kRelu6) y = g_->add_node(OpType::kRelu6, name + "/relu6", {y});
    return y;
  }

  ValueId dense(ValueId x, const std::string& name, int64_t in, int64_t out, Activation act) {
    const float limit = std::sqrt(6.0f / static_cast<float>(in + out));
    ValueId w = weights(name + "/weights", {out, in}, limit, true);
    FullyConnectedAttrs a;
    a.activation = act;
    return g_->add_node(OpType::kFullyConnected, name, {x, w, filled(name + "/bias", out, 0.f, true)}, a);
  }

 private:
  Graph* g_;
  std::mt19937_64 rng_;
};

int make_divisible(float v, int divisor = 8) {
  int nv = std::max(divisor, static_cast<int>(v + divisor / 2.0f) / divisor * divisor);
  if (nv < 0.9f * v) nv += divisor;
  return nv;
}

Status build_simple_cnn(const ZooOptions& o, Graph& g) {
  Builder b(&g, o.seed);
  ValueId x = g.add_input("input", DType::kF32, {o.batch, o.size, o.size, o.channels});
  const int64_t widths[] = {32, 64, 128, 128};
  int64_t c = o.channels;
  int spatial = o.size;
  int blocks = 0;
  for (int i = 0; i < 4; ++i) {
    // conv3x3 VALID then pool 2x2: keep at least 3x3 left for the next block's conv.
    if ((spatial - 2) / 2 < 1 || (i > 0 && spatial < 6)) break;
    const std::string name = fmt::format("conv{}", i + 1);
    x = b.conv(x, name, c, widths[i], 3, 1, 1, Padding::kValid, false, Activation::kRelu);
    Pool2dAttrs p;
    x = g.add_node(OpType::kMaxPool, fmt::format("pool{}", i + 1), {x}, p);
    c = widths[i];
    spatial = (spatial - 2) / 2;
    ++blocks;
  }
  if (blocks == 0) return invalid_argument(fmt::format("simple_cnn needs an input of at least 4x4, got {}", o.size));
  x = g.add_node(OpType::kFlatten, "flatten", {x});
  const int64_t features = static_cast<int64_t>(spatial) * spatial * c;
  x = b.dense(x, "dense1", features, 512, Activation::kRelu);
  DropoutAttrs d;
  d.rate = 0.5f;
  x = g.add_node(OpType::kDropout, "dropout", {x}, d);
  x = b.dense(x, "logits", 512, o.classes, Activation::kNone);
  x = g.add_node(OpType::kSoftmax, "probabilities", {x});
  g.mark_output(x);
  return Status::ok();
}

Status build_mobilenet_v2(const ZooOptions& o, Graph& g) {
  if (o.size < 32) return invalid_argument(fmt::format("mobilenet_v2 needs an input of at least 32x32, got {}", o.size));
  if (!(o.width > 0.f && o.width <= 4.f)) return invalid_argument(fmt::format("width multiplier {} must be in (0, 4]", o.width));
  Builder b(&g, o.seed);
  ValueId x = g.add_input("input", DType::kF32, {o.batch, o.size, o.size, o.channels});
  int64_t c = make_divisible(32 * o.width);
  x = b.conv(x, "conv1", o.channels, c, 3, 2, 1, Padding::kSame, true, Activation::kRelu6);
  struct Stage { int t, c, n, s; };
  const Stage stages[] = {{1, 16, 1, 1}, {6, 24, 2, 2}, {6, 32, 3, 2}, {6, 64, 4, 2},
                          {6, 96, 3, 1}, {6, 160, 3, 2}, {6, 320, 1, 1}};
  int block = 0;
  for (const Stage& st : stages) {
    const int64_t out_c = make_divisible(st.c * o.width);
    for (int i = 0; i < st.n; ++i) {
      const int stride = i == 0 ? st.s : 1;
      const std::string name = fmt::format("block{}", block++);
      ValueId y = x;
      const int64_t hidden = c * st.t;
      if (st.t != 1) y = b.conv(y, name + "/expand", c, hidden, 1, 1, 1, Padding::kSame, true, Activation::kRelu6);
      y = b.conv(y, name + "/depthwise", hidden, hidden, 3, stride, static_cast<int>(hidden), Padding::kSame,
                 true, Activation::kRelu6);
      y = b.conv(y, name + "/project", hidden, out_c, 1, 1, 1, Padding::kSame, true, Activation::kNone);
      if (stride == 1 && c == out_c) y = g.add_node(OpType::kAdd, name + "/add", {x, y}, EltwiseAttrs{});
      x = y;
      c = out_c;
    }
  }
  const int64_t last = o.width > 1.f ? make_divisible(1280 * o.width) : 1280;
  x = b.conv(x, "conv_last", c, last, 1, 1, 1, Padding::kSame, true, Activation::kRelu6);
  MeanAttrs m;
  m.axes = {1, 2};
  x = g.add_node(OpType::kMean, "global_pool", {x}, m);
  x = b.dense(x, "logits", last, o.classes, Activation::kNone);
  x = g.add_node(OpType::kSoftmax, "probabilities", {x});
  g.mark_output(x);
  return Status::ok();
}

}  // namespace

const std::vector<std::string>& zoo_architectures() {
  static const std::vector<std::string> archs = {"simple_cnn", "mobilenet_v2"};
  return archs;
}

Expected<ir::Model> create_model(const ZooOptions& o) {
  if (o.size < 1 || o.size > 4096) return invalid_argument(fmt::format("--size {} must be in 1..4096", o.size));
  if (o.classes < 2 || o.classes > 100000) return invalid_argument(fmt::format("--classes {} must be in 2..100000", o.classes));
  if (o.channels != 1 && o.channels != 3) return invalid_argument(fmt::format("--channels {} must be 1 or 3", o.channels));
  if (o.batch < 1 || o.batch > 4096) return invalid_argument(fmt::format("batch {} must be in 1..4096", o.batch));
  if (!o.labels.empty() && static_cast<int>(o.labels.size()) != o.classes) {
    return invalid_argument(fmt::format("{} labels given for {} classes", o.labels.size(), o.classes));
  }
  ir::Model model;
  if (o.arch == "simple_cnn") {
    PCV_RETURN_IF_ERROR(build_simple_cnn(o, model.graph));
    model.input_spec.mean = {0.f, 0.f, 0.f};
    model.input_spec.std = {255.f, 255.f, 255.f};
  } else if (o.arch == "mobilenet_v2") {
    PCV_RETURN_IF_ERROR(build_mobilenet_v2(o, model.graph));
    model.input_spec.mean = {127.5f, 127.5f, 127.5f};
    model.input_spec.std = {127.5f, 127.5f, 127.5f};
  } else {
    return invalid_argument(fmt::format("unknown architecture '{}' (known: simple_cnn, mobilenet_v2)", o.arch));
  }
  PCV_RETURN_IF_ERROR(ir::infer_shapes(model.graph));
  model.input_spec.height = o.size;
  model.input_spec.width = o.size;
  model.input_spec.channels = o.channels;
  model.input_spec.color = o.channels == 1 ? ir::ColorOrder::kGray : ir::ColorOrder::kRGB;
  model.input_spec.labels = o.labels;
  if (model.input_spec.labels.empty()) {
    for (int i = 0; i < o.classes; ++i) model.input_spec.labels.push_back(fmt::format("class{}", i));
  }
  model.metadata.name = o.arch == "mobilenet_v2" && o.width != 1.0f ? fmt::format("{}_{:g}_{}", o.arch, o.width, o.size)
                                                                   : fmt::format("{}_{}", o.arch, o.size);
  model.metadata.description = fmt::format("{} image classifier, {} classes, {}x{}x{} input", o.arch, o.classes,
                                           o.size, o.size, o.channels);
  model.metadata.version = "1";
  model.metadata.author = "pocketcv";
  return model;
}

int64_t count_macs(const ir::Graph& g) {
  int64_t macs = 0;
  for (const Node& n : g.nodes) {
    const Shape& out = g.value(n.outputs[0]).shape;
    if (n.op == OpType::kConv2d) {
      const Shape& w = g.value(n.inputs[1]).shape;
      macs += num_elements(out) * w[1] * w[2] * w[3];
    } else if (n.op == OpType::kFullyConnected) {
      const Shape& w = g.value(n.inputs[1]).shape;
      macs += out[0] * w[0] * w[1];
    }
  }
  return macs;
}

}  // namespace pcv::zoo
