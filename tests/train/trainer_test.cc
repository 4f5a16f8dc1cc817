// Optimizers and schedules against hand-computed values, batch-norm running statistics,
// a small model learning a synthetic task, the trainer on a Fashion-MNIST subset (learning,
// determinism across thread counts, resume == uninterrupted, trace files), and transfer
// learning's head replacement and dequantization.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "base/thread_pool.h"
#include "data/rng.h"
#include "formats/model_io.h"
#include "ir/pcv_format.h"
#include "support/paths.h"
#include "train/loss.h"
#include "train/optimizer.h"
#include "train/program.h"
#include "train/trainer.h"
#include "train/transfer.h"
#include "zoo/zoo.h"

namespace pcv::train {
namespace {

using namespace pcv::ir;

Parameter make_param(std::vector<float>& w, std::vector<float>& g, bool decay) {
  Parameter p;
  p.name = "w";
  p.data = w.data();
  p.grad = g.data();
  p.size = w.size();
  p.decay = decay;
  return p;
}

TEST(Optimizer, SgdMomentumHandValues) {
  std::vector<float> w{1.f}, g{0.5f};
  std::vector<Parameter> ps{make_param(w, g, false)};
  OptimizerOptions o;
  o.momentum = 0.9f;
  Optimizer opt(o, ps);
  opt.step(ps, 0.1f);  // v = 0.5, w = 1 - 0.05
  EXPECT_FLOAT_EQ(w[0], 0.95f);
  opt.step(ps, 0.1f);  // v = 0.9 * 0.5 + 0.5 = 0.95, w = 0.95 - 0.095
  EXPECT_FLOAT_EQ(w[0], 0.855f);
  // Nesterov + weight decay: g' = 0.5 + 0.1 * 1 = 0.6, v = 0.6, w -= 0.1 * (0.6 + 0.9 * 0.6)
  std::vector<float> w2{1.f}, g2{0.5f};
  std::vector<Parameter> ps2{make_param(w2, g2, true)};
  o.nesterov = true;
  o.weight_decay = 0.1f;
  Optimizer opt2(o, ps2);
  opt2.step(ps2, 0.1f);
  EXPECT_FLOAT_EQ(w2[0], 1.f - 0.1f * (0.6f + 0.9f * 0.6f));
}

TEST(Optimizer, AdamAndAdamWHandValues) {
  // First Adam step: m = 0.05, v = 0.00025, mhat = 0.5, vhat = 0.25: w -= lr * 0.5 / 0.5.
  std::vector<float> w{1.f}, g{0.5f};
  std::vector<Parameter> ps{make_param(w, g, true)};
  OptimizerOptions o;
  o.kind = OptimizerKind::kAdam;
  Optimizer adam(o, ps);
  adam.step(ps, 0.1f);
  EXPECT_NEAR(w[0], 0.9f, 1e-6);
  // Second step, same gradient: m = 0.095, v = 0.00049975; mhat = 0.5, vhat = 0.25 again.
  adam.step(ps, 0.1f);
  EXPECT_NEAR(w[0], 0.8f, 1e-6);
  // AdamW: decoupled decay first: w = 1 - 0.1 * 0.1 * 1 = 0.99, then the Adam step -0.1.
  std::vector<float> w2{1.f}, g2{0.5f};
  std::vector<Parameter> ps2{make_param(w2, g2, true)};
  o.kind = OptimizerKind::kAdamW;
  o.weight_decay = 0.1f;
  Optimizer adamw(o, ps2);
  adamw.step(ps2, 0.1f);
  EXPECT_NEAR(w2[0], 0.89f, 1e-6);
  // State round trip.
  const auto state = adamw.save_state();
  Optimizer again(o, ps2);
  ASSERT_TRUE(again.load_state(state).is_ok());
  EXPECT_EQ(again.steps(), 1);
  Optimizer sgd(OptimizerOptions{}, ps2);
  EXPECT_FALSE(sgd.load_state(state).is_ok());
}

TEST(Schedule, WarmupCosineStep) {
  Schedule s;
  s.kind = ScheduleKind::kCosine;
  s.base_lr = 1.f;
  s.warmup_steps = 4;
  s.total_steps = 14;
  EXPECT_FLOAT_EQ(s.lr_at(0), 0.25f);
  EXPECT_FLOAT_EQ(s.lr_at(3), 1.f);
  EXPECT_FLOAT_EQ(s.lr_at(4), 1.f);
  EXPECT_NEAR(s.lr_at(9), 0.5f, 1e-6);  // halfway through the cosine
  EXPECT_NEAR(s.lr_at(14), 0.f, 1e-6);
  s.kind = ScheduleKind::kStep;
  s.warmup_steps = 0;
  s.step_size = 5;
  s.gamma = 0.1f;
  EXPECT_FLOAT_EQ(s.lr_at(4), 1.f);
  EXPECT_NEAR(s.lr_at(5), 0.1f, 1e-7);
  EXPECT_NEAR(s.lr_at(12), 0.01f, 1e-8);
}

TEST(BatchNorm, RunningStatisticsHandValues) {
  // One channel, two samples 1 and 3: batch mean 2, biased var 1, unbiased var 2.
  Model m;
  ValueId x = m.graph.add_input("x", DType::kF32, {2, 1, 1, 1});
  auto c = [&](const char* n, float v, bool tr) {
    return m.graph.add_constant(n, Tensor::from_vector<float>({1}, {v}), {}, tr);
  };
  BatchNormAttrs a;
  a.momentum = 0.9f;
  a.epsilon = 0.f;
  ValueId y = m.graph.add_node(OpType::kBatchNorm, "bn", {x, c("g", 1.f, true), c("b", 0.f, true), c("mean", 0.f, false),
                                                          c("var", 1.f, false)}, a);
  m.graph.mark_output(y);
  ASSERT_TRUE(infer_shapes(m.graph).is_ok());
  ProgramOptions po;
  po.batch = 2;
  po.loss_head = false;
  auto p = Program::create(m, po, nullptr);
  ASSERT_TRUE(p.has_value()) << p.status().to_string();
  (*p)->input()[0] = 1.f;
  (*p)->input()[1] = 3.f;
  (*p)->forward(Mode::kTrain, 2);
  EXPECT_FLOAT_EQ((*p)->output(0)[0], -1.f);  // (1 - 2) / sqrt(1)
  EXPECT_FLOAT_EQ((*p)->output(0)[1], 1.f);
  ASSERT_TRUE((*p)->export_weights(&m).is_ok());
  EXPECT_FLOAT_EQ(m.graph.value(m.graph.find_value("mean")).data.data<float>()[0], 0.2f);  // 0.9*0 + 0.1*2
  EXPECT_FLOAT_EQ(m.graph.value(m.graph.find_value("var")).data.data<float>()[0], 1.1f);   // 0.9*1 + 0.1*2
  // Eval mode uses the running statistics.
  (*p)->forward(Mode::kEval, 2);
  EXPECT_NEAR((*p)->output(0)[0], (1.f - 0.2f) / std::sqrt(1.1f), 1e-6);
}

// A synthetic task: 12x12 gray images, class 0 = bright left half, class 1 = bright right
// half, noise elsewhere. simple_cnn must separate them after 60 SGD steps.
TEST(Learning, SimpleCnnSeparatesSyntheticImages) {
  zoo::ZooOptions z;
  z.arch = "simple_cnn";
  z.size = 12;
  z.channels = 1;
  z.classes = 2;
  auto model = zoo::create_model(z);
  ASSERT_TRUE(model.has_value());
  ThreadPool pool(2);
  ProgramOptions po;
  po.batch = 16;
  auto prog = Program::create(*model, po, &pool);
  ASSERT_TRUE(prog.has_value()) << prog.status().to_string();
  Program& p = **prog;
  OptimizerOptions oo;
  Optimizer opt(oo, p.parameters());
  data::Rng rng(3);
  std::vector<int32_t> labels(16);
  auto fill = [&] {
    for (int i = 0; i < 16; ++i) {
      labels[static_cast<size_t>(i)] = static_cast<int32_t>(rng.below(2));
      for (int y = 0; y < 12; ++y) {
        for (int x = 0; x < 12; ++x) {
          const bool bright = (x < 6) == (labels[static_cast<size_t>(i)] == 0);
          p.input()[(i * 12 + y) * 12 + x] = (bright ? 0.6f : 0.f) + rng.uniform(0.f, 0.4f);
        }
      }
    }
  };
  for (int step = 0; step < 60; ++step) {
    fill();
    p.forward(Mode::kTrain, 16, static_cast<uint64_t>(step));
    softmax_cross_entropy(16, 2, p.output(0), labels.data(), 0.f, 1.f / 16, p.output_grad(0));
    p.backward();
    opt.step(p.parameters(), 0.05f);
  }
  int correct = 0;
  p.weights_changed();
  for (int round = 0; round < 4; ++round) {
    fill();
    p.forward(Mode::kEval, 16);
    correct += softmax_cross_entropy(16, 2, p.output(0), labels.data(), 0.f, 0.f, nullptr).correct;
  }
  EXPECT_GE(correct, 62) << "accuracy " << correct / 64.0 << " (bound: 0.96)";
}

// ---- the trainer on a Fashion-MNIST subset ----

bool have_fashion_mnist() {
  return std::filesystem::exists("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz");
}
#define REQUIRE_FASHION_MNIST() \
  if (!have_fashion_mnist()) GTEST_SKIP() << "needs /usr/share/datasets/fashion-mnist (dataset-fashion-mnist)"

TrainOptions small_run(const std::string& dir, const std::string& name) {
  TrainOptions o;
  o.limit = 2000;
  o.epochs = 2;
  o.batch = 32;
  o.threads = 2;
  o.seed = 7;
  o.test_limit = 1000;
  o.output_path = dir + "/" + name + ".pcv";
  return o;
}

void expect_same_weights(const Model& a, const Model& b) {
  ASSERT_EQ(a.graph.values.size(), b.graph.values.size());
  int compared = 0;
  for (size_t v = 0; v < a.graph.values.size(); ++v) {
    if (!a.graph.values[v].is_constant()) continue;
    EXPECT_TRUE(a.graph.values[v].data.equals(b.graph.values[v].data)) << a.graph.values[v].name;
    ++compared;
  }
  EXPECT_GT(compared, 4);
}

TEST(Trainer, LearnsFashionMnistSubsetAndWritesTrace) {
  REQUIRE_FASHION_MNIST();
  const std::string dir = pcv::testing::make_temp_dir("pcv_train");
  TrainOptions o = small_run(dir, "fm");
  int epochs_seen = 0;
  TrainCallbacks cb;
  cb.epoch = [&](const EpochMetrics&) { ++epochs_seen; };
  auto r = train(o, cb);
  ASSERT_TRUE(r.has_value()) << r.status().to_string();
  EXPECT_EQ(epochs_seen, 2);
  ASSERT_EQ(r->epochs.size(), 2u);
  EXPECT_EQ(r->train_samples + r->val_samples, 2000);
  // 1600 training images, 2 epochs: well above chance (0.1). Bound: 0.65.
  EXPECT_GT(r->epochs.back().val_accuracy, 0.65);
  EXPECT_GT(r->test_accuracy, 0.65);
  EXPECT_LT(r->epochs.back().loss, r->epochs.front().loss + 0.05);
  EXPECT_TRUE(std::filesystem::exists(o.output_path));
  EXPECT_TRUE(std::filesystem::exists(dir + "/fm.ckpt"));
  std::ifstream csv(dir + "/fm.trace.csv");
  std::string line;
  int lines = 0;
  while (std::getline(csv, line)) ++lines;
  EXPECT_EQ(lines, 3);  // header + 2 epochs
  std::ifstream js(dir + "/fm.trace.json");
  std::stringstream ss;
  ss << js.rdbuf();
  auto j = nlohmann::json::parse(ss.str());
  EXPECT_EQ(j["epochs"].size(), 2u);
  EXPECT_NEAR(j["test_accuracy"].get<double>(), r->test_accuracy, 1e-12);
  // The saved model is the best epoch's and loads in the runtime's formats.
  auto saved = formats::load_model(o.output_path);
  ASSERT_TRUE(saved.has_value());
  EXPECT_EQ(saved->input_spec.labels.size(), 10u);
}

TEST(Trainer, DeterministicAcrossThreadCounts) {
  REQUIRE_FASHION_MNIST();
  const std::string dir = pcv::testing::make_temp_dir("pcv_train_det");
  TrainOptions a = small_run(dir, "t1");
  a.limit = 600;
  a.test_limit = 100;
  a.epochs = 1;
  a.threads = 1;
  a.autotune_threads = false;
  TrainOptions b = a;
  b.threads = 2;
  b.output_path = dir + "/t2.pcv";
  auto ra = train(a);
  auto rb = train(b);
  ASSERT_TRUE(ra.has_value() && rb.has_value());
  expect_same_weights(ra->final_model, rb->final_model);
  EXPECT_EQ(ra->epochs[0].loss, rb->epochs[0].loss);
}

TEST(Trainer, ResumeEqualsUninterrupted) {
  REQUIRE_FASHION_MNIST();
  const std::string dir = pcv::testing::make_temp_dir("pcv_train_resume");
  TrainOptions full = small_run(dir, "full");
  full.limit = 600;
  full.test_limit = 100;
  auto rf = train(full);
  ASSERT_TRUE(rf.has_value()) << rf.status().to_string();
  // The same run interrupted after epoch 1, then resumed from its checkpoint.
  TrainOptions first = full;
  first.output_path = dir + "/part.pcv";
  first.stop_after_epochs = 1;
  auto r1 = train(first);
  ASSERT_TRUE(r1.has_value()) << r1.status().to_string();
  ASSERT_EQ(r1->epochs.size(), 1u);
  TrainOptions second = full;
  second.output_path = dir + "/part.pcv";
  second.resume_path = dir + "/part.ckpt";
  auto r2 = train(second);
  ASSERT_TRUE(r2.has_value()) << r2.status().to_string();
  ASSERT_EQ(r2->epochs.size(), 2u);
  expect_same_weights(rf->final_model, r2->final_model);
  EXPECT_EQ(rf->epochs[1].loss, r2->epochs[1].loss);
  EXPECT_EQ(rf->epochs[1].val_accuracy, r2->epochs[1].val_accuracy);
}

TEST(Trainer, RejectsAbsurdOptions) {
  TrainOptions o;
  o.epochs = -1;
  EXPECT_EQ(validate(o).code(), StatusCode::kInvalidArgument);
  o = {};
  o.batch = 0;
  EXPECT_EQ(validate(o).code(), StatusCode::kInvalidArgument);
  o = {};
  o.val_split = 1.0;
  EXPECT_EQ(validate(o).code(), StatusCode::kInvalidArgument);
  o = {};
  o.threads = 65;
  EXPECT_EQ(validate(o).code(), StatusCode::kInvalidArgument);
  o = {};
  o.optimizer = "rmsprop";
  EXPECT_EQ(validate(o).code(), StatusCode::kInvalidArgument);
  o = {};
  o.freeze_backbone = true;
  EXPECT_EQ(validate(o).code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(validate(TrainOptions{}).is_ok());
}

// ---- transfer learning ----

TEST(Transfer, ReplaceHeadOfMobileNet) {
  zoo::ZooOptions z;
  z.arch = "mobilenet_v2";
  z.size = 32;
  z.width = 0.35f;
  z.classes = 1000;
  auto src = zoo::create_model(z);
  ASSERT_TRUE(src.has_value());
  auto r = replace_head(*src, {"cat", "dog", "fox"}, 5);
  ASSERT_TRUE(r.has_value()) << r.status().to_string();
  EXPECT_EQ(r->feature_name, "global_pool");
  EXPECT_EQ(r->feature_channels, 1280);
  EXPECT_EQ(r->removed_nodes, 2);  // old logits + softmax
  const Graph& g = r->model.graph;
  const Node& last = g.nodes.back();
  EXPECT_EQ(last.op, OpType::kSoftmax);
  const Node& fc = g.nodes[g.nodes.size() - 2];
  EXPECT_EQ(fc.op, OpType::kFullyConnected);
  EXPECT_EQ(g.value(fc.inputs[1]).shape, (Shape{3, 1280}));
  EXPECT_TRUE(is_head_parameter(g.value(fc.inputs[1]).name));
  EXPECT_TRUE(g.value(fc.inputs[1]).trainable);
  EXPECT_EQ(g.value(g.outputs[0]).shape, (Shape{1, 3}));
  EXPECT_EQ(r->model.input_spec.labels, (std::vector<std::string>{"cat", "dog", "fox"}));
  EXPECT_EQ(r->model.input_spec.mean, src->input_spec.mean);
  EXPECT_EQ(r->backbone.graph.value(r->backbone.graph.outputs[0]).shape, (Shape{1, 1280}));
  EXPECT_TRUE(verify(g).is_ok());
  // The backbone computes exactly the source's features: a Program runs both.
  ProgramOptions po;
  po.batch = 1;
  EXPECT_TRUE(Program::create(r->model, po, nullptr).has_value());
}

TEST(Transfer, DequantizeQuantizedGraph) {
  // x (u8, s=0.5, zp=10) -> conv 1x1 (u8 weights per channel, i32 bias) -> y (u8) -> dequantize
  Model m;
  Graph& g = m.graph;
  ValueId x = g.add_input("x", DType::kU8, {1, 2, 2, 1}, QuantParams::per_tensor(0.5f, 10));
  QuantParams wq;
  wq.scale = {0.1f, 0.2f};
  wq.zero_point = {128, 100};
  wq.axis = 0;
  ValueId w = g.add_constant("w", Tensor::from_vector<uint8_t>({2, 1, 1, 1}, {138, 90}), wq);
  QuantParams bq;
  bq.scale = {0.05f, 0.1f};
  bq.zero_point = {0, 0};
  ValueId b = g.add_constant("b", Tensor::from_vector<int32_t>({2}, {20, -10}), bq);
  ValueId y = g.add_node(OpType::kConv2d, "conv", {x, w, b}, Conv2dAttrs{}, DType::kU8);
  g.value(y).quant = QuantParams::per_tensor(0.25f, 0);
  ValueId z = g.add_node(OpType::kDequantize, "deq", {y});
  g.mark_output(z);
  ASSERT_TRUE(infer_shapes(g).is_ok());
  ASSERT_TRUE(dequantize_model(&m).is_ok());
  EXPECT_EQ(g.nodes.size(), 1u);
  EXPECT_EQ(g.outputs[0], y);
  const float* wf = g.value(w).data.data<float>();
  EXPECT_FLOAT_EQ(wf[0], 0.1f * (138 - 128));
  EXPECT_FLOAT_EQ(wf[1], 0.2f * (90 - 100));
  const float* bf = g.value(b).data.data<float>();
  EXPECT_FLOAT_EQ(bf[0], 0.05f * 20);
  EXPECT_FLOAT_EQ(bf[1], 0.1f * -10);
  EXPECT_EQ(g.value(x).dtype, DType::kF32);
  EXPECT_TRUE(g.value(x).quant.empty());
  ProgramOptions po;
  po.batch = 2;
  EXPECT_TRUE(Program::create(m, po, nullptr).has_value());
}

TEST(Trainer, FrozenBackboneWithCachedFeaturesThenFineTune) {
  REQUIRE_FASHION_MNIST();
  const std::string dir = pcv::testing::make_temp_dir("pcv_train_transfer");
  // A "pretrained" model: a quick Fashion-MNIST run.
  TrainOptions pre = small_run(dir, "pre");
  pre.epochs = 1;
  auto rp = train(pre);
  ASSERT_TRUE(rp.has_value()) << rp.status().to_string();
  TrainOptions t = small_run(dir, "transfer");
  t.init_model = pre.output_path;
  t.freeze_backbone = true;
  t.epochs = 3;
  t.fine_tune_epochs = 1;
  t.seed = 8;  // another split than the pretraining run's
  auto r = train(t);
  ASSERT_TRUE(r.has_value()) << r.status().to_string();
  ASSERT_EQ(r->epochs.size(), 4u);
  EXPECT_EQ(r->epochs[0].phase, "head");
  EXPECT_EQ(r->epochs[3].phase, "fine-tune");
  EXPECT_GT(r->feature_cache_seconds, 0);
  // Head-only training froze the backbone: its weights equal the pretrained model's after
  // the head phase; the features were informative.
  EXPECT_GT(r->epochs[2].val_accuracy, 0.6);
  EXPECT_LT(r->epochs[3].lr, r->epochs[0].lr);
}

}  // namespace
}  // namespace pcv::train
