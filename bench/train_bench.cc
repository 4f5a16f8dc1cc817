// Training throughput (images/s): one SGD-momentum step (forward with saved activations,
// fused softmax cross-entropy, backward, update) of simple_cnn ("Small CNN") and
// mobilenet_v2 1.0 at 224x224x3, batch 32, 1 and 2 threads, on random images.
// Counters: img_per_s, and ratio_vs_pytorch = our images/s over PyTorch 1.13's in ANCHORS.md
// (Small CNN 11.2 / 15.4, MobileNetV2 6.6 / 12.6 images/s at 1 / 2 threads; target >= 3).
// ANCHORS.md warns that 2-thread training figures swing 20-40% with load: compare ratios
// from quiet runs. Smaller sizes: --benchmark_filter=.../128 etc.
// Args: arch (0 simple_cnn, 1 mobilenet_v2), size, batch, threads. BM_conv1x1_backward: one
// 1x1 conv's backward on MobileNetV2's shapes (--benchmark_filter=conv1x1); BM_dwconv_backward
// the same for its depthwise convs, and BM_dwconv_forward their forward after a batch norm
// (--benchmark_filter=dwconv; bn:1 with the batch norm's output computed by the conv).
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <sys/resource.h>
#include <string>
#include <vector>

#include "base/aligned.h"
#include "base/thread_pool.h"
#include "kernels/conv/conv_backward.h"
#include "kernels/conv/pointwise_depthwise.h"
#include "data/rng.h"
#include "train/layers.h"
#include "train/loss.h"
#include "train/optimizer.h"
#include "train/program.h"
#include "zoo/zoo.h"

namespace pcv::train {
namespace {

double pytorch_img_per_s(int arch, int size, int threads) {
  if (size != 224) return 0;
  if (arch == 0) return threads <= 1 ? 11.2 : 15.4;
  return threads <= 1 ? 6.6 : 12.6;
}

// Per op type, then the 12 slowest nodes: ms per step, forward and backward.
void print_profile(const std::vector<NodeTime>& times, const std::string& arch, int threads) {
  uint64_t steps = 0;
  for (const NodeTime& t : times) steps = std::max(steps, t.calls);
  if (steps == 0) return;
  const double to_ms = 1e3 / static_cast<double>(steps);
  std::map<std::string, std::pair<double, double>> by_op;
  double total = 0;
  for (const NodeTime& t : times) {
    by_op[t.op].first += t.forward_s;
    by_op[t.op].second += t.backward_s;
    total += t.forward_s + t.backward_s;
  }
  std::vector<std::pair<std::string, std::pair<double, double>>> ops(by_op.begin(), by_op.end());
  std::sort(ops.begin(), ops.end(), [](const auto& a, const auto& b) {
    return a.second.first + a.second.second > b.second.first + b.second.second;
  });
  std::printf("\n%s, %d thread%s, %llu steps: %.1f ms per step in nodes\n", arch.c_str(), threads,
              threads > 1 ? "s" : "", static_cast<unsigned long long>(steps), total * to_ms);
  std::printf("  %-22s %10s %10s\n", "op", "fwd ms", "bwd ms");
  for (const auto& [op, fb] : ops) std::printf("  %-22s %10.1f %10.1f\n", op.c_str(), fb.first * to_ms, fb.second * to_ms);
  std::vector<const NodeTime*> nodes;
  for (const NodeTime& t : times) nodes.push_back(&t);
  std::sort(nodes.begin(), nodes.end(), [](const NodeTime* a, const NodeTime* b) {
    return a->forward_s + a->backward_s > b->forward_s + b->backward_s;
  });
  std::printf("  %-40s %-16s %10s %10s\n", "slowest nodes", "op", "fwd ms", "bwd ms");
  for (size_t i = 0; i < std::min<size_t>(getenv("PCV_TRAIN_PROFILE_ALL") ? nodes.size() : 12, nodes.size()); ++i) {
    std::printf("  %-40s %-16s %10.2f %10.2f\n", nodes[i]->name.c_str(), nodes[i]->op.c_str(),
                nodes[i]->forward_s * to_ms, nodes[i]->backward_s * to_ms);
  }
}

void BM_train_step(benchmark::State& state) {
  const int arch = static_cast<int>(state.range(0));
  const int size = static_cast<int>(state.range(1));
  const int batch = static_cast<int>(state.range(2));
  const int threads = static_cast<int>(state.range(3));
  zoo::ZooOptions z;
  z.arch = arch == 0 ? "simple_cnn" : "mobilenet_v2";
  z.size = size;
  z.classes = 2;
  auto model = zoo::create_model(z);
  if (!model) {
    state.SkipWithError(model.status().to_string().c_str());
    return;
  }
  ThreadPool pool(threads);
  ProgramOptions po;
  po.batch = batch;
  // PCV_TRAIN_PROFILE=1: print where a step's time goes, per op type and slowest nodes.
  const char* prof_env = std::getenv("PCV_TRAIN_PROFILE");
  po.profile = prof_env != nullptr && prof_env[0] == '1';
  auto prog = Program::create(*model, po, &pool);
  if (!prog) {
    state.SkipWithError(prog.status().to_string().c_str());
    return;
  }
  Program& p = **prog;
  data::Rng rng(1);
  const size_t n = p.input_elems_per_sample() * static_cast<size_t>(batch);
  for (size_t i = 0; i < n; ++i) p.input()[i] = rng.uniform(-1.f, 1.f);
  std::vector<int32_t> labels(static_cast<size_t>(batch));
  for (auto& l : labels) l = static_cast<int32_t>(rng.below(2));
  Optimizer opt(OptimizerOptions{}, p.parameters());
  uint64_t step = 0;
  auto one_step = [&] {
    p.forward(Mode::kTrain, batch, step++);
    softmax_cross_entropy(static_cast<size_t>(batch), 2, p.output(0), labels.data(), 0.f,
                          1.f / static_cast<float>(batch), p.output_grad(0));
    p.backward();
    opt.step(p.parameters(), 0.001f);
  };
  one_step();  // warm-up: first-touch of the activation and gradient buffers
  p.reset_profile();
  struct rusage ru0;
  getrusage(RUSAGE_SELF, &ru0);
  for (auto _ : state) {
    p.forward(Mode::kTrain, batch, step++);
    softmax_cross_entropy(static_cast<size_t>(batch), 2, p.output(0), labels.data(), 0.f,
                          1.f / static_cast<float>(batch), p.output_grad(0));
    p.backward();
    opt.step(p.parameters(), 0.001f);
  }
  struct rusage ru1;
  getrusage(RUSAGE_SELF, &ru1);
  if (po.profile) std::printf("minor faults per step: %.0f\n", double(ru1.ru_minflt - ru0.ru_minflt) / double(state.iterations()));
  if (po.profile) print_profile(p.profile(), z.arch, threads);
  const double img = static_cast<double>(batch);
  state.counters["img_per_s"] = benchmark::Counter(img, benchmark::Counter::kIsIterationInvariantRate);
  const double ref = pytorch_img_per_s(arch, size, threads);
  if (ref > 0) {
    state.counters["ratio_vs_pytorch"] =
        benchmark::Counter(img / ref, benchmark::Counter::kIsIterationInvariantRate);
  }
  state.SetLabel(z.arch);
}

BENCHMARK(BM_train_step)
    ->ArgNames({"arch", "size", "batch", "threads"})
    ->Args({0, 224, 32, 2})
    ->Args({1, 224, 32, 2})
    ->Args({0, 224, 32, 1})
    ->Args({1, 224, 32, 1})
    ->Args({0, 128, 32, 2})
    ->Args({1, 128, 32, 2})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->MinTime(3.0);

// Times f32_conv2d_backward_fast (input gradient assigned) on state.range(3) threads, the
// caches evicted before each run (64 MB written outside the timing), as inside a training step.
void time_conv_backward(benchmark::State& state, int threads, const kernels::F32Conv2dBackwardPlan& plan,
                        const float* x, const float* w, const float* dy, float* dx, float* dw, float* db,
                        const kernels::BnFusedClamp* bn_input = nullptr) {
  std::vector<float> scratch(plan.scratch_elems);
  std::vector<char> evict(64 << 20);
  char fill = 0;
  ThreadPool pool(threads);
  for (auto _ : state) {
    state.PauseTiming();
    std::fill(evict.begin(), evict.end(), ++fill);
    benchmark::ClobberMemory();
    state.ResumeTiming();
    kernels::f32_conv2d_backward_fast(plan, plan.params.batch, x, w, dy, dx, dw, db, scratch.data(), &pool,
                                      /*assign_input_grad=*/true, nullptr, bn_input);
    benchmark::DoNotOptimize(dw);
    benchmark::ClobberMemory();
  }
}

// One 1x1 conv's backward (input, filter and bias gradients) on MobileNetV2-224 shapes at
// batch 32, its inputs evicted from the caches between iterations (64 MB written outside the
// timing), as inside a training step. Args: H (= W), in_c, out_c, threads. Counter: GFLOPs
// (4 * pixels * in_c * out_c per run: both GEMMs).
void BM_conv1x1_backward(benchmark::State& state) {
  kernels::Conv2dParams p;
  p.batch = 32;
  p.in_h = p.in_w = p.out_h = p.out_w = static_cast<int>(state.range(0));
  p.in_c = static_cast<int>(state.range(1));
  p.out_c = static_cast<int>(state.range(2));
  p.kernel_h = p.kernel_w = p.stride_h = p.stride_w = p.groups = 1;
  auto plan = kernels::prepare_f32_conv2d_backward_fast(p);
  if (!plan) {
    state.SkipWithError(plan.status().to_string().c_str());
    return;
  }
  const size_t pixels = static_cast<size_t>(p.batch) * p.in_h * p.in_w;
  std::vector<float> x(pixels * p.in_c, 0.5f), w(static_cast<size_t>(p.out_c) * p.in_c, 0.01f);
  std::vector<float> dy(pixels * p.out_c, 0.1f), dx(x.size()), dw(w.size()), db(p.out_c);
  time_conv_backward(state, static_cast<int>(state.range(3)), *plan, x.data(), w.data(), dy.data(), dx.data(),
                     dw.data(), db.data());
  state.counters["GFLOPs"] = benchmark::Counter(4.0 * static_cast<double>(pixels) * p.in_c * p.out_c / 1e9,
                                                benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_conv1x1_backward)
    ->ArgNames({"HW", "in", "out", "threads"})
    ->Args({7, 320, 1280, 2})   // conv_last
    ->Args({7, 960, 320, 2})    // block16/project
    ->Args({7, 160, 960, 2})    // block16/expand
    ->Args({14, 96, 576, 2})    // block11/expand
    ->Args({14, 576, 96, 2})    // block11/project
    ->Args({112, 16, 96, 2})    // block1/expand
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->MinTime(0.5);

// MobileNetV2's depthwise 3x3 conv at batch 32: H (= W) of the input, channels, stride.
kernels::Conv2dParams dwconv_params(const benchmark::State& state) {
  kernels::Conv2dParams p;
  p.batch = 32;
  p.in_h = p.in_w = static_cast<int>(state.range(0));
  p.in_c = p.out_c = p.groups = static_cast<int>(state.range(1));
  p.kernel_h = p.kernel_w = 3;
  p.stride_h = p.stride_w = static_cast<int>(state.range(2));
  p.out_h = p.out_w = (p.in_h + p.stride_h - 1) / p.stride_h;
  const int pad = std::max(0, (p.out_h - 1) * p.stride_h + 3 - p.in_h);  // SAME
  p.pad_top = p.pad_left = pad / 2;
  return p;
}

// A batch norm's scale and shift for c channels (the values are immaterial to the timing).
struct BnAffine {
  std::vector<float> scale, shift;
  explicit BnAffine(int c) : scale(static_cast<size_t>(c), 1.5f), shift(static_cast<size_t>(c), 0.25f) {}
  kernels::BnFusedClamp clamp() const { return {scale.data(), shift.data(), 0.f, 6.f}; }
};

// One depthwise 3x3 conv's backward (input, filter and bias gradients) on MobileNetV2-224
// shapes at batch 32, caches evicted as above. Args: H (= W) of the input, channels, stride,
// bn (1: the input is a batch norm's output recomputed from its input, bn_input), threads.
// Counter: GB/s over the bytes that must move (x and dy read, dx written).
void BM_dwconv_backward(benchmark::State& state) {
  const kernels::Conv2dParams p = dwconv_params(state);
  const bool bn = state.range(3) != 0;
  auto plan = kernels::prepare_f32_conv2d_backward_fast(p, false, bn);
  if (!plan) {
    state.SkipWithError(plan.status().to_string().c_str());
    return;
  }
  const size_t in = static_cast<size_t>(p.batch) * p.in_h * p.in_w * p.in_c;
  const size_t out = static_cast<size_t>(p.batch) * p.out_h * p.out_w * p.out_c;
  // 64-byte aligned tensors, as the training program's, so that dx may be streamed.
  AlignedBuffer xb(in * sizeof(float)), dyb(out * sizeof(float)), dxb(in * sizeof(float));
  float* x = reinterpret_cast<float*>(xb.data());
  float* dy = reinterpret_cast<float*>(dyb.data());
  float* dx = reinterpret_cast<float*>(dxb.data());
  std::fill(x, x + in, 0.5f);
  std::fill(dy, dy + out, 0.1f);
  std::vector<float> w(static_cast<size_t>(p.out_c) * 9, 0.01f), dw(w.size()), db(p.out_c);
  const BnAffine affine(p.in_c);
  const kernels::BnFusedClamp clamp = affine.clamp();
  time_conv_backward(state, static_cast<int>(state.range(4)), *plan, x, w.data(), dy, dx, dw.data(), db.data(),
                     bn ? &clamp : nullptr);
  state.counters["GBps"] = benchmark::Counter(static_cast<double>(2 * in + out) * sizeof(float) / 1e9,
                                              benchmark::Counter::kIsIterationInvariantRate);
}
// MobileNetV2's depthwise shapes, each without and with the batch norm before it fused.
void dwconv_shapes(benchmark::internal::Benchmark* b) {
  b->ArgNames({"HW", "c", "stride", "bn", "threads"});
  for (int bn : {0, 1}) {
    b->Args({112, 32, 1, bn, 2});   // block0
    b->Args({112, 96, 2, bn, 2});   // block1
    b->Args({56, 144, 1, bn, 2});   // block2
    b->Args({56, 144, 2, bn, 2});   // block3
    b->Args({28, 192, 2, bn, 2});   // block6
    b->Args({14, 576, 1, bn, 2});   // block11
    b->Args({14, 576, 2, bn, 2});   // block13
    b->Args({7, 960, 1, bn, 2});    // block14
  }
}
BENCHMARK(BM_dwconv_backward)->Apply(dwconv_shapes)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(0.5);

// One depthwise 3x3 conv's forward after a train-mode batch norm with a fused relu6, caches
// evicted as above: bn 0 the batch norm's output pass (f32_rows_scale_shift over the batch,
// streamed as the batch norm streams it) then the conv; bn 1 the conv computing that output
// band by band (f32_affine_depthwise). Args and counter as BM_dwconv_backward's (the bytes:
// x read, the conv's output written).
void BM_dwconv_forward(benchmark::State& state) {
  kernels::Conv2dParams p = dwconv_params(state);
  const bool bn = state.range(3) != 0;
  std::vector<float> w(static_cast<size_t>(p.out_c) * 9, 0.01f);
  auto packed = kernels::prepare_f32_conv2d_fast(p, w.data(), nullptr);
  if (!packed) {
    state.SkipWithError(packed.status().to_string().c_str());
    return;
  }
  const size_t in = static_cast<size_t>(p.batch) * p.in_h * p.in_w * p.in_c;
  const size_t out = static_cast<size_t>(p.batch) * p.out_h * p.out_w * p.out_c;
  AlignedBuffer xb(in * sizeof(float)), tb(in * sizeof(float)), yb(out * sizeof(float));
  float* x = reinterpret_cast<float*>(xb.data());
  float* t = reinterpret_cast<float*>(tb.data());
  float* y = reinterpret_cast<float*>(yb.data());
  std::fill(x, x + in, 0.5f);
  const BnAffine affine(p.in_c);
  const kernels::BnFusedClamp clamp = affine.clamp();
  ThreadPool pool(static_cast<int>(state.range(4)));
  const int threads = pool.threads();
  std::vector<char> scratch(std::max(packed->scratch_bytes(threads),
                                     kernels::f32_affine_depthwise_scratch_bytes(*packed, threads)));
  float* sp = reinterpret_cast<float*>(scratch.data());
  std::vector<char> evict(64 << 20);
  char fill = 0;
  for (auto _ : state) {
    state.PauseTiming();
    std::fill(evict.begin(), evict.end(), ++fill);
    benchmark::ClobberMemory();
    state.ResumeTiming();
    if (bn) {
      kernels::f32_affine_depthwise(*packed, x, clamp, -kInfinity, kInfinity, y, sp, &pool);
    } else {
      const size_t rows = in / static_cast<size_t>(p.in_c), half = rows / 2;
      pool.parallel_for(2, [&](size_t i) {
        const size_t b = i == 0 ? 0 : half, e = i == 0 ? half : rows;
        kernels::f32_rows_scale_shift(e - b, static_cast<size_t>(p.in_c), x + b * p.in_c, clamp.scale, clamp.shift,
                                      clamp.lo, clamp.hi, t + b * p.in_c, /*stream=*/true);
      });
      kernels::f32_conv2d_fast(*packed, t, -kInfinity, kInfinity, y, sp, &pool);
    }
    benchmark::DoNotOptimize(y);
    benchmark::ClobberMemory();
  }
  state.counters["GBps"] = benchmark::Counter(static_cast<double>(in + out) * sizeof(float) / 1e9,
                                              benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_dwconv_forward)->Apply(dwconv_shapes)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(0.5);

}  // namespace
}  // namespace pcv::train

BENCHMARK_MAIN();
