// ONNX writer: our exports of zoo models run in ONNX Runtime with our runtime's outputs, and
// read back into the same model.
#include <gtest/gtest.h>

#include "formats/onnx/onnx.h"
#include "formats/onnx/onnx_test_util.h"
#include "runtime/session.h"
#include "support/oracle.h"
#include "zoo/zoo.h"

namespace pcv::onnx_test {
namespace {

// The zoo model; with `logits` its final softmax is dropped (a more sensitive comparison).
ir::Model zoo_model(const std::string& arch, int size, float width, int classes, bool logits = false) {
  zoo::ZooOptions o;
  o.arch = arch;
  o.size = size;
  o.width = width;
  o.classes = classes;
  o.seed = 7;
  auto m = zoo::create_model(o);
  EXPECT_TRUE(m.has_value()) << m.status().to_string();
  m->input_spec.mean = {127.5f, 127.5f, 127.5f};
  m->input_spec.std = {127.5f, 127.5f, 127.5f};
  m->metadata.name = arch;
  m->metadata.author = "pocketcv tests";
  if (logits) {
    ir::Graph& g = m->graph;
    const int p = g.producer(g.outputs[0]);
    EXPECT_EQ(g.nodes[static_cast<size_t>(p)].op, ir::OpType::kSoftmax);
    g.outputs[0] = g.nodes[static_cast<size_t>(p)].inputs[0];
    g.nodes.erase(g.nodes.begin() + p);
  }
  return std::move(m).value();
}

// Exports `m`, runs it in ONNX Runtime (NCHW input) and in our runtime (NHWC input), and
// checks both agree; then reads the export back and checks it too.
void check_export_impl(const ir::Model& m, const std::string& file) {
  const ir::Value& in = m.graph.value(m.graph.inputs[0]);
  const ir::Shape nhwc = in.shape;
  const ir::Shape nchw = {nhwc[0], nhwc[3], nhwc[1], nhwc[2]};
  const std::vector<float> x_nchw = random_floats(static_cast<size_t>(ir::num_elements(nchw)), 42);
  const std::vector<float> x_nhwc = to_nhwc(x_nchw, nchw);

  auto ours = run_ours(m, x_nhwc);
  ASSERT_TRUE(ours.has_value()) << ours.status().to_string();

  auto bytes = onnx::write_onnx(m);
  ASSERT_TRUE(bytes.has_value()) << bytes.status().to_string();
  const std::string path = temp_path(file);
  ASSERT_TRUE(onnx::save_onnx(m, path).is_ok());

  // Read back: same outputs, same input spec and labels, no transposes in the IR.
  auto back = onnx::read_onnx(*bytes, file);
  ASSERT_TRUE(back.has_value()) << back.status().to_string();
  EXPECT_EQ(back->input_spec, m.input_spec);
  EXPECT_EQ(back->metadata.author, m.metadata.author);
  EXPECT_EQ(back->graph.value(back->graph.inputs[0]).shape, nhwc);
  auto again = run_ours(*back, x_nhwc);
  ASSERT_TRUE(again.has_value()) << again.status().to_string();
  EXPECT_TRUE(all_close(*again, *ours, 1e-5f, 1e-5f)) << "read-back model differs";
  EXPECT_EQ(ir::to_text(*back).find("transpose"), std::string::npos);

  if (auto why = testing::oracle_unavailable_reason(); !why.empty()) GTEST_SKIP() << why;
  std::vector<float> ort;
  std::vector<int64_t> shape;
  std::string err;
  ASSERT_TRUE(run_ort(path, x_nchw, &ort, &shape, &err)) << err;
  EXPECT_EQ(shape, m.graph.value(m.graph.outputs[0]).shape);
  EXPECT_TRUE(all_close(*ours, ort, 1e-5f, 1e-4f));
}

void check_export(const ir::Model& m, const std::string& file) {
  SCOPED_TRACE(file);
  check_export_impl(m, file);
}

TEST(OnnxWriter, SimpleCnn32MatchesOnnxRuntime) {
  check_export(zoo_model("simple_cnn", 32, 1.0f, 5), "simple_cnn32.onnx");
  check_export(zoo_model("simple_cnn", 32, 1.0f, 5, /*logits=*/true), "simple_cnn32_logits.onnx");
}

TEST(OnnxWriter, MobileNetV2Width035At64MatchesOnnxRuntime) {
  check_export(zoo_model("mobilenet_v2", 64, 0.35f, 10), "mobilenet_v2_035_64.onnx");
  check_export(zoo_model("mobilenet_v2", 64, 0.35f, 10, /*logits=*/true), "mobilenet_v2_035_64_logits.onnx");
}

TEST(OnnxWriter, GraphIsNchwOpset13WithMetadata) {
  ir::Model m = zoo_model("simple_cnn", 32, 1.0f, 3);
  auto bytes = onnx::write_onnx(m);
  ASSERT_TRUE(bytes.has_value()) << bytes.status().to_string();
  onnx::detail::pb::ModelProto p;
  ASSERT_TRUE(p.ParseFromArray(bytes->data(), static_cast<int>(bytes->size())));
  EXPECT_EQ(p.opset_import(0).version(), 13);
  EXPECT_EQ(p.producer_name(), "pocketcv");
  const auto& dims = p.graph().input(0).type().tensor_type().shape().dim();
  ASSERT_EQ(dims.size(), 4);
  EXPECT_EQ(dims[1].dim_value(), 3);  // (N, C, H, W)
  EXPECT_EQ(dims[2].dim_value(), 32);
  int transposes = 0;
  for (const auto& n : p.graph().node()) transposes += n.op_type() == "Transpose";
  EXPECT_EQ(transposes, 1);  // one, before the flatten of the last feature map
  bool labels = false;
  for (const auto& kv : p.metadata_props()) labels |= kv.key() == "pocketcv.labels";
  EXPECT_TRUE(labels);
}

}  // namespace
}  // namespace pcv::onnx_test
