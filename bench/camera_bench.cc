// Camera path: one 1920x1080 NV21 frame -> 224x224x3 float input (ImageNet mean/std), center
// crop, rotation 90 (portrait phone, back camera), 1 thread. Target (ANCHORS.md): <= 0.5 ms.
// Also the image path on a decoded-size photo and the int8 target, for comparison.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <vector>

#include "vision/frame.h"

namespace {

using namespace pcv::vision;

struct Nv21 {
  int w, h;
  std::vector<uint8_t> y, vu;
  Frame frame;
  Nv21(int w_, int h_) : w(w_), h(h_), y(static_cast<size_t>(w) * h), vu(static_cast<size_t>(w) * h / 2) {
    uint32_t s = 12345;
    for (int r = 0; r < h; ++r) {
      for (int c = 0; c < w; ++c) {
        s = s * 1664525u + 1013904223u;
        y[static_cast<size_t>(r) * w + c] = static_cast<uint8_t>((r + c) / 12 + (s >> 28));
      }
    }
    for (size_t i = 0; i < vu.size(); ++i) vu[i] = static_cast<uint8_t>(100 + (i % 57));
    frame.format = FrameFormat::kNV21;
    frame.width = w;
    frame.height = h;
    frame.planes[0] = {y.data(), w, 1};
    frame.planes[1] = {vu.data(), w, 2};
  }
};

Preprocess imagenet_224() {
  Preprocess p;
  p.out_h = p.out_w = 224;
  p.mode = ResizeMode::kCenterCrop;
  p.mean[0] = 123.675f;
  p.mean[1] = 116.28f;
  p.mean[2] = 103.53f;
  p.std[0] = 58.395f;
  p.std[1] = 57.12f;
  p.std[2] = 57.375f;
  return p;
}

void BM_nv21_1080p_to_224_f32_rot90(benchmark::State& state) {
  Nv21 f(1920, 1080);
  const Preprocess p = imagenet_224();
  std::vector<float> out(p.out_elems());
  FrameTransform t;
  t.rotation = Rotation::k90;
  for (auto _ : state) {
    auto s = frame_to_tensor(f.frame, t, p, OutputTarget::float32(out.data(), out.size()));
    if (!s.is_ok()) state.SkipWithError(s.to_string().c_str());
    benchmark::DoNotOptimize(out.data());
  }
}
BENCHMARK(BM_nv21_1080p_to_224_f32_rot90)->Unit(benchmark::kMicrosecond)->Repetitions(9)
    ->ReportAggregatesOnly(true);

void BM_nv21_1080p_to_224_s8_rot90(benchmark::State& state) {
  Nv21 f(1920, 1080);
  const Preprocess p = imagenet_224();
  std::vector<int8_t> out(p.out_elems());
  FrameTransform t;
  t.rotation = Rotation::k90;
  for (auto _ : state) {
    auto s = frame_to_tensor(f.frame, t, p, OutputTarget::int8(out.data(), out.size(), 0.0186f, -14));
    if (!s.is_ok()) state.SkipWithError(s.to_string().c_str());
    benchmark::DoNotOptimize(out.data());
  }
}
BENCHMARK(BM_nv21_1080p_to_224_s8_rot90)->Unit(benchmark::kMicrosecond)->Repetitions(9)
    ->ReportAggregatesOnly(true);

void BM_nv21_640x480_to_224_f32_rot270_mirror(benchmark::State& state) {
  Nv21 f(640, 480);
  const Preprocess p = imagenet_224();
  std::vector<float> out(p.out_elems());
  FrameTransform t;
  t.rotation = Rotation::k270;
  t.mirror = true;
  for (auto _ : state) {
    auto s = frame_to_tensor(f.frame, t, p, OutputTarget::float32(out.data(), out.size()));
    benchmark::DoNotOptimize(s);
    benchmark::DoNotOptimize(out.data());
  }
}
BENCHMARK(BM_nv21_640x480_to_224_f32_rot270_mirror)->Unit(benchmark::kMicrosecond)
    ->Repetitions(9)->ReportAggregatesOnly(true);

void BM_rgb_500x375_to_224_f32(benchmark::State& state) {
  Image img(375, 500, 3);
  for (size_t i = 0; i < img.size_bytes(); ++i) img.data()[i] = static_cast<uint8_t>(i * 7);
  Preprocess p = imagenet_224();
  p.crop_fraction = 0.875f;
  std::vector<float> out(p.out_elems());
  for (auto _ : state) {
    auto s = image_to_tensor(img, p, OutputTarget::float32(out.data(), out.size()));
    benchmark::DoNotOptimize(s);
    benchmark::DoNotOptimize(out.data());
  }
}
BENCHMARK(BM_rgb_500x375_to_224_f32)->Unit(benchmark::kMicrosecond)->Repetitions(9)
    ->ReportAggregatesOnly(true);

}  // namespace

BENCHMARK_MAIN();
