// .mlmodel writer and reader: structure (what Vision needs), protoc --decode_raw, weight counts,
// round trips (fp32, fp16, quantized), corrupt and unsupported inputs.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "base/fp16.h"
#include "formats/coreml/Model.pb.h"
#include "formats/coreml/coreml.h"
#include "formats/coreml/coreml_test_util.h"
#include "formats/coreml/weights.h"
#include "ir/pcv_format.h"
#include "zoo/zoo.h"
#include "support/paths.h"

#ifdef PCV_HAVE_RUNTIME
#include "runtime/session.h"
#endif

namespace pcv::coreml {
namespace {

namespace spec = ::CoreML::Specification;
using namespace pcv::coreml::testing;

spec::Model parse(const std::vector<uint8_t>& bytes) {
  spec::Model m;
  EXPECT_TRUE(m.ParseFromArray(bytes.data(), static_cast<int>(bytes.size())));
  return m;
}

// Batch norms stay layers unless a test asks for folding (weights compare by name).
MlModelOptions unfolded() {
  MlModelOptions o;
  o.fold_batch_norm = false;
  return o;
}

std::vector<uint8_t> write_or_die(const ir::Model& m, const MlModelOptions& o = unfolded()) {
  auto bytes = write_mlmodel(m, o);
  EXPECT_TRUE(bytes.has_value()) << bytes.status().to_string();
  return bytes.has_value() ? *bytes : std::vector<uint8_t>{};
}

const google::protobuf::RepeatedPtrField<spec::NeuralNetworkLayer>& layers_of(const spec::Model& m) {
  return m.has_neuralnetworkclassifier() ? m.neuralnetworkclassifier().layers() : m.neuralnetwork().layers();
}

int64_t stored_count(const spec::WeightParams& w) {
  if (w.floatvalue_size()) return w.floatvalue_size();
  return static_cast<int64_t>(w.float16value().size() / 2);
}

TEST(MlModel, SimpleCnnIsAVisionClassifier) {
  const ir::Model src = simple_cnn_32();
  const spec::Model m = parse(write_or_die(src));
  EXPECT_EQ(m.specificationversion(), 1);
  ASSERT_TRUE(m.has_neuralnetworkclassifier());
  const auto& d = m.description();
  ASSERT_EQ(d.input_size(), 1);
  ASSERT_TRUE(d.input(0).type().has_imagetype());
  EXPECT_EQ(d.input(0).type().imagetype().width(), 32);
  EXPECT_EQ(d.input(0).type().imagetype().height(), 32);
  EXPECT_EQ(d.input(0).type().imagetype().colorspace(), spec::ImageFeatureType::RGB);
  EXPECT_EQ(d.predictedfeaturename(), "classLabel");
  EXPECT_EQ(d.predictedprobabilitiesname(), "classLabel_probs");
  bool label = false, probs = false;
  for (const auto& o : d.output()) {
    if (o.name() == "classLabel") label = o.type().has_stringtype();
    if (o.name() == "classLabel_probs") {
      probs = o.type().has_dictionarytype() && o.type().dictionarytype().has_stringkeytype();
    }
  }
  EXPECT_TRUE(label);
  EXPECT_TRUE(probs);
  const auto& c = m.neuralnetworkclassifier();
  ASSERT_TRUE(c.has_stringclasslabels());
  ASSERT_EQ(c.stringclasslabels().vector_size(), 2);
  EXPECT_EQ(c.stringclasslabels().vector(0), "cat");
  EXPECT_EQ(c.stringclasslabels().vector(1), "dog");
  // The probability blob is produced by a layer.
  bool produced = false;
  for (const auto& l : c.layers()) produced |= l.output(0) == c.labelprobabilitylayername();
  EXPECT_TRUE(produced) << c.labelprobabilitylayername();
  // Scaler: pixel / 255.
  ASSERT_EQ(c.preprocessing_size(), 1);
  EXPECT_EQ(c.preprocessing(0).featurename(), d.input(0).name());
  EXPECT_FLOAT_EQ(c.preprocessing(0).scaler().channelscale(), 1.f / 255.f);
  EXPECT_EQ(c.preprocessing(0).scaler().redbias(), 0.f);
  // Weight counts equal the layers' kernel sizes; the flatten keeps our H, W, C order.
  int convs = 0, dense = 0, flattens = 0;
  for (const auto& l : c.layers()) {
    if (l.has_convolution()) {
      const auto& cv = l.convolution();
      ASSERT_EQ(cv.kernelsize_size(), 2);
      EXPECT_EQ(stored_count(cv.weights()),
                static_cast<int64_t>(cv.outputchannels() * cv.kernelchannels() * cv.kernelsize(0) * cv.kernelsize(1)))
          << l.name();
      EXPECT_TRUE(cv.hasbias());
      EXPECT_EQ(stored_count(cv.bias()), static_cast<int64_t>(cv.outputchannels()));
      ++convs;
    }
    if (l.has_innerproduct()) {
      const auto& ip = l.innerproduct();
      EXPECT_EQ(stored_count(ip.weights()), static_cast<int64_t>(ip.inputchannels() * ip.outputchannels())) << l.name();
      ++dense;
    }
    if (l.has_flatten()) {
      EXPECT_EQ(l.flatten().mode(), spec::FlattenLayerParams::CHANNEL_LAST);
      ++flattens;
    }
  }
  EXPECT_EQ(convs, 3);  // 32 -> 30 -> 15 -> 13 -> 6 -> 4 -> 2
  EXPECT_EQ(dense, 2);
  EXPECT_EQ(flattens, 1);
}

TEST(MlModel, DecodeRawSeesCoreMlFieldNumbers) {
  const auto bytes = write_or_die(simple_cnn_32());
  const std::string text = decode_raw(bytes);
  const auto fields = top_level_fields(text);
  EXPECT_NE(std::find(fields.begin(), fields.end(), 1), fields.end()) << "specificationVersion";
  EXPECT_NE(std::find(fields.begin(), fields.end(), 2), fields.end()) << "description";
  EXPECT_NE(std::find(fields.begin(), fields.end(), 403), fields.end()) << "neuralNetworkClassifier";
  EXPECT_NE(text.find("classLabel_probs"), std::string::npos);

  ir::Model plain = simple_cnn_32();
  plain.input_spec.labels.clear();
  const auto fields2 = top_level_fields(decode_raw(write_or_die(plain)));
  EXPECT_NE(std::find(fields2.begin(), fields2.end(), 500), fields2.end()) << "neuralNetwork";
}

TEST(MlModel, WithoutLabelsIsAPlainNetwork) {
  ir::Model src = mobilenet_v2_64();
  src.input_spec.labels.clear();
  const spec::Model m = parse(write_or_die(src));
  ASSERT_TRUE(m.has_neuralnetwork());
  ASSERT_EQ(m.description().output_size(), 1);
  ASSERT_TRUE(m.description().output(0).type().has_multiarraytype());
  EXPECT_EQ(m.description().output(0).type().multiarraytype().shape(0), 2);
  EXPECT_TRUE(m.description().predictedfeaturename().empty());
}

// Every constant of `src` that survives under the same name equals the read one (weights,
// biases, batch-norm parameters), within `tol` relative.
void expect_same_constants(const ir::Model& src, const ir::Model& back, double tol, int min_matches) {
  int matched = 0;
  for (const ir::Value& v : src.graph.values) {
    if (!v.is_constant()) continue;
    const ir::Value* w = find_constant(back.graph, v.name);
    if (!w) continue;
    ASSERT_EQ(v.shape, w->shape) << v.name;
    EXPECT_LE(max_rel_diff(w->data, v.data), tol) << v.name;
    ++matched;
  }
  EXPECT_GE(matched, min_matches);
}

void expect_same_interface(const ir::Model& src, const ir::Model& back) {
  EXPECT_EQ(back.input_spec.height, src.input_spec.height);
  EXPECT_EQ(back.input_spec.width, src.input_spec.width);
  EXPECT_EQ(back.input_spec.color, src.input_spec.color);
  EXPECT_EQ(back.input_spec.labels, src.input_spec.labels);
  for (int c = 0; c < 3; ++c) {
    EXPECT_NEAR(back.input_spec.mean[c], src.input_spec.mean[c], 1e-3 * std::max(1.f, src.input_spec.mean[c]));
    EXPECT_NEAR(back.input_spec.std[c], src.input_spec.std[c], 1e-3 * src.input_spec.std[c]);
  }
  EXPECT_EQ(back.metadata.name, src.metadata.name);
  EXPECT_EQ(back.graph.value(back.graph.inputs[0]).shape, src.graph.value(src.graph.inputs[0]).shape);
  ASSERT_EQ(back.graph.outputs.size(), 1u);
  EXPECT_EQ(back.graph.value(back.graph.outputs[0]).shape, src.graph.value(src.graph.outputs[0]).shape);
}

// Outputs of both models on the same random input (when the runtime is built).
void expect_same_outputs(const ir::Model& src, const ir::Model& back, double tol) {
#ifdef PCV_HAVE_RUNTIME
  const ir::Tensor x = random_input(src, 7);
  auto a = runtime::run_model(src, {x});
  auto b = runtime::run_model(back, {x});
  ASSERT_TRUE(a.has_value()) << a.status().to_string();
  ASSERT_TRUE(b.has_value()) << b.status().to_string();
  ASSERT_EQ(a->size(), b->size());
  for (size_t i = 0; i < a->size(); ++i) EXPECT_LE(max_rel_diff((*b)[i], (*a)[i]), tol);
#else
  (void)src, (void)back, (void)tol;
#endif
}

// Op names in order, fused activations as their own op, identities (dropout) left out.
std::vector<std::string> op_sequence(const ir::Graph& g) {
  std::vector<std::string> ops;
  for (const auto& n : g.nodes) {
    if (n.op == ir::OpType::kDropout) continue;
    ops.push_back(ir::op_name(n.op));
    for (const ir::AttrField& f : ir::attrs_to_fields(n.attrs)) {
      if (f.name == "activation" && std::get<std::string>(f.value) != "none") ops.push_back(std::get<std::string>(f.value));
    }
  }
  return ops;
}

class MlModelRoundTrip : public ::testing::TestWithParam<const char*> {
 protected:
  ir::Model source() const { return std::string(GetParam()) == "simple_cnn" ? simple_cnn_32() : mobilenet_v2_64(); }
};

TEST_P(MlModelRoundTrip, Float32) {
  const ir::Model src = source();
  const auto bytes = write_or_die(src);
  auto back = read_mlmodel(bytes, "rt.mlmodel");
  ASSERT_TRUE(back.has_value()) << back.status().to_string();
  expect_same_interface(src, *back);
  expect_same_constants(src, *back, 0.0, 4);
  EXPECT_EQ(op_sequence(src.graph), op_sequence(back->graph));
  expect_same_outputs(src, *back, 1e-5);
  // Writing the read model again works and keeps the interface.
  auto again = write_mlmodel(*back, unfolded());
  ASSERT_TRUE(again.has_value()) << again.status().to_string();
  EXPECT_EQ(parse(*again).description().input(0).name(), parse(bytes).description().input(0).name());
}

TEST_P(MlModelRoundTrip, Float16) {
  const ir::Model src = source();
  MlModelOptions o = unfolded();
  o.weights = WeightFormat::kFloat16;
  const auto bytes = write_or_die(src, o);
  const spec::Model m = parse(bytes);
  EXPECT_EQ(m.specificationversion(), 2);
  for (const auto& l : layers_of(m)) {
    if (l.has_convolution()) {
      EXPECT_EQ(l.convolution().weights().floatvalue_size(), 0);
      EXPECT_FALSE(l.convolution().weights().float16value().empty());
    }
  }
  auto back = read_mlmodel(bytes, "rt16.mlmodel");
  ASSERT_TRUE(back.has_value()) << back.status().to_string();
  expect_same_interface(src, *back);
  expect_same_constants(src, *back, 1.0 / 1024, 4);  // fp16: 11-bit significand
  expect_same_outputs(src, *back, 1e-2);
}

TEST_P(MlModelRoundTrip, QuantizedWeights) {
  const ir::Model src = source();
  for (WeightFormat f : {WeightFormat::kLinear8, WeightFormat::kLookupTable}) {
    MlModelOptions o = unfolded();
    o.weights = f;
    o.lookup_table_bits = 6;
    const auto bytes = write_or_die(src, o);
    const spec::Model m = parse(bytes);
    EXPECT_EQ(m.specificationversion(), 3);
    int quantized = 0;
    for (const auto& l : layers_of(m)) {
      if (!l.has_convolution()) continue;
      const auto& w = l.convolution().weights();
      const auto& cv = l.convolution();
      const uint64_t count = cv.outputchannels() * cv.kernelchannels() * cv.kernelsize(0) * cv.kernelsize(1);
      const uint64_t bits = w.quantization().numberofbits();
      EXPECT_EQ(w.rawvalue().size(), (count * bits + 7) / 8) << l.name();
      if (f == WeightFormat::kLinear8) {
        EXPECT_EQ(w.quantization().linearquantization().scale_size(), static_cast<int>(cv.outputchannels()));
      } else {
        EXPECT_EQ(w.quantization().lookuptablequantization().floatvalue_size(), 64);
      }
      ++quantized;
    }
    EXPECT_GT(quantized, 0);
    auto back = read_mlmodel(bytes, "rtq.mlmodel");
    ASSERT_TRUE(back.has_value()) << back.status().to_string();
    // Quantization error: within a step of the weight range.
    for (const auto& n : src.graph.nodes) {
      if (n.op != ir::OpType::kConv2d) continue;
      const ir::Value& w = src.graph.value(n.inputs[1]);
      const ir::Value* r = find_constant(back->graph, w.name);
      ASSERT_NE(r, nullptr) << w.name;
      const float* a = w.data.data<float>();
      const auto [lo, hi] = std::minmax_element(a, a + w.data.num_elements());
      // linear8: every value within a step of its channel's grid (<= the whole range / 255).
      // lut (k-means, 64 entries): RMS error below half a uniform 6-bit step.
      const double range = *hi - *lo;
      double worst = 0, sq = 0;
      for (int64_t i = 0; i < w.data.num_elements(); ++i) {
        const double e = std::abs(r->data.data<float>()[i] - a[i]);
        worst = std::max(worst, e);
        sq += e * e;
      }
      const double rms = std::sqrt(sq / static_cast<double>(w.data.num_elements()));
      if (f == WeightFormat::kLinear8) {
        EXPECT_LE(worst, range / 255.0) << w.name;
      } else {
        EXPECT_LE(rms, range / 64.0 / 2.0) << w.name;
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Zoo, MlModelRoundTrip, ::testing::Values("simple_cnn", "mobilenet_v2"));

TEST(MlModel, FoldedBatchNormKeepsOutputs) {
  const ir::Model src = mobilenet_v2_64();
  const auto bytes = write_or_die(src, MlModelOptions{});  // folding on (the default)
  int bn = 0, conv = 0;
  const spec::Model parsed = parse(bytes);
  for (const auto& l : layers_of(parsed)) bn += l.has_batchnorm(), conv += l.has_convolution();
  EXPECT_EQ(bn, 0);
  EXPECT_GT(conv, 10);
  auto back = read_mlmodel(bytes, "folded.mlmodel");
  ASSERT_TRUE(back.has_value()) << back.status().to_string();
  expect_same_interface(src, *back);
  expect_same_outputs(src, *back, 1e-5);
}

TEST(MlModel, PerChannelStdUsesAScaleLayerAndReadsBack) {
  ir::Model src = simple_cnn_32();
  src.input_spec.mean = {123.7f, 116.3f, 103.5f};
  src.input_spec.std = {58.4f, 57.1f, 57.4f};
  src.input_spec.color = ir::ColorOrder::kBGR;
  const auto bytes = write_or_die(src);
  const spec::Model m = parse(bytes);
  const auto& c = m.neuralnetworkclassifier();
  EXPECT_EQ(c.preprocessing(0).scaler().channelscale(), 1.f);
  EXPECT_FLOAT_EQ(c.preprocessing(0).scaler().bluebias(), -123.7f);  // BGR: channel 0 is blue
  ASSERT_TRUE(c.layers(0).has_scale());
  EXPECT_EQ(m.description().input(0).type().imagetype().colorspace(), spec::ImageFeatureType::BGR);
  auto back = read_mlmodel(bytes, "std.mlmodel");
  ASSERT_TRUE(back.has_value()) << back.status().to_string();
  expect_same_interface(src, *back);
  EXPECT_EQ(op_sequence(back->graph), op_sequence(src.graph));
}

TEST(MlModel, GrayscaleInput) {
  zoo::ZooOptions o;
  o.arch = "simple_cnn";
  o.size = 28;
  o.channels = 1;
  o.classes = 10;
  auto src = zoo::create_model(o);
  ASSERT_TRUE(src.has_value());
  const auto bytes = write_or_die(*src);
  const spec::Model m = parse(bytes);
  EXPECT_EQ(m.description().input(0).type().imagetype().colorspace(), spec::ImageFeatureType::GRAYSCALE);
  EXPECT_FLOAT_EQ(m.neuralnetworkclassifier().preprocessing(0).scaler().channelscale(), 1.f / 255.f);
  auto back = read_mlmodel(bytes, "gray.mlmodel");
  ASSERT_TRUE(back.has_value()) << back.status().to_string();
  expect_same_interface(*src, *back);
}

TEST(MlModel, SaveAndLoadFile) {
  const std::string dir = pcv::testing::make_temp_dir("coreml_save");
  const ir::Model src = mobilenet_v2_64();
  ASSERT_TRUE(save_mlmodel(src, dir + "/m.mlmodel").is_ok());
  auto back = load_mlmodel(dir + "/m.mlmodel");
  ASSERT_TRUE(back.has_value()) << back.status().to_string();
  expect_same_interface(src, *back);
  auto missing = load_mlmodel(dir + "/none.mlmodel");
  ASSERT_FALSE(missing.has_value());
  EXPECT_EQ(missing.status().code(), StatusCode::kIoError);
}

TEST(MlModel, TruncatedAndGarbageBytesFailCleanly) {
  const auto bytes = write_or_die(simple_cnn_32());
  for (size_t cut : {size_t{0}, size_t{1}, size_t{7}, bytes.size() / 3, bytes.size() / 2, bytes.size() - 1}) {
    std::vector<uint8_t> t(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(cut));
    auto r = read_mlmodel(t, "cut.mlmodel");
    EXPECT_FALSE(r.has_value()) << "cut at " << cut;
    if (!r.has_value()) {
      EXPECT_NE(r.status().message().find("cut.mlmodel"), std::string::npos);
    }
  }
  std::vector<uint8_t> garbage(4096);
  uint32_t s = 12345;
  for (auto& b : garbage) b = static_cast<uint8_t>((s = s * 1664525u + 1013904223u) >> 24);
  EXPECT_FALSE(read_mlmodel(garbage, "garbage").has_value());
  // Random byte flips: never crash, either a model or a clean error.
  for (int trial = 0; trial < 200; ++trial) {
    std::vector<uint8_t> f = bytes;
    for (int k = 0; k < 4; ++k) {
      s = s * 1664525u + 1013904223u;
      f[s % f.size()] ^= static_cast<uint8_t>(s >> 24);
    }
    auto r = read_mlmodel(f, "flip");
    if (!r.has_value()) {
      EXPECT_FALSE(r.status().message().empty());
    }
  }
}

TEST(MlModel, WrongWeightCountIsNamed) {
  spec::Model m = parse(write_or_die(simple_cnn_32()));
  auto* layers = m.mutable_neuralnetworkclassifier()->mutable_layers();
  for (auto& l : *layers) {
    if (l.has_convolution()) {
      l.mutable_convolution()->mutable_weights()->mutable_floatvalue()->RemoveLast();
      break;
    }
  }
  std::string bytes;
  ASSERT_TRUE(m.SerializeToString(&bytes));
  auto r = read_mlmodel(std::span(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()), "short.mlmodel");
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidModel);
  EXPECT_NE(r.status().message().find("conv1"), std::string::npos) << r.status().message();
  EXPECT_NE(r.status().message().find("convolution weights"), std::string::npos) << r.status().message();
}

TEST(MlModel, UnsupportedLayerIsNamed) {
  spec::Model m = parse(write_or_die(simple_cnn_32()));
  auto* l = m.mutable_neuralnetworkclassifier()->mutable_layers(1);  // the ReLU after conv1
  const std::string name = l->name();
  l->mutable_unary()->set_type(spec::UnaryFunctionLayerParams::EXP);
  std::string bytes;
  ASSERT_TRUE(m.SerializeToString(&bytes));
  auto r = read_mlmodel(std::span(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()), "unary.mlmodel");
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.status().code(), StatusCode::kUnsupported);
  EXPECT_NE(r.status().message().find(name), std::string::npos) << r.status().message();
}

TEST(MlModel, UndefinedBlobIsAnError) {
  spec::Model m = parse(write_or_die(simple_cnn_32()));
  m.mutable_neuralnetworkclassifier()->mutable_layers(2)->set_input(0, "nowhere");
  std::string bytes;
  ASSERT_TRUE(m.SerializeToString(&bytes));
  auto r = read_mlmodel(std::span(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()), "undef.mlmodel");
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.status().message().find("nowhere"), std::string::npos);
}

TEST(MlModelWeights, BitPackingIsMsbFirst) {
  const uint8_t codes[] = {1, 2, 3, 0};  // 2 bits each: 01 10 11 00
  const std::string packed = detail::pack_bits(codes, 2);
  ASSERT_EQ(packed.size(), 1u);
  EXPECT_EQ(static_cast<uint8_t>(packed[0]), 0b01101100);
  for (int i = 0; i < 4; ++i) EXPECT_EQ(detail::unpack_bits(packed, i, 2), codes[i]);
  const uint8_t three[] = {5, 7, 1};  // 3 bits: 101 111 001 -> 10111100 1.......
  const std::string p3 = detail::pack_bits(three, 3);
  ASSERT_EQ(p3.size(), 2u);
  EXPECT_EQ(static_cast<uint8_t>(p3[0]), 0b10111100);
  EXPECT_EQ(static_cast<uint8_t>(p3[1]), 0b10000000);
}

TEST(MlModel, QuantizedIrIsWrittenAsFloat) {
  // A tiny uint8 graph: input (1, 4, 4, 1) u8, conv with int8 per-channel weights, int32 bias.
  ir::Model m;
  ir::Graph& g = m.graph;
  const ir::ValueId x = g.add_input("input", ir::DType::kU8, {1, 4, 4, 1}, ir::QuantParams::per_tensor(1 / 128.f, 128));
  const ir::ValueId xf = g.add_node(ir::OpType::kDequantize, "deq", {x});
  ir::Tensor w(ir::DType::kI8, {2, 3, 3, 1});
  for (int i = 0; i < 18; ++i) w.data<int8_t>()[i] = static_cast<int8_t>(i - 9);
  ir::QuantParams wq;
  wq.scale = {0.5f, 0.25f};
  wq.zero_point = {0, 0};
  const ir::ValueId wv = g.add_constant("conv/weights", w, wq);
  ir::Tensor b(ir::DType::kI32, {2});
  b.data<int32_t>()[0] = 4, b.data<int32_t>()[1] = -8;
  ir::QuantParams bq;
  bq.scale = {0.25f, 0.25f};
  bq.zero_point = {0, 0};
  const ir::ValueId bv = g.add_constant("conv/bias", b, bq);
  const ir::ValueId y = g.add_node(ir::OpType::kConv2d, "conv", {xf, wv, bv}, ir::Conv2dAttrs{});
  g.mark_output(y);
  ASSERT_TRUE(ir::infer_shapes(g).is_ok());
  m.input_spec.height = m.input_spec.width = 4;
  m.input_spec.channels = 1;
  m.input_spec.color = ir::ColorOrder::kGray;
  auto bytes = write_mlmodel(m);
  ASSERT_TRUE(bytes.has_value()) << bytes.status().to_string();
  auto back = read_mlmodel(*bytes, "q.mlmodel");
  ASSERT_TRUE(back.has_value()) << back.status().to_string();
  EXPECT_FLOAT_EQ(back->input_spec.mean[0], 128.f);
  EXPECT_FLOAT_EQ(back->input_spec.std[0], 128.f);
  const ir::Value* rw = find_constant(back->graph, "conv/weights");
  ASSERT_NE(rw, nullptr);
  EXPECT_EQ(rw->dtype, ir::DType::kF32);
  EXPECT_FLOAT_EQ(rw->data.data<float>()[0], -9 * 0.5f);
  EXPECT_FLOAT_EQ(rw->data.data<float>()[9 + 0], 0 * 0.25f);
  EXPECT_FLOAT_EQ(rw->data.data<float>()[17], 8 * 0.25f);
  const ir::Value* rb = find_constant(back->graph, "conv/bias");
  ASSERT_NE(rb, nullptr);
  EXPECT_FLOAT_EQ(rb->data.data<float>()[1], -2.f);
}

}  // namespace
}  // namespace pcv::coreml
