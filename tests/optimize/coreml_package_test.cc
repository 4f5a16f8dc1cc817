// `pocketcv optimize IN --quantize dynamic|int8 | --palettize BITS -o out.mlpackage`: the
// package holds iOS 16 compressed weights (constexpr_affine_dequantize int8 /
// constexpr_lut_to_dense), reads back, and computes what the optimized IR computes.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <map>
#include <set>

#include "base/file.h"
#include "base/fp16.h"
#include "formats/model_io.h"
#include "optimize/optimize.h"
#include "optimize/passes.h"
#include "optimize/optimize_test_util.h"
#include "support/paths.h"
#include "support/random.h"

#if defined(PCV_COREML_AVAILABLE)
#include "formats/coreml/coreml.h"
#endif

namespace pcv::optimize {
namespace {

#if defined(PCV_COREML_AVAILABLE)

class OptimizeToMlPackage : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = pcv::testing::make_temp_dir("pcv_opt_mlpackage"); }
  void TearDown() override { remove_tree(dir_); }

  // Optimizes `model` into `name`, returns the optimized IR.
  ir::Model optimize(const ir::Model& model, const std::string& name, OptimizeOptions o) {
    o.report = false;
    ir::Model optimized;
    auto r = optimize_model(model, "m", dir_ + "/" + name, o, &optimized);
    EXPECT_TRUE(r.has_value()) << r.status().to_string();
    return optimized;
  }
  std::string describe(const std::string& name) {
    auto d = coreml::describe_coreml(dir_ + "/" + name);
    EXPECT_TRUE(d.has_value()) << d.status().to_string();
    return d.has_value() ? *d : std::string();
  }
  ir::Model read_back(const std::string& name) {
    auto m = formats::load_model(dir_ + "/" + name);
    EXPECT_TRUE(m.has_value()) << m.status().to_string();
    return m.has_value() ? std::move(*m) : ir::Model{};
  }
  std::string dir_;
};

// The conv / dense weights of `g` by node name.
std::map<std::string, const ir::Value*> weights(const ir::Graph& g) {
  std::map<std::string, const ir::Value*> w;
  for (const auto& n : g.nodes) {
    if (n.op == ir::OpType::kConv2d || n.op == ir::OpType::kFullyConnected) w[n.name] = &g.value(n.inputs[1]);
  }
  return w;
}

// The read-back conv / dense weights ("<MIL op name>/weights") keyed by the IR node names of
// `ref` (MIL names are the IR names with other characters as '_').
std::map<std::string, const ir::Value*> package_weights(const ir::Graph& back, const std::map<std::string, const ir::Value*>& ref) {
  std::map<std::string, std::string> by_mil;
  for (const auto& [name, v] : ref) {
    std::string mil = name;
    for (char& ch : mil) {
      if (!std::isalnum(static_cast<unsigned char>(ch)) && ch != '_') ch = '_';
    }
    by_mil[mil] = name;
  }
  std::map<std::string, const ir::Value*> out;
  for (const auto& n : back.nodes) {
    if (n.op != ir::OpType::kConv2d && n.op != ir::OpType::kFullyConnected) continue;
    const ir::Value& w = back.value(n.inputs[1]);
    auto it = by_mil.find(w.name.substr(0, w.name.rfind("/weights")));
    EXPECT_NE(it, by_mil.end()) << w.name;
    if (it != by_mil.end()) out[it->second] = &w;
  }
  return out;
}

TEST_F(OptimizeToMlPackage, DynamicAndInt8GiveAffineInt8Weights) {
  const ir::Model src = testing::zoo_model("mobilenet_v2", 64, 3, 4, 0.35f);
  for (const QuantizeMode mode : {QuantizeMode::kDynamic, QuantizeMode::kInt8}) {
    SCOPED_TRACE(quantize_mode_name(mode));
    OptimizeOptions o;
    o.quantize = mode;
    o.calibration_size = 8;
    const std::string name = std::string(quantize_mode_name(mode)) + ".mlpackage";
    const ir::Model optimized = optimize(src, name, o);
    const std::string d = describe(name);
    for (const char* s : {"specification version: 7", "opset CoreML6", "constexpr_affine_dequantize"}) {
      EXPECT_NE(d.find(s), std::string::npos) << s << "\n" << d;
    }
    EXPECT_EQ(d.find("constexpr_lut_to_dense"), std::string::npos);
    const ir::Model back = read_back(name);
    // Core ML keeps activations in float: the package holds the int8 weights (re-quantized per
    // channel: the same symmetric max|w| / 127 scales, stored fp16) in a float graph.
    // Dynamic range: its weights are the optimized IR's dequantized ones up to the fp16 scale
    // (q * |s - fp16(s)| <= max|w| * 2^-11; consts of <= 2048 elements: fp16 rounding).
    // Full int8: within one int8 step of the float model's weights.
    ir::Model twin = optimized;
    ASSERT_TRUE(dequantize_constants(twin.graph).has_value());
    const auto ref = weights(mode == QuantizeMode::kDynamic ? twin.graph : src.graph);
    const auto got = package_weights(back.graph, ref);
    ASSERT_EQ(got.size(), ref.size());
    for (const auto& [name, w] : got) {
      const ir::Tensor& r = ref.at(name)->data;
      ASSERT_EQ(r.dtype(), ir::DType::kF32) << name;
      double max_abs = 0, max_diff = 0;
      for (int64_t i = 0; i < r.num_elements(); ++i) {
        max_abs = std::max(max_abs, std::abs(static_cast<double>(r.data<float>()[i])));
        max_diff = std::max(max_diff, std::abs(static_cast<double>(r.data<float>()[i]) - w->data.data<float>()[i]));
      }
      EXPECT_LE(max_diff, mode == QuantizeMode::kDynamic ? max_abs / 1024 : max_abs / 127) << name;
    }
    // Outputs: a randomly initialized network amplifies weight noise (the float model and the
    // dequantized IR differ by up to ~0.2 in probability), so only loosely.
    for (uint64_t seed : {1u, 2u, 3u}) {
      const ir::Tensor x = ::pcv::testing::uniform_input(src.graph, seed);
      const auto y = testing::run(back, x);
      const auto want = testing::run(mode == QuantizeMode::kDynamic ? twin : src, x);
      ASSERT_EQ(y.size(), want.size());
      EXPECT_LE(testing::max_abs_diff(y, want), mode == QuantizeMode::kDynamic ? 0.05 : 0.25);
    }
  }
}

TEST_F(OptimizeToMlPackage, PalettizeGivesLookupTablesHoldingThePalettes) {
  const ir::Model src = testing::zoo_model("mobilenet_v2", 64, 3, 4, 0.35f);
  for (int bits : {2, 4, 6, 8}) {
    SCOPED_TRACE(bits);
    OptimizeOptions o;
    o.palettize_bits = bits;
    const std::string name = "lut" + std::to_string(bits) + ".mlpackage";
    const ir::Model optimized = optimize(src, name, o);
    const std::string d = describe(name);
    for (const char* s : {"specification version: 7", "opset CoreML6", "constexpr_lut_to_dense"}) {
      EXPECT_NE(d.find(s), std::string::npos) << s << "\n" << d;
    }
    const ir::Model back = read_back(name);
    // The palettized IR's tensors have <= 2^bits values each, so the tables hold exactly them:
    // every weight reads back as the fp16 rounding of the palettized one (tensors of at most
    // 2048 elements are fp16 consts, the same values).
    const auto want = weights(optimized.graph);
    const auto got = package_weights(back.graph, want);
    EXPECT_EQ(got.size(), want.size());
    for (const auto& [name, w] : got) {
      const ir::Tensor& r = want.at(name)->data;
      ASSERT_EQ(w->data.num_elements(), r.num_elements());
      std::set<float> distinct;
      for (int64_t i = 0; i < r.num_elements(); ++i) {
        ASSERT_EQ(w->data.data<float>()[i], f32_from_fp16(fp16_from_f32(r.data<float>()[i]))) << name << " " << i;
        distinct.insert(w->data.data<float>()[i]);
      }
      EXPECT_LE(distinct.size(), size_t{1} << bits);
    }
    const ir::Tensor x = ::pcv::testing::uniform_input(src.graph, 7);
    EXPECT_LE(testing::max_abs_diff(testing::run(back, x), testing::run(optimized, x)), 0.01);
  }
}

// Sizes on disk: fp16 vs int8 vs 4-bit tables (printed for the record; a 2-class mobilenet_v2
// 0.35 at 96 px is small, so tables and the fp16 biases weigh more than in a full model).
TEST_F(OptimizeToMlPackage, SizesShrink) {
  const ir::Model src = testing::zoo_model("mobilenet_v2", 96, 3, 2, 0.35f);
  auto size_of = [&](const std::string& name, OptimizeOptions o) {
    optimize(src, name, o);
    uint64_t n = 0;
    for (const auto& e : std::filesystem::recursive_directory_iterator(dir_ + "/" + name)) {
      if (e.is_regular_file()) n += e.file_size();
    }
    return n;
  };
  OptimizeOptions fp16, int8, lut4;
  fp16.quantize = QuantizeMode::kFp16;
  int8.quantize = QuantizeMode::kDynamic;
  lut4.palettize_bits = 4;
  const uint64_t a = size_of("fp16.mlpackage", fp16), b = size_of("int8.mlpackage", int8), c = size_of("lut4.mlpackage", lut4);
  std::printf("mobilenet_v2 0.35 96px 2 classes .mlpackage: fp16 %llu, int8 %llu (%.2fx), 4-bit tables %llu (%.2fx)\n",
              static_cast<unsigned long long>(a), static_cast<unsigned long long>(b), double(b) / double(a),
              static_cast<unsigned long long>(c), double(c) / double(a));
  EXPECT_LT(b, a * 7 / 10);
  EXPECT_LT(c, a * 5 / 10);
}

#endif

}  // namespace
}  // namespace pcv::optimize
