// Camera frames vs pictures: the frame path (logical rotation / mirror, YUV -> RGB in the
// resampling pass) must agree with rotating the RGB picture explicitly and running the image
// path.
#include "vision/frame.h"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "base/file.h"
#include "support/paths.h"
#include "test_images.h"
#include "vision/decode.h"

namespace pcv::vision {
namespace {

using testing::make_test_image;
using testing::rgb_to_yuv420;
using testing::Yuv420;

constexpr Rotation kRotations[] = {Rotation::k0, Rotation::k90, Rotation::k180, Rotation::k270};

std::vector<float> to_tensor(const Frame& f, const FrameTransform& t, const Preprocess& p) {
  std::vector<float> out(p.out_elems(), -999.f);
  Status s = frame_to_tensor(f, t, p, OutputTarget::float32(out.data(), out.size()));
  EXPECT_TRUE(s.is_ok()) << s.to_string();
  return out;
}

std::vector<float> image_path(const Image& rgb, const FrameTransform& t, const Preprocess& p) {
  const Image upright = rotate_image(rgb, t.rotation, t.mirror);
  FrameTransform roi_only;
  roi_only.roi_x = t.roi_x;
  roi_only.roi_y = t.roi_y;
  roi_only.roi_w = t.roi_w;
  roi_only.roi_h = t.roi_h;
  std::vector<float> out(p.out_elems(), -999.f);
  Status s = image_to_tensor(upright, p, OutputTarget::float32(out.data(), out.size()), roi_only);
  EXPECT_TRUE(s.is_ok()) << s.to_string();
  return out;
}

struct Diff {
  double max = 0, mean = 0;
};
Diff diff(const std::vector<float>& a, const std::vector<float>& b) {
  Diff d;
  for (size_t i = 0; i < a.size(); ++i) {
    const double e = std::fabs(a[i] - b[i]);
    d.max = std::max(d.max, e);
    d.mean += e;
  }
  d.mean /= a.size();
  return d;
}

// Preprocess outputs in 0..255 pixel units (mean 0, std 1) so differences read as levels.
Preprocess pixels(int h, int w, ResizeMode mode, float crop = 1.f) {
  Preprocess p;
  p.out_h = h;
  p.out_w = w;
  p.mode = mode;
  p.crop_fraction = crop;
  return p;
}

std::vector<Preprocess> preprocess_cases() {
  return {pixels(24, 24, ResizeMode::kCenterCrop, 0.875f),  // area (k = 2..3) + bilinear
          pixels(30, 20, ResizeMode::kStretch),              // non-square
          pixels(50, 70, ResizeMode::kFitLetterbox),         // letterbox, mild downscale
          pixels(150, 150, ResizeMode::kCenterCrop)};        // upscale
}

// RGB frames with rotation/mirror equal the explicitly rotated picture bit for bit: the
// arithmetic is done in upright coordinates in both cases.
TEST(FrameTest, RgbFrameRotationMatchesRotatedImageExactly) {
  for (auto [h, w] : {std::pair{64, 96}, std::pair{61, 87}}) {
    const Image rgb = make_test_image(h, w);
    for (const Preprocess& p : preprocess_cases()) {
      for (Rotation r : kRotations) {
        for (bool mirror : {false, true}) {
          FrameTransform t;
          t.rotation = r;
          t.mirror = mirror;
          const auto a = to_tensor(frame_from_image(rgb), t, p);
          const auto b = image_path(rgb, t, p);
          EXPECT_EQ(diff(a, b).max, 0.0) << "rot " << static_cast<int>(r) << " mirror "
                                         << mirror << " out " << p.out_h << "x" << p.out_w;
        }
      }
    }
  }
}

TEST(FrameTest, RoiIsInUprightCoordinates) {
  const Image rgb = make_test_image(64, 96);
  FrameTransform t;
  t.rotation = Rotation::k90;
  t.mirror = true;
  t.roi_x = 5;
  t.roi_y = 17;
  t.roi_w = 40;
  t.roi_h = 33;
  const Preprocess p = pixels(16, 16, ResizeMode::kCenterCrop);
  EXPECT_EQ(diff(to_tensor(frame_from_image(rgb), t, p), image_path(rgb, t, p)).max, 0.0);
}

// Frames in every YUV layout, built from the same RGB picture.
struct YuvFrames {
  Yuv420 yuv;
  std::vector<uint8_t> y_padded, nv21, nv12, u_padded, v_padded, uv_interleaved;
  int y_stride = 0, c_stride = 0;
  Frame nv21_frame, nv12_frame, i420_frame, yuv888_frame, yuv888_separate;
  std::vector<uint8_t> u_ps2, v_ps2;
};

void build_frames(const Image& rgb, YuvFrames* F) {
  F->yuv = rgb_to_yuv420(rgb);
  const Yuv420& s = F->yuv;
  const int W = s.width, H = s.height, cw = s.cw(), ch = s.ch();
  F->y_stride = W + 13;  // padded rows
  F->c_stride = 2 * cw + 6;
  F->y_padded.assign(static_cast<size_t>(F->y_stride) * H, 0xEE);
  for (int y = 0; y < H; ++y) std::copy_n(&s.y[y * W], W, &F->y_padded[y * F->y_stride]);
  F->nv21.assign(static_cast<size_t>(F->c_stride) * ch, 0xEE);
  F->nv12.assign(F->nv21.size(), 0xEE);
  const int c1 = cw + 3;
  F->u_padded.assign(static_cast<size_t>(c1) * ch, 0xEE);
  F->v_padded.assign(F->u_padded.size(), 0xEE);
  F->u_ps2.assign(static_cast<size_t>(F->c_stride) * ch, 0xEE);
  F->v_ps2.assign(F->u_ps2.size(), 0xEE);
  for (int j = 0; j < ch; ++j) {
    for (int i = 0; i < cw; ++i) {
      const uint8_t u = s.u[j * cw + i], v = s.v[j * cw + i];
      F->nv21[j * F->c_stride + 2 * i] = v;
      F->nv21[j * F->c_stride + 2 * i + 1] = u;
      F->nv12[j * F->c_stride + 2 * i] = u;
      F->nv12[j * F->c_stride + 2 * i + 1] = v;
      F->u_padded[j * c1 + i] = u;
      F->v_padded[j * c1 + i] = v;
      F->u_ps2[j * F->c_stride + 2 * i] = u;
      F->v_ps2[j * F->c_stride + 2 * i] = v;
    }
  }
  auto base = [&](FrameFormat fmt) {
    Frame f;
    f.format = fmt;
    f.width = W;
    f.height = H;
    f.planes[0] = {F->y_padded.data(), F->y_stride, 1};
    return f;
  };
  F->nv21_frame = base(FrameFormat::kNV21);
  F->nv21_frame.planes[1] = {F->nv21.data(), F->c_stride, 2};
  F->nv12_frame = base(FrameFormat::kNV12);
  F->nv12_frame.planes[1] = {F->nv12.data(), F->c_stride, 0};
  F->i420_frame = base(FrameFormat::kI420);
  F->i420_frame.planes[1] = {F->u_padded.data(), c1, 1};
  F->i420_frame.planes[2] = {F->v_padded.data(), c1, 1};
  // Android YUV_420_888 over an NV21 buffer: U = VU + 1, V = VU, pixel stride 2.
  F->yuv888_frame = base(FrameFormat::kYUV_420_888);
  F->yuv888_frame.planes[1] = {F->nv21.data() + 1, F->c_stride, 2};
  F->yuv888_frame.planes[2] = {F->nv21.data(), F->c_stride, 2};
  // And with pixel stride 2 in two unrelated buffers (the generic strided path).
  F->yuv888_separate = base(FrameFormat::kYUV_420_888);
  F->yuv888_separate.planes[1] = {F->u_ps2.data(), F->c_stride, 2};
  F->yuv888_separate.planes[2] = {F->v_ps2.data(), F->c_stride, 2};
}

// The bound. The frame carries the picture through 8-bit Y and 2x2-averaged 8-bit U/V; the
// conversion back is exact otherwise. Rounding Y/U/V costs <= ~1.5 levels per channel; chroma
// subsampling costs up to tens of levels right at a hard color edge (one chroma sample spans
// both sides) and ~1 level on smooth content. Stated bounds, in 0..255 levels:
//   smooth picture:                 max <= 4 levels,  mean <= 0.8 (measured 3.2, 0.31)
//   with a hard red/blue edge at an odd column (a ~210-level jump that splits 2x2 chroma
//   blocks):                        max <= 90 levels, mean <= 2.5 (measured 69, 1.5)
TEST(FrameTest, YuvFramesMatchRgbImagePath) {
  for (bool hard_edge : {false, true}) {
    const Image rgb = make_test_image(64, 96, hard_edge);
    YuvFrames F;
    build_frames(rgb, &F);
    const double max_bound = hard_edge ? 90 : 4, mean_bound = hard_edge ? 2.5 : 0.8;
    double worst_max = 0, worst_mean = 0;
    for (const Preprocess& p : preprocess_cases()) {
      for (Rotation r : kRotations) {
        for (bool mirror : {false, true}) {
          FrameTransform t;
          t.rotation = r;
          t.mirror = mirror;
          const auto ref = image_path(rgb, t, p);
          const auto nv21 = to_tensor(F.nv21_frame, t, p);
          const Diff d = diff(nv21, ref);
          worst_max = std::max(worst_max, d.max);
          worst_mean = std::max(worst_mean, d.mean);
          EXPECT_LE(d.max, max_bound) << "rot " << static_cast<int>(r) << " mirror " << mirror
                                      << " out " << p.out_h << "x" << p.out_w;
          EXPECT_LE(d.mean, mean_bound);
          // Every YUV layout of the same data gives the same tensor, bit for bit.
          EXPECT_EQ(diff(to_tensor(F.nv12_frame, t, p), nv21).max, 0.0);
          EXPECT_EQ(diff(to_tensor(F.i420_frame, t, p), nv21).max, 0.0);
          EXPECT_EQ(diff(to_tensor(F.yuv888_frame, t, p), nv21).max, 0.0);
          EXPECT_EQ(diff(to_tensor(F.yuv888_separate, t, p), nv21).max, 0.0);
        }
      }
    }
    RecordProperty(hard_edge ? "edge_max" : "smooth_max", std::to_string(worst_max));
    RecordProperty(hard_edge ? "edge_mean" : "smooth_mean", std::to_string(worst_mean));
    std::printf("[ info ] %s picture: worst max |diff| %.3f, worst mean %.3f levels\n",
                hard_edge ? "hard-edge" : "smooth", worst_max, worst_mean);
  }
}

// A real photo as a camera frame: 224x224 center crop, every rotation.
TEST(FrameTest, RealPhotoAsNv21Frame) {
  PCV_REQUIRE_SHARED_DATA(path, "oxford-pets-sample/dog/beagle_10.jpg");
  auto img = read_image(path);
  ASSERT_TRUE(img.has_value()) << img.status().to_string();
  Image rgb = *img;
  if (rgb.width() % 2 || rgb.height() % 2) {
    rgb = Image::copy_of(rgb.view().crop(0, 0, rgb.height() & ~1, rgb.width() & ~1));
  }
  YuvFrames F;
  build_frames(rgb, &F);
  Preprocess p = pixels(224, 224, ResizeMode::kCenterCrop, 0.875f);
  for (Rotation r : kRotations) {
    FrameTransform t;
    t.rotation = r;
    const Diff d = diff(to_tensor(F.nv21_frame, t, p), image_path(rgb, t, p));
    std::printf("[ info ] beagle_10 rot %d: max %.2f mean %.3f levels\n", static_cast<int>(r),
                d.max, d.mean);
    EXPECT_LE(d.mean, 2.0);
    EXPECT_LE(d.max, 80.0);
  }
}

TEST(FrameTest, OddSizedYuvFrame) {
  const Image rgb = make_test_image(47, 63, false);
  YuvFrames F;
  build_frames(rgb, &F);
  for (Rotation r : kRotations) {
    FrameTransform t;
    t.rotation = r;
    t.mirror = r == Rotation::k90;
    const Preprocess p = pixels(20, 20, ResizeMode::kCenterCrop);
    const Diff d = diff(to_tensor(F.nv21_frame, t, p), image_path(rgb, t, p));
    EXPECT_LE(d.max, 6.0) << static_cast<int>(r);
  }
}

TEST(FrameTest, BadFramesAreErrors) {
  std::vector<uint8_t> buf(64 * 64 * 2);
  std::vector<float> out(224 * 224 * 3);
  const Preprocess p;
  const OutputTarget o = OutputTarget::float32(out.data(), out.size());
  Frame f;
  f.format = FrameFormat::kNV21;
  f.width = 64;
  f.height = 64;
  f.planes[0] = {buf.data(), 64, 1};
  EXPECT_FALSE(frame_to_tensor(f, {}, p, o).is_ok());  // missing chroma plane
  f.planes[1] = {buf.data() + 4096, 10, 2};
  EXPECT_FALSE(frame_to_tensor(f, {}, p, o).is_ok());  // chroma row stride too small
  f.planes[1].row_stride_bytes = 64;
  EXPECT_TRUE(frame_to_tensor(f, {}, p, o).is_ok());
  f.width = 0;
  EXPECT_FALSE(frame_to_tensor(f, {}, p, o).is_ok());
}

}  // namespace
}  // namespace pcv::vision
