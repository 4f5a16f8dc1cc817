#include "predict/predictor.h"

#include <gtest/gtest.h>

#include <cmath>
#include <fstream>

#include "support/paths.h"

namespace pcv::predict {
namespace {

using namespace pcv::ir;

// x (1, 2, 2, 1) gray, value = pixel / 255 -> flatten (1, 4) -> fc 3 classes [-> softmax].
//   w = [[1, 0, 0, 0],      logits for pixels (255, 0, 0, 255) (x = 1, 0, 0, 1):
//        [0, 0, 0, 2],        class 0: 1 + 0.5 = 1.5
//        [1, 1, 1, 1]]        class 1: 2 - 1   = 1
//   b = [0.5, -1, -1.5]       class 2: 2 - 1.5 = 0.5
Model tiny_model(bool with_softmax, std::vector<std::string> labels = {"cat", "dog", "fox"}) {
  Model m;
  Graph& g = m.graph;
  ValueId x = g.add_input("image", DType::kF32, {1, 2, 2, 1});
  ValueId f = g.add_node(OpType::kFlatten, "flatten", {x});
  ValueId w = g.add_constant("fc/w", Tensor::from_vector<float>({3, 4}, {1, 0, 0, 0, 0, 0, 0, 2, 1, 1, 1, 1}));
  ValueId b = g.add_constant("fc/b", Tensor::from_vector<float>({3}, {0.5f, -1.f, -1.5f}));
  ValueId y = g.add_node(OpType::kFullyConnected, "fc", {f, w, b}, FullyConnectedAttrs{});
  if (with_softmax) y = g.add_node(OpType::kSoftmax, "probabilities", {y});
  g.mark_output(y);
  EXPECT_TRUE(infer_shapes(g).is_ok());
  m.input_spec.height = 2;
  m.input_spec.width = 2;
  m.input_spec.channels = 1;
  m.input_spec.color = ColorOrder::kGray;
  m.input_spec.std = {255.f, 255.f, 255.f};
  m.input_spec.labels = std::move(labels);
  return m;
}

vision::Image diagonal_image() {
  vision::Image img(2, 2, 1);
  img.pixel(0, 0)[0] = 255;
  img.pixel(1, 1)[0] = 255;
  return img;
}

std::vector<double> softmax(std::vector<double> z) {
  double mx = *std::max_element(z.begin(), z.end()), s = 0;
  for (double& v : z) s += (v = std::exp(v - mx));
  for (double& v : z) v /= s;
  return z;
}

TEST(Predictor, KnownWeightsGiveKnownProbabilities) {
  const auto expect = softmax({1.5, 1.0, 0.5});
  for (bool with_softmax : {true, false}) {
    auto p = Predictor::create(tiny_model(with_softmax));
    ASSERT_TRUE(p) << p.status().message();
    auto r = (*p)->predict_image(diagonal_image(), 3);
    ASSERT_TRUE(r) << r.status().message();
    ASSERT_EQ(r->probabilities.size(), 3u);
    for (size_t i = 0; i < 3; ++i) EXPECT_NEAR(r->probabilities[i], expect[i], 1e-5) << "softmax in graph: " << with_softmax;
    ASSERT_EQ(r->top.size(), 3u);
    EXPECT_EQ(r->top[0].label, "cat");
    EXPECT_EQ(r->top[1].label, "dog");
    EXPECT_EQ(r->top[2].label, "fox");
    EXPECT_EQ(r->top[0].index, 0);
    EXPECT_GT(r->top[0].score, r->top[1].score);
    EXPECT_GT(r->top[1].score, r->top[2].score);
  }
}

TEST(Predictor, TopKIsTruncatedAndLabelsFallBack) {
  auto p = Predictor::create(tiny_model(true, {}));
  ASSERT_TRUE(p);
  auto r = (*p)->predict_image(diagonal_image(), 2);
  ASSERT_TRUE(r);
  ASSERT_EQ(r->top.size(), 2u);
  EXPECT_EQ(r->top[0].label, "class0");
  EXPECT_EQ(r->top[1].label, "class1");
  EXPECT_EQ(r->probabilities.size(), 3u);
}

TEST(Predictor, DetectsTrailingSoftmax) {
  Model with = tiny_model(true), without = tiny_model(false);
  EXPECT_TRUE(ends_in_softmax(with.graph, 0));
  EXPECT_FALSE(ends_in_softmax(without.graph, 0));
}

TEST(Postprocess, TopKOrdersByScoreThenIndex) {
  const std::vector<float> v = {0.1f, 0.4f, 0.1f, 0.4f, 0.0f};
  EXPECT_EQ(top_k(v, 3), (std::vector<int>{1, 3, 0}));
  EXPECT_EQ(top_k(v, 10).size(), 5u);
}

TEST(Postprocess, DequantizesInt8AndKeepsDistributions) {
  // int8 softmax output convention: scale 1/256, zero point -128.
  Tensor t = Tensor::from_vector<int8_t>({1, 3}, {static_cast<int8_t>(64), static_cast<int8_t>(-64), static_cast<int8_t>(-128)});
  const auto q = QuantParams::per_tensor(1.f / 256, -128);
  auto p = probabilities(t, q, /*is_softmax=*/true);
  ASSERT_EQ(p.size(), 3u);
  EXPECT_FLOAT_EQ(p[0], 0.75f);
  EXPECT_FLOAT_EQ(p[1], 0.25f);
  EXPECT_FLOAT_EQ(p[2], 0.0f);
  // Logits get a softmax; an already-normalized float vector is kept.
  auto logits = probabilities(Tensor::from_vector<float>({1, 2}, {0.f, 0.f}), {}, false);
  EXPECT_FLOAT_EQ(logits[0], 0.5f);
  auto dist = probabilities(Tensor::from_vector<float>({1, 2}, {0.3f, 0.7f}), {}, false);
  EXPECT_FLOAT_EQ(dist[1], 0.7f);
}

TEST(Predictor, QuantizedInputIsFedWithItsParameters) {
  // uint8 input (scale 1/255, zp 0) -> dequantize -> flatten -> fc: same numbers as the float model.
  Model m = tiny_model(true);
  Graph g;
  ValueId x = g.add_input("image", DType::kU8, {1, 2, 2, 1}, QuantParams::per_tensor(1.f / 255, 0));
  ValueId d = g.add_node(OpType::kDequantize, "dequant", {x});
  ValueId f = g.add_node(OpType::kFlatten, "flatten", {d});
  ValueId w = g.add_constant("fc/w", m.graph.value(m.graph.find_value("fc/w")).data);
  ValueId b = g.add_constant("fc/b", m.graph.value(m.graph.find_value("fc/b")).data);
  ValueId y = g.add_node(OpType::kFullyConnected, "fc", {f, w, b}, FullyConnectedAttrs{});
  g.mark_output(g.add_node(OpType::kSoftmax, "probabilities", {y}));
  ASSERT_TRUE(infer_shapes(g).is_ok());
  m.graph = std::move(g);
  auto p = Predictor::create(m);
  ASSERT_TRUE(p) << p.status().message();
  auto r = (*p)->predict_image(diagonal_image(), 1);
  ASSERT_TRUE(r) << r.status().message();
  const auto expect = softmax({1.5, 1.0, 0.5});
  EXPECT_NEAR(r->probabilities[0], expect[0], 1e-5);
  EXPECT_EQ(r->trace.input_dtype, "u8");
}

TEST(Predictor, TraceFieldsArePresentAndNonNegative) {
  PredictorOptions o;
  o.profile = true;
  auto p = Predictor::create(tiny_model(true), o);
  ASSERT_TRUE(p);
  // A PNG on disk, so decode is timed too.
  const std::string dir = pcv::testing::make_temp_dir("predict_trace");
  const std::string png = dir + "/x.png";
  {
    // 2x2 8-bit gray PNG, rows (255, 0) and (0, 255).
    static const unsigned char kPng[] = {
        0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52,
        0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x02, 0x08, 0x00, 0x00, 0x00, 0x00, 0x57, 0xdd, 0x52,
        0xf8, 0x00, 0x00, 0x00, 0x0e, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9c, 0x63, 0xf8, 0xcf, 0xc0, 0xc0,
        0xf0, 0x1f, 0x00, 0x06, 0x00, 0x01, 0xff, 0x78, 0x5c, 0xb6, 0x81, 0x00, 0x00, 0x00, 0x00, 0x49,
        0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82};
    std::ofstream(png, std::ios::binary).write(reinterpret_cast<const char*>(kPng), sizeof(kPng));
  }
  auto r = (*p)->predict_file(png, 3);
  ASSERT_TRUE(r) << r.status().message();
  const PredictionTrace& t = r->trace;
  EXPECT_GE(t.decode_ms, 0);
  EXPECT_GE(t.preprocess_ms, 0);
  EXPECT_GT(t.inference_ms, 0);
  EXPECT_GE(t.postprocess_ms, 0);
  EXPECT_NEAR(t.total_ms, t.decode_ms + t.preprocess_ms + t.inference_ms + t.postprocess_ms, 1e-9);
  EXPECT_EQ(t.source_height, 2);
  EXPECT_EQ(t.input_channels, 1);
  EXPECT_EQ(t.input_dtype, "f32");
  ASSERT_FALSE(t.layers.empty());
  for (const auto& l : t.layers) {
    EXPECT_FALSE(l.name.empty());
    EXPECT_FALSE(l.op.empty());
    EXPECT_FALSE(l.kernel.empty());
    EXPECT_FALSE(l.output_shape.empty());
    EXPECT_GE(l.ms, 0);
  }
  EXPECT_EQ(t.layers.back().op, "softmax");
  // Same picture, same answer as from memory.
  auto m = (*p)->predict_image(diagonal_image(), 3);
  ASSERT_TRUE(m);
  EXPECT_NEAR(m->probabilities[0], r->probabilities[0], 1e-6);
}

TEST(Predictor, MissingAndCorruptFilesNameTheFile) {
  auto p = Predictor::create(tiny_model(true));
  ASSERT_TRUE(p);
  auto missing = (*p)->predict_file("/nonexistent/cat.jpg");
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.status().message().find("cat.jpg"), std::string::npos);
  const std::string bad = pcv::testing::make_temp_dir("predict_bad") + "/broken.jpg";
  std::ofstream(bad, std::ios::binary) << "\xff\xd8\xff\xe0 this is not really a jpeg";
  auto corrupt = (*p)->predict_file(bad);
  ASSERT_FALSE(corrupt);
  EXPECT_NE(corrupt.status().message().find("broken.jpg"), std::string::npos);
}

TEST(Predictor, RejectsNonImageModels) {
  Model m;
  ValueId x = m.graph.add_input("x", DType::kF32, {1, 4});
  m.graph.mark_output(m.graph.add_node(OpType::kSoftmax, "s", {x}));
  ASSERT_TRUE(infer_shapes(m.graph).is_ok());
  auto p = Predictor::create(m);
  ASSERT_FALSE(p);
  EXPECT_EQ(p.status().code(), StatusCode::kUnsupported);
}

}  // namespace
}  // namespace pcv::predict
