#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "runtime/memory_plan.h"
#include "runtime/session.h"
#include "support/random.h"
#include "zoo/zoo.h"

namespace pcv::runtime {
namespace {

using namespace pcv::ir;
using pcv::testing::uniform_tensor;

double max_rel_diff(const Tensor& a, const Tensor& b) {
  double worst = 0;
  for (int64_t i = 0; i < a.num_elements(); ++i) {
    const double x = a.data<float>()[i], y = b.data<float>()[i];
    worst = std::max(worst, std::fabs(x - y) / std::max(1e-3, std::max(std::fabs(x), std::fabs(y))));
  }
  return worst;
}

TEST(MemoryPlan, DisjointLifetimesShareAndOverlappingDoNot) {
  // a:[0,1] b:[1,2] c:[2,3] -> a and c may share; b overlaps both.
  std::vector<BufferRequest> r = {{1000, 0, 1}, {500, 1, 2}, {1000, 2, 3}};
  MemoryPlan p = plan_memory(r, true);
  EXPECT_EQ(p.offsets[0], p.offsets[2]);
  const int64_t a0 = p.offsets[0], a1 = a0 + 1024, b0 = p.offsets[1], b1 = b0 + 512;
  EXPECT_TRUE(b1 <= a0 || a1 <= b0);
  EXPECT_EQ(p.arena_bytes, 1024 + 512);
  MemoryPlan q = plan_memory(r, false);
  EXPECT_EQ(q.arena_bytes, 1024 + 512 + 1024);
}

// A tiny graph computed by hand: y = relu(x * w + b) through fully_connected.
TEST(Session, HandComputedFullyConnected) {
  Model m;
  Graph& g = m.graph;
  ValueId x = g.add_input("x", DType::kF32, {1, 3});
  ValueId w = g.add_constant("w", Tensor::from_vector<float>({2, 3}, {1, 2, 3, -1, -2, -3}));
  ValueId b = g.add_constant("b", Tensor::from_vector<float>({2}, {0.5f, 1.f}));
  FullyConnectedAttrs a;
  a.activation = Activation::kRelu;
  g.mark_output(g.add_node(OpType::kFullyConnected, "fc", {x, w, b}, a));
  ASSERT_TRUE(infer_shapes(g).is_ok());
  for (bool fast : {false, true}) {
    SessionOptions o;
    o.fast_kernels = fast;
    auto out = run_model(m, {Tensor::from_vector<float>({1, 3}, {1, 1, 2})}, o);
    ASSERT_TRUE(out.has_value()) << out.status().message();
    EXPECT_FLOAT_EQ((*out)[0].data<float>()[0], 1 + 2 + 6 + 0.5f);
    EXPECT_FLOAT_EQ((*out)[0].data<float>()[1], 0.f);  // -9 + 1 -> relu
  }
}

TEST(Session, WrongInputShapeIsAClearError) {
  zoo::ZooOptions o;
  o.size = 32;
  auto m = zoo::create_model(o);
  auto s = Session::create(*m);
  ASSERT_TRUE(s.has_value());
  auto r = (*s)->run({uniform_tensor({1, 31, 32, 3}, 1)});
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.status().message().find("must be f32(1, 32, 32, 3)"), std::string::npos) << r.status().message();
}

class ZooModels : public ::testing::TestWithParam<std::tuple<const char*, int, float>> {};

// Fast kernels against the reference interpreter on whole zoo models, 1 and 2 threads; and
// the reuse-free plan gives the same result as the shared arena.
TEST_P(ZooModels, FastEqualsReference) {
  auto [arch, size, width] = GetParam();
  zoo::ZooOptions o;
  o.arch = arch;
  o.size = size;
  o.width = width;
  o.classes = 5;
  auto m = zoo::create_model(o);
  ASSERT_TRUE(m.has_value()) << m.status().message();
  const Tensor x = uniform_tensor({1, size, size, 3}, 7);
  SessionOptions ref;
  ref.fast_kernels = false;
  ref.keep_all_values = true;
  auto ref_session = Session::create(*m, ref);
  ASSERT_TRUE(ref_session.has_value()) << ref_session.status().message();
  auto expect = (*ref_session)->run({x});
  ASSERT_TRUE(expect.has_value());
  // Softmax outputs sum to 1.
  double sum = 0;
  for (int i = 0; i < 5; ++i) sum += (*expect)[0].data<float>()[i];
  EXPECT_NEAR(sum, 1.0, 1e-5);
  for (int threads : {1, 2}) {
    SessionOptions fast;
    fast.threads = threads;
    fast.profile = true;
    auto s = Session::create(*m, fast);
    ASSERT_TRUE(s.has_value()) << s.status().message();
    auto got = (*s)->run({x});
    ASSERT_TRUE(got.has_value());
    EXPECT_LT(max_rel_diff((*expect)[0], (*got)[0]), 1e-4) << "threads " << threads;
    // The planned activations reuse buffers (the reference keeps every value); kernel scratch
    // (Winograd blocks: up to 16 x tiles x channels per thread) comes on top, bounded.
    EXPECT_LT((*s)->arena_bytes() - (*s)->scratch_bytes(), (*ref_session)->arena_bytes());
    EXPECT_LE((*s)->scratch_bytes(), int64_t{threads} << 20);
    EXPECT_EQ((*s)->profile().runs, 1);
    // A second run on the same session gives the same answer (no state left behind).
    auto again = (*s)->run({x});
    EXPECT_EQ(max_rel_diff((*got)[0], (*again)[0]), 0.0);
  }
}

INSTANTIATE_TEST_SUITE_P(Runtime, ZooModels,
                         ::testing::Values(std::make_tuple("simple_cnn", 40, 1.0f),
                                           std::make_tuple("mobilenet_v2", 64, 0.5f),
                                           std::make_tuple("mobilenet_v2", 96, 1.0f)));

// Sessions of `m` with kernel fusion off and on (SessionOptions::fuse_kernels), profiled, run
// on x (its batch): the outputs must be the same bits.
struct ApartAndFused {
  std::unique_ptr<Session> apart, fused;
};
ApartAndFused run_apart_and_fused(const Model& m, const Tensor& x, int threads) {
  ApartAndFused r;
  SessionOptions o;
  o.threads = threads;
  o.batch = static_cast<int>(x.shape()[0]);
  o.profile = true;
  auto f = Session::create(m, o);
  o.fuse_kernels = false;
  auto a = Session::create(m, o);
  EXPECT_TRUE(a.has_value() && f.has_value());
  if (!a || !f) return r;
  auto ya = (*a)->run({x});
  auto yf = (*f)->run({x});
  EXPECT_TRUE(ya.has_value() && yf.has_value());
  if (!ya || !yf) return r;
  EXPECT_EQ(ya->at(0).size_bytes(), yf->at(0).size_bytes());
  EXPECT_EQ(std::memcmp(ya->at(0).raw(), yf->at(0).raw(), ya->at(0).size_bytes()), 0) << "threads " << threads;
  r.apart = std::move(a).value();
  r.fused = std::move(f).value();
  return r;
}

// A 1x1 conv and the depthwise conv after it run as one kernel when the tensor between them is
// large (MobileNetV2 at 96x96: block 1's 48x48x96 expansion): the same bits as the two run one
// after the other, one step fewer, and no buffer for the expanded tensor.
TEST(Session, PointwiseDepthwiseFusionIsBitIdentical) {
  zoo::ZooOptions o;
  o.arch = "mobilenet_v2";
  o.size = 96;
  o.classes = 5;
  auto m = zoo::create_model(o);
  ASSERT_TRUE(m.has_value()) << m.status().message();
  Tensor x(DType::kF32, {2, 96, 96, 3});
  const Tensor x0 = uniform_tensor({1, 96, 96, 3}, 3), x1 = uniform_tensor({1, 96, 96, 3}, 4);
  std::memcpy(x.data<float>(), x0.raw(), x0.size_bytes());
  std::memcpy(x.data<float>() + x0.num_elements(), x1.raw(), x1.size_bytes());
  for (int threads : {1, 2}) {
    const ApartAndFused s = run_apart_and_fused(*m, x, threads);
    ASSERT_TRUE(s.apart && s.fused);
    int joined = 0;
    for (const auto& n : s.fused->profile().nodes) {
      if (n.kernel.find("f32_pointwise_depthwise") == std::string::npos) continue;
      ++joined;
      EXPECT_EQ(n.name, "block1/depthwise");
      EXPECT_NE(n.kernel.find("with block1/expand"), std::string::npos) << n.kernel;
    }
    EXPECT_EQ(joined, 1);
    EXPECT_EQ(s.fused->profile().nodes.size() + 1, s.apart->profile().nodes.size());
    // The expanded tensor gets no buffer, and the planned activations shrink.
    for (const Node& n : s.fused->graph().nodes) {
      if (n.name != "block1/expand") continue;
      EXPECT_TRUE(s.fused->value(n.outputs[0]).empty());
      EXPECT_EQ(s.apart->value(n.outputs[0]).size_bytes(), size_t{2} * 48 * 48 * 96 * 4);
    }
    EXPECT_LT(s.fused->arena_bytes() - s.fused->scratch_bytes(), s.apart->arena_bytes() - s.apart->scratch_bytes());
  }
}

// simple_cnn's conv + 2x2 max pool pairs run as one kernel each (conv1 on the direct-rows path,
// conv2-4 through Winograd): the same bits as conv then pool, and one step fewer per pair.
TEST(Session, ConvMaxPoolFusionIsBitIdentical) {
  zoo::ZooOptions o;
  o.arch = "simple_cnn";
  o.size = 64;
  o.classes = 5;
  auto m = zoo::create_model(o);
  ASSERT_TRUE(m.has_value()) << m.status().message();
  for (int threads : {1, 2}) {
    const ApartAndFused s = run_apart_and_fused(*m, uniform_tensor({1, 64, 64, 3}, 5), threads);
    ASSERT_TRUE(s.apart && s.fused);
    int joined = 0;
    for (const auto& n : s.fused->profile().nodes) {
      if (n.kernel.find("f32_conv2d_fast_max_pool_2x2") == std::string::npos) continue;
      ++joined;
      EXPECT_EQ(n.name.substr(0, 4), "pool") << n.name;
      EXPECT_NE(n.kernel.find("with conv" + n.name.substr(4)), std::string::npos) << n.kernel;
    }
    EXPECT_EQ(joined, 4);
    EXPECT_EQ(s.fused->profile().nodes.size() + 4, s.apart->profile().nodes.size());
  }
}

// Pairs that do not fit run apart, with the same results: a stride-2 conv (im2col path) before
// a 2x2 pool, a Winograd conv before a 3x3 pool, a Winograd conv whose output a second node
// reads, a 1x1 conv whose output is small before a depthwise conv.
TEST(Session, UnfitPairsRunApart) {
  Model m;
  Graph& g = m.graph;
  ValueId x = g.add_input("x", DType::kF32, {1, 24, 24, 8});
  int seed = 10;
  auto conv = [&](const std::string& name, ValueId in, int in_c, int out_c, int k, int stride, int groups) {
    Conv2dAttrs a;
    a.stride_h = a.stride_w = stride;
    a.groups = groups;
    a.padding = Padding::kSame;
    a.activation = Activation::kRelu;
    return g.add_node(OpType::kConv2d, name,
                      {in, g.add_constant(name + "/w", uniform_tensor({out_c, k, k, in_c / groups}, seed++)),
                       g.add_constant(name + "/b", uniform_tensor({out_c}, seed++))},
                      a);
  };
  Pool2dAttrs pool3;
  pool3.kernel_h = pool3.kernel_w = 3;
  ValueId y = g.add_node(OpType::kMaxPool, "pool_a", {conv("strided", x, 8, 8, 3, 2, 1)}, Pool2dAttrs{});  // 6x6
  y = g.add_node(OpType::kMaxPool, "pool_b", {conv("wino_a", y, 8, 8, 3, 1, 1)}, pool3);                    // 2x2
  const ValueId shared = conv("wino_b", y, 8, 8, 3, 1, 1);
  y = g.add_node(OpType::kAdd, "add", {g.add_node(OpType::kMaxPool, "pool_c", {shared}, Pool2dAttrs{}),
                                        g.add_node(OpType::kMaxPool, "pool_d", {shared}, Pool2dAttrs{})});
  y = conv("depthwise", conv("pointwise", y, 8, 16, 1, 1, 1), 16, 16, 3, 1, 16);
  g.mark_output(y);
  ASSERT_TRUE(infer_shapes(g).is_ok());
  for (int threads : {1, 2}) {
    const ApartAndFused s = run_apart_and_fused(m, uniform_tensor({1, 24, 24, 8}, 1), threads);
    ASSERT_TRUE(s.apart && s.fused);
    EXPECT_EQ(s.fused->profile().nodes.size(), s.apart->profile().nodes.size());
    for (const auto& n : s.fused->profile().nodes) EXPECT_EQ(n.kernel.find(", with "), std::string::npos) << n.kernel;
  }
}

TEST(Session, BatchOverrideRunsEachImageIndependently) {
  zoo::ZooOptions o;
  o.arch = "mobilenet_v2";
  o.size = 48;
  o.width = 0.35f;
  auto m = zoo::create_model(o);
  const Tensor x0 = uniform_tensor({1, 48, 48, 3}, 1);
  const Tensor x1 = uniform_tensor({1, 48, 48, 3}, 2);
  Tensor both(DType::kF32, {2, 48, 48, 3});
  std::memcpy(both.data<float>(), x0.raw(), x0.size_bytes());
  std::memcpy(both.data<float>() + x0.num_elements(), x1.raw(), x1.size_bytes());
  SessionOptions b2;
  b2.batch = 2;
  auto out2 = run_model(*m, {both}, b2);
  ASSERT_TRUE(out2.has_value()) << out2.status().message();
  auto out_1 = run_model(*m, {x1});
  for (int i = 0; i < 2; ++i) {
    EXPECT_NEAR((*out2)[0].data<float>()[2 + i], (*out_1)[0].data<float>()[i], 1e-5);
  }
}

// int8: quantize -> conv (per-channel) -> dequantize against a float computation of the same
// quantized values, within one output step.
TEST(Session, Int8ConvMatchesFloatWithinOneStep) {
  Model m;
  Graph& g = m.graph;
  ValueId x = g.add_input("x", DType::kF32, {1, 5, 5, 2});
  ValueId q = g.add_node(OpType::kQuantize, "q", {x}, NoAttrs{}, DType::kI8);
  g.value(q).quant = QuantParams::per_tensor(1.f / 64, 3);
  Tensor w(DType::kI8, {3, 3, 3, 2});
  for (int64_t i = 0; i < w.num_elements(); ++i) w.data<int8_t>()[i] = static_cast<int8_t>((i * 37) % 255 - 127);
  ValueId wid = g.add_constant("w", w, QuantParams{{0.01f, 0.02f, 0.005f}, {0, 0, 0}, 0});
  Tensor b(DType::kI32, {3});
  b.data<int32_t>()[0] = 100;
  b.data<int32_t>()[1] = -50;
  b.data<int32_t>()[2] = 7;
  ValueId bid = g.add_constant("b", b, QuantParams{{0.01f / 64, 0.02f / 64, 0.005f / 64}, {0, 0, 0}, 0});
  Conv2dAttrs ca;
  ValueId y = g.add_node(OpType::kConv2d, "conv", {q, wid, bid}, ca, DType::kI8);
  g.value(y).quant = QuantParams::per_tensor(0.05f, -10);
  ValueId d = g.add_node(OpType::kDequantize, "dq", {y});
  g.mark_output(d);
  ASSERT_TRUE(infer_shapes(g).is_ok());
  const Tensor in = uniform_tensor({1, 5, 5, 2}, 3, -1.f, 1.f);
  auto out = run_model(m, {in});
  ASSERT_TRUE(out.has_value()) << out.status().message();
  // Float reference on the quantized input values.
  const float* xf = in.data<float>();
  for (int oy = 0; oy < 5; ++oy) {
    for (int ox = 0; ox < 5; ++ox) {
      for (int oc = 0; oc < 3; ++oc) {
        const float ws = oc == 0 ? 0.01f : oc == 1 ? 0.02f : 0.005f;
        double acc = b.data<int32_t>()[oc] * (ws / 64);
        for (int ky = 0; ky < 3; ++ky) {
          for (int kx = 0; kx < 3; ++kx) {
            const int iy = oy + ky - 1, ix = ox + kx - 1;
            if (iy < 0 || iy >= 5 || ix < 0 || ix >= 5) continue;
            for (int ic = 0; ic < 2; ++ic) {
              const float qx = std::clamp(std::round(xf[(iy * 5 + ix) * 2 + ic] * 64) + 3, -128.f, 127.f);
              acc += (qx - 3) / 64.0 * w.data<int8_t>()[((oc * 3 + ky) * 3 + kx) * 2 + ic] * ws;
            }
          }
        }
        const double expect = std::clamp(std::round(acc / 0.05) - 10, -128.0, 127.0);
        const double got = (*out)[0].data<float>()[(oy * 5 + ox) * 3 + oc] / 0.05 - 10;
        EXPECT_NEAR(got, expect, 1.0 + 1e-3) << oy << "," << ox << "," << oc;
      }
    }
  }
}

// A large input quantize is split over the threads: the same bytes as the reference kernel,
// with a length that leaves a partial last tile.
TEST(Session, QuantizeSplitOverThreadsMatchesReference) {
  Model m;
  Graph& g = m.graph;
  ValueId x = g.add_input("x", DType::kF32, {1, 97, 97, 7});  // 65863 elements
  ValueId q = g.add_node(OpType::kQuantize, "q", {x}, NoAttrs{}, DType::kI8);
  g.value(q).quant = QuantParams::per_tensor(1.f / 50, -5);
  g.mark_output(q);
  ASSERT_TRUE(infer_shapes(g).is_ok());
  const Tensor in = uniform_tensor({1, 97, 97, 7}, 5, -3.f, 3.f);
  SessionOptions ref;
  ref.fast_kernels = false;
  auto expect = run_model(m, {in}, ref);
  ASSERT_TRUE(expect.has_value()) << expect.status().message();
  SessionOptions two;
  two.threads = 2;
  auto got = run_model(m, {in}, two);
  ASSERT_TRUE(got.has_value()) << got.status().message();
  ASSERT_EQ((*got)[0].size_bytes(), (*expect)[0].size_bytes());
  EXPECT_EQ(std::memcmp((*got)[0].raw(), (*expect)[0].raw(), (*got)[0].size_bytes()), 0);
}

// A 1x1 conv without activation whose only consumer is an ADD of an earlier tensor runs as one
// kernel ("+ add"), with the ADD's activation; the output is bit-identical to running the two
// ops (graph passes off), and the reference kernels agree. An ADD whose other operand is
// computed after the conv, or a conv output with a second consumer, is left alone.
TEST(Session, ResidualAddFusesIntoPointwiseConv) {
  auto build = [](bool late_skip, bool second_use) {
    Model m;
    Graph& g = m.graph;
    ValueId x = g.add_input("x", DType::kF32, {1, 5, 6, 8});
    Conv2dAttrs expand;
    expand.activation = Activation::kRelu6;
    ValueId e = g.add_node(OpType::kConv2d, "expand",
                           {x, g.add_constant("we", uniform_tensor({16, 1, 1, 8}, 1)),
                            g.add_constant("be", uniform_tensor({16}, 2))}, expand);
    ValueId p = g.add_node(OpType::kConv2d, "project",
                           {e, g.add_constant("wp", uniform_tensor({8, 1, 1, 16}, 3)), kNoValue},
                           Conv2dAttrs{});
    ValueId skip = x;
    if (late_skip) skip = g.add_node(OpType::kRelu, "late", {x});
    EltwiseAttrs add;
    add.activation = Activation::kRelu;
    g.mark_output(g.add_node(OpType::kAdd, "residual", {skip, p}, add));
    if (second_use) g.mark_output(p);
    EXPECT_TRUE(infer_shapes(g).is_ok());
    return m;
  };
  const Tensor input = uniform_tensor({1, 5, 6, 8}, 4, -2.f, 2.f);
  for (int variant = 0; variant < 3; ++variant) {
    const bool late = variant == 1, second = variant == 2;
    SCOPED_TRACE(variant);
    Model m = build(late, second);
    SessionOptions fused_o;
    fused_o.profile = true;
    auto s = Session::create(m, fused_o);
    ASSERT_TRUE(s.has_value()) << s.status().message();
    bool has_add = false, fused = false;
    for (const auto& n : (*s)->profile().nodes) {
      has_add |= n.op == std::string("add");
      fused |= n.kernel.find("+ add") != std::string::npos;
    }
    EXPECT_EQ(fused, variant == 0);
    EXPECT_EQ(has_add, variant != 0);
    auto got = (*s)->run({input});
    ASSERT_TRUE(got.has_value());
    SessionOptions plain_o;
    plain_o.optimize_graph = false;
    auto plain = run_model(m, {input}, plain_o);
    SessionOptions ref_o;
    ref_o.fast_kernels = false;
    auto ref = run_model(m, {input}, ref_o);
    ASSERT_TRUE(plain.has_value() && ref.has_value());
    ASSERT_EQ(got->size(), plain->size());
    for (size_t i = 0; i < got->size(); ++i) {
      const Tensor& a = (*got)[i];
      const Tensor& b = (*plain)[i];
      ASSERT_EQ(a.size_bytes(), b.size_bytes());
      EXPECT_EQ(std::memcmp(a.raw(), b.raw(), a.size_bytes()), 0) << "output " << i;
      for (int64_t e = 0; e < a.num_elements(); ++e) {
        ASSERT_NEAR(a.data<float>()[e], (*ref)[i].data<float>()[e], 1e-4) << "output " << i << " element " << e;
      }
    }
    float lo = 0.f;
    for (int64_t i = 0; i < (*got)[0].num_elements(); ++i) lo = std::min(lo, (*got)[0].data<float>()[i]);
    EXPECT_EQ(lo, 0.f) << "the ADD's relu applies";
  }
}

TEST(Session, ConstantSubgraphsAreFoldedAtPrepare) {
  // fp16 weights behind dequantize (as in fp16 TFLite models) run as f32 constants.
  Model m;
  Graph& g = m.graph;
  ValueId x = g.add_input("x", DType::kF32, {1, 2});
  Tensor w16(DType::kF16, {1, 2});
  w16.data<uint16_t>()[0] = 0x3C00;  // 1.0
  w16.data<uint16_t>()[1] = 0x4000;  // 2.0
  ValueId wq = g.add_constant("w16", w16);
  ValueId w = g.add_node(OpType::kDequantize, "w", {wq});
  g.mark_output(g.add_node(OpType::kFullyConnected, "fc", {x, w, kNoValue}));
  ASSERT_TRUE(infer_shapes(g).is_ok());
  SessionOptions o;
  o.profile = true;
  auto s = Session::create(m, o);
  ASSERT_TRUE(s.has_value()) << s.status().message();
  EXPECT_EQ((*s)->profile().nodes.size(), 1u);  // only the fully_connected runs
  auto out = (*s)->run({Tensor::from_vector<float>({1, 2}, {3, 4})});
  EXPECT_FLOAT_EQ((*out)[0].data<float>()[0], 11.f);
}

TEST(Session, MemoryLimitRefusesBeforeAllocating) {
  zoo::ZooOptions o;
  o.size = 64;
  auto m = zoo::create_model(o);
  SessionOptions s;
  s.max_memory_bytes = 1000;
  auto r = Session::create(*m, s);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.status().code(), StatusCode::kOutOfMemory);
  s.max_memory_bytes = int64_t{1} << 30;
  s.threads = 1000;
  EXPECT_EQ(Session::create(*m, s).status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace pcv::runtime
