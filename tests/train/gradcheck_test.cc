// Finite-difference gradchecks: every backward of the gradient table against central
// differences of L = sum(output * R) (R fixed random), per op, over random shapes with
// stride 2, groups, depthwise multipliers, SAME/VALID/explicit padding and dilation; then
// whole zoo models. Checked: every parameter gradient and the input gradient, on up to
// kSamples random elements per tensor plus one random direction over the whole tensor.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "base/thread_pool.h"
#include "ir/graph.h"
#include "train/loss.h"
#include "train/program.h"
#include "zoo/zoo.h"

namespace pcv::train {
namespace {

using namespace pcv::ir;

Tensor random_tensor(Shape shape, std::mt19937& rng, float lo = -1.f, float hi = 1.f) {
  Tensor t(DType::kF32, std::move(shape));
  std::uniform_real_distribution<float> d(lo, hi);
  for (int64_t i = 0; i < t.num_elements(); ++i) t.data<float>()[i] = d(rng);
  return t;
}

struct CheckOptions {
  Mode mode = Mode::kTrain;
  int batch = 2;
  float input_lo = -1.f, input_hi = 1.f;
  float eps = 1e-3f;
  double tolerance = 3e-2;
  bool fast = true;
  // Chains of kinked ops (relu, max) make a few central differences straddle a kink (the
  // difference then mixes two slopes): deep-model checks allow this fraction of misses.
  double allowed_miss_fraction = 0.0;
  bool logits = false;  // drop a final softmax (ProgramOptions::loss_head)
  int samples = 12;     // elements checked per tensor (plus one random direction)
  int tensor_stride = 1;  // check every k-th parameter tensor (big models)
};

double loss_of(Program& p, const std::vector<float>& r, Mode mode) {
  p.forward(mode, p.batch(), 7);
  const float* y = p.output(0);
  double l = 0;
  for (size_t i = 0; i < r.size(); ++i) l += static_cast<double>(y[i]) * r[i];
  return l;
}

// Checks all gradients of `model`; returns the number of checked elements.
int gradcheck(const Model& model, const CheckOptions& o, const std::string& what) {
  ProgramOptions po;
  po.batch = o.batch;
  po.loss_head = o.logits;
  po.input_grad = true;
  po.fast_kernels = o.fast;
  auto prog = Program::create(model, po, nullptr);
  EXPECT_TRUE(prog.has_value()) << what << ": " << prog.status().to_string();
  if (!prog.has_value()) return 0;
  Program& p = **prog;
  std::mt19937 rng(1234);
  std::uniform_real_distribution<float> din(o.input_lo, o.input_hi);
  const size_t in_elems = p.input_elems_per_sample() * static_cast<size_t>(o.batch);
  for (size_t i = 0; i < in_elems; ++i) p.input()[i] = din(rng);
  const size_t out_elems = p.output_elems_per_sample(0) * static_cast<size_t>(o.batch);
  std::vector<float> r(out_elems);
  std::uniform_real_distribution<float> dr(-1.f, 1.f);
  for (float& v : r) v = dr(rng);

  loss_of(p, r, o.mode);
  // Rounding noise of L: float outputs of a deep graph carry tens of ulps of rounding error; a
  // difference of two such sums over 2 eps has about this much noise (gradients below it
  // cannot be checked element-wise).
  double noise = 0;
  for (size_t i = 0; i < out_elems; ++i) noise += std::fabs(static_cast<double>(p.output(0)[i]) * r[i]);
  noise = 32 * 6e-8 * noise / (2.0 * o.eps);
  float* dy = p.output_grad(0);
  std::copy(r.begin(), r.end(), dy);
  p.backward();

  struct Target {
    std::string name;
    float* data;
    std::vector<float> grad;
  };
  std::vector<Target> targets;
  targets.push_back({"input", p.input(), std::vector<float>(p.input_grad(), p.input_grad() + in_elems)});
  for (Parameter& prm : p.parameters()) {
    targets.push_back({prm.name, prm.data, std::vector<float>(prm.grad, prm.grad + prm.size)});
  }
  const int kSamples = o.samples;
  int checked = 0, misses = 0;
  std::string misses_text;
  for (size_t ti = 0; ti < targets.size(); ++ti) {
    if (ti > 0 && ti % static_cast<size_t>(o.tensor_stride) != 0) continue;
    Target& t = targets[ti];
    const size_t n = t.grad.size();
    double scale = 0;
    for (float g : t.grad) scale = std::max(scale, static_cast<double>(std::fabs(g)));
    const double floor = std::max(1e-2 * scale + 1e-4, noise / o.tolerance);
    std::uniform_int_distribution<size_t> pick(0, n - 1);
    for (int s = 0; s < kSamples && s < static_cast<int>(n); ++s) {
      const size_t i = n <= static_cast<size_t>(kSamples) ? static_cast<size_t>(s) : pick(rng);
      const float saved = t.data[i];
      t.data[i] = saved + o.eps;
      p.weights_changed();
      const double lp = loss_of(p, r, o.mode);
      t.data[i] = saved - o.eps;
      p.weights_changed();
      const double lm = loss_of(p, r, o.mode);
      t.data[i] = saved;
      p.weights_changed();
      const double num = (lp - lm) / (2.0 * o.eps);
      const double ana = t.grad[i];
      const double err = std::fabs(num - ana) / std::max({std::fabs(num), std::fabs(ana), floor});
      if (err >= o.tolerance) {
        ++misses;
        misses_text += fmt::format("  d/d {}[{}] numeric {:.6g} analytic {:.6g}\n", t.name, i, num, ana);
      }
      ++checked;
    }
    // One random direction over the whole tensor.
    std::vector<float> u(n), saved(t.data, t.data + n);
    double dot = 0;
    for (size_t i = 0; i < n; ++i) {
      u[i] = dr(rng);
      dot += static_cast<double>(u[i]) * t.grad[i];
    }
    for (size_t i = 0; i < n; ++i) t.data[i] = saved[i] + o.eps * u[i];
    p.weights_changed();
    const double lp = loss_of(p, r, o.mode);
    for (size_t i = 0; i < n; ++i) t.data[i] = saved[i] - o.eps * u[i];
    p.weights_changed();
    const double lm = loss_of(p, r, o.mode);
    std::copy(saved.begin(), saved.end(), t.data);
    p.weights_changed();
    const double num = (lp - lm) / (2.0 * o.eps);
    const double err = std::fabs(num - dot) / std::max({std::fabs(num), std::fabs(dot), 1e-3, noise / o.tolerance});
    if (err >= o.tolerance) {
      ++misses;
      misses_text += fmt::format("  direction over {} numeric {:.6g} analytic {:.6g}\n", t.name, num, dot);
    }
    ++checked;
  }
  EXPECT_LE(misses, static_cast<int>(o.allowed_miss_fraction * checked))
      << what << ": " << misses << " of " << checked << " checks missed\n" << misses_text;
  return checked;
}

// A one-node model: x (batch, shape...) -> op(x, constants...) -> output.
struct OneOp {
  Model model;
  std::mt19937 rng{99};
  ValueId x;
  explicit OneOp(Shape in) { x = model.graph.add_input("x", DType::kF32, std::move(in)); }
  ValueId param(const std::string& name, Shape s, float lo = -1.f, float hi = 1.f) {
    return model.graph.add_constant(name, random_tensor(std::move(s), rng, lo, hi), {}, true);
  }
  ValueId constant(const std::string& name, Shape s, float lo, float hi) {
    return model.graph.add_constant(name, random_tensor(std::move(s), rng, lo, hi), {}, false);
  }
  Model& finish(ValueId y) {
    model.graph.mark_output(y);
    const Status s = infer_shapes(model.graph);
    EXPECT_TRUE(s.is_ok()) << s.to_string();
    return model;
  }
};

struct ConvCase {
  int h, w, in_c, out_c, k, stride, dilation, groups;
  Padding padding;
  Activation act;
  bool bias;
};

class ConvGradcheck : public ::testing::TestWithParam<ConvCase> {};

TEST_P(ConvGradcheck, Conv2d) {
  const ConvCase c = GetParam();
  for (bool fast : {true, false}) {
    OneOp m({2, c.h, c.w, c.in_c});
    Conv2dAttrs a;
    a.stride_h = a.stride_w = c.stride;
    a.dilation_h = a.dilation_w = c.dilation;
    a.groups = c.groups;
    a.padding = c.padding;
    if (c.padding == Padding::kExplicit) {
      a.pad_top = 1; a.pad_bottom = 0; a.pad_left = 2; a.pad_right = 1;
    }
    a.activation = c.act;
    std::vector<ValueId> in{m.x, m.param("w", {c.out_c, c.k, c.k, c.in_c / c.groups})};
    if (c.bias) in.push_back(m.param("b", {c.out_c}));
    ValueId y = m.model.graph.add_node(OpType::kConv2d, "conv", in, a);
    CheckOptions o;
    o.fast = fast;
    EXPECT_GT(gradcheck(m.finish(y), o, fast ? "conv2d fast" : "conv2d ref"), 0);
  }
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, ConvGradcheck,
    ::testing::Values(ConvCase{5, 5, 3, 4, 3, 1, 1, 1, Padding::kSame, Activation::kNone, true},
                      ConvCase{7, 6, 4, 6, 3, 2, 1, 1, Padding::kSame, Activation::kNone, true},
                      ConvCase{6, 7, 2, 3, 3, 1, 1, 1, Padding::kValid, Activation::kRelu, true},
                      ConvCase{7, 7, 4, 4, 3, 2, 1, 4, Padding::kSame, Activation::kRelu6, true},  // depthwise
                      ConvCase{6, 6, 3, 6, 3, 1, 1, 3, Padding::kSame, Activation::kNone, false},  // dw x2
                      ConvCase{8, 8, 6, 4, 3, 1, 1, 2, Padding::kExplicit, Activation::kNone, true},
                      ConvCase{9, 9, 2, 3, 3, 1, 2, 1, Padding::kSame, Activation::kNone, true},  // dilated
                      ConvCase{5, 5, 5, 7, 1, 1, 1, 1, Padding::kSame, Activation::kNone, true},  // 1x1
                      ConvCase{6, 6, 4, 3, 1, 2, 1, 1, Padding::kValid, Activation::kNone, false}));

TEST(Gradcheck, FullyConnected) {
  for (bool fast : {true, false}) {
    OneOp m({3, 7});
    FullyConnectedAttrs a;
    ValueId y = m.model.graph.add_node(OpType::kFullyConnected, "fc", {m.x, m.param("w", {5, 7}), m.param("b", {5})}, a);
    CheckOptions o;
    o.batch = 3;
    o.fast = fast;
    gradcheck(m.finish(y), o, "fully_connected");
  }
  OneOp m({2, 6});
  FullyConnectedAttrs a;
  a.activation = Activation::kRelu;
  ValueId y = m.model.graph.add_node(OpType::kFullyConnected, "fc", {m.x, m.param("w", {4, 6}), m.param("b", {4})}, a);
  gradcheck(m.finish(y), {}, "fully_connected relu");
}

TEST(Gradcheck, BatchNormTrainAndEval) {
  for (Mode mode : {Mode::kTrain, Mode::kEval}) {
    OneOp m({2, 3, 3, 4});
    ValueId y = m.model.graph.add_node(
        OpType::kBatchNorm, "bn",
        {m.x, m.param("gamma", {4}, 0.5f, 1.5f), m.param("beta", {4}), m.constant("mean", {4}, -0.2f, 0.2f),
         m.constant("var", {4}, 0.5f, 1.5f)});
    CheckOptions o;
    o.mode = mode;
    o.input_lo = -2.f;
    o.input_hi = 3.f;
    gradcheck(m.finish(y), o, mode == Mode::kTrain ? "batch_norm train" : "batch_norm eval");
  }
}

TEST(Gradcheck, Activations) {
  struct A { OpType op; float lo, hi; };
  for (A a : {A{OpType::kRelu, -1.f, 1.f}, A{OpType::kRelu6, -2.f, 8.f}, A{OpType::kLeakyRelu, -1.f, 1.f},
              A{OpType::kHardSwish, -5.f, 5.f}, A{OpType::kSigmoid, -3.f, 3.f}, A{OpType::kSoftmax, -2.f, 2.f}}) {
    OneOp m({2, 3, 2, 5});
    ValueId y = m.model.graph.add_node(a.op, "act", {m.x});
    CheckOptions o;
    o.input_lo = a.lo;
    o.input_hi = a.hi;
    gradcheck(m.finish(y), o, op_name(a.op));
  }
}

TEST(Gradcheck, AddMulBroadcast) {
  for (OpType op : {OpType::kAdd, OpType::kMul}) {
    {
      OneOp m({2, 3, 4, 5});
      ValueId y = m.model.graph.add_node(op, "op", {m.x, m.param("c", {5})}, EltwiseAttrs{});
      gradcheck(m.finish(y), {}, std::string(op_name(op)) + " channel broadcast");
    }
    {
      OneOp m({2, 3, 4, 5});
      ValueId y = m.model.graph.add_node(op, "op", {m.param("c", {1, 4, 1}), m.x}, EltwiseAttrs{});
      gradcheck(m.finish(y), {}, std::string(op_name(op)) + " middle broadcast");
    }
    {
      // Same shape, both from the input (a residual), fused relu.
      OneOp m({2, 3, 3, 4});
      ValueId h = m.model.graph.add_node(OpType::kMul, "scale", {m.x, m.param("s", {4})}, EltwiseAttrs{});
      EltwiseAttrs ea;
      ea.activation = Activation::kRelu;
      ValueId y = m.model.graph.add_node(op, "op", {m.x, h}, ea);
      gradcheck(m.finish(y), {}, std::string(op_name(op)) + " residual");
    }
  }
}

TEST(Gradcheck, ConcatPadMeanReshapeFlatten) {
  {
    OneOp m({2, 3, 3, 2});
    ValueId h = m.model.graph.add_node(OpType::kMul, "scale", {m.x, m.param("s", {2})}, EltwiseAttrs{});
    ConcatAttrs ca;
    ca.axis = 3;
    ValueId y = m.model.graph.add_node(OpType::kConcat, "cat", {m.x, h, m.x}, ca);
    gradcheck(m.finish(y), {}, "concat");
  }
  {
    OneOp m({2, 3, 4, 2});
    PadAttrs pa;
    pa.pads = {0, 0, 1, 2, 0, 1, 1, 0};
    pa.value = 0.5f;
    ValueId y = m.model.graph.add_node(OpType::kPad, "pad", {m.x}, pa);
    gradcheck(m.finish(y), {}, "pad");
  }
  for (bool keep : {false, true}) {
    OneOp m({2, 4, 3, 5});
    MeanAttrs ma;
    ma.axes = {1, 2};
    ma.keep_dims = keep;
    ValueId y = m.model.graph.add_node(OpType::kMean, "mean", {m.x}, ma);
    gradcheck(m.finish(y), {}, "mean");
  }
  {
    OneOp m({2, 3, 2, 2});
    ValueId f = m.model.graph.add_node(OpType::kFlatten, "flat", {m.x});
    ReshapeAttrs ra;
    ra.shape = {-1, 3, 4};
    ValueId y = m.model.graph.add_node(OpType::kReshape, "reshape", {f}, ra);
    ValueId z = m.model.graph.add_node(OpType::kMul, "scale", {y, m.param("s", {4})}, EltwiseAttrs{});
    gradcheck(m.finish(z), {}, "flatten+reshape");
  }
}

TEST(Gradcheck, Pools) {
  struct P { OpType op; int k, s; Padding pad; };
  for (P c : {P{OpType::kMaxPool, 2, 2, Padding::kValid}, P{OpType::kMaxPool, 3, 2, Padding::kSame},
              P{OpType::kAveragePool, 2, 2, Padding::kValid}, P{OpType::kAveragePool, 3, 2, Padding::kSame},
              P{OpType::kAveragePool, 3, 1, Padding::kSame}}) {
    OneOp m({2, 7, 6, 3});
    Pool2dAttrs a;
    a.kernel_h = a.kernel_w = c.k;
    a.stride_h = a.stride_w = c.s;
    a.padding = c.pad;
    ValueId y = m.model.graph.add_node(c.op, "pool", {m.x}, a);
    gradcheck(m.finish(y), {}, op_name(c.op));
  }
}

TEST(Gradcheck, DropoutTrainMask) {
  OneOp m({2, 10});
  DropoutAttrs a;
  a.rate = 0.3f;
  ValueId h = m.model.graph.add_node(OpType::kDropout, "drop", {m.x}, a);
  FullyConnectedAttrs fa;
  ValueId y = m.model.graph.add_node(OpType::kFullyConnected, "fc", {h, m.param("w", {3, 10}), m.param("b", {3})}, fa);
  gradcheck(m.finish(y), {}, "dropout");
}

TEST(Gradcheck, SoftmaxCrossEntropyWithSmoothing) {
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> d(-3.f, 3.f);
  const int n = 3, c = 5;
  std::vector<float> z(n * c), g(n * c);
  for (float& v : z) v = d(rng);
  const int32_t labels[n] = {0, 4, 2};
  for (float smoothing : {0.f, 0.1f}) {
    softmax_cross_entropy(n, c, z.data(), labels, smoothing, 1.f / n, g.data());
    for (int i = 0; i < n * c; ++i) {
      const double eps = 1e-3;
      const float saved = z[i];
      z[i] = saved + static_cast<float>(eps);
      const double lp = softmax_cross_entropy(n, c, z.data(), labels, smoothing, 0.f, nullptr).loss_sum / n;
      z[i] = saved - static_cast<float>(eps);
      const double lm = softmax_cross_entropy(n, c, z.data(), labels, smoothing, 0.f, nullptr).loss_sum / n;
      z[i] = saved;
      EXPECT_NEAR((lp - lm) / (2 * eps), g[i], 2e-4) << i;
    }
  }
  // Hand value: uniform logits, 4 classes, no smoothing -> loss log(4) per row.
  const float u[4] = {0.5f, 0.5f, 0.5f, 0.5f};
  const int32_t l0[1] = {2};
  EXPECT_NEAR(softmax_cross_entropy(1, 4, u, l0, 0.f, 1.f, nullptr).loss_sum, std::log(4.0), 1e-9);
}

// conv -> relu -> max_pool -> flatten -> fully_connected: kinks compound, a few misses allowed.
TEST(Gradcheck, ConvReluPoolDenseChain) {
  OneOp m({2, 14, 14, 1});
  Conv2dAttrs a;
  a.padding = Padding::kValid;
  ValueId y = m.model.graph.add_node(OpType::kConv2d, "conv", {m.x, m.param("w", {32, 3, 3, 1}), m.param("b", {32})}, a);
  y = m.model.graph.add_node(OpType::kRelu, "relu", {y});
  y = m.model.graph.add_node(OpType::kMaxPool, "pool", {y}, Pool2dAttrs{});
  y = m.model.graph.add_node(OpType::kFlatten, "flat", {y});
  y = m.model.graph.add_node(OpType::kFullyConnected, "fc", {y, m.param("fw", {5, 1152}), m.param("fb", {5})},
                             FullyConnectedAttrs{});
  CheckOptions o;
  o.allowed_miss_fraction = 0.15;
  o.tolerance = 5e-2;
  gradcheck(m.finish(y), o, "conv-relu-pool-dense");
}

// conv -> batch_norm -> relu6 -> add (residual): the relu6 is fused into the batch norm's clamp
// inside the Program (its output shares the batch norm's buffer).
TEST(Gradcheck, ConvBatchNormRelu6FusedChain) {
  for (Mode mode : {Mode::kTrain, Mode::kEval}) {
    OneOp m({3, 5, 5, 4});
    ValueId y = m.model.graph.add_node(OpType::kConv2d, "conv", {m.x, m.param("w", {4, 3, 3, 4})}, Conv2dAttrs{});
    y = m.model.graph.add_node(
        OpType::kBatchNorm, "bn",
        {y, m.param("gamma", {4}, 0.5f, 1.5f), m.param("beta", {4}), m.constant("mean", {4}, -0.2f, 0.2f),
         m.constant("var", {4}, 0.5f, 1.5f)});
    y = m.model.graph.add_node(OpType::kRelu6, "relu6", {y});
    y = m.model.graph.add_node(OpType::kAdd, "add", {m.x, y}, EltwiseAttrs{});
    CheckOptions o;
    o.mode = mode;
    o.batch = 3;
    o.allowed_miss_fraction = 0.1;
    gradcheck(m.finish(y), o, mode == Mode::kTrain ? "conv-bn-relu6 train" : "conv-bn-relu6 eval");
  }
}

// A value read by a train-mode batch norm and by another op: the batch norm's backward assigns
// the gradient buffer when it runs first and adds to it when the other op's contribution is
// already there (both node orders).
TEST(Gradcheck, BatchNormSharesItsInputsGradient) {
  for (bool bn_first : {true, false}) {
    OneOp m({2, 4, 4, 3});
    ValueId c = m.model.graph.add_node(OpType::kConv2d, "conv", {m.x, m.param("w", {4, 3, 3, 3})}, Conv2dAttrs{});
    auto bn = [&] {
      return m.model.graph.add_node(
          OpType::kBatchNorm, "bn",
          {c, m.param("gamma", {4}, 0.5f, 1.5f), m.param("beta", {4}), m.constant("mean", {4}, -0.2f, 0.2f),
           m.constant("var", {4}, 0.5f, 1.5f)});
    };
    ValueId y1 = kNoValue, y2 = kNoValue;
    if (bn_first) {  // backward: bn after sigmoid (adds)
      y1 = bn();
      y2 = m.model.graph.add_node(OpType::kSigmoid, "sig", {c});
    } else {         // backward: bn before sigmoid (assigns)
      y2 = m.model.graph.add_node(OpType::kSigmoid, "sig", {c});
      y1 = bn();
    }
    ValueId y = m.model.graph.add_node(OpType::kAdd, "add", {y1, y2}, EltwiseAttrs{});
    CheckOptions o;
    o.mode = Mode::kTrain;
    o.batch = 2;
    gradcheck(m.finish(y), o, bn_first ? "conv -> (bn, sigmoid), bn first" : "conv -> (sigmoid, bn), bn last");
  }
}

// Whole zoo models (small inputs): every op the zoo uses, chained. ReLU/ReLU6 are swapped for
// sigmoid so the whole function is smooth: with thousands of kinks a central difference
// straddles some of them and measures a mix of slopes, which would hide real errors in noise.
// (The kinked activations are checked one op at a time above.)
Model smooth(Model m) {
  for (Node& n : m.graph.nodes) {
    if (n.op == OpType::kRelu || n.op == OpType::kRelu6) n.op = OpType::kSigmoid;
    if (n.op == OpType::kFullyConnected) n.attr<FullyConnectedAttrs>().activation = Activation::kNone;
    if (n.op == OpType::kConv2d) n.attr<Conv2dAttrs>().activation = Activation::kNone;
    if (n.op == OpType::kMaxPool) n.op = OpType::kAveragePool;
  }
  return m;
}

TEST(Gradcheck, ZooSimpleCnn) {
  zoo::ZooOptions z;
  z.arch = "simple_cnn";
  z.size = 14;
  z.channels = 1;
  z.classes = 3;
  auto model = zoo::create_model(z);
  ASSERT_TRUE(model.has_value());
  for (bool fast : {true, false}) {
    for (Mode mode : {Mode::kTrain, Mode::kEval}) {
      CheckOptions o;
      o.allowed_miss_fraction = 0.02;
      o.logits = true;
      o.eps = 1e-2f;
      o.fast = fast;
      o.mode = mode;
      gradcheck(smooth(*model), o, fmt::format("simple_cnn (sigmoid) fast={} train={}", fast, mode == Mode::kTrain));
    }
  }
}

// MobileNetV2 at 32x32, width 0.35, 3 classes.
Expected<Model> small_mobilenet_v2() {
  zoo::ZooOptions z;
  z.arch = "mobilenet_v2";
  z.size = 32;
  z.width = 0.35f;
  z.classes = 3;
  return zoo::create_model(z);
}

TEST(Gradcheck, ZooMobileNetV2) {
  auto model = small_mobilenet_v2();
  ASSERT_TRUE(model.has_value());
  for (Mode mode : {Mode::kEval, Mode::kTrain}) {
    CheckOptions o;
    o.batch = mode == Mode::kTrain ? 8 : 4;
    o.samples = 4;
    o.tensor_stride = 3;
    o.mode = mode;
    o.allowed_miss_fraction = 0.02;
    o.logits = true;
    o.eps = 1e-2f;
    gradcheck(smooth(*model), o, mode == Mode::kTrain ? "mobilenet_v2 (sigmoid, train)" : "mobilenet_v2 (sigmoid, eval)");
  }
}

// The batch-norm fusions give the same bits as the batch norm writing its tensors: a batch
// norm's input gradient computed inside the backward of the 1x1 conv before it
// (ProgramOptions::fuse_bn_backward), and a batch norm's output computed by the depthwise conv
// after it (fuse_bn_apply), each alone and both. Compared: the logits of the train forward and
// of an eval forward after it (which writes the output), every parameter gradient and the
// input gradient of MobileNetV2 (real relu6 clamps fused into the batch norms; project convs
// whose batch norm feeds an add), 1 and 2 threads, a second step at a smaller batch than the
// program's.
TEST(Program, BatchNormFusionsAreBitIdentical) {
  auto model = small_mobilenet_v2();
  ASSERT_TRUE(model.has_value());
  for (int threads : {1, 2}) {
    ThreadPool pool(threads);
    std::vector<std::vector<float>> results[8];  // by fusion bits: 1 backward, 2 apply, 4 statistics
    const int kFusions[] = {0, 1, 2, 3, 4, 5, 6, 7};
    for (int fused : kFusions) {
      ProgramOptions po;
      po.batch = 8;
      po.input_grad = true;
      po.fuse_bn_backward = (fused & 1) != 0;
      po.fuse_bn_apply = (fused & 2) != 0;
      po.fuse_bn_apply_1x1_min_bytes = 0;
      po.fuse_bn_stats = (fused & 4) != 0;
      po.fuse_bn_stats_min_bytes = 0;
      auto prog = Program::create(*model, po, &pool);
      ASSERT_TRUE(prog.has_value()) << prog.status().to_string();
      Program& p = **prog;
      // Every expand, project and conv_last batch norm (17 project, 16 expand, 1 last) has its
      // input gradient in the conv before. The output in the conv after: every expand's and
      // conv1's (block 0 has no expand) in the depthwise conv, every depthwise's in the project
      // conv, and block 0's and block 16's project in the next 1x1 conv (the others feed an add).
      EXPECT_EQ(p.fused_bn_backwards(), (fused & 1) != 0 ? 34 : 0);
      EXPECT_EQ(p.fused_bn_applies(), (fused & 2) != 0 ? 36 : 0);
      std::mt19937 rng(5);
      std::uniform_real_distribution<float> d(-1.f, 1.f);
      auto logits = [&](int n) {
        results[fused].emplace_back(p.output(0), p.output(0) + p.output_elems_per_sample(0) * static_cast<size_t>(n));
      };
      for (int n : {8, 4}) {
        const size_t in = p.input_elems_per_sample() * static_cast<size_t>(n);
        for (size_t i = 0; i < in; ++i) p.input()[i] = d(rng);
        p.forward(Mode::kTrain, n, 1);
        // The statistics: every batch norm after a 1x1 conv (16 expand, 17 project, conv_last),
        // and after a depthwise conv (17) that computes its input from a batch norm's (fused & 2)
        // where the batch is a multiple of 8.
        EXPECT_EQ(p.fused_bn_stats(), (fused & 4) != 0 ? (n % 8 == 0 && (fused & 2) != 0 ? 51 : 34) : 0);
        logits(n);
        float* dy = p.output_grad(0);
        for (size_t i = 0; i < p.output_elems_per_sample(0) * static_cast<size_t>(n); ++i) dy[i] = d(rng);
        p.backward();
        results[fused].emplace_back(p.input_grad(), p.input_grad() + in);
        for (Parameter& prm : p.parameters()) results[fused].emplace_back(prm.grad, prm.grad + prm.size);
        p.forward(Mode::kEval, n, 1);
        EXPECT_EQ(p.fused_bn_stats(), 0);
        logits(n);
      }
    }
    for (int fused : kFusions) {
      ASSERT_EQ(results[0].size(), results[fused].size());
      for (size_t t = 0; t < results[0].size(); ++t) {
        ASSERT_EQ(results[0][t].size(), results[fused][t].size());
        EXPECT_EQ(std::memcmp(results[0][t].data(), results[fused][t].data(), results[0][t].size() * sizeof(float)), 0)
            << "result " << t << " (0: logits, 1: the input gradient), fusions " << fused << ", threads " << threads;
      }
    }
  }
}

}  // namespace
}  // namespace pcv::train
