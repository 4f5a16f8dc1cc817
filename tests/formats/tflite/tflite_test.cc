// TFLite writer and reader: file structure, round trips, malformed files, quantized models.
#include <gtest/gtest.h>

#include <map>
#include <random>

#include "formats/tflite/tflite.h"
#include "formats/tflite/tflite_schema_generated.h"
#include "formats/tflite/tflite_test_util.h"
#include "ir/pcv_format.h"
#include "zoo/zoo.h"

namespace pcv::tflite {
namespace {

using namespace pcv::tflite::testing;
using ir::DType;
using ir::OpType;

ir::Model zoo_model(const std::string& arch, int size, float width = 1.0f) {
  auto m = zoo::create_model({.arch = arch, .size = size, .classes = 3, .width = width});
  EXPECT_TRUE(m) << m.status().to_string();
  return std::move(m).value();
}

std::vector<uint8_t> write_ok(const ir::Model& m, const TfliteWriteOptions& o = {}) {
  auto bytes = write_tflite(m, o);
  EXPECT_TRUE(bytes) << bytes.status().to_string();
  return bytes ? std::move(bytes).value() : std::vector<uint8_t>{};
}

// (builtin name, version) of every operator code.
std::map<std::string, int> opcode_versions(const fb::Model* m) {
  std::map<std::string, int> out;
  for (const auto* c : *m->operator_codes()) out[fb::EnumNameBuiltinOperator(c->builtin_code())] = c->version();
  return out;
}

int count_ops(const ir::Graph& g, OpType op) {
  int n = 0;
  for (const auto& node : g.nodes) n += node.op == op;
  return n;
}

// The file facts LiteRT and the converter agree on (DESIGN.md, Verification).
void check_file_structure(const std::vector<uint8_t>& bytes) {
  ASSERT_GE(bytes.size(), 8u);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(bytes.data()) + 4, 4), "TFL3");
  flatbuffers::Verifier v(bytes.data(), bytes.size());
  ASSERT_TRUE(fb::VerifyModelBuffer(v));
  const fb::Model* m = fb::GetModel(bytes.data());
  EXPECT_EQ(m->version(), 3u);
  ASSERT_TRUE(m->buffers() && m->buffers()->size() > 0);
  EXPECT_TRUE(m->buffers()->Get(0)->data() == nullptr || m->buffers()->Get(0)->data()->size() == 0);
  for (const auto* b : *m->buffers()) {
    if (b->data() && b->data()->size() > 0) {
      EXPECT_EQ((b->data()->data() - bytes.data()) % 16, 0) << "buffer not 16-byte aligned";
    }
  }
  // Each constant its own buffer.
  std::map<uint32_t, int> uses;
  for (const auto* t : *m->subgraphs()->Get(0)->tensors()) {
    if (t->buffer() != 0) {
      EXPECT_EQ(++uses[t->buffer()], 1) << "buffer " << t->buffer() << " shared";
    }
  }
  for (const auto* c : *m->operator_codes()) {
    EXPECT_EQ(c->deprecated_builtin_code(), std::min<int>(static_cast<int>(c->builtin_code()), 127));
  }
  ASSERT_TRUE(m->signature_defs() && m->signature_defs()->size() == 1);
  const auto* sig = m->signature_defs()->Get(0);
  EXPECT_EQ(sig->signature_key()->str(), "serving_default");
  EXPECT_EQ(sig->inputs()->size(), m->subgraphs()->Get(0)->inputs()->size());
  EXPECT_EQ(sig->outputs()->size(), m->subgraphs()->Get(0)->outputs()->size());
}

TEST(TfliteWrite, SimpleCnnStructure) {
  ir::Model model = zoo_model("simple_cnn", 32);
  auto bytes = write_ok(model);
  check_file_structure(bytes);
  const fb::Model* m = fb::GetModel(bytes.data());
  const auto versions = opcode_versions(m);
  EXPECT_EQ(versions, (std::map<std::string, int>{{"CONV_2D", 1}, {"MAX_POOL_2D", 1}, {"RESHAPE", 1},
                                                  {"FULLY_CONNECTED", 1}, {"SOFTMAX", 1}}));
  // ReLUs fused, dropout gone: conv x3 + pool x3 + reshape + dense x2 + softmax.
  const auto* sg = m->subgraphs()->Get(0);
  EXPECT_EQ(sg->operators()->size(), 10u);
  const auto* conv = sg->operators()->Get(0)->builtin_options_as_Conv2DOptions();
  ASSERT_NE(conv, nullptr);
  EXPECT_EQ(conv->fused_activation_function(), fb::ActivationFunctionType::RELU);
  EXPECT_EQ(conv->padding(), fb::Padding::VALID);
  // Metadata and labels.
  ASSERT_TRUE(m->metadata() && m->metadata()->size() == 1);
  EXPECT_EQ(m->metadata()->Get(0)->name()->str(), "TFLITE_METADATA");
  auto files = read_associated_files(bytes);
  ASSERT_TRUE(files) << files.status().to_string();
  ASSERT_EQ(files->size(), 1u);
  EXPECT_EQ((*files)[0].first, "labels.txt");
  EXPECT_EQ((*files)[0].second, "class0\nclass1\nclass2\n");
}

TEST(TfliteWrite, MobileNetV2Structure) {
  ir::Model model = zoo_model("mobilenet_v2", 64, 0.35f);
  auto bytes = write_ok(model);
  check_file_structure(bytes);
  const fb::Model* m = fb::GetModel(bytes.data());
  const auto versions = opcode_versions(m);
  EXPECT_EQ(versions, (std::map<std::string, int>{{"CONV_2D", 1}, {"DEPTHWISE_CONV_2D", 1}, {"ADD", 1},
                                                  {"MEAN", 1}, {"FULLY_CONNECTED", 1}, {"SOFTMAX", 1}}));
  // Every batch norm folded, every relu6 fused: no MUL, no RELU6 ops.
  const auto* sg = m->subgraphs()->Get(0);
  int depthwise = 0;
  for (const auto* op : *sg->operators()) {
    if (const auto* o = op->builtin_options_as_DepthwiseConv2DOptions()) {
      ++depthwise;
      EXPECT_EQ(o->depth_multiplier(), 1);
      EXPECT_EQ(o->fused_activation_function(), fb::ActivationFunctionType::RELU6);
      const auto* f = sg->tensors()->Get(static_cast<flatbuffers::uoffset_t>(op->inputs()->Get(1)));
      EXPECT_EQ(f->shape()->Get(0), 1);
      EXPECT_EQ(f->shape()->Get(3), sg->tensors()->Get(static_cast<flatbuffers::uoffset_t>(op->outputs()->Get(0)))->shape()->Get(3));
    }
  }
  EXPECT_EQ(depthwise, 17);
}

TEST(TfliteWrite, DescribeShowsOpsSignatureMetadata) {
  auto bytes = write_ok(zoo_model("simple_cnn", 32));
  const std::string d = describe_tflite(bytes);
  EXPECT_NE(d.find("CONV_2D v1"), std::string::npos) << d;
  EXPECT_NE(d.find("signature 'serving_default'"), std::string::npos) << d;
  EXPECT_NE(d.find("labels.txt"), std::string::npos) << d;
  EXPECT_NE(d.find("FLOAT32 (1, 32, 32, 3)"), std::string::npos) << d;
  EXPECT_NE(describe_tflite(std::vector<uint8_t>{1, 2, 3}).find("not a TFLite"), std::string::npos);
}

TEST(TfliteWrite, DeterministicAndRewriteStable) {
  ir::Model model = zoo_model("mobilenet_v2", 64, 0.35f);
  auto a = write_ok(model);
  auto b = write_ok(model);
  EXPECT_EQ(a, b);
  // read(write(m)) written again gives the same file.
  auto back = read_tflite(a, "a.tflite");
  ASSERT_TRUE(back) << back.status().to_string();
  auto c = write_ok(*back);
  EXPECT_EQ(a.size(), c.size());
}

void expect_round_trip(const std::string& arch, int size, float width) {
  ir::Model model = zoo_model(arch, size, width);
  auto bytes = write_ok(model);
  auto back = read_tflite(bytes, arch + ".tflite");
  ASSERT_TRUE(back) << back.status().to_string();
  EXPECT_TRUE(ir::verify(back->graph).is_ok());
  EXPECT_EQ(back->input_spec, model.input_spec);
  EXPECT_EQ(back->metadata, model.metadata);
  EXPECT_EQ(count_ops(back->graph, OpType::kBatchNorm), 0);
  EXPECT_EQ(count_ops(back->graph, OpType::kDropout), 0);
  EXPECT_EQ(count_ops(back->graph, OpType::kRelu) + count_ops(back->graph, OpType::kRelu6), 0);
  EXPECT_EQ(back->graph.value(back->graph.inputs[0]).shape, model.graph.value(model.graph.inputs[0]).shape);
  EXPECT_EQ(back->graph.value(back->graph.outputs[0]).shape, model.graph.value(model.graph.outputs[0]).shape);
  EXPECT_EQ(back->graph.parameter_count() > 0, true);
}

TEST(TfliteRoundTrip, SimpleCnn) { expect_round_trip("simple_cnn", 32, 1.0f); }
TEST(TfliteRoundTrip, MobileNetV2) { expect_round_trip("mobilenet_v2", 64, 0.35f); }

TEST(TfliteRoundTrip, GrayscaleAndNoMetadata) {
  auto m = zoo::create_model({.arch = "simple_cnn", .size = 28, .channels = 1, .classes = 10});
  ASSERT_TRUE(m);
  auto bytes = write_ok(*m);
  auto back = read_tflite(bytes, "gray");
  ASSERT_TRUE(back) << back.status().to_string();
  EXPECT_EQ(back->input_spec.color, ir::ColorOrder::kGray);
  EXPECT_EQ(back->input_spec.labels.size(), 10u);
  TfliteWriteOptions o;
  o.metadata = false;
  auto plain = write_ok(*m, o);
  auto back2 = read_tflite(plain, "plain");
  ASSERT_TRUE(back2) << back2.status().to_string();
  EXPECT_TRUE(back2->input_spec.labels.empty());
  EXPECT_EQ(back2->input_spec.height, 28);
  EXPECT_EQ(back2->input_spec.mean[0], 0.f);
  EXPECT_EQ(back2->input_spec.std[0], 1.f);
}

TEST(TfliteRoundTrip, Float16Weights) {
  ir::Model model = zoo_model("mobilenet_v2", 64, 0.35f);
  TfliteWriteOptions o;
  o.float16_weights = true;
  auto half = write_ok(model, o);
  auto full = write_ok(model);
  check_file_structure(half);
  EXPECT_LT(half.size(), full.size() * 6 / 10);
  const auto versions = opcode_versions(fb::GetModel(half.data()));
  EXPECT_EQ(versions.at("DEQUANTIZE"), 3);
  auto back = read_tflite(half, "fp16");
  ASSERT_TRUE(back) << back.status().to_string();
  EXPECT_GT(count_ops(back->graph, OpType::kDequantize), 0);
  // Kept as f16: writing again keeps the size.
  auto again = write_ok(*back);
  EXPECT_EQ(again.size(), half.size());
}

TEST(TfliteWrite, Int8VersionsAndBiasScale) {
  ir::Model model = tiny_int8_model();
  auto bytes = write_ok(model);
  check_file_structure(bytes);
  const fb::Model* m = fb::GetModel(bytes.data());
  EXPECT_EQ(opcode_versions(m), (std::map<std::string, int>{{"QUANTIZE", 1}, {"CONV_2D", 3}, {"RESHAPE", 1},
                                                            {"FULLY_CONNECTED", 4}, {"SOFTMAX", 2}, {"DEQUANTIZE", 2}}));
  const auto* sg = m->subgraphs()->Get(0);
  for (const auto* op : *sg->operators()) {
    if (!op->builtin_options_as_Conv2DOptions() && !op->builtin_options_as_FullyConnectedOptions()) continue;
    ASSERT_EQ(op->inputs()->size(), 3u);
    auto tensor = [&](int i) { return sg->tensors()->Get(static_cast<flatbuffers::uoffset_t>(op->inputs()->Get(i))); };
    const auto* in_q = tensor(0)->quantization();
    const auto* w_q = tensor(1)->quantization();
    const auto* b = tensor(2);
    EXPECT_EQ(b->type(), fb::TensorType::INT32);
    ASSERT_EQ(b->quantization()->scale()->size(), w_q->scale()->size());
    for (flatbuffers::uoffset_t c = 0; c < w_q->scale()->size(); ++c) {
      EXPECT_FLOAT_EQ(b->quantization()->scale()->Get(c), in_q->scale()->Get(0) * w_q->scale()->Get(c));
      EXPECT_EQ(b->quantization()->zero_point()->Get(c), 0);
    }
  }
  auto back = read_tflite(bytes, "int8");
  ASSERT_TRUE(back) << back.status().to_string();
  const auto& bg = back->graph;
  EXPECT_EQ(count_ops(bg, OpType::kConv2d), 1);
  for (const auto& n : bg.nodes) {
    if (n.op == OpType::kConv2d) {
      EXPECT_EQ(bg.value(n.inputs[1]).quant.scale, (std::vector<float>{0.01f, 0.02f, 0.03f}));
      EXPECT_EQ(n.attr<ir::Conv2dAttrs>().activation, ir::Activation::kRelu);
    }
  }
}

TEST(TfliteWrite, Int8SoftmaxOutputScaleChecked) {
  ir::Model model = tiny_int8_model();
  for (auto& v : model.graph.values) {
    if (v.name == "softmax") v.quant = ir::QuantParams::per_tensor(1.f / 255.f, -128);
  }
  auto bytes = write_tflite(model);
  ASSERT_FALSE(bytes);
  EXPECT_EQ(bytes.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(bytes.status().message().find("1/256"), std::string::npos);
}

TEST(TfliteRead, TruncatedFilesFailCleanly) {
  auto bytes = write_ok(zoo_model("simple_cnn", 32));
  int checked = 0;
  for (size_t len = 0; len < bytes.size(); len += 97) {
    auto r = read_tflite(std::span<const uint8_t>(bytes.data(), len), "truncated");
    EXPECT_FALSE(r) << "length " << len;
    ++checked;
  }
  EXPECT_GT(checked, 10);
}

TEST(TfliteRead, RandomByteFlipsNeverCrash) {
  auto bytes = write_ok(zoo_model("mobilenet_v2", 32, 0.35f));
  const uint64_t seed = 20251124;
  std::mt19937_64 rng(seed);
  int ok = 0, failed = 0;
  for (int iter = 0; iter < 300; ++iter) {
    std::vector<uint8_t> b = bytes;
    const int flips = 1 + static_cast<int>(rng() % 4);
    for (int f = 0; f < flips; ++f) {
      // Half of the flips hit the first 4 KiB (tables, vectors, indices), the rest anywhere.
      const size_t range = (rng() & 1) ? std::min<size_t>(4096, b.size()) : b.size();
      b[rng() % range] ^= static_cast<uint8_t>(1u << (rng() % 8));
    }
    auto r = read_tflite(b, "flipped");
    (r ? ok : failed)++;
    if (r) {
      EXPECT_TRUE(ir::verify(r->graph).is_ok()) << "seed " << seed << " iter " << iter;
    }
    (void)describe_tflite(b);
  }
  RecordProperty("seed", std::to_string(seed));
  std::printf("byte flips (seed %llu): %d read, %d rejected\n", static_cast<unsigned long long>(seed), ok, failed);
}

TEST(TfliteRead, NotTflite) {
  std::vector<uint8_t> junk(100, 7);
  auto r = read_tflite(junk, "junk.bin");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidModel);
  EXPECT_NE(r.status().message().find("junk.bin"), std::string::npos);
}

// x (1, 4) -> RELU -> y, with configurable operator input index.
std::vector<uint8_t> relu_model(int32_t input_index, fb::BuiltinOperator code = fb::BuiltinOperator::RELU) {
  std::vector<TinyTensor> ts{{"x", fb::TensorType::FLOAT32, {1, 4}}, {"y", fb::TensorType::FLOAT32, {1, 4}}};
  return build_tiny_model(ts, {{code, {input_index}, {1}, nullptr}}, {0}, {1});
}

TEST(TfliteRead, OutOfRangeTensorIndex) {
  ASSERT_TRUE(read_tflite(relu_model(0), "ok"));
  auto r = read_tflite(relu_model(999), "bad.tflite");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidModel);
  EXPECT_NE(r.status().message().find("operator 0 (RELU): input tensor index 999 out of range (2 tensors)"),
            std::string::npos)
      << r.status().message();
  auto r2 = read_tflite(relu_model(-5), "neg.tflite");
  ASSERT_FALSE(r2);
}

TEST(TfliteRead, UnsupportedOpNamesIt) {
  auto r = read_tflite(relu_model(0, fb::BuiltinOperator::RESIZE_BILINEAR), "resize.tflite");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.status().code(), StatusCode::kUnsupported);
  EXPECT_NE(r.status().message().find("operator 0 (RESIZE_BILINEAR)"), std::string::npos) << r.status().message();
  auto r2 = read_tflite(relu_model(0, fb::BuiltinOperator::GELU), "gelu.tflite");
  ASSERT_FALSE(r2);
  EXPECT_NE(r2.status().message().find("GELU"), std::string::npos) << r2.status().message();
}

TEST(TfliteRead, BufferSizeMismatch) {
  std::vector<TinyTensor> ts{{"x", fb::TensorType::FLOAT32, {1, 4}},
                             {"w", fb::TensorType::FLOAT32, {1, 4}, to_bytes(std::vector<float>{1, 2, 3})},
                             {"y", fb::TensorType::FLOAT32, {1, 4}}};
  auto bytes = build_tiny_model(ts, {{fb::BuiltinOperator::ADD, {0, 1}, {2}, nullptr}}, {0}, {2});
  auto r = read_tflite(bytes, "short.tflite");
  ASSERT_FALSE(r);
  EXPECT_NE(r.status().message().find("holds 12 bytes"), std::string::npos) << r.status().message();
}

// A uint8 model as the old converter wrote them: u8 input -> CONV_2D (u8 weights) -> u8 output.
std::vector<uint8_t> uint8_conv_model() {
  std::vector<uint8_t> w(2 * 1 * 1 * 3);
  for (size_t i = 0; i < w.size(); ++i) w[i] = static_cast<uint8_t>(100 + 20 * i);
  std::vector<TinyTensor> ts{
      {"image", fb::TensorType::UINT8, {1, 2, 2, 3}, {}, {1.f / 128}, {128}},
      {"w", fb::TensorType::UINT8, {2, 1, 1, 3}, w, {0.01f}, {120}},
      {"b", fb::TensorType::INT32, {2}, to_bytes(std::vector<int32_t>{100, -100}), {0.01f / 128}, {0}},
      {"out", fb::TensorType::UINT8, {1, 2, 2, 2}, {}, {0.05f}, {10}},
  };
  TinyOp conv{fb::BuiltinOperator::CONV_2D, {0, 1, 2}, {3}, [](flatbuffers::FlatBufferBuilder& b) {
                return std::make_pair(fb::BuiltinOptions::Conv2DOptions,
                                      fb::CreateConv2DOptions(b, fb::Padding::SAME, 1, 1).Union());
              }};
  return build_tiny_model(ts, {conv}, {0}, {3});
}

TEST(TfliteRead, Uint8ModelBecomesInt8WithUint8Edges) {
  auto r = read_tflite(uint8_conv_model(), "u8.tflite");
  ASSERT_TRUE(r) << r.status().to_string();
  const ir::Graph& g = r->graph;
  ASSERT_EQ(g.nodes.size(), 3u);
  EXPECT_EQ(g.nodes[0].op, OpType::kQuantize);
  EXPECT_EQ(g.nodes[1].op, OpType::kConv2d);
  EXPECT_EQ(g.nodes[2].op, OpType::kQuantize);
  EXPECT_EQ(g.value(g.inputs[0]).dtype, DType::kU8);
  EXPECT_EQ(g.value(g.inputs[0]).name, "image");
  EXPECT_EQ(g.value(g.outputs[0]).dtype, DType::kU8);
  EXPECT_EQ(g.value(g.outputs[0]).name, "out");
  EXPECT_EQ(g.value(g.outputs[0]).quant, ir::QuantParams::per_tensor(0.05f, 10));
  const ir::Value& x = g.value(g.nodes[1].inputs[0]);
  EXPECT_EQ(x.dtype, DType::kI8);
  EXPECT_EQ(x.quant, ir::QuantParams::per_tensor(1.f / 128, 0));
  const ir::Value& w = g.value(g.nodes[1].inputs[1]);
  EXPECT_EQ(w.dtype, DType::kI8);
  EXPECT_EQ(w.quant.zero_point[0], -8);
  EXPECT_EQ(w.data.data<int8_t>()[0], 100 - 128);
  EXPECT_EQ(w.data.data<int8_t>()[5], 200 - 128);
  EXPECT_EQ(g.value(g.nodes[1].outputs[0]).quant, ir::QuantParams::per_tensor(0.05f, -118));
  // No metadata: raw pixels quantize to themselves.
  EXPECT_EQ(r->input_spec.mean[0], 128.f);
  EXPECT_EQ(r->input_spec.std[0], 128.f);
}

TEST(TfliteRead, DynamicRangeWeightsBecomeFloat) {
  std::vector<int8_t> w{-127, 0, 64, 127, 1, -1};
  std::vector<TinyTensor> ts{
      {"x", fb::TensorType::FLOAT32, {1, 3}},
      {"w", fb::TensorType::INT8, {2, 3}, to_bytes(w), {0.5f, 0.25f}, {0, 0}, 0},
      {"b", fb::TensorType::FLOAT32, {2}, to_bytes(std::vector<float>{1.f, 2.f})},
      {"y", fb::TensorType::FLOAT32, {1, 2}},
  };
  auto bytes = build_tiny_model(ts, {{fb::BuiltinOperator::FULLY_CONNECTED, {0, 1, 2}, {3}, nullptr}}, {0}, {3});
  auto r = read_tflite(bytes, "hybrid.tflite");
  ASSERT_TRUE(r) << r.status().to_string();
  const ir::Value& wv = r->graph.value(r->graph.nodes[0].inputs[1]);
  ASSERT_EQ(wv.dtype, DType::kF32);
  EXPECT_TRUE(wv.quant.empty());
  const float* f = wv.data.data<float>();
  EXPECT_EQ(std::vector<float>(f, f + 6), (std::vector<float>{-63.5f, 0.f, 32.f, 31.75f, 0.25f, -0.25f}));
}

TEST(TfliteRead, FullyConnectedOnRank4InputGetsReshape) {
  std::vector<TinyTensor> ts{
      {"x", fb::TensorType::FLOAT32, {1, 1, 1, 3}},
      {"w", fb::TensorType::FLOAT32, {2, 3}, to_bytes(std::vector<float>{1, 2, 3, 4, 5, 6})},
      {"y", fb::TensorType::FLOAT32, {1, 2}},
  };
  auto bytes = build_tiny_model(ts, {{fb::BuiltinOperator::FULLY_CONNECTED, {0, 1, -1}, {2}, nullptr}}, {0}, {2});
  auto r = read_tflite(bytes, "fc4.tflite");
  ASSERT_TRUE(r) << r.status().to_string();
  ASSERT_EQ(r->graph.nodes.size(), 2u);
  EXPECT_EQ(r->graph.nodes[0].op, OpType::kReshape);
  EXPECT_EQ(r->graph.nodes[1].op, OpType::kFullyConnected);
}

}  // namespace
}  // namespace pcv::tflite
