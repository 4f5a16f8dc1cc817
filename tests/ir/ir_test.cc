#include <gtest/gtest.h>

#include "ir/graph.h"
#include "ir/pcv_format.h"
#include "ir/pcv_generated.h"

namespace pcv::ir {
namespace {

Tensor filled(Shape shape, float v) {
  Tensor t(DType::kF32, shape);
  for (int64_t i = 0; i < t.num_elements(); ++i) t.data<float>()[i] = v + static_cast<float>(i);
  return t;
}

// input (1,8,8,3) -> conv3x3 s2 SAME (4 filters) -> relu6 -> mean(H,W) -> fc(2) -> softmax
Model small_model() {
  Model m;
  Graph& g = m.graph;
  ValueId x = g.add_input("input", DType::kF32, {1, 8, 8, 3});
  Conv2dAttrs c;
  c.stride_h = c.stride_w = 2;
  c.activation = Activation::kRelu6;
  ValueId y = g.add_node(OpType::kConv2d, "conv", {x, g.add_constant("conv/w", filled({4, 3, 3, 3}, 0.f), {}, true),
                                                   g.add_constant("conv/b", filled({4}, 1.f))}, c);
  y = g.add_node(OpType::kMean, "pool", {y});
  y = g.add_node(OpType::kFullyConnected, "fc", {y, g.add_constant("fc/w", filled({2, 4}, 0.5f)), kNoValue});
  y = g.add_node(OpType::kSoftmax, "prob", {y});
  g.mark_output(y);
  m.input_spec.height = m.input_spec.width = 8;
  m.input_spec.mean = {127.5f, 127.5f, 127.5f};
  m.input_spec.std = {127.5f, 127.5f, 127.5f};
  m.input_spec.labels = {"cat", "dog"};
  m.metadata.name = "small";
  return m;
}

TEST(Ir, OpTableMatchesXMacro) {
  EXPECT_EQ(kNumOps, 21);
  EXPECT_STREQ(op_name(OpType::kConv2d), "conv2d");
  EXPECT_EQ(op_from_name("depthwise"), std::nullopt);
  for (int i = 0; i < kNumOps; ++i) {
    auto op = static_cast<OpType>(i);
    EXPECT_EQ(op_from_name(op_name(op)), op);
    EXPECT_TRUE(attrs_match_op(op, default_attrs(op)));
  }
  EXPECT_FALSE(attrs_match_op(OpType::kConv2d, Pool2dAttrs{}));
}

TEST(Ir, ShapeInferenceSamePaddingStride2) {
  Model m = small_model();
  ASSERT_TRUE(infer_shapes(m.graph).is_ok());
  const Graph& g = m.graph;
  EXPECT_EQ(g.value(g.nodes[0].outputs[0]).shape, (Shape{1, 4, 4, 4}));  // ceil(8/2)
  EXPECT_EQ(g.value(g.nodes[1].outputs[0]).shape, (Shape{1, 4}));
  EXPECT_EQ(g.value(g.outputs[0]).shape, (Shape{1, 2}));
  EXPECT_TRUE(verify(g).is_ok()) << verify(g).message();
}

TEST(Ir, ResolvePaddingMatchesTensorFlowRule) {
  // SAME, in 7, k 3, s 2: out 4, total pad (4-1)*2+3-7 = 2 -> 1 top, 1 bottom.
  auto p = resolve_padding(Padding::kSame, 7, 7, 3, 3, 2, 2, 1, 1, 0, 0, 0, 0);
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->out_h, 4);
  EXPECT_EQ(p->pad_top, 1);
  EXPECT_EQ(p->pad_bottom, 1);
  // SAME, in 8, k 3, s 2: out 4, total 1 -> extra on the bottom.
  p = resolve_padding(Padding::kSame, 8, 8, 3, 3, 2, 2, 1, 1, 0, 0, 0, 0);
  EXPECT_EQ(p->pad_top, 0);
  EXPECT_EQ(p->pad_bottom, 1);
  // VALID with dilation 2: effective kernel 5 -> out (9-5)/1+1 = 5.
  p = resolve_padding(Padding::kValid, 9, 9, 3, 3, 1, 1, 2, 2, 0, 0, 0, 0);
  EXPECT_EQ(p->out_h, 5);
  // Explicit pads.
  p = resolve_padding(Padding::kExplicit, 5, 5, 3, 3, 2, 2, 1, 1, 1, 0, 2, 1);
  EXPECT_EQ(p->out_h, 2);  // (5+1-3)/2+1
  EXPECT_EQ(p->out_w, 3);  // (5+3-3)/2+1
  EXPECT_FALSE(resolve_padding(Padding::kValid, 2, 2, 3, 3, 1, 1, 1, 1, 0, 0, 0, 0).has_value());
}

TEST(Ir, ShapeErrorsNameTheNode) {
  Model m = small_model();
  m.graph.value(m.graph.nodes[2].inputs[1]).data = filled({2, 5}, 0.f);
  m.graph.value(m.graph.nodes[2].inputs[1]).shape = {2, 5};
  Status s = infer_shapes(m.graph);
  ASSERT_FALSE(s.is_ok());
  EXPECT_NE(s.message().find("'fc'"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("weights must be (out, 4)"), std::string::npos) << s.message();
}

TEST(Ir, BroadcastAndReshape) {
  Graph g;
  ValueId a = g.add_input("a", DType::kF32, {1, 4, 4, 8});
  ValueId b = g.add_input("b", DType::kF32, {1, 1, 8});
  ValueId c = g.add_node(OpType::kAdd, "add", {a, b});
  ReshapeAttrs r;
  r.shape = {-1, 16};
  ValueId d = g.add_node(OpType::kReshape, "reshape", {c}, r);
  PadAttrs p;
  p.pads = {0, 0, 1, 2};
  ValueId e = g.add_node(OpType::kPad, "pad", {d}, p);
  ValueId f = g.add_node(OpType::kFlatten, "flat", {a});
  g.mark_output(e);
  g.mark_output(f);
  ASSERT_TRUE(infer_shapes(g).is_ok());
  EXPECT_EQ(g.value(c).shape, (Shape{1, 4, 4, 8}));
  EXPECT_EQ(g.value(d).shape, (Shape{8, 16}));
  EXPECT_EQ(g.value(f).shape, (Shape{1, 128}));
  EXPECT_EQ(g.value(e).shape, (Shape{8, 19}));
  Graph bad = g;
  bad.nodes[1].attr<ReshapeAttrs>().shape = {-1, 7};
  EXPECT_FALSE(infer_shapes(bad).is_ok());
  Graph bad2;
  ValueId x = bad2.add_input("x", DType::kF32, {2, 3});
  ValueId y = bad2.add_input("y", DType::kF32, {4, 3});
  bad2.add_node(OpType::kMul, "mul", {x, y});
  EXPECT_FALSE(infer_shapes(bad2).is_ok());
}

TEST(Ir, VerifierRejectsMalformedGraphs) {
  Model m = small_model();
  ASSERT_TRUE(infer_shapes(m.graph).is_ok());
  {
    Graph g = m.graph;
    g.nodes[1].inputs[0] = 99;
    EXPECT_NE(verify(g).message().find("out of range"), std::string::npos);
  }
  {
    Graph g = m.graph;
    std::swap(g.nodes[0], g.nodes[1]);  // use before definition
    EXPECT_NE(verify(g).message().find("before it is defined"), std::string::npos) << verify(g).message();
  }
  {
    Graph g = m.graph;
    g.nodes[0].attrs = Pool2dAttrs{};
    EXPECT_FALSE(verify(g).is_ok());
  }
  {
    Graph g = m.graph;
    g.value(g.nodes[0].outputs[0]).shape = {1, 5, 5, 4};  // stored shape disagrees with the op
    EXPECT_NE(verify(g).message().find("its op gives"), std::string::npos);
  }
  {
    Graph g = m.graph;
    g.values[1].quant = QuantParams{{0.1f, 0.2f}, {0, 0}, 0};  // 2 scales for 4 channels
    EXPECT_FALSE(verify(g).is_ok());
  }
  {
    Graph g = m.graph;
    g.nodes[3].inputs.push_back(0);  // softmax takes one input
    EXPECT_NE(verify(g).message().find("expects 1 to 1"), std::string::npos);
  }
}

TEST(Ir, TextDumpShowsEveryNode) {
  Model m = small_model();
  ASSERT_TRUE(infer_shapes(m.graph).is_ok());
  const std::string t = to_text(m);
  EXPECT_NE(t.find("conv2d(%0, %1, %2) stride_h=2 stride_w=2"), std::string::npos) << t;
  EXPECT_NE(t.find("activation=relu6 -> f32(1, 4, 4, 4)  # conv"), std::string::npos) << t;
  EXPECT_NE(t.find("fully_connected(%4, %5, _)"), std::string::npos) << t;
  EXPECT_NE(t.find("labels (2): cat dog"), std::string::npos) << t;
}

TEST(PcvFormat, RoundTripIsExact) {
  Model m = small_model();
  ASSERT_TRUE(infer_shapes(m.graph).is_ok());
  m.graph.values[1].quant = QuantParams{{0.1f, 0.2f, 0.3f, 0.4f}, {0, 0, 0, 0}, 0};
  auto bytes = write_pcv(m);
  ASSERT_TRUE(bytes.has_value());
  EXPECT_TRUE(looks_like_pcv(*bytes));
  auto back = read_pcv(*bytes, "mem.pcv");
  ASSERT_TRUE(back.has_value()) << back.status().message();
  EXPECT_EQ(model_difference(m, *back), "");
  EXPECT_EQ(back->graph.nodes[0].attr<Conv2dAttrs>().activation, Activation::kRelu6);
  EXPECT_EQ(back->input_spec.labels, (std::vector<std::string>{"cat", "dog"}));
  // Constants are 64-byte aligned inside the file (zero-copy readers can map them).
  auto again = write_pcv(*back);
  EXPECT_EQ(*again, *bytes);  // deterministic
}

// A model whose conv weights are 5/8 zero (as pruning leaves them), one of the zeros a -0.0f
// (not all-zero bytes, so it must stay dense in the mask), plus an int8 constant half zero.
Model pruned_model() {
  Model m = small_model();
  Graph& g = m.graph;
  Tensor w(DType::kF32, {16, 3, 3, 3});
  float* pw = w.data<float>();
  for (int64_t i = 0; i < w.num_elements(); ++i) pw[i] = (i % 8 < 3) ? 0.25f * static_cast<float>(i + 1) : 0.f;
  pw[7] = -0.f;
  ValueId x = g.inputs[0];
  Conv2dAttrs c;
  ValueId y = g.add_node(OpType::kConv2d, "pruned", {x, g.add_constant("pruned/w", w, {}, true), kNoValue}, c);
  Tensor q(DType::kI8, {256});
  for (int64_t i = 0; i < 256; ++i) q.data<int8_t>()[i] = (i % 2) ? static_cast<int8_t>(i - 128) : 0;
  g.add_constant("q", q);
  g.mark_output(y);
  return m;
}

TEST(PcvFormat, CorruptAndTruncatedFilesFailCleanly) {
  for (Model m : {small_model(), pruned_model()}) {  // dense, and with sparse constants
    ASSERT_TRUE(infer_shapes(m.graph).is_ok());
    auto bytes = *write_pcv(m);
    // Every truncation fails with invalid_model naming the file, never crashes.
    for (size_t n = 0; n < bytes.size(); n += std::max<size_t>(1, bytes.size() / 97)) {
      auto r = read_pcv(std::span<const uint8_t>(bytes.data(), n), "cut.pcv");
      ASSERT_FALSE(r.has_value()) << n;
      EXPECT_NE(r.status().message().find("cut.pcv"), std::string::npos);
    }
    // Byte flips: either a clean error or a model that verifies; never a crash.
    uint32_t state = 12345;
    int errors = 0;
    for (int trial = 0; trial < 2000; ++trial) {
      auto copy = bytes;
      for (int k = 0; k < 3; ++k) {
        state = state * 1664525u + 1013904223u;
        copy[state % copy.size()] ^= static_cast<uint8_t>(1u << ((state >> 24) % 8));
      }
      auto r = read_pcv(copy, "flip.pcv");
      if (!r.has_value()) ++errors;
    }
    EXPECT_GT(errors, 0);
  }
  auto r = read_pcv(std::vector<uint8_t>(100, 0), "zeros.pcv");
  EXPECT_NE(r.status().message().find("not a .pcv file"), std::string::npos);
}

TEST(PcvFormat, RejectsOutOfRangeIdsFromFile) {
  Model m = small_model();
  ASSERT_TRUE(infer_shapes(m.graph).is_ok());
  m.graph.nodes[2].inputs[0] = 1000;
  auto bytes = *write_pcv(m);
  auto r = read_pcv(bytes, "ids.pcv");
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidModel);
  EXPECT_NE(r.status().message().find("out of range"), std::string::npos) << r.status().message();
}

TEST(PcvFormat, PrunedConstantsAreStoredSparseAndReadBackBitExact) {
  Model m = pruned_model();
  ASSERT_TRUE(infer_shapes(m.graph).is_ok());
  auto bytes = write_pcv(m);
  ASSERT_TRUE(bytes.has_value());
  auto back = read_pcv(*bytes, "sparse.pcv");
  ASSERT_TRUE(back.has_value()) << back.status().message();
  EXPECT_EQ(model_difference(m, *back), "");  // bit for bit, -0.0f included
  const fb::Model* fm = fb::GetModel(bytes->data());
  EXPECT_EQ(fm->format_version(), 2u);
  // Per constant: sparse exactly when mask + nonzero elements <= 3/4 of the dense bytes.
  int sparse = 0;
  for (const fb::Value* v : *fm->values()) {
    if (v->buffer() == 0) continue;
    const fb::Buffer* b = fm->buffers()->Get(v->buffer());
    const std::string name = v->name()->str();
    if (name == "pruned/w") {
      // 432 floats: 3 of every 8 nonzero (162) + the -0.0f = 163 values, 54 mask bytes.
      ASSERT_NE(b->nonzero_mask(), nullptr);
      EXPECT_EQ(b->nonzero_mask()->size(), 54u);
      EXPECT_EQ(b->data()->size(), 163u * 4u);
      ++sparse;
    } else if (name == "q") {
      // 256 int8, 128 nonzero: 32 + 128 = 160 bytes = 0.625 of 256.
      ASSERT_NE(b->nonzero_mask(), nullptr);
      EXPECT_EQ(b->data()->size(), 128u);
      ++sparse;
    } else {
      EXPECT_EQ(b->nonzero_mask(), nullptr) << name;  // dense weights, and tensors under 64 elements
    }
  }
  EXPECT_EQ(sparse, 2);
  // A model without such constants keeps version 1, so older readers still read it.
  Model dense = small_model();
  ASSERT_TRUE(infer_shapes(dense.graph).is_ok());
  auto dense_bytes = *write_pcv(dense);
  EXPECT_EQ(fb::GetModel(dense_bytes.data())->format_version(), 1u);
}

TEST(PcvFormat, InconsistentSparseBufferIsNamedInTheError) {
  Model m = pruned_model();
  ASSERT_TRUE(infer_shapes(m.graph).is_ok());
  auto bytes = *write_pcv(m);
  // The mask's first byte sits right after its length prefix: flipping a bit there changes the
  // nonzero count (bit 7 is the -0.0f: clearing it leaves 162), which no longer matches the values.
  const fb::Model* fm = fb::GetModel(bytes.data());
  for (const fb::Value* v : *fm->values()) {
    if (v->name()->str() != "pruned/w") continue;
    const auto* mask = fm->buffers()->Get(v->buffer())->nonzero_mask();
    auto copy = bytes;
    copy[static_cast<size_t>(mask->data() - bytes.data())] ^= 0x80;
    auto r = read_pcv(copy, "mask.pcv");
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidModel);
    EXPECT_NE(r.status().message().find("mask.pcv: value 'pruned/w': sparse buffer: 652 bytes of values, the mask's 162 nonzero f32 elements need 648"),
              std::string::npos)
        << r.status().message();
  }
}

}  // namespace
}  // namespace pcv::ir
