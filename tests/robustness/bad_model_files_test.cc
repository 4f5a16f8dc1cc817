// The bad-input catalogue, model files: missing, empty, a directory, the wrong or an unknown
// extension, truncated in every format (a .mlpackage with a truncated weight.bin too),
// tensor indices out of range, huge dimensions, unsupported ops. Each case runs `pocketcv
// convert BAD -o OUT` (and `predict`, `bench` where they add something) and checks: exit 1,
// a message naming the file and the problem, no crash, and OUT not written (the work
// directory byte-identical afterwards). The C API gets the same files where its answer
// (status code + message) says more.
#include <gtest/gtest.h>

#include <filesystem>

#include "base/file.h"
#include "ir/pcv_generated.h"
#include "pocketcv/pocketcv.h"
#include "robustness/robustness_util.h"
#include "support/paths.h"

#if PCV_TFLITE_AVAILABLE
#include "formats/tflite/tflite_schema_generated.h"
#endif
#if PCV_ONNX_AVAILABLE
#include <onnx/onnx_pb.h>
#endif

namespace pcv::testing {
namespace {
namespace fs = std::filesystem;
using formats::Format;

// `pocketcv convert model -o DIR/out.pcv` must fail with exit 1 and every needle in stderr,
// leaving DIR as it was.
void expect_convert_refused(const std::string& model, const std::vector<std::string>& needles) {
  const std::string dir = make_temp_dir("pcv_robust_out");
  write_text(dir + "/previous.pcv", "a previous output that must survive");
  const Tree before = snapshot(dir);
  const CliResult r = run_cli({"convert", model, "-o", dir + "/previous.pcv"});
  EXPECT_TRUE(failed_cleanly(r, 1, needles)) << "convert " << model;
  EXPECT_EQ(tree_diff(before, snapshot(dir)), "")
      << "convert " << model << " touched its output directory";
  fs::remove_all(dir);
}

// The C API on the same file: an error status (never a crash), *out_model NULL, a message
// naming the file.
void expect_capi_refused(const std::string& model, pcv_status expected) {
  pcv_model* m = reinterpret_cast<pcv_model*>(0x1);
  const pcv_status s = pcv_model_load_file(model.c_str(), &m);
  EXPECT_EQ(s, expected) << model << ": " << pcv_status_name(s) << " " << pcv_last_error_message();
  EXPECT_EQ(m, nullptr);
  EXPECT_NE(std::string(pcv_last_error_message()).find(fs::path(model).filename().string()),
            std::string::npos)
      << pcv_last_error_message();
  pcv_model_free(m == reinterpret_cast<pcv_model*>(0x1) ? nullptr : m);
}

TEST(BadModelFile, Missing) {
  const std::string dir = make_temp_dir("pcv_robust_missing");
  for (Format f : model_formats()) {
    const std::string path = dir + "/absent" + extension_of(f);
    expect_convert_refused(path, {"absent" + extension_of(f), "no such file"});
    EXPECT_TRUE(
        failed_cleanly(run_cli({"predict", path, dir + "/x.png"}), 1, {path, "no such file"}));
    expect_capi_refused(path, PCV_ERROR_IO);
  }
}

TEST(BadModelFile, Empty) {
  const std::string dir = make_temp_dir("pcv_robust_empty");
  for (Format f : model_formats()) {
    if (f == Format::kMlpackage) continue;  // a directory: the empty bundle is below
    const std::string path = dir + "/empty" + extension_of(f);
    write_text(path, "");
    expect_convert_refused(path, {path, "empty file"});
    EXPECT_TRUE(failed_cleanly(run_cli({"bench", path, "--runs", "1"}), 1, {path, "empty file"}));
    expect_capi_refused(path, PCV_ERROR_INVALID_MODEL);
  }
  // An empty .mlpackage directory: the missing manifest/spec is named.
  fs::create_directories(dir + "/bundle.mlpackage");
  expect_convert_refused(dir + "/bundle.mlpackage", {"bundle.mlpackage"});
  // A directory where a file is expected.
  fs::create_directories(dir + "/dir.tflite");
  expect_convert_refused(dir + "/dir.tflite", {"dir.tflite", "directory"});
}

TEST(BadModelFile, WrongExtension) {
  const std::string dir = make_temp_dir("pcv_robust_ext");
  // A PNG picture named like a model of every format: the reader of that format says it is
  // not one of its files.
  const std::map<Format, std::string> problem = {{Format::kPcv, "not a .pcv file"},
                                                 {Format::kTflite, "not a TFLite model"},
                                                 {Format::kMlmodel, "not a Core ML model"},
                                                 {Format::kOnnx, "not a valid ONNX model"}};
  for (Format f : model_formats()) {
    if (f == Format::kMlpackage) continue;
    const std::string path = dir + "/picture" + extension_of(f);
    write_bytes(path, tiny_png());
    expect_convert_refused(path, {path, problem.at(f)});
    expect_capi_refused(path, PCV_ERROR_INVALID_MODEL);
  }
  // A model in one format named as another.
  const std::string swapped = dir + "/really_pcv.tflite";
  fs::copy_file(tiny_model(Format::kPcv), swapped);
  expect_convert_refused(swapped, {swapped, "not a TFLite model"});
  // Unknown extension: the content decides; a picture is no model.
  write_bytes(dir + "/picture.xyz", tiny_png());
  expect_convert_refused(dir + "/picture.xyz",
                         {"picture.xyz", "not a model file pocketcv recognizes"});
  // ... but a real model under an unknown extension loads (content sniffing).
  fs::copy_file(tiny_model(Format::kPcv), dir + "/model.bin");
  const CliResult ok = run_cli({"convert", dir + "/model.bin", "-o", dir + "/back.pcv"});
  EXPECT_EQ(ok.exit_code, 0) << ok.err;
  // An unknown output extension or --to: refused before anything is written.
  const Tree before = snapshot(dir);
  EXPECT_TRUE(failed_cleanly(run_cli({"convert", tiny_model(Format::kPcv), "-o", dir + "/out.xyz"}),
                             1, {"out.xyz", "unknown model extension"}));
  EXPECT_TRUE(failed_cleanly(
      run_cli({"convert", tiny_model(Format::kPcv), "--to", "keras", "-o", dir + "/o.pcv"}), 1,
      {"unknown format 'keras'"}));
  EXPECT_EQ(tree_diff(before, snapshot(dir)), "");
}

// Cut points: inside the header, a third, half, all but the last byte.
std::vector<size_t> cut_points(size_t size) { return {1, 8, 24, size / 3, size / 2, size - 1}; }

TEST(BadModelFile, TruncatedEveryFormat) {
  const std::string dir = make_temp_dir("pcv_robust_cut");
  for (Format f : model_formats()) {
    if (f == Format::kMlpackage) continue;
    const std::vector<uint8_t> whole = read_bytes(tiny_model(f));
    for (size_t cut : cut_points(whole.size())) {
      const std::string path = dir + "/cut" + std::to_string(cut) + extension_of(f);
      write_bytes(path,
                  std::vector<uint8_t>(whole.begin(), whole.begin() + static_cast<long>(cut)));
      SCOPED_TRACE(path);
      expect_convert_refused(path, {path});
      expect_capi_refused(path, PCV_ERROR_INVALID_MODEL);
      if (f == Format::kPcv || f == Format::kTflite) {
        // The same bytes from memory (what an app with a bundled asset does).
        pcv_model* m = nullptr;
        EXPECT_EQ(pcv_model_load_memory(whole.data(), cut, "asset.bin", &m),
                  PCV_ERROR_INVALID_MODEL);
        EXPECT_EQ(m, nullptr);
        EXPECT_NE(std::string(pcv_last_error_message()).find("asset.bin"), std::string::npos)
            << pcv_last_error_message();
      }
    }
  }
}

#if PCV_COREML_AVAILABLE
TEST(BadModelFile, MlpackageWithTruncatedWeights) {
  const std::string dir = make_temp_dir("pcv_robust_mlpackage");
  const std::string rel = "Data/com.apple.CoreML/weights/weight.bin";
  const std::vector<uint8_t> weights = read_bytes(tiny_model(Format::kMlpackage) + "/" + rel);
  ASSERT_GT(weights.size(), 256u);
  for (size_t cut : {size_t{0}, size_t{10}, size_t{64}, weights.size() / 2, weights.size() - 1}) {
    const std::string pkg = dir + "/cut" + std::to_string(cut) + ".mlpackage";
    fs::copy(tiny_model(Format::kMlpackage), pkg, fs::copy_options::recursive);
    write_bytes(pkg + "/" + rel,
                std::vector<uint8_t>(weights.begin(), weights.begin() + static_cast<long>(cut)));
    SCOPED_TRACE(pkg);
    expect_convert_refused(pkg, {pkg, "weight.bin"});
    expect_capi_refused(pkg, PCV_ERROR_INVALID_MODEL);
  }
  // The spec inside the bundle truncated.
  const std::string pkg = dir + "/spec.mlpackage";
  fs::copy(tiny_model(Format::kMlpackage), pkg, fs::copy_options::recursive);
  const std::string spec = pkg + "/Data/com.apple.CoreML/model.mlmodel";
  const std::vector<uint8_t> spec_bytes = read_bytes(spec);
  write_bytes(spec, std::vector<uint8_t>(spec_bytes.begin(), spec_bytes.begin() + 100));
  expect_convert_refused(pkg, {"model.mlmodel", "truncated"});
}
#endif

// ---- indices out of range, patched into files our writers made ----

TEST(BadModelFile, PcvNodeInputOutOfRange) {
  const std::string dir = make_temp_dir("pcv_robust_pcv_index");
  std::vector<uint8_t> bytes = read_bytes(tiny_model(Format::kPcv));
  const pcv::fb::Model* m = pcv::fb::GetModel(bytes.data());
  ASSERT_TRUE(m->nodes() && m->nodes()->size() > 0);
  const auto* ins = m->nodes()->Get(0)->inputs();
  ASSERT_TRUE(ins && ins->size() > 0);
  std::vector<uint8_t> bad = bytes;
  patch<int32_t>(bad, offset_in(bytes, ins->data()), 999);
  write_bytes(dir + "/index.pcv", bad);
  expect_convert_refused(dir + "/index.pcv", {"index.pcv", "999"});
  // A graph input naming a value that does not exist.
  bad = bytes;
  patch<int32_t>(bad, offset_in(bytes, m->inputs()->data()), -7);
  write_bytes(dir + "/input.pcv", bad);
  expect_convert_refused(dir + "/input.pcv", {"input.pcv", "-7"});
}

#if PCV_TFLITE_AVAILABLE
namespace tfl = pcv::tflite::fb;

TEST(BadModelFile, TfliteTensorIndexOutOfRange) {
  const std::string dir = make_temp_dir("pcv_robust_tflite_index");
  const std::vector<uint8_t> bytes = read_bytes(tiny_model(Format::kTflite));
  const tfl::Model* m = tfl::GetModel(bytes.data());
  const tfl::SubGraph* sg = m->subgraphs()->Get(0);
  const tfl::Operator* op = sg->operators()->Get(0);
  // An operator whose opcode_index is stored (0, the default, is left out of the buffer).
  const uint8_t* opcode_at = nullptr;
  for (const tfl::Operator* o : *sg->operators()) {
    opcode_at = reinterpret_cast<const flatbuffers::Table*>(o)->GetAddressOf(
        tfl::Operator::VT_OPCODE_INDEX);
    if (opcode_at != nullptr) break;
  }
  ASSERT_NE(opcode_at, nullptr) << "every operator uses opcode 0";
  struct Case {
    const char* name;
    const void* where;
    int32_t value;
    std::string expect;
  };
  const std::vector<Case> cases = {
      {"op_input", op->inputs()->data(), 999, "input tensor index 999 out of range"},
      {"op_weights", op->inputs()->data() + 1, -3, "input tensor index -3 out of range"},
      {"op_output", op->outputs()->data(), 999, "output tensor index 999 out of range"},
      {"graph_input", sg->inputs()->data(), 999, "999"},
      {"graph_output", sg->outputs()->data(), 12345, "12345"},
      {"opcode", opcode_at, 77, "opcode index 77 out of range"},
  };
  for (const Case& c : cases) {
    std::vector<uint8_t> bad = bytes;
    patch<int32_t>(bad, offset_in(bytes, c.where), c.value);
    const std::string path = dir + "/" + c.name + ".tflite";
    write_bytes(path, bad);
    SCOPED_TRACE(c.name);
    expect_convert_refused(path, {path, c.expect});
    expect_capi_refused(path, PCV_ERROR_INVALID_MODEL);
  }
}

TEST(BadModelFile, TfliteUnsupportedOpIsNamed) {
  const std::string dir = make_temp_dir("pcv_robust_tflite_op");
  const std::vector<uint8_t> bytes = read_bytes(tiny_model(Format::kTflite));
  const tfl::Model* m = tfl::GetModel(bytes.data());
  const tfl::SubGraph* sg = m->subgraphs()->Get(0);
  const tfl::OperatorCode* oc = m->operator_codes()->Get(sg->operators()->Get(0)->opcode_index());
  const auto* table = reinterpret_cast<const flatbuffers::Table*>(oc);
  const uint8_t* dep = table->GetAddressOf(tfl::OperatorCode::VT_DEPRECATED_BUILTIN_CODE);
  const uint8_t* code = table->GetAddressOf(tfl::OperatorCode::VT_BUILTIN_CODE);
  ASSERT_TRUE(dep && code);
  std::vector<uint8_t> bad = bytes;
  patch<int8_t>(bad, offset_in(bytes, dep), static_cast<int8_t>(tfl::BuiltinOperator::LSTM));
  patch<int32_t>(bad, offset_in(bytes, code), static_cast<int32_t>(tfl::BuiltinOperator::LSTM));
  write_bytes(dir + "/lstm.tflite", bad);
  expect_convert_refused(dir + "/lstm.tflite", {"lstm.tflite", "LSTM"});
  expect_capi_refused(dir + "/lstm.tflite", PCV_ERROR_UNSUPPORTED);
}
#endif

// ---- huge dimensions: a dim of 2^40, products that overflow int64 ----

TEST(BadModelFile, PcvHugeDimensions) {
  const std::string dir = make_temp_dir("pcv_robust_pcv_dims");
  const std::vector<uint8_t> bytes = read_bytes(tiny_model(Format::kPcv));
  const pcv::fb::Model* m = pcv::fb::GetModel(bytes.data());
  const int32_t in = m->inputs()->Get(0);
  const auto* in_shape = m->values()->Get(static_cast<flatbuffers::uoffset_t>(in))->shape();
  ASSERT_EQ(in_shape->size(), 4u);  // (1, 16, 16, 3)
  // A constant (weights): its shape no longer matches its bytes, or overflows.
  const pcv::fb::Value* weights = nullptr;
  for (const pcv::fb::Value* v : *m->values()) {
    if (v->buffer() != 0 && v->shape() && v->shape()->size() == 4) {
      weights = v;
      break;
    }
  }
  ASSERT_NE(weights, nullptr);
  const int64_t kHuge = int64_t{1} << 40;
  struct Case {
    const char* name;
    std::vector<std::pair<const int64_t*, int64_t>> dims;
    std::string expect;
  };
  const int64_t* x = in_shape->data();
  const int64_t* w = weights->shape()->data();
  const std::vector<Case> cases = {
      {"input_2e40", {{x + 1, kHuge}}, "too large"},
      {"input_overflow", {{x + 1, kHuge}, {x + 2, kHuge}}, "too large"},
      {"input_negative", {{x + 1, -16}}, "negative"},
      {"weights_2e40", {{w + 0, kHuge}}, "too large"},
      {"weights_overflow", {{w + 0, kHuge}, {w + 1, kHuge}, {w + 2, kHuge}}, "too large"},
      {"weights_mismatch", {{w + 0, 64}}, "bytes"},
  };
  for (const Case& c : cases) {
    std::vector<uint8_t> bad = bytes;
    for (const auto& [at, v] : c.dims) patch<int64_t>(bad, offset_in(bytes, at), v);
    const std::string path = dir + "/" + c.name + ".pcv";
    write_bytes(path, bad);
    SCOPED_TRACE(c.name);
    expect_convert_refused(path, {path, c.expect});
    expect_capi_refused(path, PCV_ERROR_INVALID_MODEL);
  }
}

#if PCV_TFLITE_AVAILABLE
TEST(BadModelFile, TfliteHugeDimensions) {
  const std::string dir = make_temp_dir("pcv_robust_tflite_dims");
  const std::vector<uint8_t> bytes = read_bytes(tiny_model(Format::kTflite));
  const tfl::Model* m = tfl::GetModel(bytes.data());
  const tfl::SubGraph* sg = m->subgraphs()->Get(0);
  const auto* in_shape =
      sg->tensors()->Get(static_cast<flatbuffers::uoffset_t>(sg->inputs()->Get(0)))->shape();
  ASSERT_EQ(in_shape->size(), 4u);
  const int32_t* x = in_shape->data();
  struct Case {
    const char* name;
    std::vector<std::pair<const int32_t*, int32_t>> dims;
    std::string expect;
  };
  const int32_t kMax = 1 << 24;  // the reader's per-dimension bound
  const std::vector<Case> cases = {
      {"dim_int32_max", {{x + 1, INT32_MAX}}, "dimension 2147483647 out of range"},
      {"dim_negative", {{x + 2, -5}}, "dimension -5 out of range"},
      // Every dimension within the bound, the product 2^72: must not overflow silently.
      {"product_overflow", {{x + 0, kMax}, {x + 1, kMax}, {x + 2, kMax}}, "too large"},
  };
  for (const Case& c : cases) {
    std::vector<uint8_t> bad = bytes;
    for (const auto& [at, v] : c.dims) patch<int32_t>(bad, offset_in(bytes, at), v);
    const std::string path = dir + "/" + c.name + ".tflite";
    write_bytes(path, bad);
    SCOPED_TRACE(c.name);
    expect_convert_refused(path, {path, c.expect});
    EXPECT_TRUE(failed_cleanly(run_cli({"bench", path, "--runs", "1"}), 1, {path}));
  }
}
#endif

#if PCV_ONNX_AVAILABLE
// x (1, 3, 8, 8) -> [nodes] -> y; `dims` overrides x's shape.
::onnx::ModelProto onnx_model(const std::vector<int64_t>& dims = {1, 3, 8, 8}) {
  ::onnx::ModelProto m;
  m.set_ir_version(7);
  m.set_producer_name("pocketcv-robustness");
  m.add_opset_import()->set_version(13);
  ::onnx::GraphProto* g = m.mutable_graph();
  g->set_name("g");
  ::onnx::ValueInfoProto* x = g->add_input();
  x->set_name("x");
  auto* tt = x->mutable_type()->mutable_tensor_type();
  tt->set_elem_type(::onnx::TensorProto::FLOAT);
  for (int64_t d : dims) tt->mutable_shape()->add_dim()->set_dim_value(d);
  g->add_output()->set_name("y");
  g->mutable_output(0)->mutable_type()->mutable_tensor_type()->set_elem_type(
      ::onnx::TensorProto::FLOAT);
  return m;
}

void add_node(::onnx::ModelProto& m, const std::string& op, const std::vector<std::string>& ins,
              const std::string& out) {
  ::onnx::NodeProto* n = m.mutable_graph()->add_node();
  n->set_op_type(op);
  n->set_name(op + "_node");
  for (const auto& i : ins) n->add_input(i);
  n->add_output(out);
}

void save_onnx(const ::onnx::ModelProto& m, const std::string& path) {
  std::string s;
  ASSERT_TRUE(m.SerializeToString(&s));
  write_text(path, s);
}

TEST(BadModelFile, OnnxSelfCheck) {
  // The builder's valid graph loads: the failures below are the patched parts'.
  auto m = onnx_model();
  add_node(m, "GlobalAveragePool", {"x"}, "p");
  add_node(m, "Flatten", {"p"}, "y");
  const std::string dir = make_temp_dir("pcv_robust_onnx_ok");
  save_onnx(m, dir + "/ok.onnx");
  const CliResult r = run_cli({"convert", dir + "/ok.onnx", "-o", dir + "/ok.pcv"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
}

TEST(BadModelFile, OnnxUnsupportedOpIsNamed) {
  const std::string dir = make_temp_dir("pcv_robust_onnx_op");
  auto m = onnx_model();
  add_node(m, "Einsum", {"x", "x"}, "e");
  add_node(m, "FrobnicateXyz", {"e"}, "y");
  save_onnx(m, dir + "/ops.onnx");
  expect_convert_refused(dir + "/ops.onnx", {"ops.onnx", "Einsum", "FrobnicateXyz"});
  EXPECT_TRUE(failed_cleanly(run_cli({"predict", dir + "/ops.onnx", dir + "/x.png"}), 1,
                             {"ops.onnx", "Einsum"}));
  expect_capi_refused(dir + "/ops.onnx", PCV_ERROR_UNSUPPORTED);
}

TEST(BadModelFile, OnnxHugeDimensionsAndDanglingNames) {
  const std::string dir = make_temp_dir("pcv_robust_onnx_dims");
  const int64_t kHuge = int64_t{1} << 40;
  // An input of 2^40 x 2^40 pixels.
  auto m = onnx_model({1, 3, kHuge, kHuge});
  add_node(m, "GlobalAveragePool", {"x"}, "p");
  add_node(m, "Flatten", {"p"}, "y");
  save_onnx(m, dir + "/input.onnx");
  expect_convert_refused(dir + "/input.onnx", {"input.onnx", "too large"});
  // A weight whose dims overflow int64 (and whose data is missing).
  m = onnx_model();
  ::onnx::TensorProto* w = m.mutable_graph()->add_initializer();
  w->set_name("w");
  w->set_data_type(::onnx::TensorProto::FLOAT);
  for (int64_t d : {kHuge, kHuge, int64_t{3}, int64_t{3}}) w->add_dims(d);
  add_node(m, "Conv", {"x", "w"}, "c");
  add_node(m, "GlobalAveragePool", {"c"}, "p");
  add_node(m, "Flatten", {"p"}, "y");
  save_onnx(m, dir + "/weights.onnx");
  expect_convert_refused(dir + "/weights.onnx", {"weights.onnx"});
  // A node reading a tensor nobody produces (the ONNX form of an index out of range).
  m = onnx_model();
  add_node(m, "Relu", {"nowhere"}, "r");
  add_node(m, "GlobalAveragePool", {"r"}, "p");
  add_node(m, "Flatten", {"p"}, "y");
  save_onnx(m, dir + "/dangling.onnx");
  expect_convert_refused(dir + "/dangling.onnx", {"dangling.onnx", "nowhere"});
}
#endif

}  // namespace
}  // namespace pcv::testing
