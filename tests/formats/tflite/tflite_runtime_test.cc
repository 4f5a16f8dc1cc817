// TFLite files against runtimes: our runtime before/after passes and round trips, the real
// coral MobileNets, and the official runtimes (LiteRT.js, tfjs-tflite) through the oracle.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
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
#ifdef PCV_HAVE_VISION
#include "vision/decode.h"
#include "vision/frame.h"
#include "vision/preprocess.h"
#endif
#ifdef PCV_HAVE_OPTIMIZE
#include "optimize/calibration.h"
#include "optimize/passes.h"
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
  // Bit-exact: the runtime's int8 arithmetic is LiteRT's (XNNPACK fp32 requantization etc.).
  EXPECT_EQ(max_step, 0) << cm.file;
  std::printf("%s: top-1 %d (LiteRT %d), max diff %d steps\n", cm.file, argmax(y.data<uint8_t>(), n),
              argmax(outs[0].bytes.data(), n), max_step);
}

// One value of a per-layer comparison: the node that produced it and how far apart the two
// runtimes are (in quantization steps).
struct LayerDiff {
  std::string value;
  std::string op;
  int max_step = 0;
  int64_t differing = 0;
  int64_t elems = 0;
};

// Runs `m` in our runtime and in `runtime_name` with every int8 intermediate value exposed as
// an extra graph output (the model is written back with write_tflite: uint8 models stay uint8,
// so a value q here is q + 128 there). Returns the diffs in graph (topological) order.
std::vector<LayerDiff> compare_layers(const ir::Model& m, const std::vector<ir::Tensor>& xs, const std::string& runtime_name,
                                      const runtime::SessionOptions& opts = {}) {
  std::vector<LayerDiff> diffs;
  ir::Model probe = m;
  ir::Graph& g = probe.graph;
  const size_t first_extra = g.outputs.size();
  for (const auto& node : m.graph.nodes) {
    if (node.op == OpType::kQuantize) continue;  // the u8 <-> i8 edges vanish in the file
    for (ir::ValueId v : node.outputs) {
      if (g.value(v).dtype != DType::kI8) continue;
      if (std::find(g.outputs.begin(), g.outputs.end(), v) != g.outputs.end()) continue;
      g.mark_output(v);
    }
  }
  auto bytes = write_tflite(probe);
  EXPECT_TRUE(bytes) << bytes.status().to_string();
  if (!bytes) return diffs;
  const std::string dir = pcv::testing::make_temp_dir("tflite_layers");
  const std::string path = dir + "/probe.tflite";
  EXPECT_TRUE(write_file_atomic(path, *bytes).is_ok());
  auto ours = runtime::run_model(probe, xs, opts);
  EXPECT_TRUE(ours) << ours.status().to_string();
  std::vector<pcv::testing::OracleTensor> outs;
  std::string error;
  // write_tflite keeps a graph with asymmetric weights in uint8 form: int8 inputs go in as q + 128.
  bool uint8_file = false;
  for (const auto& node : g.nodes) {
    if ((node.op != OpType::kConv2d && node.op != OpType::kFullyConnected) || node.inputs.size() < 2) continue;
    for (int32_t z : g.value(node.inputs[1]).quant.zero_point) uint8_file = uint8_file || z != 0;
  }
  std::vector<std::vector<uint8_t>> raw;
  for (const ir::Tensor& x : xs) {
    raw.push_back(tensor_bytes(x));
    if (uint8_file && x.dtype() == DType::kI8) {
      for (auto& b : raw.back()) b = static_cast<uint8_t>(b + 128);
    }
  }
  const bool ok = pcv::testing::run_tflite_oracle(path, runtime_name, raw, &outs, &error);
  EXPECT_TRUE(ok) << runtime_name << ": " << error;
  remove_tree(dir);
  if (!ours || !ok) return diffs;
  std::map<std::string, const pcv::testing::OracleTensor*> by_name;
  for (const auto& o : outs) by_name[o.name] = &o;
  for (size_t k = 0; k < g.outputs.size(); ++k) {
    const ir::ValueId v = g.outputs[k];
    const ir::Value& val = g.value(v);
    const auto it = by_name.find(val.name);
    const pcv::testing::OracleTensor* theirs = it != by_name.end() ? it->second : (k < outs.size() ? &outs[k] : nullptr);
    LayerDiff d;
    d.value = val.name;
    const int p = g.producer(v);
    d.op = p >= 0 ? std::string(ir::op_name(g.nodes[static_cast<size_t>(p)].op)) : "input";
    const ir::Tensor& y = (*ours)[k];
    d.elems = y.num_elements();
    if (!theirs || theirs->bytes.size() != y.size_bytes()) {
      ADD_FAILURE() << "no matching " << runtime_name << " output for " << val.name;
      continue;
    }
    // The file holds uint8 where our IR holds int8 (q - 128), except at the uint8 graph edges.
    const int shift = (y.dtype() == DType::kI8 && theirs->dtype == "uint8") ? 128 : 0;
    for (int64_t i = 0; i < d.elems; ++i) {
      const int a = y.dtype() == DType::kI8 ? int{y.data<int8_t>()[i]} : int{y.data<uint8_t>()[i]};
      const int b = theirs->dtype == "int8" ? int{static_cast<int8_t>(theirs->bytes[static_cast<size_t>(i)])}
                                            : int{theirs->bytes[static_cast<size_t>(i)]} - shift;
      d.max_step = std::max(d.max_step, std::abs(a - b));
      d.differing += a != b;
    }
    diffs.push_back(d);
  }
  // Graph order: extras were added in topological order; the original outputs last.
  std::rotate(diffs.begin(), diffs.begin() + static_cast<std::ptrdiff_t>(std::min(first_extra, diffs.size())), diffs.end());
  return diffs;
}

#ifdef PCV_HAVE_VISION
// A photo as the model's uint8 input: center crop, mean/std from the model's input spec, then
// the input's own quantization.
ir::Tensor photo_input(const ir::Model& m, const std::string& path) {
  const ir::Value& in = m.graph.value(m.graph.inputs[0]);
  ir::Tensor t(DType::kU8, in.shape);
  vision::Preprocess pre;
  pre.out_h = static_cast<int>(in.shape[1]);
  pre.out_w = static_cast<int>(in.shape[2]);
  pre.mode = vision::ResizeMode::kCenterCrop;
  pre.crop_fraction = m.input_spec.crop_fraction;
  for (int c = 0; c < 3; ++c) {
    pre.mean[c] = m.input_spec.mean[static_cast<size_t>(c)];
    pre.std[c] = m.input_spec.std[static_cast<size_t>(c)];
  }
  auto img = vision::read_image(path, vision::decode_options_for(pre));
  EXPECT_TRUE(img) << img.status().to_string();
  if (!img) return t;
  const auto target = vision::OutputTarget::uint8(t.data<uint8_t>(), static_cast<size_t>(t.num_elements()),
                                                  in.quant.scale[0], in.quant.zero_point[0]);
  const Status st = vision::image_to_tensor(*img, pre, target);
  EXPECT_TRUE(st.is_ok()) << st.to_string();
  return t;
}

const char* const kPhotos[] = {"cat/Abyssinian_101.jpg", "cat/Abyssinian_12.jpg", "dog/american_bulldog_106.jpg",
                               "dog/american_bulldog_115.jpg"};

TEST_P(Coral, PhotosMatchLiteRt) {
  const CoralModel& cm = GetParam();
  if (cm.size == 0) GTEST_SKIP() << "not an image model";
  PCV_REQUIRE_SHARED_DATA(path, std::string("pretrained/mobilenet-tflite-coral/") + cm.file);
  PCV_REQUIRE_SHARED_DATA(photos, "oxford-pets-sample");
  if (auto why = pcv::testing::oracle_unavailable_reason(); !why.empty()) GTEST_SKIP() << why;
  auto m = load_tflite(path);
  ASSERT_TRUE(m) << m.status().to_string();
  for (const char* photo : kPhotos) {
    const ir::Tensor x = photo_input(*m, photos + "/" + photo);
    runtime::SessionOptions ref_only;
    ref_only.fast_kernels = false;
    auto ref = runtime::run_model(*m, {x}, ref_only);
    ASSERT_TRUE(ref) << ref.status().to_string();
    for (bool fast : {true}) {
      auto ours = runtime::run_model(*m, {x});  // fast kernels: identical to the reference ones
      ASSERT_TRUE(ours) << ours.status().to_string();
      const ir::Tensor& y = (*ours)[0];
      ASSERT_EQ(tensor_bytes(y), tensor_bytes((*ref)[0])) << cm.file << " " << photo << ": fast != reference kernels";
      std::vector<pcv::testing::OracleTensor> outs;
      std::string error;
      for (const char* rt : {"litert", "tfjs"}) {
        ASSERT_TRUE(pcv::testing::run_tflite_oracle(path, rt, {tensor_bytes(x)}, &outs, &error)) << error;
        ASSERT_EQ(outs.size(), 1u);
        ASSERT_EQ(outs[0].bytes.size(), y.size_bytes());
        const int64_t n = y.num_elements();
        int max_step = 0;
        for (int64_t i = 0; i < n; ++i) {
          max_step = std::max(max_step, std::abs(int{outs[0].bytes[static_cast<size_t>(i)]} - int{y.data<uint8_t>()[i]}));
        }
        EXPECT_EQ(argmax(outs[0].bytes.data(), n), argmax(y.data<uint8_t>(), n)) << cm.file << " " << photo << " " << rt;
        EXPECT_EQ(max_step, 0) << cm.file << " " << photo << " " << rt << (fast ? " fast" : " ref");
        std::printf("%s %s (%s, %s kernels): top-1 %d (%s), max diff %d steps\n", cm.file, photo, rt, fast ? "fast" : "ref",
                    argmax(y.data<uint8_t>(), n),
                    m->input_spec.labels.empty() ? "-" : m->input_spec.labels[static_cast<size_t>(argmax(y.data<uint8_t>(), n))].c_str(),
                    max_step);
      }
    }
  }
}
#endif

void print_layers(const std::vector<LayerDiff>& diffs, bool all) {
  for (const auto& d : diffs) {
    if (all || d.max_step > 0) {
      std::printf("  %-12s %-60s max %d, %lld/%lld differ\n", d.op.c_str(), d.value.c_str(), d.max_step,
                  static_cast<long long>(d.differing), static_cast<long long>(d.elems));
    }
  }
}

// A model holding one node of `src` (its activation inputs become graph inputs). With
// `uint8_form`, a side 1x1 conv with an asymmetric filter makes write_tflite keep the uint8
// form of a model read from a uint8 file (the node under test then runs LiteRT's uint8 kernel).
ir::Model single_node_model(const ir::Graph& src, const ir::Node& n, bool uint8_form) {
  ir::Model m;
  ir::Graph& g = m.graph;
  std::map<ir::ValueId, ir::ValueId> map;
  std::vector<ir::ValueId> ins;
  for (ir::ValueId v : n.inputs) {
    if (v == ir::kNoValue) {
      ins.push_back(v);
      continue;
    }
    if (!map.count(v)) {
      const ir::Value& val = src.value(v);
      map[v] = val.is_constant() ? g.add_constant(val.name, val.data, val.quant)
                                 : g.add_input(val.name, val.dtype, val.shape, val.quant);
    }
    ins.push_back(map[v]);
  }
  const ir::Value& out = src.value(n.outputs[0]);
  const ir::ValueId y = g.add_node(n.op, out.name, ins, n.attrs, out.dtype);
  g.value(y).shape = out.shape;
  g.value(y).quant = out.quant;
  g.mark_output(y);
  const ir::Value x0 = g.value(g.inputs[0]);  // a copy: adding values below reallocates
  if (uint8_form && x0.dtype == DType::kI8 && x0.shape.size() == 4) {
    const int64_t c = x0.shape[3];
    ir::Tensor w(DType::kI8, {1, 1, 1, c});
    for (int64_t i = 0; i < c; ++i) w.data<int8_t>()[i] = static_cast<int8_t>(i % 7 - 3);
    ir::QuantParams wq;
    wq.scale = {0.01f};
    wq.zero_point = {5};
    const ir::ValueId wv = g.add_constant("side_w", w, wq);
    ir::QuantParams bq;
    bq.scale = {x0.quant.scale[0] * 0.01f};
    bq.zero_point = {0};
    const ir::ValueId bv = g.add_constant("side_b", ir::Tensor(DType::kI32, {1}), bq);
    const ir::ValueId sv = g.add_node(OpType::kConv2d, "side", {g.inputs[0], wv, bv}, ir::Conv2dAttrs{}, DType::kI8);
    g.value(sv).quant = x0.quant;
    g.mark_output(sv);
  }
  EXPECT_TRUE(ir::infer_shapes(g).is_ok()) << ir::infer_shapes(g).to_string();
  return m;
}

// Each node of a coral model alone, on the inputs our runtime computed for it: isolates which
// op's arithmetic differs from LiteRT's (no propagated differences).
// Runs each int8-output node of `m` alone in our runtime and in `runtime_name`, on the inputs
// our runtime computed for it from `x`: isolates which op's arithmetic differs (no propagated
// differences). Returns the worst step difference per op name.
std::map<std::string, int> ops_match(const ir::Model& m, const ir::Tensor& x, const std::string& runtime_name,
                                     bool uint8_form, const char* what) {
  std::map<std::string, int> worst_by_op;
  runtime::SessionOptions keep;
  keep.keep_all_values = true;
  keep.optimize_graph = false;
  auto session = runtime::Session::create(m, keep);
  EXPECT_TRUE(session) << session.status().to_string();
  if (!session) return worst_by_op;
  EXPECT_TRUE((*session)->run({x}));
  const ir::Graph& g = (*session)->graph();
  const char* only = std::getenv("PCV_LAYERS_MAX_NODES");
  const size_t max_nodes = only ? static_cast<size_t>(std::atoi(only)) : 2;  // per op type
  std::map<OpType, size_t> tested;
  for (const auto& node : g.nodes) {
    if (uint8_form && node.op == OpType::kQuantize) continue;  // the u8 <-> i8 edges vanish in the file
    if (g.value(node.outputs[0]).dtype != DType::kI8 || tested[node.op]++ >= max_nodes) continue;
    ir::Model one = single_node_model(g, node, uint8_form);
    std::vector<ir::Tensor> ins;
    for (ir::ValueId v : one.graph.inputs) ins.push_back((*session)->value(g.find_value(one.graph.value(v).name)));
    const auto diffs = compare_layers(one, ins, runtime_name);
    if (diffs.empty()) {
      ADD_FAILURE() << node.name;
      continue;
    }
    const LayerDiff& d = diffs.front().value == g.value(node.outputs[0]).name ? diffs.front() : diffs.back();
    worst_by_op[d.op] = std::max(worst_by_op[d.op], d.max_step);
    if (d.max_step > 0 || std::getenv("PCV_LAYERS_ALL")) {
      std::printf("  %-12s %-40.40s max %d, %lld/%lld differ\n", d.op.c_str(), d.value.c_str(), d.max_step,
                  static_cast<long long>(d.differing), static_cast<long long>(d.elems));
    }
  }
  for (const auto& [op, worst] : worst_by_op) std::printf("%s (%s): %s worst %d steps\n", what, runtime_name.c_str(), op.c_str(), worst);
  return worst_by_op;
}

// The input the per-layer diagnostics use: the synthetic image, or the photo named by
// PCV_LAYERS_PHOTO (relative to oxford-pets-sample/) for image models.
ir::Tensor diagnostic_input(const ir::Model& m, const CoralModel& cm) {
  const ir::Value& in = m.graph.value(m.graph.inputs[0]);
#ifdef PCV_HAVE_VISION
  const char* photo = std::getenv("PCV_LAYERS_PHOTO");
  if (photo != nullptr && cm.size > 0) {
    return photo_input(m, pcv::testing::shared_data("oxford-pets-sample") + "/" + photo);
  }
#endif
  return cm.size > 0 ? image_like_u8(in, 5) : random_input(in, 5);
}

TEST_P(Coral, OpsMatchLiteRt) {
  const CoralModel& cm = GetParam();
  PCV_REQUIRE_SHARED_DATA(path, std::string("pretrained/mobilenet-tflite-coral/") + cm.file);
  if (auto why = pcv::testing::oracle_unavailable_reason(); !why.empty()) GTEST_SKIP() << why;
  auto m = load_tflite(path);
  ASSERT_TRUE(m) << m.status().to_string();
  const ir::Tensor x = diagnostic_input(*m, cm);
  const char* rt = std::getenv("PCV_LAYERS_RUNTIME");
  for (const auto& [op, worst] : ops_match(*m, x, rt ? rt : "litert", true, cm.file)) EXPECT_EQ(worst, 0) << op;
}

TEST_P(Coral, LayersMatchLiteRt) {
  const CoralModel& cm = GetParam();
  PCV_REQUIRE_SHARED_DATA(path, std::string("pretrained/mobilenet-tflite-coral/") + cm.file);
  if (auto why = pcv::testing::oracle_unavailable_reason(); !why.empty()) GTEST_SKIP() << why;
  auto m = load_tflite(path);
  ASSERT_TRUE(m) << m.status().to_string();
  const ir::Tensor x = diagnostic_input(*m, cm);
  const char* rt = std::getenv("PCV_LAYERS_RUNTIME");
  const auto diffs = compare_layers(*m, {x}, rt ? rt : "litert");
  int worst = 0;
  for (const auto& d : diffs) worst = std::max(worst, d.max_step);
  std::printf("%s: %zu values, worst %d steps\n", cm.file, diffs.size(), worst);
  print_layers(diffs, std::getenv("PCV_LAYERS_ALL") != nullptr);
  EXPECT_LE(worst, 1);
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
  // Both runtimes widen the same fp16 weights to f32; what differs is the summation order over
  // 50+ layers. Randomized batch norms reach 1.1e-5 relative on NEON: 3e-5.
  expect_oracle_matches(m, o, GetParam(), 3e-5);
}

// Ops the zoo doesn't use: standalone batch norm (MUL + ADD), pad, leaky relu, hard swish,
// sigmoid, concat, average pool, mul, dilated depthwise, mean, softmax.
ir::Model other_ops_model() {
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
  EXPECT_TRUE(ir::infer_shapes(g).is_ok()) << ir::infer_shapes(g).to_string();
  return m;
}

TEST_P(Oracle, UnfoldedBatchNormAndOtherOps) {
  ir::Model m = other_ops_model();
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

// ---- full-int8 exports (TFLite's int8 scheme: per-channel symmetric weights), layer by layer

#ifdef PCV_HAVE_OPTIMIZE
ir::Model quantized(ir::Model m, uint64_t seed) {
  EXPECT_TRUE(optimize::prepare_for_inference(m.graph).is_ok());
  std::vector<ir::Tensor> samples;
  for (uint64_t i = 0; i < 4; ++i) samples.push_back(random_input(m.graph.value(m.graph.inputs[0]), seed + i));
  auto ranges = optimize::calibrate(m, samples);
  EXPECT_TRUE(ranges) << ranges.status().to_string();
  if (!ranges) return m;
  auto n = optimize::quantize_int8(m.graph, *ranges);
  EXPECT_TRUE(n) << n.status().to_string();
  return m;
}

void expect_layers_match(const ir::Model& m, const std::string& runtime_name, const char* what) {
  if (std::getenv("PCV_OPS_ALONE")) {
    const auto x = random_input(m.graph.value(m.graph.inputs[0]), 40);
    for (const auto& [op, worst] : ops_match(m, x, runtime_name, false, what)) EXPECT_EQ(worst, 0) << op;
  }
  for (uint64_t seed = 40; seed < 42; ++seed) {
    const auto x = random_input(m.graph.value(m.graph.inputs[0]), seed);
    const auto diffs = compare_layers(m, {x}, runtime_name);
    int worst = 0;
    for (const auto& d : diffs) worst = std::max(worst, d.max_step);
    std::printf("%s int8 in %s: %zu values, worst %d steps\n", what, runtime_name.c_str(), diffs.size(), worst);
    print_layers(diffs, false);
    EXPECT_EQ(worst, 0) << what;
  }
}

TEST_P(Oracle, Int8MobileNetV2LayersMatch) {
  ir::Model m = zoo_model("mobilenet_v2", 64, 0.35f);
  randomize_batch_norms(m);
  expect_layers_match(quantized(m, 20), GetParam(), "mobilenet_v2");
}

TEST_P(Oracle, Int8OtherOpsLayersMatch) {
  expect_layers_match(quantized(other_ops_model(), 30), GetParam(), "other ops");
}
#endif

INSTANTIATE_TEST_SUITE_P(Runtimes, Oracle, ::testing::Values("litert", "tfjs"));
INSTANTIATE_TEST_SUITE_P(Pretrained, CoralRewritten, ::testing::ValuesIn(kCoral), coral_test_name);
#endif  // PCV_HAVE_RUNTIME

}  // namespace
}  // namespace pcv::tflite
