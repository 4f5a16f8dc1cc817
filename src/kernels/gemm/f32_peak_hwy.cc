// The fp32 FMA peak of this CPU, measured (gemm.h: f32_fma_peak_gflops): independent FMA
// chains on the widest vectors of the dispatched Highway target, no memory traffic. For
// benchmarks to state a share of peak measured on the machine they run on.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/gemm/f32_peak_hwy.cc"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

#include <chrono>
#include <thread>
#include <vector>

#include "kernels/gemm/gemm.h"

HWY_BEFORE_NAMESPACE();
namespace pcv::kernels {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// FLOPs done: iters * 16 chains * lanes * 2. Returns a value that depends on every chain.
double FmaChains(size_t iters, double* flops) {
  const hn::ScalableTag<float> d;
  constexpr int kChains = 16;  // > latency x throughput (4 x 2) on current cores
  hn::Vec<decltype(d)> acc[kChains];
  for (int j = 0; j < kChains; ++j) acc[j] = hn::Set(d, 1.0f + 0.001f * static_cast<float>(j));
  const auto m = hn::Set(d, 0.999999f);
  const auto c = hn::Set(d, 1e-7f);
  for (size_t i = 0; i < iters; ++i) {
    HWY_UNROLL(16)
    for (int j = 0; j < kChains; ++j) acc[j] = hn::MulAdd(acc[j], m, c);
  }
  auto sum = acc[0];
  for (int j = 1; j < kChains; ++j) sum = hn::Add(sum, acc[j]);
  *flops = static_cast<double>(iters) * kChains * static_cast<double>(hn::Lanes(d)) * 2.0;
  return static_cast<double>(hn::GetLane(hn::SumOfLanes(d, sum)));
}

}  // namespace HWY_NAMESPACE
}  // namespace pcv::kernels
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace pcv::kernels {

HWY_EXPORT(FmaChains);

double f32_fma_peak_gflops(int threads) {
  apply_forced_isa();
  threads = threads < 1 ? 1 : threads;
  auto one = [](double* gflops, double* sink) {
    double flops = 0;
    *sink += HWY_DYNAMIC_DISPATCH(FmaChains)(1 << 16, &flops);  // warm-up (clock, caches)
    double best = 0;
    for (int rep = 0; rep < 5; ++rep) {
      const auto t0 = std::chrono::steady_clock::now();
      *sink += HWY_DYNAMIC_DISPATCH(FmaChains)(size_t{1} << 21, &flops);
      const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      if (s > 0 && flops / s / 1e9 > best) best = flops / s / 1e9;
    }
    *gflops = best;
  };
  std::vector<double> gflops(static_cast<size_t>(threads)), sink(static_cast<size_t>(threads));
  std::vector<std::thread> workers;
  for (int t = 1; t < threads; ++t) workers.emplace_back(one, &gflops[static_cast<size_t>(t)], &sink[static_cast<size_t>(t)]);
  one(&gflops[0], &sink[0]);
  for (auto& w : workers) w.join();
  double total = 0;
  for (double g : gflops) total += g;
  return total;
}

}  // namespace pcv::kernels
#endif  // HWY_ONCE
