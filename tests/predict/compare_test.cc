#include "predict/compare.h"

#include <gtest/gtest.h>

#include "zoo/zoo.h"

namespace pcv::predict {
namespace {

using namespace pcv::ir;

Model small_cnn(const std::string& arch = "simple_cnn") {
  zoo::ZooOptions o;
  o.arch = arch;
  o.size = 32;
  o.classes = 4;
  o.width = 0.35f;
  auto m = zoo::create_model(o);
  EXPECT_TRUE(m) << m.status().message();
  return std::move(m).value();
}

// A copy of `m` whose node `node_name` has its weights scaled and shifted.
Model perturbed(const Model& m, const std::string& node_name) {
  Model c = m;
  for (Node& n : c.graph.nodes) {
    if (n.name != node_name) continue;
    const Value& w = c.graph.value(n.inputs[1]);
    Tensor t = w.data.clone();
    for (int64_t i = 0; i < t.num_elements(); ++i) t.data<float>()[i] = -1.5f * t.data<float>()[i] + 0.05f;
    n.inputs[1] = c.graph.add_constant(w.name + "/perturbed", t);
    return c;
  }
  ADD_FAILURE() << "no node " << node_name;
  return c;
}

TEST(Compare, IdenticalModelsAgreeExactly) {
  for (const char* arch : {"simple_cnn", "mobilenet_v2"}) {
    SCOPED_TRACE(arch);
    Model m = small_cnn(arch);
    auto r = compare_models(m, m);
    ASSERT_TRUE(r) << r.status().message();
    EXPECT_EQ(r->inputs, "random");
    EXPECT_EQ(r->samples, 4);
    EXPECT_DOUBLE_EQ(r->top1_agreement, 1.0);
    EXPECT_EQ(r->max_abs_diff, 0.0);
    EXPECT_EQ(r->mean_abs_diff, 0.0);
    EXPECT_EQ(r->match, "name");
    EXPECT_EQ(r->first_divergence, -1);
    ASSERT_GE(r->layers.size(), 4u);
    EXPECT_EQ(static_cast<int>(r->layers.size()), r->compute_layers_a);
    for (const auto& l : r->layers) {
      EXPECT_EQ(l.snr_db, kMaxSnrDb) << l.name;
      EXPECT_NEAR(l.cosine, 1.0, 1e-12) << l.name;
      EXPECT_EQ(l.max_abs, 0.0) << l.name;
    }
  }
}

TEST(Compare, NamesThePerturbedLayerAsFirstDivergence) {
  Model m = small_cnn();
  auto r = compare_models(m, perturbed(m, "conv2"));
  ASSERT_TRUE(r) << r.status().message();
  ASSERT_GE(r->first_divergence, 0);
  EXPECT_EQ(r->layers[static_cast<size_t>(r->first_divergence)].name, "conv2");
  EXPECT_GT(r->max_abs_diff, 0.0);
  // Everything before it is exact.
  for (int i = 0; i < r->first_divergence; ++i) EXPECT_EQ(r->layers[static_cast<size_t>(i)].snr_db, kMaxSnrDb);
  EXPECT_LT(r->layers[static_cast<size_t>(r->first_divergence)].snr_db, 20.0);
}

TEST(Compare, MatchesBySequenceWhenNamesDiffer) {
  Model m = small_cnn();
  Model renamed = perturbed(m, "dense1");
  for (Value& v : renamed.graph.values) v.name = "other_" + v.name;
  for (Node& n : renamed.graph.nodes) n.name = "other_" + n.name;
  auto r = compare_models(m, renamed);
  ASSERT_TRUE(r) << r.status().message();
  EXPECT_EQ(r->match, "sequence");
  EXPECT_EQ(static_cast<int>(r->layers.size()), r->compute_layers_a);
  ASSERT_GE(r->first_divergence, 0);
  EXPECT_EQ(r->layers[static_cast<size_t>(r->first_divergence)].name, "dense1");
  EXPECT_EQ(r->layers[0].value_b.rfind("other_", 0), 0u);
}

TEST(Compare, QuantizedInputGetsItsOwnInputType) {
  // B = quantize(u8 input) -> dequantize -> A's graph: same answers up to input rounding.
  Model a = small_cnn();
  Model b = a;
  Graph& g = b.graph;
  const ValueId old_in = g.inputs[0];
  Value& in = g.value(old_in);
  in.name = "input_f32";
  const ValueId q = g.add_input("input", DType::kU8, in.shape, QuantParams::per_tensor(1.f / 255, 0));
  g.inputs = {q};
  // The new dequantize must come first in execution order.
  Node deq;
  deq.op = OpType::kDequantize;
  deq.name = "dequantize_input";
  deq.inputs = {q};
  deq.outputs = {old_in};
  deq.attrs = default_attrs(OpType::kDequantize);
  g.nodes.insert(g.nodes.begin(), deq);
  ASSERT_TRUE(infer_shapes(g).is_ok());
  a.input_spec.std = {255.f, 255.f, 255.f};
  b.input_spec = a.input_spec;
  auto r = compare_models(a, b);
  ASSERT_TRUE(r) << r.status().message();
  EXPECT_DOUBLE_EQ(r->top1_agreement, 1.0);
  EXPECT_LT(r->max_abs_diff, 1e-4);
  EXPECT_EQ(r->first_divergence, -1);
}

TEST(Compare, MissingDataDirIsAnError) {
  Model m = small_cnn();
  CompareOptions o;
  o.data_dir = "/nonexistent/photos";
  auto r = compare_models(m, m, o);
  ASSERT_FALSE(r);
  EXPECT_NE(r.status().message().find("/nonexistent/photos"), std::string::npos);
}

}  // namespace
}  // namespace pcv::predict
