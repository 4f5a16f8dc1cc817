// The coral uint8 MobileNets (TFLite, read by formats/tflite) converted to Core ML: weights are
// dequantized to float, the input quantization becomes the image normalization. The converted
// models must predict what the quantized originals predict.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "formats/coreml/coreml.h"
#include "formats/coreml/coreml_test_util.h"
#include "support/paths.h"

#ifdef PCV_HAVE_TFLITE
#include "formats/tflite/tflite.h"
#endif
#ifdef PCV_HAVE_RUNTIME
#include "runtime/session.h"
#endif
#ifdef PCV_HAVE_VISION
#include "vision/decode.h"
#endif

namespace pcv::coreml {
namespace {

#if defined(PCV_HAVE_TFLITE) && defined(PCV_HAVE_RUNTIME)

// A smooth synthetic photo (gradients and a disc), pixels 0..255, NHWC.
std::vector<float> synthetic_pixels(int h, int w, int variant) {
  std::vector<float> p(static_cast<size_t>(h * w * 3));
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      const float dx = x - w * 0.5f, dy = y - h * 0.45f;
      const bool disc = dx * dx + dy * dy < (h * h) / 9.f;
      const float base[3] = {255.f * x / w, 255.f * y / h, 128.f + 100.f * std::sin(0.1f * (x + y + 17 * variant))};
      for (int c = 0; c < 3; ++c) {
        float v = disc ? (c == variant % 3 ? 230.f : 40.f) : base[c];
        p[static_cast<size_t>((y * w + x) * 3 + c)] = std::clamp(v, 0.f, 255.f);
      }
    }
  return p;
}

ir::Tensor input_for(const ir::Model& m, const std::vector<float>& pixels) {
  const ir::Value& x = m.graph.value(m.graph.inputs[0]);
  ir::Tensor t(x.dtype, x.shape);
  for (size_t i = 0; i < pixels.size(); ++i) {
    const int c = static_cast<int>(i % 3);
    if (x.dtype == ir::DType::kU8) {
      t.data<uint8_t>()[i] = static_cast<uint8_t>(pixels[i]);
    } else if (x.dtype == ir::DType::kI8) {
      t.data<int8_t>()[i] = static_cast<int8_t>(pixels[i] - 128.f);
    } else {
      t.data<float>()[i] = (pixels[i] - m.input_spec.mean[c]) / m.input_spec.std[c];
    }
  }
  return t;
}

std::vector<float> probabilities(const ir::Tensor& t, const ir::Value& info) {
  std::vector<float> p(static_cast<size_t>(t.num_elements()));
  for (size_t i = 0; i < p.size(); ++i) {
    if (t.dtype() == ir::DType::kF32) {
      p[i] = t.data<float>()[i];
    } else {
      const float s = info.quant.scale.empty() ? 1.f : info.quant.scale[0];
      const int zp = info.quant.zero_point.empty() ? 0 : info.quant.zero_point[0];
      p[i] = s * static_cast<float>((t.dtype() == ir::DType::kU8 ? t.data<uint8_t>()[i] : t.data<int8_t>()[i]) - zp);
    }
  }
  return p;
}

class CoralToCoreMl : public ::testing::TestWithParam<const char*> {};

TEST_P(CoralToCoreMl, PredictsLikeTheQuantizedOriginal) {
  PCV_REQUIRE_SHARED_DATA(path, std::string("pretrained/mobilenet-tflite-coral/") + GetParam());
  auto q = tflite::load_tflite(path);
  ASSERT_TRUE(q.has_value()) << q.status().to_string();
  const std::string dir = pcv::testing::make_temp_dir("coral_coreml");
  MlModelOptions mo;
  ASSERT_TRUE(save_mlmodel(*q, dir + "/m.mlmodel", mo).is_ok());
  MlPackageOptions po;
  po.fp16 = false;
  ASSERT_TRUE(save_mlpackage(*q, dir + "/m.mlpackage", po).is_ok());
  auto nn = load_mlmodel(dir + "/m.mlmodel");
  ASSERT_TRUE(nn.has_value()) << nn.status().to_string();
  auto ml = read_mlpackage(dir + "/m.mlpackage");
  ASSERT_TRUE(ml.has_value()) << ml.status().to_string();
  EXPECT_EQ(nn->input_spec.labels.size(), q->input_spec.labels.size());
  const ir::Value& qin = q->graph.value(q->graph.inputs[0]);
  const int h = static_cast<int>(qin.shape[1]), w = static_cast<int>(qin.shape[2]);
  int agree = 0, compared = 0;
  const int trials = 3;
  for (int v = 0; v < trials; ++v) {
    const auto pixels = synthetic_pixels(h, w, v);
    auto na = runtime::run_model(*nn, {input_for(*nn, pixels)});
    ASSERT_TRUE(na.has_value()) << na.status().to_string();
    auto ma = runtime::run_model(*ml, {input_for(*ml, pixels)});
    ASSERT_TRUE(ma.has_value()) << ma.status().to_string();
    const auto pn = probabilities((*na)[0], nn->graph.value(nn->graph.outputs[0]));
    const auto pm = probabilities((*ma)[0], ml->graph.value(ml->graph.outputs[0]));
    ASSERT_EQ(pn.size(), pm.size());
    // The two Core ML forms compute the same float graph; its output is a distribution.
    double diff = 0, sum = 0;
    for (size_t i = 0; i < pn.size(); ++i) diff = std::max(diff, double(std::abs(pn[i] - pm[i]))), sum += pn[i];
    EXPECT_LE(diff, 1e-4);
    EXPECT_NEAR(sum, 1.0, 1e-3);
    // The quantized original, when the runtime runs it.
    auto qa = runtime::run_model(*q, {input_for(*q, pixels)});
    if (!qa.has_value()) {
      std::printf("%s: the runtime cannot run the quantized original yet (%s); top-1 not compared\n", GetParam(),
                  qa.status().to_string().substr(0, 160).c_str());
      continue;
    }
    const auto pq = probabilities((*qa)[0], q->graph.value(q->graph.outputs[0]));
    ASSERT_EQ(pq.size(), pn.size());
    ++compared;
    const auto top = [](const std::vector<float>& p) { return std::max_element(p.begin(), p.end()) - p.begin(); };
    // Float (dequantized) vs uint8 execution differ by quantization noise: probabilities close,
    // and the quantized top-1 among the float top-5 (synthetic images give near-ties).
    double pdiff = 0;
    for (size_t i = 0; i < pn.size(); ++i) pdiff = std::max(pdiff, double(std::abs(pn[i] - pq[i])));
    EXPECT_LE(pdiff, 0.1);
    int rank = 0;
    for (float x : pn) rank += x > pn[static_cast<size_t>(top(pq))];
    EXPECT_LT(rank, 5);
    agree += top(pq) == top(pn);
    std::printf("%s image %d: top-1 quantized %ld (%.3f) float %ld (%.3f), max |dp| %.4f\n", GetParam(), v,
                static_cast<long>(top(pq)), pq[top(pq)], static_cast<long>(top(pn)), pn[top(pn)], pdiff);
  }
  std::printf("%s: top-1 agreement %d of %d\n", GetParam(), agree, compared);
}

#ifdef PCV_HAVE_VISION
// A real photo through the converted MobileNetV2 (both Core ML forms, fp16 package): the
// ImageNet top-1 is a cat breed for a cat and a dog breed's neighbour for a bulldog.
TEST(CoralToCoreMlPhoto, CatIsACat) {
  PCV_REQUIRE_SHARED_DATA(path, "pretrained/mobilenet-tflite-coral/mobilenet_v2_1.0_224_quant.tflite");
  PCV_REQUIRE_SHARED_DATA(cat, "oxford-pets-sample/cat/Abyssinian_101.jpg");
  auto q = tflite::load_tflite(path);
  ASSERT_TRUE(q.has_value()) << q.status().to_string();
  const std::string dir = pcv::testing::make_temp_dir("coral_photo");
  ASSERT_TRUE(save_mlmodel(*q, dir + "/m.mlmodel").is_ok());
  ASSERT_TRUE(save_mlpackage(*q, dir + "/m.mlpackage").is_ok());
  auto img = vision::read_image(cat);
  ASSERT_TRUE(img.has_value()) << img.status().to_string();
  for (const std::string& p : {dir + "/m.mlmodel", dir + "/m.mlpackage"}) {
    auto m = load_mlmodel(p);
    ASSERT_TRUE(m.has_value()) << m.status().to_string();
    ASSERT_EQ(m->input_spec.labels.size(), 1001u);
    const ir::Tensor t = testing::photo_input(*img, m->input_spec);
    auto out = runtime::run_model(*m, {t});
    ASSERT_TRUE(out.has_value()) << out.status().to_string();
    const float* pr = (*out)[0].data<float>();
    const auto top = std::max_element(pr, pr + (*out)[0].num_elements()) - pr;
    const std::string label = m->input_spec.labels[static_cast<size_t>(top)];
    EXPECT_NE(label.find("cat"), std::string::npos) << p << ": " << label << " " << pr[top];
  }
}
#endif

INSTANTIATE_TEST_SUITE_P(Coral, CoralToCoreMl,
                         ::testing::Values("mobilenet_v1_0.25_128_quant.tflite", "mobilenet_v2_1.0_224_quant.tflite"));

#endif

}  // namespace
}  // namespace pcv::coreml
