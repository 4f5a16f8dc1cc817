// The app's whole path through the C API: one 1920x1080 NV21 camera frame (rotation 90,
// portrait phone) -> pcv_session_set_input_frame -> pcv_session_run -> pcv_session_top_k(1),
// on MobileNetV2 0.35 at 224x224 (1000 classes, seeded weights: timing does not depend on
// them). Parts are timed separately too, so the C API's own overhead is visible:
//   full = preprocess + inference + top-k; anything beyond the sum is API overhead.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "ir/pcv_format.h"
#include "pocketcv/pocketcv.h"
#include "zoo/zoo.h"

namespace {

struct Fixture {
  pcv_model* model = nullptr;
  pcv_session* session = nullptr;
  std::vector<uint8_t> y, vu;
  pcv_frame frame{};

  explicit Fixture(int threads) {
    pcv::zoo::ZooOptions o;
    o.arch = "mobilenet_v2";
    o.width = 0.35f;
    o.size = 224;
    o.classes = 1000;
    auto m = pcv::zoo::create_model(o);
    auto bytes = pcv::ir::write_pcv(*m);
    pcv_model_load_memory(bytes->data(), bytes->size(), "mobilenet_v2_0.35_224", &model);
    pcv_session_options so = PCV_SESSION_OPTIONS_INIT;
    so.threads = threads;
    pcv_session_create(model, &so, &session);
    const int w = 1920, h = 1080;
    y.resize(static_cast<size_t>(w) * h);
    vu.resize(static_cast<size_t>(w) * h / 2);
    uint32_t s = 12345;
    for (int r = 0; r < h; ++r) {
      for (int c = 0; c < w; ++c) {
        s = s * 1664525u + 1013904223u;
        y[static_cast<size_t>(r) * w + c] = static_cast<uint8_t>((r + c) / 12 + (s >> 28));
      }
    }
    for (size_t i = 0; i < vu.size(); ++i) vu[i] = static_cast<uint8_t>(100 + (i % 57));
    frame.format = PCV_FRAME_NV21;
    frame.width = w;
    frame.height = h;
    frame.planes[0] = {y.data(), w, 1};
    frame.planes[1] = {vu.data(), w, 2};
  }
  ~Fixture() {
    pcv_session_free(session);
    pcv_model_free(model);
  }
  bool ok() const { return session != nullptr; }
};

void BM_capi_nv21_1080p_to_top1(benchmark::State& state) {
  Fixture f(static_cast<int>(state.range(0)));
  if (!f.ok()) return state.SkipWithError(pcv_last_error_message());
  pcv_classification top[1];
  double pre = 0, inf = 0, post = 0;
  for (auto _ : state) {
    if (pcv_session_set_input_frame(f.session, &f.frame, 90, 0, PCV_CROP_CENTER) != PCV_OK ||
        pcv_session_run(f.session) != PCV_OK || pcv_session_top_k(f.session, 1, top, nullptr) != PCV_OK) {
      state.SkipWithError(pcv_last_error_message());
      break;
    }
    pcv_trace t = PCV_TRACE_INIT;
    pcv_session_last_trace(f.session, &t);
    pre += t.preprocess_ms, inf += t.inference_ms, post += t.postprocess_ms;
    benchmark::DoNotOptimize(top[0].score);
  }
  const double n = static_cast<double>(state.iterations());
  state.counters["pre_ms"] = pre / n;
  state.counters["inference_ms"] = inf / n;
  state.counters["top1_ms"] = post / n;
}
BENCHMARK(BM_capi_nv21_1080p_to_top1)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime()
    ->Repetitions(5)->ReportAggregatesOnly(true);

void BM_capi_set_input_frame_1080p(benchmark::State& state) {
  Fixture f(1);
  if (!f.ok()) return state.SkipWithError(pcv_last_error_message());
  for (auto _ : state) {
    if (pcv_session_set_input_frame(f.session, &f.frame, 90, 0, PCV_CROP_CENTER) != PCV_OK) {
      state.SkipWithError(pcv_last_error_message());
      break;
    }
  }
}
BENCHMARK(BM_capi_set_input_frame_1080p)->Unit(benchmark::kMicrosecond)->Repetitions(5)->ReportAggregatesOnly(true);

void BM_capi_top_k_1000(benchmark::State& state) {
  Fixture f(1);
  if (!f.ok() || pcv_session_run(f.session) != PCV_OK) return state.SkipWithError(pcv_last_error_message());
  pcv_classification top[5];
  for (auto _ : state) {
    pcv_session_top_k(f.session, static_cast<int32_t>(state.range(0)), top, nullptr);
    benchmark::DoNotOptimize(top[0].score);
  }
}
BENCHMARK(BM_capi_top_k_1000)->Arg(1)->Arg(5)->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();
