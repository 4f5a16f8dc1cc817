// Golden values for the resampler and for normalization / quantization, hand-computed.
#include <gtest/gtest.h>

#include <vector>

#include "vision/frame.h"
#include "vision/preprocess.h"

namespace pcv::vision {
namespace {

Image gray_image(int h, int w, const std::vector<uint8_t>& v) {
  Image img(h, w, 1);
  std::copy(v.begin(), v.end(), img.data());
  return img;
}

std::vector<float> run(const ImageView& img, Preprocess pre, const FrameTransform& t = {}) {
  std::vector<float> out(pre.out_elems(), -999.f);
  Status s = image_to_tensor(img, pre, OutputTarget::float32(out.data(), out.size()), t);
  EXPECT_TRUE(s.is_ok()) << s.to_string();
  return out;
}

Preprocess gray(int h, int w, ResizeMode mode = ResizeMode::kStretch) {
  Preprocess p;
  p.out_h = h;
  p.out_w = w;
  p.mode = mode;
  p.color = ColorOrder::kGray;
  return p;
}

TEST(ResizeTest, Bilinear2x2To4x4HalfPixel) {
  const Image img = gray_image(2, 2, {0, 100, 200, 50});
  // Source positions (o + 0.5) / 2 - 0.5 = -0.25, 0.25, 0.75, 1.25 -> clamped 0, .25, .75, 1.
  const std::vector<float> expect = {0,   25,      75,     100,   //
                                     50,  59.375,  78.125, 87.5,  //
                                     150, 128.125, 84.375, 62.5,  //
                                     200, 162.5,   87.5,   50};
  const auto out = run(img, gray(4, 4));
  for (int i = 0; i < 16; ++i) EXPECT_FLOAT_EQ(out[i], expect[i]) << i;
}

TEST(ResizeTest, AreaDownscaleIsBlockMeans) {
  const Image img = gray_image(4, 4, {0, 2, 10, 20,  //
                                      4, 6, 30, 40,  //
                                      1, 1, 255, 255,  //
                                      1, 2, 255, 254});
  const auto out = run(img, gray(2, 2));
  EXPECT_FLOAT_EQ(out[0], 3.f);
  EXPECT_FLOAT_EQ(out[1], 25.f);
  EXPECT_FLOAT_EQ(out[2], 1.25f);
  EXPECT_FLOAT_EQ(out[3], 254.75f);
  // 6x6 -> 2x2 (k = 3) and 8x8 -> 2x2 (k = 4): means of 3x3 and 4x4 blocks.
  for (int n : {6, 8}) {
    Image big(n, n, 1);
    for (int i = 0; i < n * n; ++i) big.data()[i] = static_cast<uint8_t>((i * 37) % 251);
    const auto o = run(big, gray(2, 2));
    const int k = n / 2;
    for (int by = 0; by < 2; ++by) {
      for (int bx = 0; bx < 2; ++bx) {
        double s = 0;
        for (int y = 0; y < k; ++y) {
          for (int x = 0; x < k; ++x) s += big.pixel(by * k + y, bx * k + x)[0];
        }
        EXPECT_NEAR(o[by * 2 + bx], s / (k * k), 1e-4) << n;
      }
    }
  }
}

// On a linear ramp f(x, y) = a x + b y (pixel centers at x + 0.5), both bilinear and
// area + bilinear reproduce the ramp at the sample point exactly, away from the edges.
TEST(ResizeTest, LinearRampIsReproduced) {
  const int n = 40;
  Image ramp(n, n, 1);
  for (int y = 0; y < n; ++y) {
    for (int x = 0; x < n; ++x) ramp.pixel(y, x)[0] = static_cast<uint8_t>(2 * x + 4 * y);
  }
  auto f = [](double ux, double uy) { return 2 * (ux - 0.5) + 4 * (uy - 0.5); };
  struct Case { int out; float crop; ResizeMode mode; };
  for (Case c : {Case{30, 1.f, ResizeMode::kStretch}, Case{15, 1.f, ResizeMode::kStretch},
                 Case{7, 0.875f, ResizeMode::kCenterCrop}, Case{9, 0.5f, ResizeMode::kStretch},
                 Case{60, 0.8f, ResizeMode::kCenterCrop}}) {
    Preprocess p = gray(c.out, c.out, c.mode);
    p.crop_fraction = c.crop;
    const auto out = run(ramp, p);
    const ResizePlan plan = plan_resize(n, n, p);
    const double step = plan.src_w / c.out;
    for (int oy = 0; oy < c.out; ++oy) {
      for (int ox = 0; ox < c.out; ++ox) {
        const double ux = plan.src_x + (ox + 0.5) * step, uy = plan.src_y + (oy + 0.5) * step;
        // Skip samples whose footprint touches the picture's edge (clamping).
        if (ux - step < 1 || uy - step < 1 || ux + step > n - 1 || uy + step > n - 1) continue;
        EXPECT_NEAR(out[oy * c.out + ox], f(ux, uy), 1e-3)
            << "out " << c.out << " at " << oy << "," << ox;
      }
    }
  }
}

TEST(ResizeTest, CenterCropAndLetterboxGeometry) {
  Preprocess p;
  p.out_h = p.out_w = 224;
  p.crop_fraction = 0.875f;
  ResizePlan c = plan_resize(480, 640, p);
  EXPECT_DOUBLE_EQ(c.src_w, 420);  // 480 * 0.875
  EXPECT_DOUBLE_EQ(c.src_h, 420);
  EXPECT_DOUBLE_EQ(c.src_x, 110);
  EXPECT_DOUBLE_EQ(c.src_y, 30);
  p.mode = ResizeMode::kFitLetterbox;
  p.crop_fraction = 1.f;
  ResizePlan l = plan_resize(480, 640, p);
  EXPECT_EQ(l.dst_w, 224);
  EXPECT_EQ(l.dst_h, 168);
  EXPECT_EQ(l.dst_y, 28);
  // Letterbox border gets pad_value, normalized.
  Image img(2, 4, 3);
  std::fill(img.data(), img.data() + img.size_bytes(), 200);
  Preprocess q;
  q.out_h = q.out_w = 4;
  q.mode = ResizeMode::kFitLetterbox;
  q.pad_value = 10;
  q.mean[0] = q.mean[1] = q.mean[2] = 10;
  const auto out = run(img, q);
  EXPECT_FLOAT_EQ(out[0], 0.f);                  // row 0: border
  EXPECT_FLOAT_EQ(out[(1 * 4 + 0) * 3], 190.f);  // rows 1..2: the picture
  EXPECT_FLOAT_EQ(out[(3 * 4 + 3) * 3 + 2], 0.f);
}

TEST(NormalizeTest, FloatColorOrders) {
  Image px(1, 1, 3);
  px.data()[0] = 10;
  px.data()[1] = 20;
  px.data()[2] = 30;
  Preprocess p;
  p.out_h = p.out_w = 1;
  p.mean[0] = 1;
  p.mean[1] = 2;
  p.mean[2] = 3;
  p.std[0] = 2;
  p.std[1] = 4;
  p.std[2] = 6;
  auto rgb = run(px, p);
  EXPECT_FLOAT_EQ(rgb[0], 4.5f);
  EXPECT_FLOAT_EQ(rgb[1], 4.5f);
  EXPECT_FLOAT_EQ(rgb[2], 4.5f);
  p.color = ColorOrder::kBGR;  // channel 0 is now blue, normalized with mean[0]/std[0]
  auto bgr = run(px, p);
  EXPECT_FLOAT_EQ(bgr[0], (30 - 1) / 2.f);
  EXPECT_FLOAT_EQ(bgr[2], (10 - 3) / 6.f);
  p.color = ColorOrder::kGray;
  auto g = run(px, p);
  ASSERT_EQ(g.size(), 1u);
  EXPECT_NEAR(g[0], (0.299 * 10 + 0.587 * 20 + 0.114 * 30 - 1) / 2, 1e-5);
}

TEST(NormalizeTest, QuantizedTargets) {
  Image px(1, 4, 1);
  const uint8_t v[4] = {5, 0, 255, 100};
  std::copy(v, v + 4, px.data());
  Preprocess p = gray(1, 4);
  p.mean[0] = 0;
  p.std[0] = 2;  // values 2.5, 0, 127.5, 50
  std::vector<int8_t> q8(4);
  ASSERT_TRUE(image_to_tensor(px, p, OutputTarget::int8(q8.data(), 4, 0.5f, -3)).is_ok());
  // value / 0.5 + (-3): 2, -3, 252 -> 127, 97
  EXPECT_EQ(q8[0], 2);
  EXPECT_EQ(q8[1], -3);
  EXPECT_EQ(q8[2], 127);
  EXPECT_EQ(q8[3], 97);
  // Round half away from zero: 2.5 -> 3, -2.5 -> -3.
  p.std[0] = 2;
  p.mean[0] = 5;  // values 0, -2.5, 125, 47.5
  ASSERT_TRUE(image_to_tensor(px, p, OutputTarget::int8(q8.data(), 4, 1.f, 0)).is_ok());
  EXPECT_EQ(q8[0], 0);
  EXPECT_EQ(q8[1], -3);
  EXPECT_EQ(q8[2], 125);
  EXPECT_EQ(q8[3], 48);
  std::vector<uint8_t> qu(4);
  p.mean[0] = 0;
  p.std[0] = 1;  // values 5, 0, 255, 100
  ASSERT_TRUE(image_to_tensor(px, p, OutputTarget::uint8(qu.data(), 4, 0.5f, 128)).is_ok());
  EXPECT_EQ(qu[0], 138);
  EXPECT_EQ(qu[1], 128);
  EXPECT_EQ(qu[2], 255);  // 638 clamped
  EXPECT_EQ(qu[3], 255);
  ASSERT_TRUE(image_to_tensor(px, p, OutputTarget::uint8(qu.data(), 4, 1.f / 255, 0)).is_ok());
  EXPECT_EQ(qu[2], 255);
  EXPECT_EQ(qu[1], 0);
}

TEST(NormalizeTest, InvalidArgumentsAreErrors) {
  Image px(2, 2, 3);
  Preprocess p;
  std::vector<float> small(10);
  EXPECT_FALSE(image_to_tensor(px, p, OutputTarget::float32(small.data(), small.size())).is_ok());
  std::vector<float> out(p.out_elems());
  p.std[1] = 0;
  EXPECT_FALSE(image_to_tensor(px, p, OutputTarget::float32(out.data(), out.size())).is_ok());
  p.std[1] = 1;
  p.crop_fraction = 0;
  EXPECT_FALSE(image_to_tensor(px, p, OutputTarget::float32(out.data(), out.size())).is_ok());
  p.crop_fraction = 1;
  std::vector<int8_t> q(p.out_elems());
  EXPECT_FALSE(image_to_tensor(px, p, OutputTarget::int8(q.data(), q.size(), 0.f, 0)).is_ok());
  EXPECT_FALSE(image_to_tensor(px, p, OutputTarget::int8(q.data(), q.size(), 1.f, 200)).is_ok());
  FrameTransform t;
  t.roi_w = 3;
  t.roi_h = 1;
  EXPECT_FALSE(image_to_tensor(px, p, OutputTarget::float32(out.data(), out.size()), t).is_ok());
  EXPECT_TRUE(image_to_tensor(px, p, OutputTarget::float32(out.data(), out.size())).is_ok());
}

TEST(ResizeTest, ResizeImageRounds) {
  const Image img = gray_image(2, 2, {0, 100, 200, 50});
  auto r = resize_image(img, 4, 4);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->pixel(1, 1)[0], 59);  // 59.375
  EXPECT_EQ(r->pixel(2, 2)[0], 84);  // 84.375
}

}  // namespace
}  // namespace pcv::vision
