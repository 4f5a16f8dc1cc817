// int8 conv kernels (qs8_conv_fast.h) on MobileNetV2-224's shapes, 1 thread, with the fp32
// (LiteRT) requantization. Counters: GMACs = MACs per second / 1e9; pct_peak = share of the
// int8 VNNI peak in ANCHORS.md (Zen 4, 1 thread: 466 Gop/s = 233 GMAC/s). Pin a target with
// PCV_FORCE_ISA=AVX3 / AVX2 ... (AVX3_DL is the VNNI one).
// Args: H (= W), in_c, out_c, kernel, stride, depthwise (0/1), filter zero point.
#include <benchmark/benchmark.h>

#include <cmath>
#include <random>
#include <vector>

#include "base/aligned.h"
#include "kernels/conv/conv.h"
#include "kernels/conv/qs8_conv_fast.h"

namespace pcv::kernels {
namespace {

void BM_qs8_conv2d_fast(benchmark::State& state) {
  const int hw = static_cast<int>(state.range(0));
  const int in_c = static_cast<int>(state.range(1));
  const int out_c = static_cast<int>(state.range(2));
  const int k = static_cast<int>(state.range(3));
  const int stride = static_cast<int>(state.range(4));
  const bool dw = state.range(5) != 0;
  Conv2dParams p;
  p.in_h = p.in_w = hw;
  p.in_c = in_c;
  p.out_c = out_c;
  p.kernel_h = p.kernel_w = k;
  p.stride_h = p.stride_w = stride;
  p.pad_top = p.pad_left = k / 2;
  p.out_h = p.out_w = (hw + 2 * (k / 2) - k) / stride + 1;
  p.groups = dw ? in_c : 1;
  const int cpg = in_c / p.groups;
  std::mt19937 rng(1);
  std::uniform_int_distribution<int> byte(-128, 127);
  std::vector<int8_t> in(static_cast<size_t>(hw) * hw * in_c), w(static_cast<size_t>(out_c) * k * k * cpg);
  std::vector<int8_t> out(static_cast<size_t>(p.out_h) * p.out_w * out_c);
  std::vector<int32_t> bias(static_cast<size_t>(out_c), 100);
  std::vector<float> scale(static_cast<size_t>(out_c), 1.f / (40.f * 128.f * std::sqrt(float(k * k * cpg))));
  for (auto& v : in) v = static_cast<int8_t>(byte(rng));
  for (auto& v : w) v = static_cast<int8_t>(byte(rng));
  QuantConv2dParams q;
  q.input_zero_point = -3;
  q.filter_zero_point = static_cast<int32_t>(state.range(6));
  q.output_zero_point = -128;
  q.act_min = -128;
  q.act_max = 60;
  q.mode = RequantMode::kFp32;
  q.requant_scale = scale.data();
  auto packed = prepare_qs8_conv2d_fast(p, q, w.data(), bias.data());
  if (!packed) {
    state.SkipWithError(packed.status().message().c_str());
    return;
  }
  AlignedBuffer scratch(packed->scratch_bytes(1) + 64);
  for (auto _ : state) {
    qs8_conv2d_fast(*packed, in.data(), out.data(), scratch.data(), nullptr);
    benchmark::DoNotOptimize(out.data());
  }
  const double macs = double(p.out_h) * p.out_w * out_c * k * k * cpg;
  state.counters["GMACs"] = benchmark::Counter(macs / 1e9, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["pct_peak"] = benchmark::Counter(macs / 1e9 / 233.0 * 100.0, benchmark::Counter::kIsIterationInvariantRate);
  state.SetLabel(std::string(packed->ukernel_name) + " " + packed->isa);
}

BENCHMARK(BM_qs8_conv2d_fast)
    ->ArgNames({"hw", "in_c", "out_c", "k", "s", "dw", "wzp"})
    ->Args({224, 3, 32, 3, 2, 0, 5})      // first conv (im2col)
    ->Args({112, 16, 96, 1, 1, 0, 5})     // expand, K = 16
    ->Args({56, 24, 144, 1, 1, 0, 5})
    ->Args({56, 144, 24, 1, 1, 0, 5})     // project
    ->Args({14, 96, 576, 1, 1, 0, 5})
    ->Args({7, 320, 1280, 1, 1, 0, 0})    // last 1x1, symmetric (int8 model)
    // Depthwise: symmetric weights (int8 models) take the VNNI kernel where there is one,
    // filter zero point 5 (uint8 models, weights beyond int8 after it) the int32-lanes one.
    ->Args({112, 32, 32, 3, 1, 1, 0})
    ->Args({112, 32, 32, 3, 1, 1, 5})
    ->Args({112, 96, 96, 3, 2, 1, 0})
    ->Args({112, 96, 96, 3, 2, 1, 5})
    ->Args({56, 144, 144, 3, 1, 1, 0})
    ->Args({56, 144, 144, 3, 1, 1, 5})
    ->Args({14, 576, 576, 3, 1, 1, 0})
    ->Args({14, 576, 576, 3, 1, 1, 5})
    ->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace pcv::kernels

BENCHMARK_MAIN();
