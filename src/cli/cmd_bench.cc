// pocketcv bench: what TFLite's benchmark_model gives — load time, first run, latency
// percentiles, peak memory and a per-op profile — on random inputs.
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <fstream>
#include <random>

#include "cli/command.h"
#include "formats/model_io.h"
#include "runtime/session.h"
#include "zoo/zoo.h"

namespace pcv::cli {
namespace {

using Clock = std::chrono::steady_clock;
double ms_since(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

int64_t peak_rss_bytes() {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::stoll(line.substr(6)) * 1024;
  }
  return 0;
}

void fill_random(ir::Tensor& t, uint64_t seed) {
  std::mt19937_64 rng(seed);
  const int64_t n = t.num_elements();
  switch (t.dtype()) {
    case ir::DType::kF32: {
      std::uniform_real_distribution<float> d(-1.f, 1.f);
      for (int64_t i = 0; i < n; ++i) t.data<float>()[i] = d(rng);
      break;
    }
    default: {
      auto* p = static_cast<uint8_t*>(t.raw());
      for (size_t i = 0; i < t.size_bytes(); ++i) p[i] = static_cast<uint8_t>(rng());
    }
  }
}

double percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  const double idx = p * static_cast<double>(v.size() - 1);
  const auto lo = static_cast<size_t>(idx);
  const size_t hi = std::min(lo + 1, v.size() - 1);
  return v[lo] + (v[hi] - v[lo]) * (idx - static_cast<double>(lo));
}

Runner setup(CLI::App& sub) {
  auto path = std::make_shared<std::string>();
  auto threads = std::make_shared<int>(1);
  auto runs = std::make_shared<int>(50);
  auto warmup = std::make_shared<int>(5);
  auto json = std::make_shared<bool>(false);
  auto reference = std::make_shared<bool>(false);
  auto top = std::make_shared<int>(15);
  auto max_memory = std::make_shared<uint64_t>(0);
  sub.add_option("model", *path, "Model file")->required();
  sub.add_option("--threads", *threads, "Threads")->capture_default_str()->check(CLI::Range(1, 64));
  sub.add_option("--runs", *runs, "Timed runs")->capture_default_str()->check(CLI::Range(1, 100000));
  sub.add_option("--warmup", *warmup, "Untimed runs first")->capture_default_str()->check(CLI::Range(0, 100000));
  sub.add_option("--top", *top, "Ops to list in the profile")->capture_default_str();
  sub.add_flag("--json", *json, "Print JSON");
  sub.add_flag("--reference", *reference, "Reference kernels only");
  add_max_memory_option(sub, *max_memory);
  return [=]() -> Status {
    const auto t_load = Clock::now();
    PCV_ASSIGN_OR_RETURN(auto model, formats::load_model(*path, {.max_bytes = *max_memory}));
    const double load_ms = ms_since(t_load);
    runtime::SessionOptions so;
    so.threads = *threads;
    so.fast_kernels = !*reference;
    if (*max_memory > 0) so.max_memory_bytes = static_cast<int64_t>(*max_memory);
    const auto t_prep = Clock::now();
    auto created = runtime::Session::create(model, so);
    if (!created) return created.status().with_context(*path);
    auto session = std::move(created).value();
    const double prepare_ms = ms_since(t_prep);
    // The inputs are views into the arena, which later ops may reuse: every run gets them
    // written again (untimed), as an application writes each frame. Without this, runs after
    // the first read whatever the arena left there (for an int8 model, int8 activations read
    // as floats: denormals that made its input quantize 5x slower).
    std::vector<ir::Tensor> inputs;
    for (int i = 0; i < session->num_inputs(); ++i) {
      fill_random(session->input(i), 42 + static_cast<uint64_t>(i));
      inputs.push_back(session->input(i).clone());
    }
    auto write_inputs = [&inputs](runtime::Session& s) {
      for (int i = 0; i < s.num_inputs(); ++i) {
        std::memcpy(s.input(i).raw(), inputs[static_cast<size_t>(i)].raw(), inputs[static_cast<size_t>(i)].size_bytes());
      }
    };
    auto t0 = Clock::now();
    PCV_RETURN_IF_ERROR(session->run());
    const double first_ms = ms_since(t0);
    for (int i = 0; i < *warmup; ++i) {
      write_inputs(*session);
      PCV_RETURN_IF_ERROR(session->run());
    }
    std::vector<double> lat;
    for (int i = 0; i < *runs; ++i) {
      write_inputs(*session);
      t0 = Clock::now();
      PCV_RETURN_IF_ERROR(session->run());
      lat.push_back(ms_since(t0));
    }
    // Per-op profile from a separate profiled session (profiling adds timer calls).
    runtime::SessionOptions po = so;
    po.profile = true;
    PCV_ASSIGN_OR_RETURN(auto prof, runtime::Session::create(model, po));
    // A first run outside the profile, as the timed runs have their warmup: its one-time costs
    // (first touch of the arena's pages) would otherwise land on whichever op comes first.
    write_inputs(*prof);
    PCV_RETURN_IF_ERROR(prof->run());
    prof->reset_profile();
    for (int i = 0; i < std::max(3, std::min(*runs, 20)); ++i) {
      write_inputs(*prof);
      PCV_RETURN_IF_ERROR(prof->run());
    }
    const auto& p = prof->profile();
    const double macs = static_cast<double>(zoo::count_macs(session->graph()));
    const double median = percentile(lat, 0.5);
    const double gflops = 2.0 * macs / (median * 1e-3) / 1e9;
    std::vector<size_t> order(p.nodes.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return p.nodes[a].total_ms > p.nodes[b].total_ms; });
    double prof_total = 0;
    for (auto& n : p.nodes) prof_total += n.total_ms;
    if (*json) {
      nlohmann::json j = {{"model", *path}, {"threads", session->threads()}, {"runs", *runs},
                          {"load_ms", load_ms}, {"prepare_ms", prepare_ms}, {"first_run_ms", first_ms},
                          {"latency_ms", {{"min", percentile(lat, 0)}, {"median", median}, {"p90", percentile(lat, 0.9)},
                                          {"max", percentile(lat, 1)}}},
                          {"gflop_per_run", 2.0 * macs / 1e9}, {"gflops", gflops},
                          {"arena_bytes", session->arena_bytes()}, {"packed_weight_bytes", session->packed_weight_bytes()},
                          {"peak_rss_bytes", peak_rss_bytes()}};
      for (size_t i : order) {
        const auto& n = p.nodes[i];
        j["ops"].push_back({{"name", n.name}, {"op", n.op}, {"kernel", n.kernel}, {"output_shape", n.output_shape},
                            {"ms", n.total_ms / p.runs}, {"macs", n.macs}});
      }
      out("{}\n", j.dump(2));
      return Status::ok();
    }
    out("model        {}\n", *path);
    if (session->threads() < *threads) {
      out("threads      {} ({} asked: capped at the CPUs available)\n", session->threads(), *threads);
    } else {
      out("threads      {}\n", session->threads());
    }
    out("load         {:.2f} ms   prepare {:.2f} ms   first run {:.2f} ms\n", load_ms, prepare_ms, first_ms);
    out("latency      min {:.3f}  median {:.3f}  p90 {:.3f}  max {:.3f} ms  ({} runs)\n", percentile(lat, 0), median,
        percentile(lat, 0.9), percentile(lat, 1), *runs);
    out("compute      {:.3f} GFLOP per run, {:.1f} GFLOP/s at the median\n", 2.0 * macs / 1e9, gflops);
    out("memory       arena {}, packed weights {}, peak RSS {}\n", human_bytes(session->arena_bytes()),
        human_bytes(session->packed_weight_bytes()), human_bytes(peak_rss_bytes()));
    out("\n{:<34} {:<16} {:>9} {:>6} {:>8}  {}\n", "op (slowest first)", "type", "ms", "%", "GFLOP/s", "kernel");
    for (size_t k = 0; k < order.size() && static_cast<int>(k) < *top; ++k) {
      const auto& n = p.nodes[order[k]];
      const double ms = n.total_ms / p.runs;
      out("{:<34} {:<16} {:>9.3f} {:>5.1f}% {:>8.1f}  {}\n", n.name.substr(0, 34), n.op, ms,
          100.0 * n.total_ms / std::max(1e-9, prof_total), n.macs ? 2.0 * static_cast<double>(n.macs) / (ms * 1e-3) / 1e9 : 0.0,
          n.kernel);
    }
    return Status::ok();
  };
}

}  // namespace
PCV_REGISTER_COMMAND(bench, "Benchmark a model: load time, latency percentiles, memory, per-op profile", 85, setup);
}  // namespace pcv::cli
