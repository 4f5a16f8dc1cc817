// Magnitude pruning (exact sparsity, masks, schedules, the fine-tuning callback), structured
// pruning (smaller model == masked original) and palettization.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <set>

#include "optimize/optimize_test_util.h"
#include "optimize/passes.h"
#include "runtime/session.h"
#include "support/random.h"
#include "zoo/zoo.h"

namespace pcv::optimize {
namespace {

using ::pcv::testing::uniform_input;
using ir::DType;
using ir::OpType;
using testing::run;
using testing::zoo_model;

int64_t zeros_of(const ir::Value& w) {
  int64_t z = 0;
  for (int64_t i = 0; i < w.data.num_elements(); ++i) z += w.data.data<float>()[i] == 0.f;
  return z;
}

TEST(PruneMagnitude, TinyBeforeAfter) {
  ir::Graph g;
  const auto x = g.add_input("x", DType::kF32, {1, 4});
  const auto w = g.add_constant("w", ir::Tensor::from_vector<float>({1, 4}, {0.9f, -0.1f, 0.05f, -0.7f}), {}, true);
  g.mark_output(g.add_node(OpType::kFullyConnected, "fc", {x, w}, ir::FullyConnectedAttrs{}));
  ASSERT_TRUE(ir::infer_shapes(g).is_ok());
  PruneOptions o;
  o.sparsity = 0.5f;
  auto masks = prune_magnitude(g, o);
  ASSERT_TRUE(masks.has_value());
  const float* d = g.value(g.find_value("w")).data.data<float>();
  EXPECT_EQ(std::vector<float>(d, d + 4), (std::vector<float>{0.9f, 0.f, 0.f, -0.7f}));
  EXPECT_EQ(masks->at("w"), (std::vector<uint8_t>{1, 0, 0, 1}));
}

TEST(PruneMagnitude, HitsTargetSparsityExactly) {
  for (PruneScope scope : {PruneScope::kGlobal, PruneScope::kLayer, PruneScope::kChannel}) {
    SCOPED_TRACE(prune_scope_name(scope));
    const bool global = scope == PruneScope::kGlobal;
    for (float s : {0.3f, 0.5f, 0.8f}) {
      ir::Model m = zoo_model("mobilenet_v2", 64, 3, 10, 0.35f);
      const ir::Model before = m;
      PruneOptions o;
      o.sparsity = s;
      o.scope = scope;
      auto masks = prune_magnitude(m.graph, o);
      ASSERT_TRUE(masks.has_value());
      int64_t total = 0, zeros = 0;
      for (const auto& [name, mask] : *masks) {
        const ir::Value& w = m.graph.value(m.graph.find_value(name));
        total += w.data.num_elements();
        zeros += zeros_of(w);
        if (scope == PruneScope::kLayer) {
          EXPECT_EQ(zeros_of(w), std::llround(s * static_cast<double>(w.data.num_elements()))) << name;
        }
        if (scope == PruneScope::kChannel) {  // every output channel (row) on its own
          const int64_t rows = w.shape[0], len = w.data.num_elements() / rows;
          for (int64_t r = 0; r < rows; ++r) {
            int64_t z = 0;
            for (int64_t i = 0; i < len; ++i) z += w.data.data<float>()[r * len + i] == 0.f;
            ASSERT_EQ(z, std::llround(s * static_cast<double>(len))) << name << " row " << r;
          }
        }
        // Kept weights are unchanged; the graph's other weights too.
        const ir::Value& w0 = before.graph.value(before.graph.find_value(name));
        for (size_t i = 0; i < mask.size(); ++i) {
          if (mask[i]) {
            EXPECT_EQ(w.data.data<float>()[i], w0.data.data<float>()[i]);
          }
        }
      }
      if (global) {
        EXPECT_EQ(zeros, std::llround(s * static_cast<double>(total)));
      }
      // Per tensor, each rounds on its own: within half a weight per tensor.
      double slack = 0.5;  // half a weight per rounding
      if (scope == PruneScope::kLayer) slack *= static_cast<double>(masks->size());
      if (scope == PruneScope::kChannel) {
        slack = 0;
        for (const auto& [name, mask] : *masks) slack += 0.5 * static_cast<double>(m.graph.value(m.graph.find_value(name)).shape[0]);
      }
      EXPECT_NEAR(weight_sparsity(m.graph, *masks), s, slack / static_cast<double>(total) + 1e-9);
      // Depthwise filters are left alone by default.
      for (const WeightUse& u : find_weights(m.graph, {})) {
        if (u.depthwise) {
          EXPECT_FALSE(masks->count(m.graph.value(u.weight).name));
        }
      }
      // The original graph's tensors were not written through.
      for (const WeightUse& u : find_weights(before.graph, {})) EXPECT_EQ(zeros_of(before.graph.value(u.weight)), 0);
    }
  }
}

// Per-channel mean and standard deviation of node `ni`'s output before its activation, computed
// here in double from the reference kernels' outputs.
std::pair<std::vector<double>, std::vector<double>> pre_activation_stats(const ir::Model& model, size_t ni,
                                                                        const std::vector<ir::Tensor>& xs) {
  ir::Model cut = model;
  ir::Node& n = cut.graph.nodes[ni];
  n.attr<ir::Conv2dAttrs>().activation = ir::Activation::kNone;
  cut.graph.outputs = {n.outputs[0]};
  runtime::SessionOptions so;
  so.fast_kernels = false;
  const size_t c = static_cast<size_t>(cut.graph.value(n.outputs[0]).shape.back());
  std::vector<double> sum(c), sq(c);
  double rows = 0;
  for (const ir::Tensor& x : xs) {
    auto y = runtime::run_model(cut, {x}, so);
    EXPECT_TRUE(y.has_value());
    const float* d = (*y)[0].data<float>();
    for (int64_t i = 0; i < (*y)[0].num_elements(); ++i) {
      sum[static_cast<size_t>(i) % c] += d[i];
      sq[static_cast<size_t>(i) % c] += static_cast<double>(d[i]) * d[i];
    }
    rows += static_cast<double>((*y)[0].num_elements()) / static_cast<double>(c);
  }
  std::vector<double> mean(c), sd(c);
  for (size_t k = 0; k < c; ++k) {
    mean[k] = sum[k] / rows;
    sd[k] = std::sqrt(std::max(0.0, sq[k] / rows - mean[k] * mean[k]));
  }
  return {mean, sd};
}

// After 60% pruning the convolutions' channel statistics drift from the original's; after
// recalibration every pruned conv's output (before its activation) has the original's mean
// and spread again on the samples, the zeros are still zeros, and unpruned layers are as they were.
TEST(RecalibrateChannels, RestoresChannelStatisticsAndKeepsZeros) {
  ir::Model original = zoo_model("simple_cnn", 32, 3, 4, 1.f, /*prepared=*/true);
  std::vector<ir::Tensor> xs;
  for (uint64_t s = 0; s < 6; ++s) xs.push_back(uniform_input(original.graph, 100 + s));
  ir::Model pruned = original;
  PruneOptions o;
  o.sparsity = 0.6f;
  auto masks = prune_magnitude(pruned.graph, o);
  ASSERT_TRUE(masks.has_value());
  std::set<std::string> names;
  for (const auto& entry : *masks) names.insert(entry.first);
  std::vector<size_t> convs;
  for (size_t i = 0; i < pruned.graph.nodes.size(); ++i) {
    const ir::Node& n = pruned.graph.nodes[i];
    if (n.op == OpType::kConv2d && names.count(pruned.graph.value(n.inputs[1]).name)) convs.push_back(i);
  }
  ASSERT_GE(convs.size(), 2u);
  const auto before = pre_activation_stats(pruned, convs.back(), xs);
  const auto want_last = pre_activation_stats(original, convs.back(), xs);
  double drift = 0;
  for (size_t c = 0; c < before.first.size(); ++c) drift = std::max(drift, std::fabs(before.second[c] / want_last.second[c] - 1));
  EXPECT_GT(drift, 0.05) << "pruning should have changed the spread";

  auto layers = recalibrate_channels(original, pruned, names, xs);
  ASSERT_TRUE(layers.has_value()) << layers.status().to_string();
  EXPECT_GE(*layers, static_cast<int>(convs.size()));
  for (size_t ni : convs) {
    const auto got = pre_activation_stats(pruned, ni, xs);
    const auto want = pre_activation_stats(original, ni, xs);
    for (size_t c = 0; c < got.first.size(); ++c) {
      const double tol = 1e-3 * (want.second[c] + std::fabs(want.first[c])) + 1e-6;
      EXPECT_NEAR(got.first[c], want.first[c], tol) << "node " << ni << " channel " << c;
      EXPECT_NEAR(got.second[c], want.second[c], tol) << "node " << ni << " channel " << c;
    }
  }
  for (const auto& [name, mask] : *masks) {
    const ir::Value& w = pruned.graph.value(pruned.graph.find_value(name));
    for (size_t i = 0; i < mask.size(); ++i) {
      if (!mask[i]) {
        ASSERT_EQ(w.data.data<float>()[i], 0.f) << name;
      }
    }
  }
}

TEST(SparsitySchedule, PolynomialDecay) {
  SparsitySchedule s;
  s.initial = 0.f;
  s.final = 0.5f;
  s.begin = 10;
  s.end = 110;
  s.frequency = 10;
  EXPECT_FLOAT_EQ(s.sparsity_at(0), 0.f);
  EXPECT_FLOAT_EQ(s.sparsity_at(10), 0.f);
  EXPECT_NEAR(s.sparsity_at(60), 0.5f * (1.f - 0.125f), 1e-6f);  // 1 - (1 - 0.5)^3
  EXPECT_FLOAT_EQ(s.sparsity_at(110), 0.5f);
  EXPECT_FLOAT_EQ(s.sparsity_at(500), 0.5f);
  EXPECT_TRUE(s.update_at(10));
  EXPECT_FALSE(s.update_at(15));
  EXPECT_TRUE(s.update_at(20));
  EXPECT_TRUE(s.update_at(110));
  EXPECT_FALSE(s.update_at(120));
  s.kind = SparsitySchedule::Kind::kConstant;
  EXPECT_FLOAT_EQ(s.sparsity_at(10), 0.5f);
  EXPECT_FLOAT_EQ(s.sparsity_at(5), 0.f);
}

// A stand-in trainer: every step nudges every weight, as SGD would.
class FakeFinetuner final : public Finetuner {
 public:
  int64_t total_steps() const override { return 40; }
  std::string describe() const override { return "fake"; }
  Status run(ir::Model& model, const StepHook& after_step) override {
    std::mt19937 rng(5);
    std::normal_distribution<float> nd(0.f, 0.01f);
    std::vector<ir::Tensor> live;
    std::vector<WeightRef> refs;
    for (ir::Value& v : model.graph.values) {
      if (v.is_constant() && v.trainable && v.dtype == DType::kF32) {
        v.data = v.data.clone();
        refs.push_back({v.name, v.data.data<float>(), static_cast<size_t>(v.data.num_elements())});
      }
    }
    for (int64_t step = 0; step < total_steps(); ++step) {
      for (WeightRef& r : refs) {
        for (size_t i = 0; i < r.size; ++i) r.data[i] += nd(rng);
      }
      after_step(step, total_steps(), refs);
      sparsity_seen.push_back(0);
      int64_t z = 0, n = 0;
      for (WeightRef& r : refs) {
        if (r.name.find("weights") == std::string::npos) continue;
        for (size_t i = 0; i < r.size; ++i) z += r.data[i] == 0.f;
        n += static_cast<int64_t>(r.size);
      }
      sparsity_seen.back() = static_cast<double>(z) / static_cast<double>(n);
    }
    return Status::ok();
  }
  std::vector<double> sparsity_seen;
};

TEST(PruneMagnitude, FollowsTheScheduleThroughFinetuning) {
  ir::Model m = zoo_model("simple_cnn", 32, 3, 4, 1.f, /*prepared=*/false);
  FakeFinetuner ft;
  PruneOptions o;
  o.sparsity = 0.5f;
  SparsitySchedule sched;
  sched.end = 0;  // derived from the finetuner's steps
  auto masks = prune_magnitude_finetuned(m, o, sched, &ft);
  ASSERT_TRUE(masks.has_value()) << masks.status().to_string();
  ASSERT_EQ(ft.sparsity_seen.size(), 40u);
  // Rises monotonically (polynomial), then holds at the target while the weights keep moving.
  for (size_t i = 1; i < ft.sparsity_seen.size(); ++i) EXPECT_GE(ft.sparsity_seen[i] + 1e-9, ft.sparsity_seen[i - 1]) << i;
  EXPECT_LT(ft.sparsity_seen[0], 0.1);
  EXPECT_GT(ft.sparsity_seen.back(), 0.45);
  // Per output channel (the default scope), each row rounds on its own: within 1e-4 here.
  EXPECT_NEAR(weight_sparsity(m.graph, *masks), 0.5, 1e-4);
}

// The original with the pruned channels' consumer weights zeroed: what a structurally pruned
// model must compute.
ir::Model masked_original(const ir::Model& m, const std::map<std::string, std::vector<int64_t>>& kept) {
  ir::Model r = m;
  ir::Graph& g = r.graph;
  for (const auto& [conv, keep] : kept) {
    // Find consumers along the region: zero their input channels not kept (conv: axis 3,
    // dense after flatten: columns), transitively through channel-wise ops and depthwise convs.
    int p = -1;
    for (size_t i = 0; i < g.nodes.size(); ++i) {
      if (g.nodes[i].name == conv) p = static_cast<int>(i);
    }
    const int64_t channels = g.value(g.nodes[static_cast<size_t>(p)].inputs[1]).shape[0];
    std::set<int64_t> keep_set(keep.begin(), keep.end());
    std::vector<ir::ValueId> work{g.nodes[static_cast<size_t>(p)].outputs[0]};
    while (!work.empty()) {
      const ir::ValueId v = work.back();
      work.pop_back();
      for (ir::Node& n : g.nodes) {
        if (n.inputs.empty() || n.inputs[0] != v) continue;
        if (n.op == OpType::kConv2d && n.attr<ir::Conv2dAttrs>().groups == 1) {
          ir::Value& w = g.value(n.inputs[1]);
          ir::Tensor t = w.data.clone();
          for (int64_t i = 0; i < t.num_elements(); ++i) {
            if (!keep_set.count(i % channels)) t.data<float>()[i] = 0.f;
          }
          w.data = t;
        } else if (n.op == OpType::kFullyConnected || n.op == OpType::kFlatten || n.op == OpType::kMean) {
          // Dense after flatten / mean: column k reads channel k % channels.
          ir::Node* fc = &n;
          if (n.op != OpType::kFullyConnected) {
            for (ir::Node& c : g.nodes) {
              if (c.op == OpType::kFullyConnected && c.inputs[0] == n.outputs[0]) fc = &c;
            }
          }
          ir::Value& w = g.value(fc->inputs[1]);
          ir::Tensor t = w.data.clone();
          const int64_t cols = w.shape[1];
          for (int64_t i = 0; i < t.num_elements(); ++i) {
            if (!keep_set.count((i % cols) % channels)) t.data<float>()[i] = 0.f;
          }
          w.data = t;
        } else {
          work.push_back(n.outputs[0]);  // channel-wise (incl. depthwise): follow
        }
      }
    }
  }
  return r;
}

TEST(PruneStructured, SmallerModelEqualsMaskedOriginal) {
  struct Case {
    const char* arch;
    int size;
    float width;
    bool prepared;
  };
  for (const Case& c : {Case{"simple_cnn", 32, 1.f, true}, Case{"mobilenet_v2", 64, 0.35f, true},
                        Case{"mobilenet_v2", 64, 0.35f, false}}) {
    const ir::Model m = zoo_model(c.arch, c.size, 3, 6, c.width, c.prepared);
    ir::Model p = m;
    StructuredPruneOptions o;
    o.fraction = 0.5f;
    std::map<std::string, std::vector<int64_t>> kept;
    auto removed = prune_structured(p.graph, o, &kept);
    ASSERT_TRUE(removed.has_value()) << removed.status().to_string();
    EXPECT_GT(*removed, 0) << c.arch;
    EXPECT_TRUE(ir::verify(p.graph).is_ok());
    EXPECT_LT(p.graph.parameter_count(), m.graph.parameter_count() * 8 / 10) << c.arch;
    for (const auto& [conv, keep] : kept) {
      // MobileNetV2: never a conv whose output reaches a residual add (a block's project conv
      // when the block has one).
      const std::string block = conv.substr(0, conv.find('/'));
      if (conv.find("/project") != std::string::npos) {
        for (const ir::Node& n : m.graph.nodes) EXPECT_NE(n.name, block + "/add") << conv << " feeds an add";
      }
    }
    std::printf("%s (%s): %d channels removed from %zu convs, parameters %lld -> %lld\n", c.arch,
                c.prepared ? "prepared" : "with batch norm", *removed, kept.size(),
                static_cast<long long>(m.graph.parameter_count()), static_cast<long long>(p.graph.parameter_count()));
    const ir::Model ref = masked_original(m, kept);
    for (uint64_t s = 0; s < 3; ++s) {
      const ir::Tensor x = uniform_input(m.graph, s);
      const auto yp = run(p, x), yr = run(ref, x);
      EXPECT_LT(testing::max_abs_diff(yp, yr), 2e-5) << c.arch;
    }
  }
}

TEST(Palettize, AtMostTwoToTheBitsValuesPerTensor) {
  double last_err = INFINITY;
  for (int bits : {2, 4, 6}) {
    ir::Model m = zoo_model("mobilenet_v2", 64, 3, 10, 0.35f);
    const ir::Model before = m;
    PalettizeOptions o;
    o.bits = bits;
    auto info = palettize(m.graph, o);
    ASSERT_TRUE(info.has_value());
    EXPECT_FALSE(info->empty());
    for (const WeightUse& u : find_weights(m.graph, {})) {
      const ir::Value& w = m.graph.value(u.weight);
      std::set<float> distinct(w.data.data<float>(), w.data.data<float>() + w.data.num_elements());
      EXPECT_LE(distinct.size(), size_t{1} << bits) << w.name;
      const PaletteEntry& e = info->at(w.name);
      EXPECT_EQ(std::set<float>(e.lut.begin(), e.lut.end()), distinct) << w.name;
    }
    // k-means: the weight error shrinks as the palette grows.
    double err = 0;
    for (const WeightUse& u : find_weights(m.graph, {})) {
      const ir::Value& w = m.graph.value(u.weight);
      const ir::Value& w0 = before.graph.value(before.graph.find_value(w.name));
      for (int64_t i = 0; i < w.data.num_elements(); ++i) {
        const double d = w.data.data<float>()[i] - w0.data.data<float>()[i];
        err += d * d;
      }
    }
    EXPECT_LT(err, last_err) << bits;
    last_err = err;
    const ir::Tensor x = uniform_input(m.graph, 1);
    std::printf("palettize %d bits: weight squared error %.4g, max |diff| of probabilities %.5f\n", bits, err,
                testing::max_abs_diff(run(m, x), run(before, x)));
  }
}

TEST(Palettize, KMeansFindsKnownClusters) {
  std::vector<float> v;
  std::mt19937 rng(1);
  std::normal_distribution<float> nd(0.f, 0.01f);
  for (float c : {-1.f, 0.f, 0.5f, 2.f}) {
    for (int i = 0; i < 500; ++i) v.push_back(c + nd(rng));
  }
  std::vector<uint16_t> a;
  const auto lut = kmeans_1d(v.data(), v.size(), 4, 100, &a);
  ASSERT_EQ(lut.size(), 4u);
  EXPECT_NEAR(lut[0], -1.f, 0.01f);
  EXPECT_NEAR(lut[1], 0.f, 0.01f);
  EXPECT_NEAR(lut[2], 0.5f, 0.01f);
  EXPECT_NEAR(lut[3], 2.f, 0.01f);
  for (size_t i = 0; i < v.size(); ++i) EXPECT_EQ(a[i], i / 500);
  // Fewer distinct values than clusters: kept exactly.
  const std::vector<float> few = {3.f, 1.f, 3.f, 2.f};
  EXPECT_EQ(kmeans_1d(few.data(), few.size(), 8, 10, nullptr), (std::vector<float>{1.f, 2.f, 3.f}));
}

}  // namespace
}  // namespace pcv::optimize
