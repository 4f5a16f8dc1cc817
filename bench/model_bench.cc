// Whole-model inference latency, batch 1, 224x224x3, in our runtime, against the anchors
// measured on this machine kind (../shared/ANCHORS.md): ONNX Runtime 1.30 fp32 —
// MobileNetV2 8.24 ms (1 thread) / 5.17 ms (2 threads); Small CNN 13.43 / 7.71 ms.
// Reports the median and the ratio (ours / ORT; the target is <= 0.85).
//   build/release/bench/model_bench --benchmark_repetitions=5 --benchmark_report_aggregates_only=true
#include <benchmark/benchmark.h>

#include <cstring>
#include <random>

#include "runtime/session.h"
#include "zoo/zoo.h"

namespace {

using namespace pcv;

struct Anchor {
  const char* arch;
  double ort_ms_1t;
  double ort_ms_2t;
};
constexpr Anchor kMobileNetV2{"mobilenet_v2", 8.24, 5.17};
constexpr Anchor kSmallCnn{"simple_cnn", 13.43, 7.71};

void run_model_bench(benchmark::State& state, const Anchor& anchor) {
  const int threads = static_cast<int>(state.range(0));
  zoo::ZooOptions o;
  o.arch = anchor.arch;
  o.size = 224;
  o.classes = anchor.arch == std::string("simple_cnn") ? 2 : 1000;
  auto model = zoo::create_model(o);
  if (!model) {
    state.SkipWithError(model.status().message().c_str());
    return;
  }
  runtime::SessionOptions so;
  so.threads = threads;
  auto session = runtime::Session::create(*model, so);
  if (!session) {
    state.SkipWithError(session.status().message().c_str());
    return;
  }
  ir::Tensor& x = (*session)->input(0);
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> d(-1.f, 1.f);
  for (int64_t i = 0; i < x.num_elements(); ++i) x.data<float>()[i] = d(rng);
  // The input is a view into the arena, which later ops may reuse: each run gets it written
  // again, untimed (as pocketcv bench does).
  const ir::Tensor input = x.clone();
  auto write_input = [&] { std::memcpy(x.raw(), input.raw(), input.size_bytes()); };
  for (int i = 0; i < 3; ++i) {
    write_input();
    (void)(*session)->run();
  }
  for (auto _ : state) {
    state.PauseTiming();
    write_input();
    state.ResumeTiming();
    (void)(*session)->run();
  }
  const double gflop = 2.0 * static_cast<double>(zoo::count_macs(model->graph)) / 1e9;
  state.counters["GFLOP/s"] = benchmark::Counter(gflop, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["ort_ms"] = threads == 1 ? anchor.ort_ms_1t : anchor.ort_ms_2t;
}

// The ratio to ORT is the mean time per iteration divided by ort_ms: read it from the
// aggregate line, or run `pocketcv bench` for medians and a per-op profile.
void BM_MobileNetV2_224(benchmark::State& s) { run_model_bench(s, kMobileNetV2); }
void BM_SmallCnn_224(benchmark::State& s) { run_model_bench(s, kSmallCnn); }

BENCHMARK(BM_MobileNetV2_224)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(2.0);
BENCHMARK(BM_SmallCnn_224)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(2.0);

}  // namespace

BENCHMARK_MAIN();
