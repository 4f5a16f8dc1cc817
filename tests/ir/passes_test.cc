// Graph passes: structure before/after and numbers on small cases computed by formula.
// (Outputs of whole zoo models before/after run in tests/formats/tflite, which has a runtime.)
#include <gtest/gtest.h>

#include <cmath>

#include "ir/passes/passes.h"

namespace pcv::ir {
namespace {

ValueId constant(Graph& g, const std::string& name, Shape shape, std::vector<float> v) {
  return g.add_constant(name, Tensor::from_vector<float>(std::move(shape), v));
}

int count(const Graph& g, OpType op) {
  int n = 0;
  for (const Node& node : g.nodes) n += node.op == op;
  return n;
}

const float* data(const Graph& g, ValueId v) { return g.value(v).data.data<float>(); }

// y = W x + b for a dense layer (x: (in,), W: (out, in)).
std::vector<float> dense(const Graph& g, const Node& n, const std::vector<float>& x) {
  const Shape& ws = g.value(n.inputs[1]).shape;
  std::vector<float> y(static_cast<size_t>(ws[0]), 0.f);
  for (int64_t o = 0; o < ws[0]; ++o) {
    float acc = n.inputs.size() > 2 && n.inputs[2] != kNoValue ? data(g, n.inputs[2])[o] : 0.f;
    for (int64_t i = 0; i < ws[1]; ++i) acc += data(g, n.inputs[1])[o * ws[1] + i] * x[static_cast<size_t>(i)];
    y[static_cast<size_t>(o)] = acc;
  }
  return y;
}

// x (1, 3) -> fc (2 outputs, bias) -> batch_norm -> out
Graph dense_bn_graph() {
  Graph g;
  auto x = g.add_input("x", DType::kF32, {1, 3});
  auto w = constant(g, "w", {2, 3}, {1, 2, 3, -1, 0.5f, 2});
  auto b = constant(g, "b", {2}, {0.5f, -1});
  auto y = g.add_node(OpType::kFullyConnected, "fc", {x, w, b}, FullyConnectedAttrs{});
  BatchNormAttrs bn;
  bn.epsilon = 0.01f;
  auto z = g.add_node(OpType::kBatchNorm, "bn",
                      {y, constant(g, "gamma", {2}, {2, 0.5f}), constant(g, "beta", {2}, {0.1f, -0.2f}),
                       constant(g, "mean", {2}, {1, -1}), constant(g, "var", {2}, {4, 0.25f})},
                      bn);
  g.mark_output(z);
  EXPECT_TRUE(infer_shapes(g).is_ok());
  return g;
}

TEST(FoldBatchNorm, DenseFoldsByFormula) {
  Graph g = dense_bn_graph();
  const std::vector<float> x{0.3f, -1.2f, 2.0f};
  // Unfolded, by formula: gamma * (Wx + b - mean) / sqrt(var + eps) + beta.
  std::vector<float> want = dense(g, g.nodes[0], x);
  const float gamma[] = {2, 0.5f}, beta[] = {0.1f, -0.2f}, mean[] = {1, -1}, var[] = {4, 0.25f};
  for (size_t c = 0; c < 2; ++c) want[c] = gamma[c] * (want[c] - mean[c]) / std::sqrt(var[c] + 0.01f) + beta[c];

  const ValueId out = g.outputs[0];
  auto folds = fold_batch_norm(g);
  ASSERT_TRUE(folds);
  EXPECT_EQ(*folds, 1);
  ASSERT_EQ(g.nodes.size(), 1u);
  EXPECT_EQ(g.nodes[0].op, OpType::kFullyConnected);
  EXPECT_EQ(g.nodes[0].outputs[0], out);  // the output keeps its id and name
  EXPECT_EQ(g.value(out).name, "bn");
  const std::vector<float> got = dense(g, g.nodes[0], x);
  for (size_t c = 0; c < 2; ++c) EXPECT_NEAR(got[c], want[c], 1e-5f);
  // Original weights untouched (shared tensors are never written).
  EXPECT_EQ(data(g, g.find_value("w"))[0], 1.f);
  ASSERT_TRUE(prune_unused(g));
  EXPECT_TRUE(verify(g).is_ok()) << verify(g).to_string();
  EXPECT_EQ(g.find_value("gamma"), kNoValue);
}

TEST(FoldBatchNorm, ConvWithoutBiasGetsOne) {
  Graph g;
  auto x = g.add_input("x", DType::kF32, {1, 1, 1, 2});
  auto w = constant(g, "w", {2, 1, 1, 2}, {1, 2, 3, 4});
  auto y = g.add_node(OpType::kConv2d, "conv", {x, w}, Conv2dAttrs{});
  auto z = g.add_node(OpType::kBatchNorm, "bn",
                      {y, constant(g, "g", {2}, {1, 2}), constant(g, "b", {2}, {0, 1}), constant(g, "m", {2}, {0.5f, 0}),
                       constant(g, "v", {2}, {1, 1})});
  g.mark_output(z);
  ASSERT_TRUE(infer_shapes(g).is_ok());
  ASSERT_TRUE(fold_batch_norm(g));
  ASSERT_EQ(g.nodes.size(), 1u);
  ASSERT_EQ(g.nodes[0].inputs.size(), 3u);
  const float s1 = 2.f / std::sqrt(1.f + 1e-3f), s0 = 1.f / std::sqrt(1.f + 1e-3f);
  EXPECT_NEAR(data(g, g.nodes[0].inputs[1])[2], 3 * s1, 1e-6f);
  EXPECT_NEAR(data(g, g.nodes[0].inputs[2])[0], -0.5f * s0, 1e-6f);
  EXPECT_NEAR(data(g, g.nodes[0].inputs[2])[1], 1.f, 1e-6f);
  EXPECT_TRUE(verify(g).is_ok());
}

TEST(FoldBatchNorm, StandaloneAndSharedStay) {
  // BN after an add stays; BN after a conv whose output is also used elsewhere stays.
  Graph g;
  auto x = g.add_input("x", DType::kF32, {1, 2, 2, 2});
  auto bnp = [&](const std::string& p) {
    return std::vector<ValueId>{constant(g, p + "g", {2}, {1, 1}), constant(g, p + "b", {2}, {0, 0}),
                                constant(g, p + "m", {2}, {0, 0}), constant(g, p + "v", {2}, {1, 1})};
  };
  auto a = g.add_node(OpType::kAdd, "add", {x, x}, EltwiseAttrs{});
  auto p1 = bnp("a");
  auto b1 = g.add_node(OpType::kBatchNorm, "bn1", {a, p1[0], p1[1], p1[2], p1[3]});
  auto c = g.add_node(OpType::kConv2d, "conv", {b1, constant(g, "w", {2, 1, 1, 2}, {1, 0, 0, 1})}, Conv2dAttrs{});
  auto p2 = bnp("c");
  auto b2 = g.add_node(OpType::kBatchNorm, "bn2", {c, p2[0], p2[1], p2[2], p2[3]});
  auto sum = g.add_node(OpType::kAdd, "sum", {b2, c}, EltwiseAttrs{});
  g.mark_output(sum);
  ASSERT_TRUE(infer_shapes(g).is_ok());
  auto folds = fold_batch_norm(g);
  ASSERT_TRUE(folds);
  EXPECT_EQ(*folds, 0);
  EXPECT_EQ(count(g, OpType::kBatchNorm), 2);
}

TEST(FuseActivations, FusesIntoProducers) {
  Graph g;
  auto x = g.add_input("x", DType::kF32, {1, 4, 4, 2});
  auto c = g.add_node(OpType::kConv2d, "conv", {x, constant(g, "w", {2, 1, 1, 2}, {1, 0, 0, 1})}, Conv2dAttrs{});
  auto r = g.add_node(OpType::kRelu6, "relu6", {c});
  auto a = g.add_node(OpType::kAdd, "add", {r, x}, EltwiseAttrs{});
  auto r2 = g.add_node(OpType::kRelu, "relu", {a});
  auto p = g.add_node(OpType::kMaxPool, "pool", {r2}, Pool2dAttrs{});
  auto r3 = g.add_node(OpType::kRelu, "relu_out", {p});
  g.mark_output(r3);
  ASSERT_TRUE(infer_shapes(g).is_ok());
  auto n = fuse_activations(g);
  ASSERT_TRUE(n);
  EXPECT_EQ(*n, 3);
  ASSERT_EQ(g.nodes.size(), 3u);
  EXPECT_EQ(g.nodes[0].attr<Conv2dAttrs>().activation, Activation::kRelu6);
  EXPECT_EQ(g.nodes[1].attr<EltwiseAttrs>().activation, Activation::kRelu);
  EXPECT_EQ(g.nodes[2].attr<Pool2dAttrs>().activation, Activation::kRelu);
  EXPECT_EQ(g.outputs[0], r3);
  ASSERT_TRUE(prune_unused(g));
  EXPECT_TRUE(verify(g).is_ok()) << verify(g).to_string();
  EXPECT_EQ(g.value(g.outputs[0]).name, "relu_out");
}

TEST(FuseActivations, SkipsSharedOutputsAndOtherActivations) {
  Graph g;
  auto x = g.add_input("x", DType::kF32, {1, 4});
  FullyConnectedAttrs fa;
  auto y = g.add_node(OpType::kFullyConnected, "fc", {x, constant(g, "w", {4, 4}, std::vector<float>(16, 0.1f))}, fa);
  auto r = g.add_node(OpType::kRelu, "relu", {y});
  auto s = g.add_node(OpType::kAdd, "add", {r, y}, EltwiseAttrs{});  // y used twice
  auto h = g.add_node(OpType::kSigmoid, "sig", {s});
  g.mark_output(h);
  ASSERT_TRUE(infer_shapes(g).is_ok());
  auto n = fuse_activations(g);
  ASSERT_TRUE(n);
  EXPECT_EQ(*n, 0);
  EXPECT_EQ(g.nodes.size(), 4u);
}

TEST(RemoveIdentity, DropoutAndSameShapeReshape) {
  Graph g;
  auto x = g.add_input("x", DType::kF32, {1, 6});
  auto d = g.add_node(OpType::kDropout, "dropout", {x}, DropoutAttrs{});
  ReshapeAttrs same;
  same.shape = {1, -1};
  auto r = g.add_node(OpType::kReshape, "same", {d}, same);
  ReshapeAttrs other;
  other.shape = {1, 2, 3};
  auto r2 = g.add_node(OpType::kReshape, "other", {r}, other);
  auto out = g.add_node(OpType::kDropout, "out", {r2}, DropoutAttrs{});
  g.mark_output(out);
  ASSERT_TRUE(infer_shapes(g).is_ok());
  auto n = remove_identity(g);
  ASSERT_TRUE(n);
  EXPECT_EQ(*n, 3);
  ASSERT_EQ(g.nodes.size(), 1u);
  EXPECT_EQ(g.nodes[0].name, "other");
  EXPECT_EQ(g.nodes[0].inputs[0], x);
  EXPECT_EQ(g.nodes[0].outputs[0], out);  // the graph output keeps its value and name
  EXPECT_EQ(g.value(g.outputs[0]).name, "out");
  ASSERT_TRUE(prune_unused(g));
  EXPECT_TRUE(verify(g).is_ok()) << verify(g).to_string();
}

TEST(RemoveIdentity, InputToOutputStays) {
  Graph g;
  auto x = g.add_input("x", DType::kF32, {1, 6});
  auto d = g.add_node(OpType::kDropout, "dropout", {x}, DropoutAttrs{});
  g.mark_output(d);
  ASSERT_TRUE(infer_shapes(g).is_ok());
  auto n = remove_identity(g);
  ASSERT_TRUE(n);
  EXPECT_EQ(*n, 0);
}

TEST(PruneUnused, DropsDeadNodesAndValuesAndRenumbers) {
  Graph g;
  auto x = g.add_input("x", DType::kF32, {1, 2});
  auto unused_const = constant(g, "unused", {2}, {1, 2});
  auto dead = g.add_node(OpType::kRelu, "dead", {x});
  auto dead2 = g.add_node(OpType::kSigmoid, "dead2", {dead});
  auto live = g.add_node(OpType::kRelu6, "live", {x});
  g.mark_output(live);
  ASSERT_TRUE(infer_shapes(g).is_ok());
  (void)unused_const;
  (void)dead2;
  auto removed = prune_unused(g);
  ASSERT_TRUE(removed);
  EXPECT_EQ(*removed, 3);
  ASSERT_EQ(g.values.size(), 2u);
  ASSERT_EQ(g.nodes.size(), 1u);
  EXPECT_EQ(g.values[0].name, "x");
  EXPECT_EQ(g.values[1].name, "live");
  EXPECT_EQ(g.nodes[0].inputs[0], 0);
  EXPECT_EQ(g.nodes[0].outputs[0], 1);
  EXPECT_EQ(g.outputs[0], 1);
  EXPECT_TRUE(verify(g).is_ok());
}

}  // namespace
}  // namespace pcv::ir
