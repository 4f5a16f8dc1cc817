// f32 GEMM (packed B) on MobileNetV2-224's 1x1-conv shapes and a large square, 1 and 2
// threads. Counters: GFLOPs = 2*M*N*K per second / 1e9; pct_peak = share of the fp32 FMA peak
// measured on this machine at start (FMA chains, same Highway target; printed once). Pin a
// target with PCV_FORCE_ISA=AVX2 etc.
//   build/ci/bench/gemm_bench --benchmark_filter='M:1024/'
// Args: M, N, K, threads, ukernel (0 auto, 1 wide, 2 narrow, 3 large).
#include <benchmark/benchmark.h>

#include <cstdio>
#include <cstring>
#include <random>
#include <vector>

#include "base/thread_pool.h"
#include "kernels/conv/conv_fast.h"
#include "kernels/gemm/gemm.h"

namespace pcv::kernels {
namespace {

// fp32 FMA peak of this machine, measured once per thread count (f32_fma_peak_gflops): the
// anchor's 117 / 231 GFLOP/s were another machine's.
double peak_gflops(int threads) {
  static double cached[65] = {};
  const int t = threads < 1 ? 1 : (threads > 64 ? 64 : threads);
  if (cached[t] == 0) {
    cached[t] = f32_fma_peak_gflops(t);
    std::printf("measured fp32 FMA peak, %d thread%s: %.1f GFLOP/s\n", t, t > 1 ? "s" : "", cached[t]);
  }
  return cached[t];
}

void set_flop_counters(benchmark::State& state, double flops, int threads) {
  state.counters["GFLOPs"] =
      benchmark::Counter(flops / 1e9, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["pct_peak"] = benchmark::Counter(
      flops / 1e9 / peak_gflops(threads) * 100.0,
      benchmark::Counter::kIsIterationInvariantRate);
}

// Uniform [-1, 1) A (m x k, into *a) and B (k x n, packed; zero bias).
Expected<F32GemmPackedB> random_gemm(size_t m, size_t n, size_t k, F32GemmUkernelChoice choice,
                                     std::vector<float>* a) {
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<float> b(k * n), bias(n);
  a->resize(m * k);
  for (float& x : *a) x = dist(rng);
  for (float& x : b) x = dist(rng);
  return pack_f32_gemm_b(k, n, b.data(), k, bias.data(), F32GemmBLayout::kNK, choice);
}

void BM_f32_gemm_packed(benchmark::State& state) {
  const size_t m = static_cast<size_t>(state.range(0));
  const size_t n = static_cast<size_t>(state.range(1));
  const size_t k = static_cast<size_t>(state.range(2));
  const int threads = static_cast<int>(state.range(3));
  const auto choice = static_cast<F32GemmUkernelChoice>(state.range(4));
  std::vector<float> a, c(m * n);
  auto packed = random_gemm(m, n, k, choice, &a);
  if (!packed) {
    state.SkipWithError(packed.status().to_string().c_str());
    return;
  }
  ThreadPool pool(threads);
  for (auto _ : state) {
    f32_gemm_packed(m, a.data(), k, *packed, c.data(), n, 0.0f, 6.0f, &pool);
    benchmark::DoNotOptimize(c.data());
    benchmark::ClobberMemory();
  }
  set_flop_counters(state, 2.0 * static_cast<double>(m) * n * k, threads);
  state.SetLabel(std::string(packed->ukernel.name) + " " + packed->isa);
}

void gemm_shapes(benchmark::internal::Benchmark* b) {
  b->ArgNames({"M", "N", "K", "threads", "uk"});
  // MobileNetV2-224 1x1 convs (M = H*W, N = out_c, K = in_c).
  const int64_t shapes[][3] = {
      {112 * 112, 16, 32}, {112 * 112, 96, 16}, {56 * 56, 144, 24}, {56 * 56, 24, 144},
      {28 * 28, 32, 192},  {28 * 28, 192, 32},  {14 * 14, 64, 384}, {14 * 14, 384, 64},
      {14 * 14, 96, 576},  {7 * 7, 320, 960},   {7 * 7, 1280, 320}, {1024, 1024, 1024},
      {1, 1000, 1280},  // the classifier (a GEMV: 5 MB of weights per image)
  };
  for (int threads : {1, 2}) {
    for (const auto& s : shapes) b->Args({s[0], s[1], s[2], threads, 0});
  }
}
BENCHMARK(BM_f32_gemm_packed)->Apply(gemm_shapes)->UseRealTime()->MinTime(0.2);

// The classifier as it runs inside a network: its 5 MB of weights evicted from the caches by
// the layers before it (64 MB written between iterations, outside the timing).
void BM_f32_gemv_cold(benchmark::State& state) {
  const size_t n = static_cast<size_t>(state.range(0));
  const size_t k = static_cast<size_t>(state.range(1));
  std::vector<float> a, c(n);
  auto packed = random_gemm(1, n, k, F32GemmUkernelChoice::kAuto, &a);
  if (!packed) {
    state.SkipWithError(packed.status().to_string().c_str());
    return;
  }
  std::vector<char> evict(64 << 20);
  char fill = 0;
  for (auto _ : state) {
    state.PauseTiming();
    std::memset(evict.data(), ++fill, evict.size());
    benchmark::ClobberMemory();
    state.ResumeTiming();
    f32_gemm_packed(1, a.data(), k, *packed, c.data(), n, -1e30f, 1e30f, nullptr);
    benchmark::DoNotOptimize(c.data());
    benchmark::ClobberMemory();
  }
  state.counters["GBps"] = benchmark::Counter(static_cast<double>(packed->data.size()) / 1e9,
                                              benchmark::Counter::kIsIterationInvariantRate);
  state.SetLabel(std::string(packed->ukernel.name) + " " + packed->isa);
}
BENCHMARK(BM_f32_gemv_cold)->ArgNames({"N", "K"})->Args({1000, 1280})->UseRealTime()->MinTime(0.5);

// Wide vs narrow vs large microkernel on narrow and wide N (for the kAuto rule in gemm.cc).
BENCHMARK(BM_f32_gemm_packed)
    ->ArgNames({"M", "N", "K", "threads", "uk"})
    ->Args({112 * 112, 16, 32, 1, 1})->Args({112 * 112, 16, 32, 1, 2})
    ->Args({56 * 56, 144, 24, 1, 1})->Args({56 * 56, 144, 24, 1, 2})->Args({56 * 56, 144, 24, 1, 3})
    ->Args({28 * 28, 192, 32, 1, 1})->Args({28 * 28, 192, 32, 1, 2})->Args({28 * 28, 192, 32, 1, 3})
    ->Args({14 * 14, 384, 64, 1, 1})->Args({14 * 14, 384, 64, 1, 2})->Args({14 * 14, 384, 64, 1, 3})
    ->Args({7 * 7, 1280, 320, 1, 1})->Args({7 * 7, 1280, 320, 1, 3})
    ->Args({1024, 1024, 1024, 1, 1})->Args({1024, 1024, 1024, 1, 3})
    ->UseRealTime()->MinTime(0.2);

// Depthwise 3x3 (MobileNetV2 shapes): H, W, C, stride, threads.
void BM_f32_dwconv3x3(benchmark::State& state) {
  Conv2dParams p;
  p.in_h = static_cast<int>(state.range(0));
  p.in_w = static_cast<int>(state.range(1));
  p.in_c = p.out_c = p.groups = static_cast<int>(state.range(2));
  p.stride_h = p.stride_w = static_cast<int>(state.range(3));
  p.kernel_h = p.kernel_w = 3;
  p.pad_top = p.pad_left = p.stride_h == 1 ? 1 : 0;
  p.out_h = (p.in_h + (p.stride_h == 1 ? 2 : 1) - 3) / p.stride_h + 1;
  p.out_w = (p.in_w + (p.stride_w == 1 ? 2 : 1) - 3) / p.stride_w + 1;
  const int threads = static_cast<int>(state.range(4));
  std::vector<float> in(static_cast<size_t>(p.in_h) * p.in_w * p.in_c, 0.5f);
  std::vector<float> w(static_cast<size_t>(p.out_c) * 9, 0.25f), bias(p.out_c, 0.0f);
  std::vector<float> out(static_cast<size_t>(p.out_h) * p.out_w * p.out_c);
  auto packed = prepare_f32_conv2d_fast(p, w.data(), bias.data());
  if (!packed) {
    state.SkipWithError(packed.status().to_string().c_str());
    return;
  }
  ThreadPool pool(threads);
  for (auto _ : state) {
    f32_conv2d_fast(*packed, in.data(), 0.0f, 6.0f, out.data(), nullptr, &pool);
    benchmark::DoNotOptimize(out.data());
  }
  set_flop_counters(state, 2.0 * 9 * out.size(), threads);
  state.counters["GBps"] = benchmark::Counter(
      static_cast<double>((in.size() + out.size()) * sizeof(float)) / 1e9,
      benchmark::Counter::kIsIterationInvariantRate);
  state.SetLabel(std::string(packed->ukernel_name) + " " + packed->isa);
}
BENCHMARK(BM_f32_dwconv3x3)
    ->ArgNames({"H", "W", "C", "s", "threads"})
    ->Args({112, 112, 32, 1, 1})->Args({112, 112, 96, 2, 1})->Args({56, 56, 144, 1, 1})
    ->Args({28, 28, 192, 1, 1})->Args({14, 14, 576, 1, 1})->Args({7, 7, 960, 1, 1})
    ->Args({112, 112, 32, 1, 2})->Args({56, 56, 144, 1, 2})
    ->UseRealTime()->MinTime(0.2);

}  // namespace
}  // namespace pcv::kernels

BENCHMARK_MAIN();
