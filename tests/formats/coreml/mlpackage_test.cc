// .mlpackage writer and reader: Manifest.json, the ML Program's structure, the blob storage
// file layout, round trips (fp16 default, fp32), corrupt packages; describe_coreml.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>

#include "base/file.h"
#include "formats/coreml/Model.pb.h"
#include "formats/coreml/coreml.h"
#include "formats/coreml/coreml_test_util.h"
#include "support/paths.h"

#ifdef PCV_HAVE_RUNTIME
#include "runtime/session.h"
#endif

namespace pcv::coreml {
namespace {

namespace spec = ::CoreML::Specification;
namespace mil = ::CoreML::Specification::MILSpec;
using namespace pcv::coreml::testing;

std::vector<uint8_t> slurp(const std::string& path) {
  auto b = read_file(path);
  EXPECT_TRUE(b.has_value()) << b.status().to_string();
  return b.has_value() ? *b : std::vector<uint8_t>{};
}

uint32_t u32(const std::vector<uint8_t>& b, size_t at) {
  uint32_t v;
  std::memcpy(&v, b.data() + at, 4);
  return v;
}
uint64_t u64(const std::vector<uint8_t>& b, size_t at) {
  uint64_t v;
  std::memcpy(&v, b.data() + at, 8);
  return v;
}

MlPackageOptions unfolded() {
  MlPackageOptions o;
  o.fold_batch_norm = false;
  return o;
}

std::string save(const ir::Model& m, const MlPackageOptions& o = unfolded(), const std::string& tag = "m") {
  const std::string dir = pcv::testing::make_temp_dir("coreml_pkg") + "/" + tag + ".mlpackage";
  const Status s = save_mlpackage(m, dir, o);
  EXPECT_TRUE(s.is_ok()) << s.to_string();
  return dir;
}

const mil::Block& main_block(const spec::Model& m) {
  const auto& fn = m.mlprogram().functions().at("main");
  return fn.block_specializations().at(fn.opset());
}

std::map<std::string, const mil::Operation*> consts_by_name(const mil::Block& b) {
  std::map<std::string, const mil::Operation*> out;
  for (const auto& op : b.operations()) {
    if (op.type() == "const") out[op.outputs(0).name()] = &op;
  }
  return out;
}

TEST(MlPackage, ManifestAndFiles) {
  const std::string dir = save(simple_cnn_32());
  EXPECT_TRUE(file_exists(dir + "/Data/com.apple.CoreML/model.mlmodel"));
  EXPECT_TRUE(file_exists(dir + "/Data/com.apple.CoreML/weights/weight.bin"));
  auto text = read_text_file(dir + "/Manifest.json");
  ASSERT_TRUE(text.has_value());
  const auto j = nlohmann::json::parse(*text);
  EXPECT_EQ(j["fileFormatVersion"], "1.0.0");
  const std::regex uuid("[0-9A-F]{8}-[0-9A-F]{4}-4[0-9A-F]{3}-[89AB][0-9A-F]{3}-[0-9A-F]{12}");
  ASSERT_TRUE(j["itemInfoEntries"].is_object());
  ASSERT_EQ(j["itemInfoEntries"].size(), 2u);
  for (const auto& [key, item] : j["itemInfoEntries"].items()) {
    EXPECT_TRUE(std::regex_match(key, uuid)) << key;
    EXPECT_EQ(item["author"], "com.apple.CoreML");
    EXPECT_TRUE(item.contains("name") && item.contains("description") && item.contains("path"));
  }
  const std::string root = j["rootModelIdentifier"];
  EXPECT_EQ(j["itemInfoEntries"][root]["path"], "com.apple.CoreML/model.mlmodel");
  // Saving over an existing package replaces it.
  ASSERT_TRUE(save_mlpackage(mobilenet_v2_64(), dir).is_ok());
  auto back = read_mlpackage(dir);
  ASSERT_TRUE(back.has_value()) << back.status().to_string();
  EXPECT_EQ(back->graph.value(back->graph.inputs[0]).shape, (ir::Shape{1, 64, 64, 3}));
}

TEST(MlPackage, MlProgramStructure) {
  const std::string dir = save(mobilenet_v2_64());
  const auto bytes = slurp(dir + "/Data/com.apple.CoreML/model.mlmodel");
  const auto fields = top_level_fields(decode_raw(bytes));
  EXPECT_NE(std::find(fields.begin(), fields.end(), 502), fields.end()) << "mlProgram";
  EXPECT_NE(std::find(fields.begin(), fields.end(), 1), fields.end());
  spec::Model m;
  ASSERT_TRUE(m.ParseFromArray(bytes.data(), static_cast<int>(bytes.size())));
  EXPECT_EQ(m.specificationversion(), 6);
  ASSERT_TRUE(m.has_mlprogram());
  EXPECT_EQ(m.mlprogram().version(), 1);
  const auto& fn = m.mlprogram().functions().at("main");
  EXPECT_EQ(fn.opset(), "CoreML5");
  ASSERT_EQ(fn.inputs_size(), 1);
  const auto& it = fn.inputs(0).type().tensortype();
  EXPECT_EQ(it.datatype(), mil::FLOAT32);
  ASSERT_EQ(it.dimensions_size(), 4);
  EXPECT_EQ(it.dimensions(1).constant().size(), 3u);  // NCHW
  EXPECT_EQ(it.dimensions(2).constant().size(), 64u);
  // Vision: image input, classLabel + classLabel_probs.
  const auto& d = m.description();
  ASSERT_TRUE(d.input(0).type().has_imagetype());
  EXPECT_EQ(d.input(0).name(), fn.inputs(0).name());
  EXPECT_EQ(d.predictedfeaturename(), "classLabel");
  EXPECT_EQ(d.predictedprobabilitiesname(), "classLabel_probs");
  const mil::Block& b = main_block(m);
  std::vector<std::string> types;
  for (const auto& op : b.operations()) {
    if (op.type() != "const") types.push_back(op.type());
    EXPECT_TRUE(op.attributes().count("name")) << op.type();
  }
  ASSERT_GE(types.size(), 4u);
  EXPECT_EQ(types[0], "mul");
  EXPECT_EQ(types[1], "add");
  EXPECT_EQ(types[2], "cast");  // fp16 compute
  EXPECT_EQ(types.back(), "classify");
  EXPECT_EQ(std::vector<std::string>(b.outputs().begin(), b.outputs().end()),
            (std::vector<std::string>{"classLabel", "classLabel_probs"}));
  // Every conv has every parameter, each bound to a const.
  const auto consts = consts_by_name(b);
  int convs = 0;
  for (const auto& op : b.operations()) {
    if (op.type() != "conv") continue;
    ++convs;
    for (const char* p : {"x", "weight", "strides", "pad_type", "pad", "dilations", "groups"}) {
      ASSERT_TRUE(op.inputs().count(p)) << p;
      if (std::string(p) != "x") {
        EXPECT_TRUE(consts.count(op.inputs().at(p).arguments(0).name())) << p;
      }
    }
    const auto* w = consts.at(op.inputs().at("weight").arguments(0).name());
    const auto& val = w->attributes().at("val");
    EXPECT_TRUE(val.has_blobfilevalue());
    EXPECT_EQ(val.blobfilevalue().filename(), "@model_path/weights/weight.bin");
    EXPECT_EQ(val.type().tensortype().datatype(), mil::FLOAT16);
  }
  EXPECT_GT(convs, 10);
}

TEST(MlPackage, BlobFileLayout) {
  const std::string dir = save(mobilenet_v2_64());
  const auto bytes = slurp(dir + "/Data/com.apple.CoreML/model.mlmodel");
  spec::Model m;
  ASSERT_TRUE(m.ParseFromArray(bytes.data(), static_cast<int>(bytes.size())));
  const auto w = slurp(dir + "/Data/com.apple.CoreML/weights/weight.bin");
  ASSERT_GE(w.size(), 64u);
  EXPECT_EQ(u32(w, 4), 2u);  // version
  uint32_t blobs = 0;
  std::vector<std::pair<uint64_t, uint64_t>> regions;  // [metadata, data end)
  for (const auto& op : main_block(m).operations()) {
    if (op.type() != "const" || !op.attributes().at("val").has_blobfilevalue()) continue;
    ++blobs;
    const auto& val = op.attributes().at("val");
    const uint64_t meta = val.blobfilevalue().offset();
    ASSERT_EQ(meta % 64, 0u);
    ASSERT_LE(meta + 64, w.size());
    EXPECT_EQ(u32(w, meta), 0xDEADBEEFu);
    EXPECT_EQ(u32(w, meta + 4), 1u);  // fp16
    const uint64_t size = u64(w, meta + 8), data = u64(w, meta + 16);
    EXPECT_EQ(data % 64, 0u);
    EXPECT_EQ(data, meta + 64);
    ASSERT_LE(data + size, w.size());
    int64_t n = 1;
    for (const auto& dim : val.type().tensortype().dimensions()) n *= static_cast<int64_t>(dim.constant().size());
    EXPECT_EQ(size, static_cast<uint64_t>(n) * 2);
    regions.push_back({meta, data + size});
  }
  EXPECT_EQ(u32(w, 0), blobs);  // count
  std::sort(regions.begin(), regions.end());
  for (size_t i = 1; i < regions.size(); ++i) EXPECT_LE(regions[i - 1].second, regions[i].first);
}

void expect_close_models(const ir::Model& src, const ir::Model& back, double weight_tol, double out_tol) {
  EXPECT_EQ(back.input_spec.labels, src.input_spec.labels);
  EXPECT_EQ(back.input_spec.height, src.input_spec.height);
  EXPECT_EQ(back.input_spec.color, src.input_spec.color);
  for (int c = 0; c < 3; ++c) {
    EXPECT_NEAR(back.input_spec.mean[c], src.input_spec.mean[c], 1e-3 * std::max(1.f, src.input_spec.mean[c]));
    EXPECT_NEAR(back.input_spec.std[c], src.input_spec.std[c], 1e-3 * src.input_spec.std[c]);
  }
  // Conv / dense weights come back under "<op name>/weights" (op names are the IR node names).
  int matched = 0;
  for (const auto& n : src.graph.nodes) {
    if (n.op != ir::OpType::kConv2d && n.op != ir::OpType::kFullyConnected) continue;
    const ir::Value& w = src.graph.value(n.inputs[1]);
    std::string mil_name = n.name;
    for (char& ch : mil_name) {
      if (!std::isalnum(static_cast<unsigned char>(ch)) && ch != '_') ch = '_';
    }
    const ir::Value* r = find_constant(back.graph, mil_name + "/weights");
    ASSERT_NE(r, nullptr) << mil_name;
    ASSERT_EQ(r->shape, w.shape);
    EXPECT_LE(max_rel_diff(r->data, w.data), weight_tol) << n.name;
    ++matched;
  }
  EXPECT_GT(matched, 2);
#ifdef PCV_HAVE_RUNTIME
  const ir::Tensor x = random_input(src, 11);
  auto a = runtime::run_model(src, {x});
  auto b = runtime::run_model(back, {x});
  ASSERT_TRUE(a.has_value()) << a.status().to_string();
  ASSERT_TRUE(b.has_value()) << b.status().to_string();
  ASSERT_EQ(a->size(), b->size());
  for (size_t i = 0; i < a->size(); ++i) EXPECT_LE(max_rel_diff((*b)[i], (*a)[i]), out_tol);
#else
  (void)out_tol;
#endif
}

class MlPackageRoundTrip : public ::testing::TestWithParam<const char*> {
 protected:
  ir::Model source() const { return std::string(GetParam()) == "simple_cnn" ? simple_cnn_32() : mobilenet_v2_64(); }
};

TEST_P(MlPackageRoundTrip, Float32) {
  const ir::Model src = source();
  MlPackageOptions o = unfolded();
  o.fp16 = false;
  const std::string dir = save(src, o);
  auto back = read_mlpackage(dir);
  ASSERT_TRUE(back.has_value()) << back.status().to_string();
  expect_close_models(src, *back, 0.0, 1e-5);
}

TEST_P(MlPackageRoundTrip, Float16) {
  const ir::Model src = source();
  const std::string dir = save(src);
  auto back = read_mlpackage(dir);
  ASSERT_TRUE(back.has_value()) << back.status().to_string();
  expect_close_models(src, *back, 1.0 / 1024, 1e-2);
}

TEST_P(MlPackageRoundTrip, FoldedBatchNormFloat32) {
  const ir::Model src = source();
  MlPackageOptions o;
  o.fp16 = false;
  const std::string dir = save(src, o, "folded");
  auto back = read_mlpackage(dir);
  ASSERT_TRUE(back.has_value()) << back.status().to_string();
  for (const auto& n : back->graph.nodes) EXPECT_NE(n.op, ir::OpType::kBatchNorm);
#ifdef PCV_HAVE_RUNTIME
  const ir::Tensor x = random_input(src, 5);
  auto a = runtime::run_model(src, {x});
  auto b = runtime::run_model(*back, {x});
  ASSERT_TRUE(a.has_value() && b.has_value());
  EXPECT_LE(max_rel_diff((*b)[0], (*a)[0]), 1e-5);
#endif
}

INSTANTIATE_TEST_SUITE_P(Zoo, MlPackageRoundTrip, ::testing::Values("simple_cnn", "mobilenet_v2"));

TEST(MlPackage, WithoutLabelsHasArrayOutputs) {
  ir::Model src = simple_cnn_32();
  src.input_spec.labels.clear();
  const std::string dir = save(src);
  const auto bytes = slurp(dir + "/Data/com.apple.CoreML/model.mlmodel");
  spec::Model m;
  ASSERT_TRUE(m.ParseFromArray(bytes.data(), static_cast<int>(bytes.size())));
  ASSERT_EQ(m.description().output_size(), 1);
  EXPECT_TRUE(m.description().output(0).type().has_multiarraytype());
  auto back = read_mlpackage(dir);
  ASSERT_TRUE(back.has_value()) << back.status().to_string();
  EXPECT_TRUE(back->input_spec.labels.empty());
}

TEST(MlPackage, CorruptPackagesFailCleanly) {
  const std::string dir = save(simple_cnn_32(), unfolded(), "corrupt");
  const std::string wpath = dir + "/Data/com.apple.CoreML/weights/weight.bin";
  const auto w = slurp(wpath);
  // Truncated weights: a blob runs past the end.
  ASSERT_TRUE(write_file_atomic(wpath, std::span(w.data(), w.size() / 2)).is_ok());
  auto r = read_mlpackage(dir);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidModel);
  EXPECT_NE(r.status().message().find("weight.bin"), std::string::npos) << r.status().message();
  // A broken sentinel.
  auto bad = w;
  bad[64] ^= 0xFF;
  ASSERT_TRUE(write_file_atomic(wpath, bad).is_ok());
  r = read_mlpackage(dir);
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.status().message().find("sentinel"), std::string::npos) << r.status().message();
  // A wrong version.
  bad = w;
  bad[4] = 1;
  ASSERT_TRUE(write_file_atomic(wpath, bad).is_ok());
  EXPECT_FALSE(read_mlpackage(dir).has_value());
  ASSERT_TRUE(write_file_atomic(wpath, w).is_ok());
  ASSERT_TRUE(read_mlpackage(dir).has_value());
  // A manifest pointing outside the package, then garbage.
  ASSERT_TRUE(write_file_atomic(dir + "/Manifest.json", std::string_view(
      R"({"fileFormatVersion":"1.0.0","itemInfoEntries":{"A":{"path":"../../etc/passwd"}},"rootModelIdentifier":"A"})")).is_ok());
  r = read_mlpackage(dir);
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.status().message().find("leaves the package"), std::string::npos);
  ASSERT_TRUE(write_file_atomic(dir + "/Manifest.json", std::string_view("{not json")).is_ok());
  EXPECT_FALSE(read_mlpackage(dir).has_value());
  // Not a directory / missing.
  EXPECT_EQ(read_mlpackage(dir + "/nope").status().code(), StatusCode::kIoError);
}

TEST(MlPackage, UnsupportedOpIsNamed) {
  const std::string dir = save(simple_cnn_32(), unfolded(), "unsup");
  const std::string mpath = dir + "/Data/com.apple.CoreML/model.mlmodel";
  const auto bytes = slurp(mpath);
  spec::Model m;
  ASSERT_TRUE(m.ParseFromArray(bytes.data(), static_cast<int>(bytes.size())));
  auto& fn = (*m.mutable_mlprogram()->mutable_functions())["main"];
  auto& block = (*fn.mutable_block_specializations())[fn.opset()];
  for (auto& op : *block.mutable_operations()) {
    if (op.type() == "relu") {
      op.set_type("gelu");
      break;
    }
  }
  std::string out;
  ASSERT_TRUE(m.SerializeToString(&out));
  ASSERT_TRUE(write_file_atomic(mpath, std::string_view(out)).is_ok());
  auto r = read_mlpackage(dir);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.status().code(), StatusCode::kUnsupported);
  EXPECT_NE(r.status().message().find("gelu"), std::string::npos) << r.status().message();
}

TEST(Describe, MlModelAndMlPackage) {
  const std::string dir = pcv::testing::make_temp_dir("coreml_describe");
  ASSERT_TRUE(save_mlmodel(simple_cnn_32(), dir + "/s.mlmodel").is_ok());
  auto a = describe_coreml(dir + "/s.mlmodel");
  ASSERT_TRUE(a.has_value()) << a.status().to_string();
  for (const char* s : {"NeuralNetworkClassifier", "specification version: 1", "image 32x32 RGB", "classLabel_probs",
                        "labels (2): cat, dog", "convolution", "innerProduct", "fp32", "flatten channel-last"}) {
    EXPECT_NE(a->find(s), std::string::npos) << s << "\n" << *a;
  }
  ASSERT_TRUE(save_mlpackage(mobilenet_v2_64(), dir + "/m.mlpackage").is_ok());
  auto b = describe_coreml(dir + "/m.mlpackage");
  ASSERT_TRUE(b.has_value()) << b.status().to_string();
  for (const char* s : {"ML Program", "specification version: 6", "opset CoreML5", "conv", "classify",
                        "labels (2): cat, dog", "weight file"}) {
    EXPECT_NE(b->find(s), std::string::npos) << s << "\n" << *b;
  }
  EXPECT_TRUE(is_coreml_path(dir + "/m.mlpackage"));
  EXPECT_TRUE(is_coreml_path("x.MLMODEL"));
  EXPECT_FALSE(is_coreml_path("x.tflite"));
  EXPECT_FALSE(describe_coreml(dir + "/missing.mlmodel").has_value());
}

}  // namespace
}  // namespace pcv::coreml
