// TFLite files against runtimes: our runtime before/after passes and round trips, the real
// coral MobileNets, and the official runtimes (LiteRT.js, tfjs-tflite) through the oracle.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>

#include "base/file.h"
#include "formats/tflite/tflite.h"
#include "formats/tflite/tflite_schema_generated.h"
#include "formats/tflite/tflite_test_util.h"
#include "ir/passes/passes.h"
#include "support/oracle.h"
#include "support/paths.h"
#include "zoo/zoo.h"

#ifdef PCV_HAVE_RUNTIME
#include "runtime/session.h"
#endif

namespace pcv::tflite {
namespace {

using namespace pcv::tflite::testing;
using ir::DType;
using ir::OpType;

ir::Model zoo_model(const std::string& arch, int size, float width = 1.0f) {
  auto m = zoo::create_model({.arch = arch, .size = size, .classes = 5, .width = width, .seed = 7});
  EXPECT_TRUE(m) << m.status().to_string();
  return std::move(m).value();
}

// Makes batch-norm statistics non-trivial so that folding is really exercised.
void randomize_batch_norms(ir::Model& m) {
  std::mt19937_64 rng(3);
  std::uniform_real_distribution<float> d(0.5f, 1.5f), c(-0.2f, 0.2f);
  for (const auto& n : m.graph.nodes) {
    if (n.op != OpType::kBatchNorm) continue;
    for (size_t i = 1; i < 5; ++i) {
      ir::Value& v = m.graph.value(n.inputs[i]);
      ir::Tensor t(DType::kF32, v.shape);
      for (int64_t k = 0; k < t.num_elements(); ++k) t.data<float>()[k] = (i == 1 || i == 4) ? d(rng) : c(rng);
      v.data = t;
    }
  }
}

std::vector<uint8_t> tensor_bytes(const ir::Tensor& t) { return {t.bytes().begin(), t.bytes().end()}; }

// max |a - b| / (max |b| + tiny) over f32 tensors.
double max_rel_diff(const ir::Tensor& a, const ir::Tensor& b) {
  double num = 0, den = 1e-30;
  for (int64_t i = 0; i < b.num_elements(); ++i) {
    num = std::max(num, static_cast<double>(std::fabs(a.data<float>()[i] - b.data<float>()[i])));
    den = std::max(den, static_cast<double>(std::fabs(b.data<float>()[i])));
  }
  return num / den;
}

template <class T>
int argmax(const T* p, int64_t n) {
  return static_cast<int>(std::max_element(p, p + n) - p);
}

#ifdef PCV_HAVE_RUNTIME

std::vector<ir::Tensor> run(const ir::Model& m, const std::vector<ir::Tensor>& inputs) {
  auto out = runtime::run_model(m, inputs);
  EXPECT_TRUE(out) << out.status().to_string();
  return out ? std::move(out).value() : std::vector<ir::Tensor>{};
}

class ZooModels : public ::testing::TestWithParam<std::tuple<std::string, int, float>> {};

TEST_P(ZooModels, PassesKeepOutputs) {
  auto [arch, size, width] = GetParam();
  ir::Model m = zoo_model(arch, size, width);
  randomize_batch_norms(m);
  ir::Model p = m;
  auto folds = ir::fold_batch_norm(p.graph);
  auto ids = ir::remove_identity(p.graph);
  auto fused = ir::fuse_activations(p.graph);
  auto pruned = ir::prune_unused(p.graph);
  ASSERT_TRUE(folds && ids && fused && pruned);
  ASSERT_TRUE(ir::verify(p.graph).is_ok()) << ir::verify(p.graph).to_string();
  EXPECT_LT(p.graph.nodes.size(), m.graph.nodes.size());
  for (uint64_t seed = 1; seed <= 3; ++seed) {
    auto in = random_input(m.graph.value(m.graph.inputs[0]), seed);
    auto a = run(m, {in});
    auto b = run(p, {in});
    ASSERT_EQ(a.size(), 1u);
    ASSERT_EQ(b.size(), 1u);
    EXPECT_LE(max_rel_diff(b[0], a[0]), 1e-5) << arch;
  }
}

TEST_P(ZooModels, RoundTripKeepsOutputs) {
  auto [arch, size, width] = GetParam();
  ir::Model m = zoo_model(arch, size, width);
  randomize_batch_norms(m);
  auto bytes = write_tflite(m);
  ASSERT_TRUE(bytes) << bytes.status().to_string();
  auto back = read_tflite(*bytes, "rt.tflite");
  ASSERT_TRUE(back) << back.status().to_string();
  auto in = random_input(m.graph.value(m.graph.inputs[0]), 11);
  auto a = run(m, {in});
  auto b = run(*back, {in});
  ASSERT_EQ(b.size(), 1u);
  EXPECT_LE(max_rel_diff(b[0], a[0]), 1e-5);
  // fp16 weights: close, not equal.
  TfliteWriteOptions o;
  o.float16_weights = true;
  auto half = write_tflite(m, o);
  ASSERT_TRUE(half);
  auto hb = read_tflite(*half, "fp16.tflite");
  ASSERT_TRUE(hb) << hb.status().to_string();
  auto c = run(*hb, {in});
  ASSERT_EQ(c.size(), 1u);
  EXPECT_LE(max_rel_diff(c[0], a[0]), 2e-2);
}

INSTANTIATE_TEST_SUITE_P(Zoo, ZooModels,
                         ::testing::Values(std::make_tuple("simple_cnn", 32, 1.0f),
                                           std::make_tuple("mobilenet_v2", 64, 0.35f)));

#endif  // PCV_HAVE_RUNTIME

// ---------------------------------------------------------------- real models nobody here made

struct CoralModel {
  const char* file;
  int size;        // input H = W (0: not an image)
  int classes;     // last dim of output 0
  bool labels;     // metadata + labels zip
};
const CoralModel kCoral[] = {
    {"mobilenet_v1_0.25_128_quant.tflite", 128, 1001, true},
    {"mobilenet_v1_0.5_160_quant.tflite", 160, 1001, true},
    {"mobilenet_v2_1.0_224_quant.tflite", 224, 1001, true},
    {"mobilenet_v1_1.0_224_quant_embedding_extractor.tflite", 224, 1024, false},
    {"mobilenet_quant_v1_224_head_layers.tflite", 0, 1001, false},
};

class Coral : public ::testing::TestWithParam<CoralModel> {};

class CoralRewritten : public ::testing::TestWithParam<CoralModel> {
 protected:
  void SetUp() override {
    if (auto why = pcv::testing::oracle_unavailable_reason(); !why.empty()) GTEST_SKIP() << why;
  }
};

std::string coral_test_name(const ::testing::TestParamInfo<CoralModel>& info) {
  std::string s = info.param.file;
  s = s.substr(0, s.find(".tflite"));
  for (char& ch : s) {
    if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
  }
  return s;
}

std::map<OpType, int> census(const ir::Graph& g) {
  std::map<OpType, int> c;
  for (const auto& n : g.nodes) c[n.op]++;
  return c;
}

// A deterministic, image-like input: smooth color gradients plus noise.
ir::Tensor image_like_u8(const ir::Value& input, uint64_t seed) {
  ir::Tensor t(DType::kU8, input.shape);
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int> noise(-20, 20);
  const int64_t h = input.shape[1], w = input.shape[2], c = input.shape[3];
  for (int64_t y = 0; y < h; ++y) {
    for (int64_t x = 0; x < w; ++x) {
      for (int64_t k = 0; k < c; ++k) {
        const int base = static_cast<int>((k == 0 ? x * 255 / w : k == 1 ? y * 255 / h : (x + y) * 127 / (w + h)));
        t.data<uint8_t>()[(y * w + x) * c + k] = static_cast<uint8_t>(std::clamp(base + noise(rng), 0, 255));
      }
    }
  }
  return t;
}

TEST_P(Coral, Imports) {
  const CoralModel& cm = GetParam();
  PCV_REQUIRE_SHARED_DATA(path, std::string("pretrained/mobilenet-tflite-coral/") + cm.file);
  auto m = load_tflite(path);
  ASSERT_TRUE(m) << m.status().to_string();
  const ir::Graph& g = m->graph;
  EXPECT_TRUE(ir::verify(g).is_ok()) << ir::verify(g).to_string();
  ir::Graph copy = g;
  EXPECT_TRUE(ir::infer_shapes(copy).is_ok());
  // uint8 at the edges, int8 inside.
  EXPECT_EQ(g.value(g.inputs[0]).dtype, DType::kU8);
  EXPECT_EQ(g.value(g.outputs[0]).dtype, DType::kU8);
  EXPECT_EQ(g.value(g.outputs[0]).shape.back(), cm.classes);
  auto c = census(g);
  EXPECT_EQ(c[OpType::kQuantize], 2);
  if (cm.size > 0) {
    EXPECT_GE(c[OpType::kConv2d], 14);  // v1: 1 + 13 x (dw + pw) [+ 1x1 classifier conv]
    EXPECT_EQ(c[OpType::kAveragePool], 1);
    EXPECT_EQ(m->input_spec.height, cm.size);
    EXPECT_EQ(m->input_spec.width, cm.size);
    // (q - 128) / 128: from the metadata or from the input quantization.
    EXPECT_NEAR(m->input_spec.mean[0], 127.5f, 0.6f);
    EXPECT_NEAR(m->input_spec.std[0], 127.5f, 0.6f);
  }
  if (std::string(cm.file).find("v2") != std::string::npos) {
    EXPECT_EQ(c[OpType::kAdd], 10);
  }
  if (cm.labels) {
    ASSERT_EQ(m->input_spec.labels.size(), 1001u);
    EXPECT_EQ(m->input_spec.labels[0], "background");
    EXPECT_EQ(m->input_spec.labels[286], "Egyptian cat");
  }
  for (const auto& n : g.nodes) {
    if (n.op == OpType::kConv2d) {
      EXPECT_EQ(g.value(n.inputs[1]).dtype, DType::kI8) << n.name;
    }
  }
  std::printf("%s: %zu nodes, %lld parameters\n", cm.file, g.nodes.size(), static_cast<long long>(g.parameter_count()));
}

#ifdef PCV_HAVE_RUNTIME
TEST_P(Coral, RunsWithLiteRtTop1) {
  const CoralModel& cm = GetParam();
  PCV_REQUIRE_SHARED_DATA(path, std::string("pretrained/mobilenet-tflite-coral/") + cm.file);
  auto m = load_tflite(path);
  ASSERT_TRUE(m) << m.status().to_string();
  const ir::Value& in = m->graph.value(m->graph.inputs[0]);
  const ir::Tensor x = cm.size > 0 ? image_like_u8(in, 5) : random_input(in, 5);
  auto ours = runtime::run_model(*m, {x});
  if (!ours && ours.status().code() == StatusCode::kUnsupported) GTEST_SKIP() << "runtime: " << ours.status().message();
  ASSERT_TRUE(ours) << ours.status().to_string();
  const ir::Tensor& y = (*ours)[0];
  if (auto why = pcv::testing::oracle_unavailable_reason(); !why.empty()) GTEST_SKIP() << why;
  std::vector<pcv::testing::OracleTensor> outs;
  std::string error;
  ASSERT_TRUE(pcv::testing::run_tflite_oracle(path, "litert", {tensor_bytes(x)}, &outs, &error)) << error;
  ASSERT_EQ(outs.size(), 1u);
  ASSERT_EQ(outs[0].bytes.size(), y.size_bytes());
  const int64_t n = y.num_elements();
  int max_step = 0;
  for (int64_t i = 0; i < n; ++i) max_step = std::max(max_step, std::abs(int{outs[0].bytes[static_cast<size_t>(i)]} - int{y.data<uint8_t>()[i]}));
  EXPECT_EQ(argmax(outs[0].bytes.data(), n), argmax(y.data<uint8_t>(), n)) << cm.file;
  EXPECT_LE(max_step, 1) << cm.file;
  std::printf("%s: top-1 %d (LiteRT %d), max diff %d steps\n", cm.file, argmax(y.data<uint8_t>(), n),
              argmax(outs[0].bytes.data(), n), max_step);
}
#endif

INSTANTIATE_TEST_SUITE_P(Pretrained, Coral, ::testing::ValuesIn(kCoral), coral_test_name);

// ---------------------------------------------------------------- official runtimes

#ifdef PCV_HAVE_RUNTIME
// Writes `m`, runs it in `runtime` and in ours on `inputs`; float outputs within 1e-5 relative,
// quantized within one step.
void expect_oracle_matches(const ir::Model& m, const TfliteWriteOptions& o, const std::string& runtime_name,
                           double float_tol = 1e-5) {
  auto bytes = write_tflite(m, o);
  ASSERT_TRUE(bytes) << bytes.status().to_string();
  const std::string dir = pcv::testing::make_temp_dir("tflite_oracle");
  const std::string path = dir + "/model.tflite";
  ASSERT_TRUE(write_file_atomic(path, *bytes).is_ok());
  std::vector<ir::Tensor> inputs;
  std::vector<std::vector<uint8_t>> raw;
  for (size_t i = 0; i < m.graph.inputs.size(); ++i) {
    inputs.push_back(random_input(m.graph.value(m.graph.inputs[i]), 100 + i));
    raw.push_back(tensor_bytes(inputs.back()));
  }
  // Our runtime on what the file says (read back), to check the file, not just the IR.
  auto back = read_tflite(*bytes, path);
  ASSERT_TRUE(back) << back.status().to_string();
  auto ours = runtime::run_model(*back, inputs);
  ASSERT_TRUE(ours) << ours.status().to_string();
  std::vector<pcv::testing::OracleTensor> outs;
  std::string error;
  ASSERT_TRUE(pcv::testing::run_tflite_oracle(path, runtime_name, raw, &outs, &error)) << runtime_name << ": " << error;
  ASSERT_EQ(outs.size(), ours->size());
  for (size_t k = 0; k < outs.size(); ++k) {
    const ir::Tensor& y = (*ours)[k];
    ASSERT_EQ(outs[k].bytes.size(), y.size_bytes()) << runtime_name;
    if (y.dtype() == DType::kF32) {
      ir::Tensor theirs = ir::Tensor::from_bytes(DType::kF32, y.shape(), outs[k].bytes);
      EXPECT_LE(max_rel_diff(y, theirs), float_tol) << runtime_name << " output " << k;
    } else {
      int worst = 0;
      for (size_t i = 0; i < outs[k].bytes.size(); ++i) {
        const int a = y.dtype() == DType::kI8 ? int{static_cast<int8_t>(y.bytes()[i])} : int{y.bytes()[i]};
        const int b = y.dtype() == DType::kI8 ? int{static_cast<int8_t>(outs[k].bytes[i])} : int{outs[k].bytes[i]};
        worst = std::max(worst, std::abs(a - b));
      }
      EXPECT_LE(worst, 1) << runtime_name << " output " << k;
    }
  }
  remove_tree(dir);
}

class Oracle : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (auto why = pcv::testing::oracle_unavailable_reason(); !why.empty()) GTEST_SKIP() << why;
  }
};

TEST_P(Oracle, SimpleCnnFloat) {
  ir::Model m = zoo_model("simple_cnn", 32);
  expect_oracle_matches(m, {}, GetParam());
}

TEST_P(Oracle, MobileNetV2Float) {
  ir::Model m = zoo_model("mobilenet_v2", 64, 0.35f);
  randomize_batch_norms(m);
  expect_oracle_matches(m, {}, GetParam());
}

TEST_P(Oracle, MobileNetV2Float16Weights) {
  ir::Model m = zoo_model("mobilenet_v2", 64, 0.35f);
  randomize_batch_norms(m);
  TfliteWriteOptions o;
  o.float16_weights = true;
  expect_oracle_matches(m, o, GetParam());
}

TEST_P(Oracle, UnfoldedBatchNormAndOtherOps) {
  // Ops the zoo doesn't use: standalone batch norm (MUL + ADD), pad, leaky relu, hard swish,
  // sigmoid, concat, average pool, mul.
  ir::Model m;
  ir::Graph& g = m.graph;
  std::mt19937_64 rng(9);
  std::uniform_real_distribution<float> d(-0.5f, 0.5f), pos(0.5f, 1.5f);
  auto constant = [&](const std::string& name, ir::Shape s, bool positive = false) {
    ir::Tensor t(DType::kF32, s);
    for (int64_t i = 0; i < t.num_elements(); ++i) t.data<float>()[i] = positive ? pos(rng) : d(rng);
    return g.add_constant(name, t);
  };
  auto x = g.add_input("x", DType::kF32, {1, 8, 8, 4});
  auto bn = g.add_node(OpType::kBatchNorm, "bn", {x, constant("g", {4}, true), constant("b", {4}), constant("m", {4}),
                                                  constant("v", {4}, true)});
  ir::PadAttrs pa;
  pa.pads = {0, 0, 1, 1, 2, 0, 0, 0};
  auto p = g.add_node(OpType::kPad, "pad", {bn}, pa);
  ir::Conv2dAttrs ca;
  ca.padding = ir::Padding::kExplicit;
  ca.pad_top = 1, ca.pad_bottom = 0, ca.pad_left = 0, ca.pad_right = 1;
  ca.stride_h = ca.stride_w = 2;
  auto c = g.add_node(OpType::kConv2d, "conv", {p, constant("w", {6, 3, 3, 4}), constant("cb", {6})}, ca);
  ir::LeakyReluAttrs la;
  la.alpha = 0.1f;
  auto l = g.add_node(OpType::kLeakyRelu, "leaky", {c}, la);
  auto h = g.add_node(OpType::kHardSwish, "hswish", {c});
  auto s = g.add_node(OpType::kSigmoid, "sigmoid", {c});
  auto mu = g.add_node(OpType::kMul, "mul", {h, s}, ir::EltwiseAttrs{});
  ir::ConcatAttrs cc;
  cc.axis = -1;
  auto cat = g.add_node(OpType::kConcat, "concat", {l, mu}, cc);
  ir::Pool2dAttrs pool;
  pool.kernel_h = pool.kernel_w = 3;
  pool.stride_h = pool.stride_w = 1;
  pool.padding = ir::Padding::kSame;
  auto ap = g.add_node(OpType::kAveragePool, "avgpool", {cat}, pool);
  ir::Conv2dAttrs dw;
  dw.groups = 12;
  dw.dilation_h = dw.dilation_w = 2;
  auto dwc = g.add_node(OpType::kConv2d, "dw", {ap, constant("dww", {24, 3, 3, 1}), constant("dwb", {24})}, dw);
  ir::MeanAttrs mean;
  mean.keep_dims = true;
  auto mn = g.add_node(OpType::kMean, "mean", {dwc}, mean);
  auto fl = g.add_node(OpType::kFlatten, "flat", {mn});
  ir::SoftmaxAttrs sm;
  sm.beta = 0.5f;
  auto out = g.add_node(OpType::kSoftmax, "softmax", {fl}, sm);
  g.mark_output(out);
  ASSERT_TRUE(ir::infer_shapes(g).is_ok()) << ir::infer_shapes(g).to_string();
  expect_oracle_matches(m, {}, GetParam());
}

TEST_P(CoralRewritten, SameOutputsInOfficialRuntime) {
  // A real uint8 model read into the int8 IR and written back must compute what the original
  // computes, in the official runtime (independent of our runtime's int8 support).
  PCV_REQUIRE_SHARED_DATA(path, std::string("pretrained/mobilenet-tflite-coral/") + GetParam().file);
  auto m = load_tflite(path);
  ASSERT_TRUE(m) << m.status().to_string();
  auto bytes = write_tflite(*m);
  ASSERT_TRUE(bytes) << bytes.status().to_string();
  const std::string dir = pcv::testing::make_temp_dir("tflite_coral");
  const std::string out_path = dir + "/rewritten.tflite";
  ASSERT_TRUE(write_file_atomic(out_path, *bytes).is_ok());
  {
    // Written back as a uint8 model (TFLite's int8 kernels need symmetric weights).
    const fb::Model* fm = fb::GetModel(bytes->data());
    for (const auto* c : *fm->operator_codes()) {
      EXPECT_EQ(c->version(), 1) << fb::EnumNameBuiltinOperator(c->builtin_code());
    }
    for (const auto* t : *fm->subgraphs()->Get(0)->tensors()) {
      EXPECT_NE(t->type(), fb::TensorType::INT8) << t->name()->str();
    }
  }
  const ir::Value& in = m->graph.value(m->graph.inputs[0]);
  const ir::Tensor x = GetParam().size > 0 ? image_like_u8(in, 5) : random_input(in, 5);
  std::vector<pcv::testing::OracleTensor> a, b;
  std::string error;
  ASSERT_TRUE(pcv::testing::run_tflite_oracle(path, "litert", {tensor_bytes(x)}, &a, &error)) << error;
  ASSERT_TRUE(pcv::testing::run_tflite_oracle(out_path, "litert", {tensor_bytes(x)}, &b, &error)) << error;
  ASSERT_EQ(a.size(), 1u);
  ASSERT_EQ(b.size(), 1u);
  ASSERT_EQ(a[0].bytes.size(), b[0].bytes.size());
  int worst = 0;
  for (size_t i = 0; i < a[0].bytes.size(); ++i) worst = std::max(worst, std::abs(int{a[0].bytes[i]} - int{b[0].bytes[i]}));
  const int64_t n = static_cast<int64_t>(a[0].bytes.size());
  EXPECT_EQ(argmax(a[0].bytes.data(), n), argmax(b[0].bytes.data(), n));
  EXPECT_LE(worst, 1);
  std::printf("%s: LiteRT original vs rewritten: top-1 %d / %d, max diff %d steps\n", GetParam().file,
              argmax(a[0].bytes.data(), n), argmax(b[0].bytes.data(), n), worst);
  remove_tree(dir);
}

TEST_P(Oracle, TinyInt8) {
  expect_oracle_matches(tiny_int8_model(), {}, GetParam());
}

INSTANTIATE_TEST_SUITE_P(Runtimes, Oracle, ::testing::Values("litert", "tfjs"));
INSTANTIATE_TEST_SUITE_P(Pretrained, CoralRewritten, ::testing::ValuesIn(kCoral), coral_test_name);
#endif  // PCV_HAVE_RUNTIME

}  // namespace
}  // namespace pcv::tflite
