// fp16, dynamic-range and full int8 passes: graph before/after and outputs on random inputs.
#include <gtest/gtest.h>

#include <cmath>
#include <set>

#include "base/fp16.h"
#include "optimize/calibration.h"
#include "optimize/optimize_test_util.h"
#include "optimize/passes.h"
#include "runtime/session.h"
#include "support/random.h"

namespace pcv::optimize {
namespace {

using ::pcv::testing::uniform_input;
using ir::DType;
using ir::OpType;
using testing::run;
using testing::zoo_model;

// x -> conv2d(w, b, relu) -> max_pool -> flatten -> fully_connected(w2, b2) -> softmax -> y
ir::Model tiny_model() {
  ir::Model m;
  ir::Graph& g = m.graph;
  const auto x = g.add_input("x", DType::kF32, {1, 6, 6, 2});
  std::mt19937 rng(3);
  std::normal_distribution<float> nd(0.f, 0.5f);
  auto randn = [&](ir::Shape s) {
    ir::Tensor t(DType::kF32, s);
    for (int64_t i = 0; i < t.num_elements(); ++i) t.data<float>()[i] = nd(rng);
    return t;
  };
  const auto w = g.add_constant("conv/w", randn({4, 3, 3, 2}), {}, true);
  const auto b = g.add_constant("conv/b", randn({4}), {}, true);
  ir::Conv2dAttrs ca;
  ca.activation = ir::Activation::kRelu;
  const auto c = g.add_node(OpType::kConv2d, "conv", {x, w, b}, ca);
  const auto p = g.add_node(OpType::kMaxPool, "pool", {c}, ir::Pool2dAttrs{});
  const auto f = g.add_node(OpType::kFlatten, "flatten", {p});
  const auto w2 = g.add_constant("fc/w", randn({3, 36}), {}, true);
  const auto b2 = g.add_constant("fc/b", randn({3}), {}, true);
  const auto fc = g.add_node(OpType::kFullyConnected, "fc", {f, w2, b2}, ir::FullyConnectedAttrs{});
  g.mark_output(g.add_node(OpType::kSoftmax, "y", {fc}, ir::SoftmaxAttrs{}));
  EXPECT_TRUE(ir::infer_shapes(g).is_ok());
  m.input_spec.height = m.input_spec.width = 6;
  m.input_spec.channels = 2;
  return m;
}

// The f32 model with every weight replaced by `round(w)`: what a weight-only pass must equal.
ir::Model with_rounded_weights(const ir::Model& m, const std::function<float(float, int64_t row, const ir::Value&)>& round) {
  ir::Model r = m;
  for (const WeightUse& u : find_weights(r.graph, {})) {
    ir::Value& w = r.graph.value(u.weight);
    ir::Tensor t = w.data.clone();
    const int64_t cols = t.num_elements() / w.shape[0];
    for (int64_t i = 0; i < t.num_elements(); ++i) t.data<float>()[i] = round(t.data<float>()[i], i / cols, w);
    w.data = t;
  }
  return r;
}

TEST(Fp16Weights, GraphBeforeAfter) {
  ir::Model m = tiny_model();
  auto n = to_fp16_weights(m.graph);
  ASSERT_TRUE(n.has_value()) << n.status().to_string();
  EXPECT_EQ(*n, 2);
  EXPECT_EQ(testing::count_ops(m.graph, OpType::kDequantize), 2);
  for (const ir::Node& node : m.graph.nodes) {
    if (node.op != OpType::kConv2d && node.op != OpType::kFullyConnected) continue;
    const ir::Node* dq = testing::producer_of(m.graph, node.inputs[1]);
    ASSERT_NE(dq, nullptr) << node.name;
    EXPECT_EQ(dq->op, OpType::kDequantize);
    EXPECT_EQ(m.graph.value(dq->inputs[0]).dtype, DType::kF16);
    EXPECT_TRUE(m.graph.value(dq->inputs[0]).is_constant());
    EXPECT_EQ(m.graph.value(node.inputs[2]).dtype, DType::kF32) << "biases stay f32";
  }
  EXPECT_TRUE(ir::verify(m.graph).is_ok());
  EXPECT_EQ(m.graph.value(m.graph.outputs[0]).name, "y");
}

TEST(Fp16Weights, OutputsEqualF32WithFp16RoundedWeights) {
  for (const char* arch : {"simple_cnn", "mobilenet_v2"}) {
    const ir::Model m = zoo_model(arch, arch == std::string("simple_cnn") ? 32 : 64, 3, 5, 0.35f);
    ir::Model h = m;
    ASSERT_TRUE(to_fp16_weights(h.graph).has_value());
    const ir::Model r = with_rounded_weights(m, [](float w, int64_t, const ir::Value&) { return f32_from_fp16(fp16_from_f32(w)); });
    for (uint64_t s = 0; s < 3; ++s) {
      const ir::Tensor x = uniform_input(m.graph, s);
      const auto yh = run(h, x), yr = run(r, x), y = run(m, x);
      EXPECT_EQ(yh, yr) << arch << ": the dequantize folds to exactly the fp16-rounded weights";
      EXPECT_LT(testing::max_abs_diff(yh, y), 2e-3) << arch;
    }
  }
}

TEST(DynamicRange, GraphBeforeAfterAndWeightBound) {
  ir::Model m = tiny_model();
  const ir::Model before = m;
  auto n = quantize_dynamic_range(m.graph);
  ASSERT_TRUE(n.has_value()) << n.status().to_string();
  EXPECT_EQ(*n, 2);
  for (const ir::Node& node : m.graph.nodes) {
    if (node.op != OpType::kConv2d && node.op != OpType::kFullyConnected) continue;
    const ir::Node* dq = testing::producer_of(m.graph, node.inputs[1]);
    ASSERT_NE(dq, nullptr);
    const ir::Value& q = m.graph.value(dq->inputs[0]);
    EXPECT_EQ(q.dtype, DType::kI8);
    ASSERT_EQ(q.quant.scale.size(), static_cast<size_t>(q.shape[0])) << "per output channel";
    EXPECT_EQ(q.quant.axis, 0);
    for (int32_t zp : q.quant.zero_point) EXPECT_EQ(zp, 0);
    // |w' - w| <= scale[c] / 2 and some weight of each row hits +-127.
    const ir::Value& w = before.graph.value(before.graph.find_value(node.name == "conv" ? "conv/w" : "fc/w"));
    const int64_t cols = q.data.num_elements() / q.shape[0];
    for (int64_t r = 0; r < q.shape[0]; ++r) {
      int amax = 0;
      for (int64_t c = 0; c < cols; ++c) {
        const int8_t qi = q.data.data<int8_t>()[r * cols + c];
        amax = std::max(amax, std::abs(int{qi}));
        EXPECT_LE(std::fabs(qi * q.quant.scale[static_cast<size_t>(r)] - w.data.data<float>()[r * cols + c]),
                  q.quant.scale[static_cast<size_t>(r)] * 0.5f + 1e-7f);
      }
      EXPECT_EQ(amax, 127);
    }
    EXPECT_EQ(m.graph.value(node.inputs[2]).dtype, DType::kF32) << "biases stay f32";
  }
}

TEST(DynamicRange, OutputsEqualFakeQuantizedWeightsAndStayClose) {
  const ir::Model m = zoo_model("mobilenet_v2", 64, 3, 5, 0.35f);
  ir::Model q = m;
  ASSERT_TRUE(quantize_dynamic_range(q.graph).has_value());
  const ir::Model r = with_rounded_weights(m, [](float w, int64_t row, const ir::Value& v) {
    const int64_t cols = v.data.num_elements() / v.shape[0];
    float amax = 0;
    for (int64_t c = 0; c < cols; ++c) amax = std::max(amax, std::fabs(v.data.data<float>()[row * cols + c]));
    const float s = amax / 127.f;
    return static_cast<float>(static_cast<double>(s) * std::clamp(std::round(w / s), -127.f, 127.f));
  });
  for (uint64_t s = 0; s < 3; ++s) {
    const ir::Tensor x = uniform_input(m.graph, s);
    const auto yq = run(q, x), yr = run(r, x), y = run(m, x);
    EXPECT_EQ(yq, yr);
    // Stated bound for this random-weight MobileNetV2: probabilities within 0.05.
    EXPECT_LT(testing::max_abs_diff(yq, y), 0.05);
  }
}

TEST(DequantizeConstants, UndoesWeightPasses) {
  ir::Model m = tiny_model();
  ASSERT_TRUE(to_fp16_weights(m.graph).has_value());
  auto n = dequantize_constants(m.graph);
  ASSERT_TRUE(n.has_value());
  EXPECT_EQ(*n, 2);
  EXPECT_EQ(testing::count_ops(m.graph, OpType::kDequantize), 0);
  EXPECT_TRUE(ir::verify(m.graph).is_ok());
}

std::map<std::string, Range> calibrate_random(const ir::Model& m, int n, float lo = -1.f, float hi = 1.f) {
  std::vector<ir::Tensor> xs;
  for (int i = 0; i < n; ++i) xs.push_back(uniform_input(m.graph, 100 + static_cast<uint64_t>(i), lo, hi));
  auto r = calibrate(m, xs);
  EXPECT_TRUE(r.has_value()) << r.status().to_string();
  return *r;
}

TEST(Int8, GraphBeforeAfterFloatIo) {
  ir::Model m = tiny_model();
  const auto ranges = calibrate_random(m, 20);
  ir::Model q = m;
  auto n = quantize_int8(q.graph, ranges);
  ASSERT_TRUE(n.has_value()) << n.status().to_string();
  const ir::Graph& g = q.graph;
  ASSERT_TRUE(ir::verify(g).is_ok());
  EXPECT_EQ(*n, 5);  // conv, pool, flatten, fc, softmax
  // x: f32 -> quantize -> ... -> softmax (1/256, -128) -> dequantize -> y: f32
  EXPECT_EQ(g.value(g.inputs[0]).dtype, DType::kF32);
  EXPECT_EQ(g.value(g.inputs[0]).name, "x");
  EXPECT_EQ(g.value(g.outputs[0]).dtype, DType::kF32);
  EXPECT_EQ(g.value(g.outputs[0]).name, "y");
  const ir::Node* last = testing::producer_of(g, g.outputs[0]);
  ASSERT_EQ(last->op, OpType::kDequantize);
  const ir::Value& sm = g.value(last->inputs[0]);
  EXPECT_EQ(sm.dtype, DType::kI8);
  EXPECT_EQ(sm.quant, ir::QuantParams::per_tensor(1.f / 256.f, -128));
  for (const ir::Node& node : g.nodes) {
    if (node.op == OpType::kConv2d || node.op == OpType::kFullyConnected) {
      const ir::Value& x = g.value(node.inputs[0]);
      const ir::Value& w = g.value(node.inputs[1]);
      const ir::Value& b = g.value(node.inputs[2]);
      EXPECT_EQ(x.dtype, DType::kI8);
      EXPECT_EQ(w.dtype, DType::kI8);
      EXPECT_EQ(w.quant.scale.size(), static_cast<size_t>(w.shape[0]));
      EXPECT_EQ(w.quant.axis, 0);
      EXPECT_EQ(b.dtype, DType::kI32);
      for (size_t c = 0; c < w.quant.scale.size(); ++c) {
        EXPECT_FLOAT_EQ(b.quant.scale[c], x.quant.scale[0] * w.quant.scale[c]);
        EXPECT_EQ(w.quant.zero_point[c], 0);
      }
    }
    if (node.op == OpType::kMaxPool || node.op == OpType::kFlatten) {
      EXPECT_EQ(g.value(node.inputs[0]).quant, g.value(node.outputs[0]).quant) << node.name;
    }
  }
}

TEST(Int8, IntegerIo) {
  for (IoType io : {IoType::kInt8, IoType::kUInt8}) {
    ir::Model m = tiny_model();
    const auto ranges = calibrate_random(m, 20);
    Int8Options o;
    o.io = io;
    ASSERT_TRUE(quantize_int8(m.graph, ranges, o).has_value());
    const DType want = io == IoType::kInt8 ? DType::kI8 : DType::kU8;
    const ir::Value& in = m.graph.value(m.graph.inputs[0]);
    const ir::Value& out = m.graph.value(m.graph.outputs[0]);
    EXPECT_EQ(in.dtype, want);
    EXPECT_EQ(out.dtype, want);
    EXPECT_EQ(in.name, "x");
    EXPECT_EQ(out.name, "y");
    EXPECT_EQ(out.quant.zero_point[0], io == IoType::kInt8 ? -128 : 0);
    EXPECT_FLOAT_EQ(out.quant.scale[0], 1.f / 256.f);
    EXPECT_EQ(testing::count_ops(m.graph, OpType::kDequantize), 0);
    auto s = runtime::Session::create(m);
    EXPECT_TRUE(s.has_value()) << s.status().to_string();
  }
}

TEST(Int8, ExcludedLayerStaysFloat) {
  ir::Model m = tiny_model();
  const auto ranges = calibrate_random(m, 10);
  Int8Options o;
  o.exclude = {"fc"};
  ASSERT_TRUE(quantize_int8(m.graph, ranges, o).has_value());
  for (const ir::Node& n : m.graph.nodes) {
    if (n.name == "fc") {
      EXPECT_EQ(m.graph.value(n.inputs[0]).dtype, DType::kF32);
      EXPECT_EQ(m.graph.value(n.inputs[1]).dtype, DType::kF32);
      EXPECT_EQ(testing::producer_of(m.graph, n.inputs[0])->op, OpType::kDequantize);
    }
  }
  const ir::Tensor x = uniform_input(m.graph, 5);
  const auto y = run(m, x);
  EXPECT_EQ(y.size(), 3u);
}

TEST(Int8, MissingRangeIsAnError) {
  ir::Model m = tiny_model();
  auto ranges = calibrate_random(m, 3);
  ranges.erase("fc");
  auto n = quantize_int8(m.graph, ranges);
  ASSERT_FALSE(n.has_value());
  EXPECT_NE(n.status().message().find("'fc'"), std::string::npos) << n.status().message();
}

// Full int8 of zoo models on synthetic inputs: logits-level agreement with the float model.
TEST(Int8, ZooModelsAgreeWithFloat) {
  struct Case {
    const char* arch;
    int size;
    float width;
  };
  for (const Case& c : {Case{"simple_cnn", 32, 1.f}, Case{"mobilenet_v2", 64, 0.35f}}) {
    const ir::Model m = zoo_model(c.arch, c.size, 3, 10, c.width);
    std::vector<ir::Tensor> calib;
    for (uint64_t s = 0; s < 32; ++s) calib.push_back(uniform_input(m.graph, 1000 + s, -1.f, 1.f));
    auto ranges = calibrate(m, calib);
    ASSERT_TRUE(ranges.has_value());
    ir::Model q = m;
    ASSERT_TRUE(quantize_int8(q.graph, *ranges).has_value());
    int agree = 0;
    double max_diff = 0;
    const int n = 32;
    for (int s = 0; s < n; ++s) {
      const ir::Tensor x = uniform_input(m.graph, static_cast<uint64_t>(s), -1.f, 1.f);
      const auto y = run(m, x), yq = run(q, x);
      agree += testing::argmax(y) == testing::argmax(yq);
      max_diff = std::max(max_diff, testing::max_abs_diff(y, yq));
    }
    std::printf("%s: int8 top-1 agreement %d/%d, max |diff| of probabilities %.4f\n", c.arch, agree, n, max_diff);
    EXPECT_GE(agree, n * 8 / 10) << c.arch;
    // Random-weight models have no trained activation statistics: the stated bound is loose.
    EXPECT_LT(max_diff, 0.25) << c.arch;
  }
}

}  // namespace
}  // namespace pcv::optimize
