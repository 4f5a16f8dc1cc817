#include <gtest/gtest.h>

#include "ir/pcv_format.h"
#include "zoo/zoo.h"

namespace pcv::zoo {
namespace {

TEST(Zoo, MobileNetV2MatchesThePublishedParameterCount) {
  // Keras' MobileNetV2(alpha=1.0, 224, classes=1000) reports 3,538,984 parameters, batch-norm
  // moving statistics included; the architecture is fixed, so ours must match it exactly.
  ZooOptions o;
  o.arch = "mobilenet_v2";
  o.classes = 1000;
  auto m = create_model(o);
  ASSERT_TRUE(m.has_value()) << m.status().message();
  EXPECT_EQ(m->graph.parameter_count(), 3538984);
  // 0.602 GFLOP = 2 * MACs (anchors); 300.8M MACs with the 1000-class head.
  const int64_t macs = count_macs(m->graph);
  EXPECT_NEAR(static_cast<double>(macs), 300.8e6, 1.5e6);
  EXPECT_EQ(m->graph.value(m->graph.outputs[0]).shape, (ir::Shape{1, 1000}));
  EXPECT_TRUE(ir::verify(m->graph).is_ok());
}

TEST(Zoo, MobileNetV2Width035At96) {
  // Channels are rounded to multiples of 8 (never below 90% of the scaled width): the stem
  // is 16 channels at alpha 0.35 (32 * 0.35 = 11.2 -> 8 is < 90% -> 16), the last conv keeps
  // 1280 channels when alpha <= 1, and 96 / 32 = 3x3 before the global pool.
  ZooOptions o;
  o.arch = "mobilenet_v2";
  o.width = 0.35f;
  o.size = 96;
  o.classes = 1000;
  auto m = create_model(o);
  ASSERT_TRUE(m.has_value());
  const auto& g = m->graph;
  EXPECT_EQ(g.value(g.find_value("conv1/weights")).shape, (ir::Shape{16, 3, 3, 3}));
  EXPECT_EQ(g.value(g.find_value("conv_last/weights")).shape[0], 1280);
  EXPECT_EQ(g.value(g.find_value("conv_last/relu6")).shape, (ir::Shape{1, 3, 3, 1280}));
  EXPECT_EQ(g.value(g.find_value("block16/project/weights")).shape, (ir::Shape{112, 1, 1, 336}));
}

TEST(Zoo, SimpleCnnIsTheTutorialCnn) {
  ZooOptions o;
  o.classes = 2;
  auto m = create_model(o);
  ASSERT_TRUE(m.has_value());
  // 2 * MACs = 1.111 GFLOP at 224 (anchors): conv 85.1M + 437.8M + 398.7M + 169.9M (x2 FLOPs
  // each) + dense 18432x512 + 512x2.
  const int64_t macs = count_macs(m->graph);
  const int64_t expect = 222LL * 222 * 32 * 27 + 109LL * 109 * 64 * 288 + 52LL * 52 * 128 * 576 +
                         24LL * 24 * 128 * 1152 + 12LL * 12 * 128 * 512 + 512 * 2;
  EXPECT_EQ(macs, expect);
  EXPECT_NEAR(2.0 * static_cast<double>(macs), 1.111e9, 0.002e9);
}

TEST(Zoo, SimpleCnnAdaptsToFashionMnist) {
  ZooOptions o;
  o.size = 28;
  o.channels = 1;
  o.classes = 10;
  auto m = create_model(o);
  ASSERT_TRUE(m.has_value()) << m.status().message();
  // 28 -> conv 26 -> pool 13 -> conv 11 -> pool 5: two blocks, 5*5*64 features.
  const auto& g = m->graph;
  int convs = 0;
  for (auto& n : g.nodes) convs += n.op == ir::OpType::kConv2d;
  EXPECT_EQ(convs, 2);
  EXPECT_EQ(g.value(g.find_value("flatten")).shape, (ir::Shape{1, 1600}));
  EXPECT_EQ(m->input_spec.color, ir::ColorOrder::kGray);
}

TEST(Zoo, SeededAndSavable) {
  ZooOptions o;
  o.arch = "mobilenet_v2";
  o.width = 0.5f;
  o.size = 64;
  auto a = create_model(o);
  auto b = create_model(o);
  EXPECT_EQ(ir::model_difference(*a, *b), "");
  o.seed = 2;
  auto c = create_model(o);
  EXPECT_NE(ir::model_difference(*a, *c), "");
  auto bytes = ir::write_pcv(*a);
  auto back = ir::read_pcv(*bytes, "zoo.pcv");
  ASSERT_TRUE(back.has_value()) << back.status().message();
  EXPECT_EQ(ir::model_difference(*a, *back), "");
}

TEST(Zoo, RejectsAbsurdOptions) {
  ZooOptions o;
  o.arch = "resnet";
  EXPECT_EQ(create_model(o).status().code(), StatusCode::kInvalidArgument);
  o.arch = "mobilenet_v2";
  o.size = 16;
  EXPECT_FALSE(create_model(o).has_value());
  o.size = 224;
  o.classes = 1;
  EXPECT_FALSE(create_model(o).has_value());
  o.classes = 2;
  o.width = -1;
  EXPECT_FALSE(create_model(o).has_value());
}

}  // namespace
}  // namespace pcv::zoo
