// ONNX reader: hand-built NCHW graphs (the patterns torch.onnx.export writes) imported into the
// NHWC IR and run by pocketcv, against ONNX Runtime on the same input; errors for what the IR
// cannot express; limits for untrusted bytes.
#include <gtest/gtest.h>

#include <fstream>

#include "formats/onnx/onnx.h"
#include "formats/onnx/onnx_test_util.h"
#include "support/oracle.h"
#if PCV_HAVE_FORMATS
#include "formats/model_io.h"
#endif

namespace pcv::onnx_test {
namespace {

using GB = GraphBuilder;

// Reads the builder's model, runs it in pocketcv (NHWC input) and in ONNX Runtime (NCHW input)
// on the same random data, and checks the outputs agree.
void check_against_ort(const GraphBuilder& b, const ir::Shape& in_nchw, const std::string& file,
                       float rel = 1e-5f, float abs = 1e-4f, ir::Model* model_out = nullptr) {
  const auto bytes = b.bytes();
  const std::string path = temp_path(file);
  {
    std::ofstream f(path, std::ios::binary);
    f.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  }
  onnx::ReadInfo info;
  auto m = onnx::read_onnx(bytes, file, &info);
  ASSERT_TRUE(m.has_value()) << m.status().to_string();
  EXPECT_EQ(ir::to_text(*m).find("transpose"), std::string::npos);
  const std::vector<float> x = random_floats(static_cast<size_t>(ir::num_elements(in_nchw)), 3, -2.f, 2.f);
  auto ours = run_ours(*m, in_nchw.size() == 4 ? to_nhwc(x, in_nchw) : x);
  ASSERT_TRUE(ours.has_value()) << ours.status().to_string();
  const ir::Shape& out_shape = m->graph.value(m->graph.outputs[0]).shape;
  std::vector<float> ours_onnx = out_shape.size() == 4 ? to_nchw(*ours, out_shape) : *ours;
  if (model_out) *model_out = *m;
  if (auto why = testing::oracle_unavailable_reason(); !why.empty()) GTEST_SKIP() << why;
  std::vector<float> ort;
  std::string err;
  ASSERT_TRUE(run_ort(path, x, &ort, nullptr, &err)) << err;
  EXPECT_TRUE(all_close(ours_onnx, ort, rel, abs));
}

int count_ops(const ir::Model& m, ir::OpType op) {
  int n = 0;
  for (const auto& node : m.graph.nodes) n += node.op == op;
  return n;
}

// Conv -> BatchNormalization -> Relu -> GlobalAveragePool -> x.view(x.size(0), -1) -> Linear,
// as torch.onnx.export (opset 13) writes it: the view is a Shape/Gather/Unsqueeze/Concat chain.
TEST(OnnxReader, PyTorchConvBnReluPoolViewLinear) {
  GB b(13, "pytorch");
  b.input("input", {1, 3, 16, 16});
  b.init_random("conv.weight", {8, 3, 3, 3}, 1);
  b.init_random("conv.bias", {8}, 2);
  b.init_random("bn.weight", {8}, 3, 0.5f, 1.5f);
  b.init_random("bn.bias", {8}, 4);
  b.init_random("bn.running_mean", {8}, 5);
  b.init_random("bn.running_var", {8}, 6, 0.5f, 2.f);
  b.init_random("fc.weight", {4, 8}, 7);
  b.init_random("fc.bias", {4}, 8);
  auto* c = b.node("Conv", {"input", "conv.weight", "conv.bias"}, {"/conv/Conv_output_0"}, "/conv/Conv");
  GB::attr(c, "kernel_shape", std::vector<int64_t>{3, 3});
  GB::attr(c, "pads", std::vector<int64_t>{1, 1, 1, 1});
  GB::attr(c, "strides", std::vector<int64_t>{1, 1});
  auto* bn = b.node("BatchNormalization", {"/conv/Conv_output_0", "bn.weight", "bn.bias", "bn.running_mean", "bn.running_var"},
                    {"/bn/BatchNormalization_output_0"}, "/bn/BatchNormalization");
  GB::attr(bn, "epsilon", 1e-5f);
  b.node("Relu", {"/bn/BatchNormalization_output_0"}, {"/relu/Relu_output_0"}, "/relu/Relu");
  b.node("GlobalAveragePool", {"/relu/Relu_output_0"}, {"/pool/GlobalAveragePool_output_0"}, "/pool/GlobalAveragePool");
  b.node("Shape", {"/pool/GlobalAveragePool_output_0"}, {"/Shape_output_0"}, "/Shape");
  b.init_i64("/Constant_output_0", {}, {0});
  auto* ga = b.node("Gather", {"/Shape_output_0", "/Constant_output_0"}, {"/Gather_output_0"}, "/Gather");
  GB::attr(ga, "axis", int64_t{0});
  b.init_i64("/Constant_1_output_0", {1}, {0});
  b.node("Unsqueeze", {"/Gather_output_0", "/Constant_1_output_0"}, {"/Unsqueeze_output_0"}, "/Unsqueeze");
  b.init_i64("/Constant_2_output_0", {1}, {-1});
  auto* cat = b.node("Concat", {"/Unsqueeze_output_0", "/Constant_2_output_0"}, {"/Concat_output_0"}, "/Concat");
  GB::attr(cat, "axis", int64_t{0});
  b.node("Reshape", {"/pool/GlobalAveragePool_output_0", "/Concat_output_0"}, {"/Reshape_output_0"}, "/Reshape");
  auto* fc = b.node("Gemm", {"/Reshape_output_0", "fc.weight", "fc.bias"}, {"output"}, "/fc/Gemm");
  GB::attr(fc, "transB", int64_t{1});
  GB::attr(fc, "alpha", 1.f);
  GB::attr(fc, "beta", 1.f);
  b.output("output");
  ir::Model m;
  ASSERT_NO_FATAL_FAILURE(check_against_ort(b, {1, 3, 16, 16}, "pytorch_pattern.onnx", 1e-5f, 1e-4f, &m));
  EXPECT_EQ(count_ops(m, ir::OpType::kBatchNorm), 0) << "batch norm folds into the conv";
  EXPECT_EQ(count_ops(m, ir::OpType::kConv2d), 1);
  EXPECT_EQ(count_ops(m, ir::OpType::kFullyConnected), 1);
}

// Flatten of a spatial NCHW feature map into Gemm (transB=0) and MatMul + Add: no transpose,
// the dense weights' columns are permuted from CHW to HWC.
TEST(OnnxReader, FlattenOfSpatialFeatureMapPermutesDenseWeights) {
  GB b(13);
  b.input("x", {1, 2, 8, 8});
  b.init_random("w", {6, 2, 3, 3}, 11);
  auto* c = b.node("Conv", {"x", "w"}, {"c"});
  GB::attr(c, "strides", std::vector<int64_t>{2, 2});
  GB::attr(c, "pads", std::vector<int64_t>{0, 0, 1, 1});
  b.node("Relu", {"c"}, {"r"});
  auto* f = b.node("Flatten", {"r"}, {"f"});
  GB::attr(f, "axis", int64_t{1});
  b.init_random("fc1", {6 * 4 * 4, 10}, 12);
  b.init_random("fc1b", {10}, 13);
  b.node("Gemm", {"f", "fc1", "fc1b"}, {"g"});
  b.node("Relu", {"g"}, {"gr"});
  b.init_random("fc2", {10, 3}, 14);
  b.init_random("fc2b", {3}, 15);
  b.node("MatMul", {"gr", "fc2"}, {"mm"});
  b.node("Add", {"mm", "fc2b"}, {"y"});
  b.output("y");
  ASSERT_NO_FATAL_FAILURE(check_against_ort(b, {1, 2, 8, 8}, "flatten_gemm.onnx"));
}

// Clip(0, 6) -> relu6, depthwise conv, x * HardSigmoid(x) -> hard_swish, and a squeeze-excite
// HardSigmoid that gates another tensor (expanded: relu6(x + 3) / 6).
TEST(OnnxReader, MobileNetV3StyleClipHardSwishSqueezeExcite) {
  GB b(14);  // HardSwish is opset 14
  b.input("x", {1, 3, 12, 12});
  b.init_random("w1", {8, 3, 3, 3}, 21, -1.f, 1.f);
  b.init_random("b1", {8}, 22);
  auto* c1 = b.node("Conv", {"x", "w1", "b1"}, {"c1"});
  GB::attr(c1, "strides", std::vector<int64_t>{2, 2});
  GB::attr(c1, "pads", std::vector<int64_t>{1, 1, 1, 1});
  b.init("zero", {}, {0.f});
  b.init("six", {}, {6.f});
  b.node("Clip", {"c1", "zero", "six"}, {"r6"});
  b.init_random("dw", {8, 1, 3, 3}, 23, -1.f, 1.f);
  auto* dw = b.node("Conv", {"r6", "dw"}, {"d"});
  GB::attr(dw, "group", int64_t{8});
  GB::attr(dw, "pads", std::vector<int64_t>{1, 1, 1, 1});
  auto* hs = b.node("HardSigmoid", {"d"}, {"hs"});
  GB::attr(hs, "alpha", 1.f / 6.f);
  GB::attr(hs, "beta", 0.5f);
  b.node("Mul", {"d", "hs"}, {"hswish"});
  // squeeze-excite
  b.node("GlobalAveragePool", {"hswish"}, {"se_pool"});
  b.init_random("se_w", {8, 8, 1, 1}, 24, -1.f, 1.f);
  b.node("Conv", {"se_pool", "se_w"}, {"se_c"});
  auto* se_hs = b.node("HardSigmoid", {"se_c"}, {"se_gate"});
  GB::attr(se_hs, "alpha", 0.2f);
  b.node("Mul", {"hswish", "se_gate"}, {"se_out"});
  b.node("HardSwish", {"se_out"}, {"hs2"});
  b.node("GlobalAveragePool", {"hs2"}, {"p"});
  b.node("Flatten", {"p"}, {"f"});
  b.init_random("fc", {5, 8}, 25);
  auto* g = b.node("Gemm", {"f", "fc"}, {"y"});
  GB::attr(g, "transB", int64_t{1});
  b.output("y");
  ir::Model m;
  ASSERT_NO_FATAL_FAILURE(check_against_ort(b, {1, 3, 12, 12}, "mnv3_style.onnx", 1e-5f, 1e-4f, &m));
  EXPECT_GE(count_ops(m, ir::OpType::kHardSwish), 2);
}

// Pools with padding, Concat over channels, Pad, LeakyRelu, Sigmoid, broadcast Add/Mul/Sub/Div
// with (C, 1, 1) constants, ReduceMean over H, W, Softmax over channels.
TEST(OnnxReader, PoolsConcatPadEltwiseReduceSoftmax) {
  GB b(13);
  b.input("x", {1, 4, 9, 9});
  auto* mp = b.node("MaxPool", {"x"}, {"mp"});
  GB::attr(mp, "kernel_shape", std::vector<int64_t>{3, 3});
  GB::attr(mp, "strides", std::vector<int64_t>{1, 1});
  GB::attr(mp, "pads", std::vector<int64_t>{1, 1, 1, 1});
  auto* ap = b.node("AveragePool", {"x"}, {"ap"});
  GB::attr(ap, "kernel_shape", std::vector<int64_t>{3, 3});
  GB::attr(ap, "strides", std::vector<int64_t>{1, 1});
  GB::attr(ap, "pads", std::vector<int64_t>{1, 1, 1, 1});
  GB::attr(ap, "count_include_pad", int64_t{0});
  auto* api = b.node("AveragePool", {"x"}, {"api"});
  GB::attr(api, "kernel_shape", std::vector<int64_t>{3, 3});
  GB::attr(api, "pads", std::vector<int64_t>{1, 1, 1, 1});
  GB::attr(api, "count_include_pad", int64_t{1});
  auto* cat = b.node("Concat", {"mp", "ap", "api"}, {"cat"});
  GB::attr(cat, "axis", int64_t{1});
  b.init_i64("pads", {8}, {0, 0, 1, 2, 0, 0, 2, 1});
  b.init("pv", {}, {0.25f});
  b.node("Pad", {"cat", "pads", "pv"}, {"padded"});
  auto* lr = b.node("LeakyRelu", {"padded"}, {"lr"});
  GB::attr(lr, "alpha", 0.1f);
  b.init_random("scale", {12, 1, 1}, 31, 0.5f, 1.5f);
  b.init_random("shift", {12, 1, 1}, 32);
  b.init_random("sub", {1}, 33);
  b.init("div", {}, {2.f});
  b.node("Mul", {"lr", "scale"}, {"m"});
  b.node("Add", {"shift", "m"}, {"a"});
  b.node("Sub", {"a", "sub"}, {"s"});
  b.node("Div", {"s", "div"}, {"dv"});
  b.node("Sigmoid", {"dv"}, {"sg"});
  b.node("Add", {"sg", "dv"}, {"sum"});  // two activations
  auto* rm = b.node("ReduceMean", {"sum"}, {"rm"});
  GB::attr(rm, "axes", std::vector<int64_t>{2, 3});
  GB::attr(rm, "keepdims", int64_t{1});
  auto* sm = b.node("Softmax", {"rm"}, {"sm"});
  GB::attr(sm, "axis", int64_t{1});
  b.init_i64("shape", {2}, {1, -1});
  b.node("Reshape", {"sm", "shape"}, {"y"});
  b.output("y");
  ASSERT_NO_FATAL_FAILURE(check_against_ort(b, {1, 4, 9, 9}, "pools_eltwise.onnx"));
}

// SAME_UPPER / SAME_LOWER auto_pad, dilation, Dropout/Identity, a rank-4 NCHW output.
TEST(OnnxReader, AutoPadDilationIdentityRank4Output) {
  GB b(13);
  b.input("x", {1, 3, 10, 11});
  b.init_random("w", {5, 3, 3, 3}, 41);
  auto* c = b.node("Conv", {"x", "w"}, {"c"});
  GB::attr(c, "auto_pad", std::string("SAME_UPPER"));
  GB::attr(c, "strides", std::vector<int64_t>{2, 2});
  b.node("Dropout", {"c"}, {"d"});
  b.node("Identity", {"d"}, {"i"});
  b.init_random("w2", {4, 5, 2, 2}, 42);
  auto* c2 = b.node("Conv", {"i", "w2"}, {"c2"});
  GB::attr(c2, "auto_pad", std::string("SAME_LOWER"));
  b.init_random("w3", {3, 4, 3, 3}, 43);
  auto* c3 = b.node("Conv", {"c2", "w3"}, {"y"});
  GB::attr(c3, "dilations", std::vector<int64_t>{2, 2});
  GB::attr(c3, "pads", std::vector<int64_t>{2, 2, 2, 2});
  b.output("y");
  ASSERT_NO_FATAL_FAILURE(check_against_ort(b, {1, 3, 10, 11}, "autopad.onnx"));
}

// QDQ int8 (what onnxruntime.quantization writes): uint8 activations, int8 per-channel weights,
// int32 bias. Convs, pooling and the classifier become int8 IR ops.
TEST(OnnxReader, QdqInt8ConvPoolGemm) {
  GB b(13);
  b.input("x", {1, 3, 8, 8});
  b.init("xs", {}, {4.f / 255.f});
  b.init_u8("xz", {}, {128});
  b.node("QuantizeLinear", {"x", "xs", "xz"}, {"xq"});
  b.node("DequantizeLinear", {"xq", "xs", "xz"}, {"xdq"});
  const int oc = 6;
  std::vector<int8_t> wq(oc * 3 * 3 * 3);
  auto r = random_floats(wq.size(), 51, -127.f, 127.f);
  for (size_t i = 0; i < wq.size(); ++i) wq[i] = static_cast<int8_t>(r[i]);
  b.init_i8("wq", {oc, 3, 3, 3}, wq);
  std::vector<float> ws(oc);
  for (int i = 0; i < oc; ++i) ws[static_cast<size_t>(i)] = 0.002f + 0.0005f * static_cast<float>(i);
  b.init("ws", {oc}, ws);
  b.init_i8("wz", {oc}, std::vector<int8_t>(oc, 0));
  auto* wdq = b.node("DequantizeLinear", {"wq", "ws", "wz"}, {"w"});
  GB::attr(wdq, "axis", int64_t{0});
  std::vector<int32_t> bq(oc);
  std::vector<float> bs(oc);
  for (int i = 0; i < oc; ++i) {
    bq[static_cast<size_t>(i)] = (i - 3) * 40;
    bs[static_cast<size_t>(i)] = 4.f / 255.f * ws[static_cast<size_t>(i)];
  }
  b.init_i32("bq", {oc}, bq);
  b.init("bs", {oc}, bs);
  b.init_i32("bz", {oc}, std::vector<int32_t>(oc, 0));
  auto* bdq = b.node("DequantizeLinear", {"bq", "bs", "bz"}, {"bias"});
  GB::attr(bdq, "axis", int64_t{0});
  auto* c = b.node("Conv", {"xdq", "w", "bias"}, {"c"});
  GB::attr(c, "pads", std::vector<int64_t>{1, 1, 1, 1});
  b.node("Relu", {"c"}, {"cr"});
  b.init("cs", {}, {0.02f});
  b.init_u8("cz", {}, {0});
  b.node("QuantizeLinear", {"cr", "cs", "cz"}, {"cq"});
  b.node("DequantizeLinear", {"cq", "cs", "cz"}, {"cdq"});
  auto* mp = b.node("MaxPool", {"cdq"}, {"mp"});
  GB::attr(mp, "kernel_shape", std::vector<int64_t>{2, 2});
  GB::attr(mp, "strides", std::vector<int64_t>{2, 2});
  b.node("QuantizeLinear", {"mp", "cs", "cz"}, {"mpq"});
  b.node("DequantizeLinear", {"mpq", "cs", "cz"}, {"mpdq"});
  b.node("GlobalAveragePool", {"mpdq"}, {"gap"});
  b.init("gs", {}, {0.01f});
  b.init_u8("gz", {}, {0});
  b.node("QuantizeLinear", {"gap", "gs", "gz"}, {"gq"});
  b.node("DequantizeLinear", {"gq", "gs", "gz"}, {"gdq"});
  b.node("Flatten", {"gdq"}, {"f"});
  std::vector<int8_t> fq(4 * oc);
  auto fr = random_floats(fq.size(), 52, -127.f, 127.f);
  for (size_t i = 0; i < fq.size(); ++i) fq[i] = static_cast<int8_t>(fr[i]);
  b.init_i8("fq", {4, oc}, fq);
  b.init("fs", {}, {0.004f});
  b.init_i8("fz", {}, {0});
  b.node("DequantizeLinear", {"fq", "fs", "fz"}, {"fw"});
  auto* g = b.node("Gemm", {"f", "fw"}, {"logits"});
  GB::attr(g, "transB", int64_t{1});
  b.init("ls", {}, {0.001f});
  b.init_i8("lz", {}, {0});
  b.node("QuantizeLinear", {"logits", "ls", "lz"}, {"lq"});
  b.node("DequantizeLinear", {"lq", "ls", "lz"}, {"y"});
  b.output("y");
  ir::Model m;
  // int8 kernels round like TFLite, ORT's QDQ float path rounds once per op: allow 2 steps.
  ASSERT_NO_FATAL_FAILURE(check_against_ort(b, {1, 3, 8, 8}, "qdq.onnx", 0.f, 2.01f * 0.001f, &m));
  int i8_convs = 0, i8_dense = 0;
  for (const auto& n : m.graph.nodes) {
    const bool i8 = m.graph.value(n.outputs[0]).dtype == ir::DType::kI8;
    i8_convs += i8 && n.op == ir::OpType::kConv2d;
    i8_dense += i8 && n.op == ir::OpType::kFullyConnected;
  }
  EXPECT_EQ(i8_convs, 1) << ir::to_text(m);
  EXPECT_EQ(i8_dense, 1) << ir::to_text(m);

  // The int8 IR written back as QDQ runs in ONNX Runtime like ours, and reads back int8.
  const std::string path = temp_path("qdq_export.onnx");
  Status s = onnx::save_onnx(m, path);
  ASSERT_TRUE(s.is_ok()) << s.to_string();
  auto back = onnx::load_onnx(path);
  ASSERT_TRUE(back.has_value()) << back.status().to_string();
  int back_i8 = 0;
  for (const auto& n : back->graph.nodes) back_i8 += back->graph.value(n.outputs[0]).dtype == ir::DType::kI8;
  EXPECT_GE(back_i8, 4) << ir::to_text(*back);
  const std::vector<float> x = random_floats(3 * 8 * 8, 9, -2.f, 2.f);
  auto ours = run_ours(m, to_nhwc(x, {1, 3, 8, 8}));
  ASSERT_TRUE(ours.has_value()) << ours.status().to_string();
  auto again = run_ours(*back, to_nhwc(x, {1, 3, 8, 8}));
  ASSERT_TRUE(again.has_value()) << again.status().to_string();
  EXPECT_TRUE(all_close(*again, *ours, 0.f, 0.f));
  if (auto why = testing::oracle_unavailable_reason(); !why.empty()) {
    GTEST_SKIP() << "read, run and written back; the ONNX Runtime comparison needs " << why;
  }
  std::vector<float> ort;
  std::string err;
  ASSERT_TRUE(run_ort(path, x, &ort, nullptr, &err)) << err;
  EXPECT_TRUE(all_close(*ours, ort, 0.f, 2.01f * 0.001f));
}

// ---- errors -------------------------------------------------------------------------------

TEST(OnnxReader, UnsupportedOpsAreNamedWithNodeAndIndex) {
  GB b(13);
  b.input("x", {1, 2, 4, 4});
  b.init_random("w", {2, 2, 2, 2}, 1);
  b.node("Relu", {"x"}, {"r"}, "first");
  b.node("ConvTranspose", {"r", "w"}, {"up"}, "decoder/up1");
  b.node("Erf", {"up"}, {"y"}, "weird");
  b.output("y");
  auto m = onnx::read_onnx(b.bytes(), "bad.onnx");
  ASSERT_FALSE(m.has_value());
  EXPECT_EQ(m.status().code(), StatusCode::kUnsupported);
  const std::string msg = m.status().message();
  EXPECT_NE(msg.find("ConvTranspose (transposed convolution)"), std::string::npos) << msg;
  EXPECT_NE(msg.find("node #1 'decoder/up1'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("Erf"), std::string::npos) << msg;
  EXPECT_NE(msg.find("node #2 'weird'"), std::string::npos) << msg;
}

TEST(OnnxReader, PatternsTheIrCannotExpressAreClearErrors) {
  {  // a real data-moving transpose
    GB b(13);
    b.input("x", {1, 2, 3, 4});
    auto* t = b.node("Transpose", {"x"}, {"y"}, "t0");
    GB::attr(t, "perm", std::vector<int64_t>{0, 1, 3, 2});
    b.output("y");
    auto m = onnx::read_onnx(b.bytes(), "t.onnx");
    ASSERT_FALSE(m.has_value());
    EXPECT_NE(m.status().message().find("node #0 't0' (Transpose)"), std::string::npos) << m.status().message();
  }
  {  // Clip to a range without an IR op
    GB b(13);
    b.input("x", {1, 2, 3, 4});
    b.init("lo", {}, {-1.f});
    b.init("hi", {}, {1.f});
    b.node("Clip", {"x", "lo", "hi"}, {"y"}, "clip");
    b.output("y");
    auto m = onnx::read_onnx(b.bytes(), "c.onnx");
    ASSERT_FALSE(m.has_value());
    EXPECT_NE(m.status().message().find("Clip(-1, 1)"), std::string::npos) << m.status().message();
  }
  {  // a flattened NCHW map used by something other than a dense layer
    GB b(13);
    b.input("x", {1, 2, 3, 4});
    b.node("Flatten", {"x"}, {"f"});
    b.node("Relu", {"f"}, {"r"});
    b.node("Softmax", {"r"}, {"y"});
    b.output("y");
    auto m = onnx::read_onnx(b.bytes(), "f.onnx");
    ASSERT_FALSE(m.has_value());
    EXPECT_NE(m.status().message().find("flattened NCHW"), std::string::npos) << m.status().message();
  }
}

TEST(OnnxReader, UntrustedBytesAreRefused) {
  GB b(13);
  b.input("x", {1, 2});
  b.init("w", {3, 2}, {1, 2, 3, 4, 5, 6});
  auto* g = b.node("Gemm", {"x", "w"}, {"y"});
  GB::attr(g, "transB", int64_t{1});
  b.output("y");
  auto good = b.bytes();
  ASSERT_TRUE(onnx::read_onnx(good, "ok.onnx").has_value());
  // Truncated and junk files.
  auto cut = std::vector<uint8_t>(good.begin(), good.begin() + static_cast<long>(good.size() / 2));
  EXPECT_EQ(onnx::read_onnx(cut, "cut.onnx").status().code(), StatusCode::kInvalidModel);
  std::vector<uint8_t> junk(100, 0xff);
  EXPECT_EQ(onnx::read_onnx(junk, "junk.onnx").status().code(), StatusCode::kInvalidModel);
  // An initializer whose bytes do not match its dims.
  b.model().mutable_graph()->mutable_initializer(0)->add_dims(1000);
  auto m = onnx::read_onnx(b.bytes(), "size.onnx");
  ASSERT_FALSE(m.has_value());
  EXPECT_EQ(m.status().code(), StatusCode::kInvalidModel);
  EXPECT_NE(m.status().message().find("raw_data has 24 bytes"), std::string::npos) << m.status().message();
  // External data.
  auto* t = b.model().mutable_graph()->mutable_initializer(0);
  t->clear_raw_data();
  t->set_data_location(onnx::detail::pb::TensorProto::EXTERNAL);
  auto* e = t->add_external_data();
  e->set_key("location");
  e->set_value("weights.bin");
  m = onnx::read_onnx(b.bytes(), "ext.onnx");
  ASSERT_FALSE(m.has_value());
  EXPECT_NE(m.status().message().find("external file"), std::string::npos) << m.status().message();
  // Symbolic spatial dimension.
  GB d(13);
  d.input("x", {1, 3, 8, 8});
  d.model().mutable_graph()->mutable_input(0)->mutable_type()->mutable_tensor_type()->mutable_shape()->mutable_dim(2)->set_dim_param("height");
  d.node("Relu", {"x"}, {"y"});
  d.output("y");
  m = onnx::read_onnx(d.bytes(), "dyn.onnx");
  ASSERT_FALSE(m.has_value());
  EXPECT_NE(m.status().message().find("'height'"), std::string::npos) << m.status().message();
}

// ---- conversion of imported models ----------------------------------------------------

#if PCV_HAVE_FORMATS
TEST(OnnxReader, ImportedModelConvertsThroughModelIo) {
  GB b(13, "pytorch");
  b.input("input", {1, 3, 16, 16});
  b.init_random("w", {8, 3, 3, 3}, 61);
  b.init_random("bias", {8}, 62);
  auto* c = b.node("Conv", {"input", "w", "bias"}, {"c"});
  GB::attr(c, "pads", std::vector<int64_t>{1, 1, 1, 1});
  GB::attr(c, "strides", std::vector<int64_t>{2, 2});
  b.init("zero", {}, {0.f});
  b.init("six", {}, {6.f});
  b.node("Clip", {"c", "zero", "six"}, {"r"});
  b.node("GlobalAveragePool", {"r"}, {"p"});
  b.node("Flatten", {"p"}, {"f"});
  b.init_random("fc", {4, 8}, 63);
  auto* g = b.node("Gemm", {"f", "fc"}, {"logits"});
  GB::attr(g, "transB", int64_t{1});
  b.node("Softmax", {"logits"}, {"probabilities"});
  b.output("probabilities");
  const std::string path = temp_path("import.onnx");
  {
    auto bytes = b.bytes();
    std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  }
  auto m = formats::load_model(path);
  ASSERT_TRUE(m.has_value()) << m.status().to_string();
  const auto x = random_floats(16 * 16 * 3, 5);
  auto ref = run_ours(*m, x);
  ASSERT_TRUE(ref.has_value()) << ref.status().to_string();
  std::vector<std::string> outs = {"import.pcv", "import_again.onnx"};
#if PCV_HAVE_TFLITE
  outs.push_back("import.tflite");
#endif
  for (const auto& name : outs) {
    SCOPED_TRACE(name);
    const std::string out = temp_path(name);
    Status s = formats::save_model(*m, out);
    ASSERT_TRUE(s.is_ok()) << s.to_string();
    auto back = formats::load_model(out);
    ASSERT_TRUE(back.has_value()) << back.status().to_string();
    auto y = run_ours(*back, x);
    ASSERT_TRUE(y.has_value()) << y.status().to_string();
    EXPECT_TRUE(all_close(*y, *ref, 1e-5f, 1e-6f));
  }
  // Core ML has no runtime here: writing it is the check.
  Status s = formats::save_model(*m, temp_path("import.mlmodel"));
  EXPECT_TRUE(s.is_ok() || s.code() == StatusCode::kUnsupported) << s.to_string();
}

#if PCV_HAVE_TFLITE
// torchvision ResNet's stem: Conv(7x7, stride 2, pads 3) -> Relu -> MaxPool(3x3, stride 2, pads 1)
// on an even size, where the pads are not TFLite's SAME (that puts the odd pad at the end). The
// .tflite gets PAD + VALID ops (zero padding is exact for a max pool after a relu) and runs in
// LiteRT like pocketcv; a max pool of values that may be negative is refused with the reason.
TEST(OnnxReader, ResNetStemExplicitPaddingConvertsToTflite) {
  for (const bool relu : {true, false}) {
    SCOPED_TRACE(relu ? "conv -> relu -> max pool" : "conv -> max pool");
    GB b(13, "pytorch");
    b.input("input", {1, 3, 32, 32});
    b.init_random("w", {8, 3, 7, 7}, 71);
    b.init_random("bias", {8}, 72);
    auto* c = b.node("Conv", {"input", "w", "bias"}, {"c"});
    GB::attr(c, "strides", std::vector<int64_t>{2, 2});
    GB::attr(c, "pads", std::vector<int64_t>{3, 3, 3, 3});
    if (relu) b.node("Relu", {"c"}, {"r"});
    auto* mp = b.node("MaxPool", {relu ? "r" : "c"}, {"mp"});
    GB::attr(mp, "kernel_shape", std::vector<int64_t>{3, 3});
    GB::attr(mp, "strides", std::vector<int64_t>{2, 2});
    GB::attr(mp, "pads", std::vector<int64_t>{1, 1, 1, 1});
    b.node("GlobalAveragePool", {"mp"}, {"p"});
    b.node("Flatten", {"p"}, {"f"});
    b.init_random("fc", {4, 8}, 73);
    auto* g = b.node("Gemm", {"f", "fc"}, {"logits"});
    GB::attr(g, "transB", int64_t{1});
    b.output("logits");
    auto m = onnx::read_onnx(b.bytes(), "stem.onnx");
    ASSERT_TRUE(m.has_value()) << m.status().to_string();
    const std::string tfl = temp_path(relu ? "stem_relu.tflite" : "stem.tflite");
    Status s = formats::save_model(*m, tfl);
    if (!relu) {
      ASSERT_FALSE(s.is_ok());
      EXPECT_EQ(s.code(), StatusCode::kUnsupported);
      EXPECT_NE(s.message().find("non-negative"), std::string::npos) << s.message();
      continue;
    }
    ASSERT_TRUE(s.is_ok()) << s.to_string();
    auto back = formats::load_model(tfl);
    ASSERT_TRUE(back.has_value()) << back.status().to_string();
    EXPECT_EQ(count_ops(*back, ir::OpType::kPad), 2) << ir::to_text(*back);  // conv's and max pool's
    const auto x = random_floats(32 * 32 * 3, 74, -2.f, 2.f);
    auto ours = run_ours(*m, x);
    ASSERT_TRUE(ours.has_value()) << ours.status().to_string();
    auto again = run_ours(*back, x);
    ASSERT_TRUE(again.has_value()) << again.status().to_string();
    EXPECT_TRUE(all_close(*again, *ours, 1e-5f, 1e-6f));
    if (auto why = testing::oracle_unavailable_reason(); !why.empty()) GTEST_SKIP() << why;
    std::vector<testing::OracleTensor> lite;
    std::string err;
    ASSERT_TRUE(testing::run_tflite_oracle(tfl, "litert", {float_bytes(x)}, &lite, &err)) << err;
    ASSERT_EQ(lite.size(), 1u);
    EXPECT_TRUE(all_close(floats_from_bytes(lite[0].bytes), *ours, 1e-5f, 1e-5f));
  }
}
#endif  // PCV_HAVE_TFLITE
#endif

}  // namespace
}  // namespace pcv::onnx_test
