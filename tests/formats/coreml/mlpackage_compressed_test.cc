// Compressed .mlpackage weights (iOS 16, opset CoreML6): constexpr_affine_dequantize (int8)
// and constexpr_lut_to_dense (2, 4, 6, 8-bit palettes).
//   - the bit packing of the lookup-table indices against coremltools' documented example;
//   - the file's structure: specification version 7, opset / block key "CoreML6", op types,
//     parameters as attributes with their dtypes, weight.bin smaller than the fp16 package;
//   - read back and run against an oracle built here: the file's quantized data dequantized by
//     this test's own code (w = (q - zp) * scale, w = lut[index]) put into the float model;
//   - top-1 agreement with the float model: on the zoo models (randomly initialized, so they
//     mostly predict one class: a weak check), and on real photos through the Coral ImageNet
//     MobileNetV2 (the meaningful one);
//   - corrupt files (truncated weight.bin, a table of the wrong size, offsets and shapes that
//     do not fit) give clean errors naming the op.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <limits>
#include <map>
#include <set>

#include "base/file.h"
#include "base/fp16.h"
#include "formats/coreml/Model.pb.h"
#include "formats/coreml/coreml.h"
#include "formats/coreml/coreml_test_util.h"
#include "formats/coreml/weights.h"
#include "support/paths.h"

#ifdef PCV_HAVE_RUNTIME
#include "runtime/session.h"
#endif
#ifdef PCV_HAVE_TFLITE
#include "formats/tflite/tflite.h"
#endif
#ifdef PCV_HAVE_VISION
#include "vision/decode.h"
#endif

namespace pcv::coreml {
namespace {

namespace spec = ::CoreML::Specification;
namespace mil = ::CoreML::Specification::MILSpec;
using namespace pcv::coreml::testing;

const std::string kModel = "/Data/com.apple.CoreML/model.mlmodel";
const std::string kWeights = "/Data/com.apple.CoreML/weights/weight.bin";

// ---- the test's own reading of the files (independent of mlpackage_reader.cc) ----

std::vector<uint8_t> slurp(const std::string& path) {
  auto b = read_file(path);
  EXPECT_TRUE(b.has_value()) << b.status().to_string();
  return b.has_value() ? *b : std::vector<uint8_t>{};
}

uint64_t le(const std::vector<uint8_t>& b, size_t at, int bytes) {
  uint64_t v = 0;
  for (int i = bytes - 1; i >= 0; --i) v = (v << 8) | b.at(at + static_cast<size_t>(i));
  return v;
}

spec::Model load_proto(const std::string& dir) {
  const auto bytes = slurp(dir + kModel);
  spec::Model m;
  EXPECT_TRUE(m.ParseFromArray(bytes.data(), static_cast<int>(bytes.size())));
  return m;
}

const mil::Block& main_block(const spec::Model& m) {
  const auto& fn = m.mlprogram().functions().at("main");
  return fn.block_specializations().at(fn.opset());
}

std::vector<int64_t> dims(const mil::Value& v) {
  std::vector<int64_t> d;
  for (const auto& x : v.type().tensortype().dimensions()) d.push_back(static_cast<int64_t>(x.constant().size()));
  return d;
}
int64_t count(const std::vector<int64_t>& d) {
  int64_t n = 1;
  for (int64_t x : d) n *= x;
  return n;
}

// A value's raw bytes: blob data (checking the blob record's type code) or immediate bytes.
std::vector<uint8_t> raw_bytes(const mil::Value& v, const std::vector<uint8_t>& wbin, uint32_t blob_type) {
  if (v.has_blobfilevalue()) {
    EXPECT_EQ(v.blobfilevalue().filename(), "@model_path/weights/weight.bin");
    const auto meta = static_cast<size_t>(v.blobfilevalue().offset());
    EXPECT_EQ(le(wbin, meta, 4), 0xDEADBEEFu);
    EXPECT_EQ(le(wbin, meta + 4, 4), blob_type) << "blob data type";
    const auto size = static_cast<size_t>(le(wbin, meta + 8, 8)), at = static_cast<size_t>(le(wbin, meta + 16, 8));
    return {wbin.begin() + static_cast<long>(at), wbin.begin() + static_cast<long>(at + size)};
  }
  const std::string& s = v.immediatevalue().tensor().bytes().values();
  return {s.begin(), s.end()};
}

std::vector<float> floats(const mil::Value& v, const std::vector<uint8_t>& wbin) {
  const auto dt = v.type().tensortype().datatype();
  if (dt == mil::FLOAT32 && !v.has_blobfilevalue()) {
    return {v.immediatevalue().tensor().floats().values().begin(), v.immediatevalue().tensor().floats().values().end()};
  }
  const auto b = raw_bytes(v, wbin, dt == mil::FLOAT16 ? 1 : 2);
  std::vector<float> out;
  if (dt == mil::FLOAT16) {
    for (size_t i = 0; i + 1 < b.size(); i += 2) out.push_back(f32_from_fp16(static_cast<uint16_t>(b[i] | (b[i + 1] << 8))));
  } else {
    out.resize(b.size() / 4);
    std::memcpy(out.data(), b.data(), out.size() * 4);
  }
  return out;
}

// The dense float weight an op defines: const, w = (q - zp) * scale (per axis-0 channel), or
// w = lut[index] with LSB-first packed indices.
std::vector<float> dense_weight(const mil::Operation& op, const std::vector<uint8_t>& wbin) {
  const auto& a = op.attributes();
  if (op.type() == "const") return floats(a.at("val"), wbin);
  EXPECT_EQ(op.inputs_size(), 0) << "iOS 16 constexpr parameters are attributes";
  if (op.type() == "constexpr_affine_dequantize") {
    const auto q = raw_bytes(a.at("quantized_data"), wbin, 4);
    const auto zp = raw_bytes(a.at("zero_point"), wbin, 4);
    const auto scale = floats(a.at("scale"), wbin);
    EXPECT_EQ(a.at("axis").immediatevalue().tensor().ints().values(0), 0);
    const int64_t channels = dims(a.at("quantized_data"))[0];
    const auto per = static_cast<size_t>(count(dims(a.at("quantized_data"))) / channels);
    std::vector<float> w(q.size());
    for (size_t i = 0; i < q.size(); ++i) {
      const size_t c = i / per;
      const float qv = static_cast<float>(static_cast<int8_t>(q[i])), z = static_cast<float>(static_cast<int8_t>(zp[c]));
      w[i] = scale[c] * (qv - z);
    }
    return w;
  }
  EXPECT_EQ(op.type(), "constexpr_lut_to_dense");
  const auto idx = raw_bytes(a.at("indices"), wbin, 3);
  const auto lut = floats(a.at("lut"), wbin);
  const auto shape_bytes = raw_bytes(a.at("shape"), wbin, 0);
  int64_t n = 1;
  for (size_t i = 0; i < shape_bytes.size(); i += 4) n *= static_cast<int64_t>(le(shape_bytes, i, 4));
  int bits = 0;
  while ((size_t{1} << bits) < lut.size()) ++bits;
  std::vector<float> w(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    unsigned code = 0;
    for (int b = 0; b < bits; ++b) {
      const int64_t bit = i * bits + b;
      code |= ((idx.at(static_cast<size_t>(bit / 8)) >> (bit % 8)) & 1u) << b;
    }
    w[static_cast<size_t>(i)] = lut.at(code);
  }
  return w;
}

std::string mil_name(const std::string& ir_name) {
  std::string s = ir_name;
  for (char& ch : s) {
    if (!std::isalnum(static_cast<unsigned char>(ch)) && ch != '_') ch = '_';
  }
  return s;
}

std::string attr_name(const mil::Operation& op) { return op.attributes().at("name").immediatevalue().tensor().strings().values(0); }

// `src` with every conv / dense weight replaced by what the package (written without folding
// batch norms) stores, dequantized here, and (fp16 packages) its other constants rounded to fp16.
// `storage` (optional) gets each node's weight op type ("const", "constexpr_...").
ir::Model oracle_model(const ir::Model& src, const std::string& dir, bool fp16,
                       std::map<std::string, std::string>* storage = nullptr) {
  ir::Model m = src;
  const spec::Model proto = load_proto(dir);
  const auto wbin = slurp(dir + kWeights);
  std::map<std::string, const mil::Operation*> by_name, by_output;
  for (const auto& op : main_block(proto).operations()) {
    if (op.type() == "conv" || op.type() == "linear") by_name[attr_name(op)] = &op;
    if (op.outputs_size()) by_output[op.outputs(0).name()] = &op;
  }
  std::set<ir::ValueId> weights;
  for (const auto& n : m.graph.nodes) {
    if (n.op != ir::OpType::kConv2d && n.op != ir::OpType::kFullyConnected) continue;
    const auto* op = by_name.at(mil_name(n.name));
    const auto* def = by_output.at(op->inputs().at("weight").arguments(0).name());
    const std::vector<float> w = dense_weight(*def, wbin);
    if (storage) (*storage)[n.name] = def->type();
    ir::Value& v = m.graph.value(n.inputs[1]);
    const ir::Shape& s = v.shape;
    EXPECT_EQ(static_cast<int64_t>(w.size()), count(s)) << n.name;
    std::vector<float> data(w.size());
    if (n.op == ir::OpType::kConv2d) {  // OIHW -> OHWI
      for (int64_t o = 0; o < s[0]; ++o)
        for (int64_t y = 0; y < s[1]; ++y)
          for (int64_t x = 0; x < s[2]; ++x)
            for (int64_t i = 0; i < s[3]; ++i) data[static_cast<size_t>(((o * s[1] + y) * s[2] + x) * s[3] + i)] = w[static_cast<size_t>(((o * s[3] + i) * s[1] + y) * s[2] + x)];
    } else {
      data = w;
    }
    v.data = ir::Tensor::from_vector(s, data);
    weights.insert(n.inputs[1]);
  }
  if (fp16) {
    for (auto& n : m.graph.nodes) {
      if (n.op == ir::OpType::kBatchNorm) {
        float& eps = n.attr<ir::BatchNormAttrs>().epsilon;
        eps = f32_from_fp16(fp16_from_f32(eps));
      }
    }
    for (size_t id = 0; id < m.graph.values.size(); ++id) {
      ir::Value& v = m.graph.values[id];
      if (!v.is_constant() || weights.count(static_cast<ir::ValueId>(id)) || v.data.dtype() != ir::DType::kF32) continue;
      for (int64_t i = 0; i < v.data.num_elements(); ++i) v.data.data<float>()[i] = f32_from_fp16(fp16_from_f32(v.data.data<float>()[i]));
    }
  }
  return m;
}

// ---- cases ----

struct Case {
  const char* name;
  PackageWeightFormat format;
  int bits;  // lookup table
};
const Case kCases[] = {{"int8", PackageWeightFormat::kAffineInt8, 0},
                       {"lut2", PackageWeightFormat::kLookupTable, 2},
                       {"lut4", PackageWeightFormat::kLookupTable, 4},
                       {"lut6", PackageWeightFormat::kLookupTable, 6},
                       {"lut8", PackageWeightFormat::kLookupTable, 8}};

MlPackageOptions options_for(const Case& c, bool fp16) {
  MlPackageOptions o;
  o.weights = c.format;
  o.lookup_table_bits = c.bits ? c.bits : 4;
  o.fp16 = fp16;
  o.fold_batch_norm = false;  // weights map one to one onto the source's
  o.weight_threshold = 0;     // compress the small test models' small weights too
  return o;
}

std::string save(const ir::Model& m, const MlPackageOptions& o, const std::string& tag) {
  const std::string dir = pcv::testing::make_temp_dir("coreml_compressed") + "/" + tag + ".mlpackage";
  const Status s = save_mlpackage(m, dir, o);
  EXPECT_TRUE(s.is_ok()) << s.to_string();
  return dir;
}

TEST(LutIndexPacking, MatchesCoremltoolsExample) {
  // constexpr_lut_to_dense's docstring: n_bits = 2, shape (5,): byte 0 = | i3 i2 i1 i0 | from
  // the MSB, = 01 10 11 00; byte 1 = | xx xx xx i4 | = ... 11.
  const std::vector<uint8_t> codes{0b00, 0b11, 0b10, 0b01, 0b11};
  const auto packed = detail::pack_bits_lsb_first(codes, 2);
  ASSERT_EQ(packed.size(), 2u);
  EXPECT_EQ(packed[0], 0b01101100);
  EXPECT_EQ(packed[1], 0b00000011);
  // 6 bits: the second index starts in the two high bits of byte 0 (its low bits) and goes on
  // in the low bits of byte 1.
  EXPECT_EQ(detail::pack_bits_lsb_first(std::vector<uint8_t>{0x3F, 0x01}, 6), (std::vector<uint8_t>{0x7F, 0x00}));
  EXPECT_EQ(detail::pack_bits_lsb_first(std::vector<uint8_t>{0x00, 0x3F}, 6), (std::vector<uint8_t>{0xC0, 0x0F}));
  EXPECT_EQ(detail::pack_bits_lsb_first(std::vector<uint8_t>{0x05, 0x0A, 0x0F}, 4), (std::vector<uint8_t>{0xA5, 0x0F}));
  for (int bits = 1; bits <= 8; ++bits) {
    std::vector<uint8_t> c(37);
    for (size_t i = 0; i < c.size(); ++i) c[i] = static_cast<uint8_t>((i * 37 + 11) % (1u << bits));
    const auto p = detail::pack_bits_lsb_first(c, bits);
    EXPECT_EQ(p.size(), (c.size() * static_cast<size_t>(bits) + 7) / 8);
    for (size_t i = 0; i < c.size(); ++i) ASSERT_EQ(detail::unpack_bits_lsb_first(p, static_cast<int64_t>(i), bits), c[i]) << bits;
  }
}

TEST(PaletteTable, KeepsAnAlreadyPalettizedTensorExactly) {
  std::vector<float> w;
  const float values[] = {-0.75f, -0.1f, 0.f, 0.3125f, 1.5f};
  for (int i = 0; i < 200; ++i) w.push_back(values[(i * 7) % 5]);
  const auto p = detail::palettize_table(w, 3, /*fp16_table=*/false);
  ASSERT_EQ(p.table.size(), 8u);
  for (size_t i = 0; i < w.size(); ++i) EXPECT_EQ(p.table[p.codes[i]], w[i]);
  // Symmetric int8: q * scale reproduces the row within half a step.
  const std::vector<float> row{-2.f, 0.5f, 1.f, 0.f, 0.f, 0.f};  // two rows of 3
  const auto q = detail::quantize_affine_int8(row, 2, false);
  ASSERT_EQ(q.scale.size(), 2u);
  EXPECT_FLOAT_EQ(q.scale[0], 2.f / 127.f);
  EXPECT_EQ(q.q[0], -127);
  EXPECT_EQ(q.scale[1], 1.f);  // an all-zero row
  for (size_t i = 0; i < row.size(); ++i) EXPECT_NEAR(q.q[i] * q.scale[i / 3], row[i], q.scale[i / 3] / 2);
}

class Compressed : public ::testing::TestWithParam<Case> {};

// Structure of a compressed mobilenet_v2 package, and its weight.bin against the fp16 one.
TEST_P(Compressed, Structure) {
  const Case c = GetParam();
  const ir::Model src = mobilenet_v2_64();
  MlPackageOptions o = options_for(c, true);
  o.fold_batch_norm = true;  // as shipped
  o.weight_threshold = MlPackageOptions{}.weight_threshold;
  const std::string dir = save(src, o, c.name);
  MlPackageOptions fp16 = o;
  fp16.weights = PackageWeightFormat::kFloat;
  const std::string dir16 = save(src, fp16, std::string(c.name) + "_fp16");

  const auto bytes = slurp(dir + kModel);
  const std::string decoded = decode_raw(bytes);
  EXPECT_NE(decoded.find(c.format == PackageWeightFormat::kAffineInt8 ? "constexpr_affine_dequantize" : "constexpr_lut_to_dense"),
            std::string::npos);
  EXPECT_NE(decoded.find("CoreML6"), std::string::npos);
  const spec::Model m = load_proto(dir);
  EXPECT_EQ(m.specificationversion(), 7);
  const auto& fn = m.mlprogram().functions().at("main");
  EXPECT_EQ(fn.opset(), "CoreML6");
  ASSERT_EQ(fn.block_specializations().size(), 1u);
  EXPECT_EQ(fn.block_specializations().begin()->first, "CoreML6");
  EXPECT_EQ(load_proto(dir16).specificationversion(), 6);
  EXPECT_EQ(load_proto(dir16).mlprogram().functions().at("main").opset(), "CoreML5");

  const auto wbin = slurp(dir + kWeights);
  std::map<std::string, const mil::Operation*> by_output;
  std::set<std::string> defined;
  int compressed = 0, float_weights = 0;
  for (const auto& op : main_block(m).operations()) {
    // Every input is defined before use (constexprs sit with the consts at the front).
    for (const auto& [param, arg] : op.inputs()) {
      for (const auto& b : arg.arguments()) {
        if (!b.name().empty()) {
          EXPECT_TRUE(defined.count(b.name()) || b.name() == fn.inputs(0).name()) << b.name();
        }
      }
    }
    for (const auto& o : op.outputs()) defined.insert(o.name()), by_output[o.name()] = &op;
  }
  const int stored_bits = c.bits == 0 ? 8 : c.bits;
  for (const auto& op : main_block(m).operations()) {
    if (op.type() != "conv" && op.type() != "linear") continue;
    const mil::Operation& w = *by_output.at(op.inputs().at("weight").arguments(0).name());
    const auto& out = w.outputs(0).type().tensortype();
    EXPECT_EQ(out.datatype(), mil::FLOAT16);
    const auto& a = w.attributes();
    std::vector<int64_t> out_dims;
    for (const auto& d : out.dimensions()) out_dims.push_back(static_cast<int64_t>(d.constant().size()));
    const int64_t n = count(out_dims);
    // At most weight_threshold elements: float, above: compressed (no 2048+ element tensor
    // would be larger compressed).
    EXPECT_EQ(w.type() == "const", n <= o.weight_threshold) << attr_name(op) << " " << n;
    if (w.type() == "const") {
      ++float_weights;
      continue;
    }
    ++compressed;
    ASSERT_EQ(w.type(), c.format == PackageWeightFormat::kAffineInt8 ? "constexpr_affine_dequantize" : "constexpr_lut_to_dense");
    EXPECT_EQ(w.inputs_size(), 0);
    if (c.format == PackageWeightFormat::kAffineInt8) {
      EXPECT_EQ(a.at("quantized_data").type().tensortype().datatype(), mil::INT8);
      EXPECT_EQ(dims(a.at("quantized_data")), out_dims);
      EXPECT_EQ(a.at("zero_point").type().tensortype().datatype(), mil::INT8);
      EXPECT_EQ(dims(a.at("zero_point")), std::vector<int64_t>{out_dims[0]});
      EXPECT_EQ(a.at("scale").type().tensortype().datatype(), mil::FLOAT16);
      EXPECT_EQ(dims(a.at("scale")), std::vector<int64_t>{out_dims[0]});
      EXPECT_EQ(a.at("axis").type().tensortype().datatype(), mil::INT32);
      EXPECT_EQ(raw_bytes(a.at("quantized_data"), wbin, 4).size(), static_cast<size_t>(n));
      for (uint8_t z : raw_bytes(a.at("zero_point"), wbin, 4)) EXPECT_EQ(z, 0);
    } else {
      EXPECT_EQ(a.at("indices").type().tensortype().datatype(), mil::UINT8);
      EXPECT_EQ(dims(a.at("indices")), std::vector<int64_t>{(n * stored_bits + 7) / 8});
      EXPECT_EQ(raw_bytes(a.at("indices"), wbin, 3).size(), static_cast<size_t>((n * stored_bits + 7) / 8));
      EXPECT_EQ(a.at("lut").type().tensortype().datatype(), mil::FLOAT16);
      EXPECT_EQ(dims(a.at("lut")), std::vector<int64_t>{int64_t{1} << stored_bits});
      const auto& shape = a.at("shape");
      EXPECT_EQ(shape.type().tensortype().datatype(), mil::UINT32);
      const auto sb = raw_bytes(shape, wbin, 0);
      ASSERT_EQ(sb.size(), 4 * out_dims.size());
      for (size_t i = 0; i < out_dims.size(); ++i) EXPECT_EQ(static_cast<int64_t>(le(sb, 4 * i, 4)), out_dims[i]);
    }
  }
  EXPECT_GT(compressed, 20);
  EXPECT_GT(float_weights, 5);

  const double ratio = static_cast<double>(wbin.size()) / static_cast<double>(slurp(dir16 + kWeights).size());
  // Weights are ~95% of the fp16 file; indices take bits/16 of them, plus tables, scales,
  // biases and 64-byte blob records.
  const double expected = c.bits == 0 ? 0.5 : c.bits / 16.0;
  std::printf("%s: weight.bin %zu bytes, %.3f of fp16 (%.3f ideal)\n", c.name, wbin.size(), ratio, expected);
  EXPECT_LT(ratio, expected + 0.12) << c.name;
  EXPECT_GT(ratio, expected * 0.9) << c.name;
}

#ifdef PCV_HAVE_RUNTIME
int argmax(const ir::Tensor& t) {
  const float* p = t.data<float>();
  return static_cast<int>(std::max_element(p, p + t.num_elements()) - p);
}

// Per element, `deq` (a decoded weight tensor) against the float weights `f`: int8 within half a
// step of its channel's scale; table entries the nearest of the values the tensor uses (to the
// fp16-rounded weight for fp16 tables); bits < 0: a float weight, not checked per element.
struct WeightError {
  double rms_error = 0, rms = 0;
  double rms_error_linear = 0;  // of a linear 2^bits-level table over [min, max]
};
WeightError weight_error(const ir::Tensor& deq, const ir::Tensor& f, int bits, bool fp16) {
  const int64_t n = f.num_elements();
  const float* d = deq.data<float>();
  const float* w = f.data<float>();
  double se = 0, sw = 0, se_linear = 0;
  const auto [lo, hi] = std::minmax_element(w, w + n);
  const double step = (static_cast<double>(*hi) - *lo) / ((1 << std::max(bits, 1)) - 1);
  for (int64_t i = 0; i < n; ++i) {
    se += (d[i] - w[i]) * static_cast<double>(d[i] - w[i]), sw += w[i] * static_cast<double>(w[i]);
    const double e = step > 0 ? *lo + std::round((w[i] - *lo) / step) * step - w[i] : 0;
    se_linear += e * e;
  }
  if (bits < 0) {
    // stored as a float const
  } else if (bits == 0) {
    const int64_t rows = f.shape()[0], cols = n / rows;
    for (int64_t r = 0; r < rows; ++r) {
      float max_abs = 0;
      for (int64_t c = 0; c < cols; ++c) max_abs = std::max(max_abs, std::abs(w[r * cols + c]));
      const double step = max_abs / 127.0 * (fp16 ? 1.001 : 1.0 + 1e-5);
      for (int64_t c = 0; c < cols; ++c) EXPECT_LE(std::abs(d[r * cols + c] - w[r * cols + c]), step / 2 + 1e-12) << r << "," << c;
    }
  } else {
    std::vector<float> used(d, d + n);
    std::sort(used.begin(), used.end());
    used.erase(std::unique(used.begin(), used.end()), used.end());
    EXPECT_LE(used.size(), size_t{1} << bits);
    for (int64_t i = 0; i < n; ++i) {
      const float x = fp16 ? f32_from_fp16(fp16_from_f32(w[i])) : w[i];
      auto it = std::lower_bound(used.begin(), used.end(), x);
      float best = std::numeric_limits<float>::infinity();
      if (it != used.end()) best = std::min(best, std::abs(*it - x));
      if (it != used.begin()) best = std::min(best, std::abs(*(it - 1) - x));
      if (std::abs(d[i] - x) > best * (1 + 1e-6f)) {
        ADD_FAILURE() << "element " << i << " = " << x << " is on " << d[i] << ", not its nearest table entry";
        break;
      }
    }
  }
  const auto nd = static_cast<double>(n);
  return {std::sqrt(se / nd), std::sqrt(sw / nd), std::sqrt(se_linear / nd)};
}

// Read back and run: equal to the oracle (the file's own quantized values dequantized here),
// top-1 equal to the float model.
TEST_P(Compressed, ReadBackMatchesOracleAndFloatTop1) {
  const Case c = GetParam();
  for (const bool fp16 : {true, false}) {
    for (const char* arch : {"simple_cnn", "mobilenet_v2"}) {
      SCOPED_TRACE(std::string(arch) + (fp16 ? " fp16" : " fp32"));
      const ir::Model src = std::string(arch) == "simple_cnn" ? simple_cnn_32() : mobilenet_v2_64();
      const std::string dir = save(src, options_for(c, fp16), std::string(c.name) + arch + (fp16 ? "16" : "32"));
      auto back = read_mlpackage(dir);
      ASSERT_TRUE(back.has_value()) << back.status().to_string();
      std::map<std::string, std::string> storage;
      const ir::Model oracle = oracle_model(src, dir, fp16, &storage);
      double worst = 0;
      // The reader's weights are the oracle's.
      for (const auto& n : src.graph.nodes) {
        if (n.op != ir::OpType::kConv2d && n.op != ir::OpType::kFullyConnected) continue;
        const ir::Value* r = find_constant(back->graph, mil_name(n.name) + "/weights");
        ASSERT_NE(r, nullptr) << n.name;
        EXPECT_EQ(max_rel_diff(r->data, oracle.graph.value(n.inputs[1]).data), 0.0) << n.name;
        // And close to the float weights.
        const ir::Tensor& f = src.graph.value(n.inputs[1]).data;
        const bool is_float = storage.at(n.name) == "const";
        const WeightError e = weight_error(r->data, f, is_float ? -1 : c.bits, fp16);
        worst = std::max(worst, e.rms_error / e.rms);
        // A table is never worse than the linear one (fp16 tables: up to fp16 rounding).
        if (c.bits > 0 && !is_float) {
          EXPECT_LE(e.rms_error, e.rms_error_linear * 1.0001 + (fp16 ? e.rms / 1024 : 0.0)) << n.name;
        }
      }
      std::printf("%s %s %s: worst relative RMS weight error %.5f\n", c.name, arch, fp16 ? "fp16" : "fp32", worst);
      // int8: half a step of max|w| / 127 is ~0.4% of a bell-shaped tensor's RMS.
      if (c.bits == 0) {
        EXPECT_LE(worst, 0.01);
      }
      int agree = 0, float_class_0 = 0;
      const int samples = 8;
      for (int s = 0; s < samples; ++s) {
        const ir::Tensor x = random_input(src, 100 + static_cast<uint64_t>(s));
        auto got = runtime::run_model(*back, {x});
        auto want = runtime::run_model(oracle, {x});
        auto ref = runtime::run_model(src, {x});
        ASSERT_TRUE(got.has_value() && want.has_value() && ref.has_value());
        EXPECT_LE(max_rel_diff((*got)[0], (*want)[0]), 1e-6);
        agree += argmax((*got)[0]) == argmax((*ref)[0]);
        float_class_0 += argmax((*ref)[0]) == 0;
      }
      std::printf("%s %s %s: top-1 agrees with the float model on %d of %d inputs (float: %d class 0)\n", c.name, arch,
                  fp16 ? "fp16" : "fp32", agree, samples, float_class_0);
      // 2-bit palettes of a randomly initialized network may flip a close call.
      EXPECT_GE(agree, c.bits == 2 ? samples / 2 : samples - 1) << c.name;
    }
  }
}
#endif

INSTANTIATE_TEST_SUITE_P(Formats, Compressed, ::testing::ValuesIn(kCases),
                         [](const ::testing::TestParamInfo<Case>& i) { return std::string(i.param.name); });

uint64_t package_bytes(const std::string& dir) {
  uint64_t n = 0;
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir)) {
    if (e.is_regular_file()) n += e.file_size();
  }
  return n;
}

#if defined(PCV_HAVE_RUNTIME) && defined(PCV_HAVE_TFLITE) && defined(PCV_HAVE_VISION)
// A trained network on real photos: the Coral MobileNetV2 (ImageNet, 1001 classes, uint8
// weights read as float) written fp16, int8 and palettized, each read back and run on pet
// photos; top-1 against the fp16 package's. Its weights have <= 256 distinct values per
// tensor, so the 8-bit tables hold them exactly.
TEST(CompressedPretrained, MobileNetV2PhotosKeepTheirTop1) {
  PCV_REQUIRE_SHARED_DATA(path, "pretrained/mobilenet-tflite-coral/mobilenet_v2_1.0_224_quant.tflite");
  PCV_REQUIRE_SHARED_DATA(photos, "oxford-pets-sample");
  auto q = tflite::load_tflite(path);
  ASSERT_TRUE(q.has_value()) << q.status().to_string();
  std::vector<std::string> files;
  for (const char* kind : {"cat", "dog"}) {
    std::vector<std::string> all;
    for (const auto& e : std::filesystem::directory_iterator(photos + "/" + kind)) all.push_back(e.path().string());
    std::sort(all.begin(), all.end());
    for (size_t i = 0; i < all.size() && i < 80; i += 10) files.push_back(all[i]);  // 8 of each
  }
  const std::string dir = pcv::testing::make_temp_dir("coreml_compressed_coral");
  const std::vector<std::pair<std::string, MlPackageOptions>> variants = [] {
    std::vector<std::pair<std::string, MlPackageOptions>> v;
    v.push_back({"fp16", MlPackageOptions{}});
    MlPackageOptions o;
    o.weights = PackageWeightFormat::kAffineInt8;
    v.push_back({"int8", o});
    for (int bits : {8, 6, 4}) {
      o.weights = PackageWeightFormat::kLookupTable;
      o.lookup_table_bits = bits;
      v.push_back({"lut" + std::to_string(bits), o});
    }
    return v;
  }();
  std::vector<std::vector<int64_t>> top1(variants.size());
  for (size_t k = 0; k < variants.size(); ++k) {
    const std::string pkg = dir + "/" + variants[k].first + ".mlpackage";
    ASSERT_TRUE(save_mlpackage(*q, pkg, variants[k].second).is_ok());
    auto m = read_mlpackage(pkg);
    ASSERT_TRUE(m.has_value()) << m.status().to_string();
    for (const std::string& f : files) {
      auto img = vision::read_image(f);
      ASSERT_TRUE(img.has_value()) << img.status().to_string();
      const ir::Tensor t = photo_input(*img, m->input_spec);
      auto out = runtime::run_model(*m, {t});
      ASSERT_TRUE(out.has_value()) << out.status().to_string();
      const float* p = (*out)[0].data<float>();
      top1[k].push_back(std::max_element(p, p + (*out)[0].num_elements()) - p);
    }
    int agree = 0;
    for (size_t i = 0; i < files.size(); ++i) agree += top1[k][i] == top1[0][i];
    std::printf("coral mobilenet_v2 %s: %llu bytes, top-1 equal to fp16 on %d of %zu photos\n", variants[k].first.c_str(),
                static_cast<unsigned long long>(package_bytes(pkg)), agree, files.size());
    // int8 and 8-bit tables keep every top-1 (the tables are exact here); one 64-entry table
    // per tensor costs a few photos of this 1001-class model, a 16-entry one most of them (as
    // coremltools says of post-training 4-bit palettes: they need per-channel groups or
    // fine-tuning), so lut4 is only run.
    const auto n = static_cast<int>(files.size());
    const int need = variants[k].first == "lut4" ? 0 : variants[k].first == "lut6" ? n / 2 : n;
    EXPECT_GE(agree, need) << variants[k].first;
  }
}
#endif

// ---- corrupt files ----

// Rewrites the package's model.mlmodel after `edit` changes the first op of `type`.
template <class F>
void edit_first(const std::string& dir, const std::string& type, F edit) {
  spec::Model m = load_proto(dir);
  auto& fn = (*m.mutable_mlprogram()->mutable_functions())["main"];
  auto& block = (*fn.mutable_block_specializations())[fn.opset()];
  bool found = false;
  for (auto& op : *block.mutable_operations()) {
    if (op.type() == type) {
      edit(op);
      found = true;
      break;
    }
  }
  ASSERT_TRUE(found) << type;
  std::string out;
  ASSERT_TRUE(m.SerializeToString(&out));
  ASSERT_TRUE(write_file_atomic(dir + kModel, std::string_view(out)).is_ok());
}

void expect_error(const std::string& dir, StatusCode code, const std::string& needle, const std::string& op_type) {
  auto r = read_mlpackage(dir);
  ASSERT_FALSE(r.has_value()) << needle;
  EXPECT_EQ(r.status().code(), code) << r.status().to_string();
  EXPECT_NE(r.status().message().find(needle), std::string::npos) << r.status().message();
  EXPECT_NE(r.status().message().find(op_type), std::string::npos) << r.status().message();
}

TEST(CompressedCorrupt, LookupTableFilesFailCleanly) {
  const std::string dir = save(simple_cnn_32(), options_for(kCases[2], true), "corrupt_lut");
  const std::string model_path = dir + kModel, wpath = dir + kWeights;
  const auto model_bytes = slurp(model_path), w = slurp(wpath);
  auto restore = [&] {
    ASSERT_TRUE(write_file_atomic(model_path, model_bytes).is_ok());
    ASSERT_TRUE(write_file_atomic(wpath, w).is_ok());
    ASSERT_TRUE(read_mlpackage(dir).has_value());
  };
  restore();
  // Truncated weight.bin.
  ASSERT_TRUE(write_file_atomic(wpath, std::span(w.data(), w.size() * 3 / 4)).is_ok());
  expect_error(dir, StatusCode::kInvalidModel, "weight.bin", "");
  restore();
  // A 12-entry table (not 2^bits).
  edit_first(dir, "constexpr_lut_to_dense", [](mil::Operation& op) {
    mil::Value lut;
    auto* tt = lut.mutable_type()->mutable_tensortype();
    tt->set_datatype(mil::FLOAT16);
    tt->set_rank(1);
    tt->add_dimensions()->mutable_constant()->set_size(12);
    lut.mutable_immediatevalue()->mutable_tensor()->mutable_bytes()->set_values(std::string(24, '\0'));
    (*op.mutable_attributes())["lut"] = lut;
  });
  expect_error(dir, StatusCode::kInvalidModel, "12 entries", "constexpr_lut_to_dense");
  restore();
  // A table whose declared size disagrees with its blob.
  edit_first(dir, "constexpr_lut_to_dense", [](mil::Operation& op) {
    (*op.mutable_attributes())["lut"].mutable_type()->mutable_tensortype()->mutable_dimensions(0)->mutable_constant()->set_size(256);
  });
  expect_error(dir, StatusCode::kInvalidModel, "constant has 16 values", "constexpr_lut_to_dense");
  restore();
  // Indices blob offset past the end of weight.bin, then misaligned.
  edit_first(dir, "constexpr_lut_to_dense", [](mil::Operation& op) {
    (*op.mutable_attributes())["indices"].mutable_blobfilevalue()->set_offset(uint64_t{1} << 40);
  });
  expect_error(dir, StatusCode::kInvalidModel, "outside the file", "constexpr_lut_to_dense");
  restore();
  edit_first(dir, "constexpr_lut_to_dense", [](mil::Operation& op) {
    auto* b = (*op.mutable_attributes())["indices"].mutable_blobfilevalue();
    b->set_offset(b->offset() + 8);
  });
  expect_error(dir, StatusCode::kInvalidModel, "misaligned", "constexpr_lut_to_dense");
  restore();
  // A shape with more elements than the indices hold (and the output type to match it).
  edit_first(dir, "constexpr_lut_to_dense", [](mil::Operation& op) {
    auto& shape = (*op.mutable_attributes())["shape"];
    std::string b = shape.immediatevalue().tensor().bytes().values();
    b[0] = static_cast<char>(b[0] * 2);
    shape.mutable_immediatevalue()->mutable_tensor()->mutable_bytes()->set_values(b);
  });
  expect_error(dir, StatusCode::kInvalidModel, "bit indices", "constexpr_lut_to_dense");
  restore();
  // A zero dimension, and a shape stored in 3 bytes.
  edit_first(dir, "constexpr_lut_to_dense", [](mil::Operation& op) {
    auto& shape = (*op.mutable_attributes())["shape"];
    std::string b = shape.immediatevalue().tensor().bytes().values();
    b.assign(4, '\0');
    b += shape.immediatevalue().tensor().bytes().values().substr(4);
    shape.mutable_immediatevalue()->mutable_tensor()->mutable_bytes()->set_values(b);
  });
  expect_error(dir, StatusCode::kInvalidModel, "empty or too large", "constexpr_lut_to_dense");
  restore();
  edit_first(dir, "constexpr_lut_to_dense", [](mil::Operation& op) {
    auto& shape = (*op.mutable_attributes())["shape"];
    shape.mutable_immediatevalue()->mutable_tensor()->mutable_bytes()->set_values(std::string(3, '\1'));
  });
  expect_error(dir, StatusCode::kInvalidModel, "constant has", "constexpr_lut_to_dense");
  restore();
  // The declared output shape differs from the data.
  edit_first(dir, "constexpr_lut_to_dense", [](mil::Operation& op) {
    op.mutable_outputs(0)->mutable_type()->mutable_tensortype()->mutable_dimensions(0)->mutable_constant()->set_size(3);
  });
  expect_error(dir, StatusCode::kInvalidModel, "declared output shape", "constexpr_lut_to_dense");
  restore();
  // A missing parameter.
  edit_first(dir, "constexpr_lut_to_dense", [](mil::Operation& op) { op.mutable_attributes()->erase("indices"); });
  expect_error(dir, StatusCode::kInvalidModel, "missing parameter 'indices'", "constexpr_lut_to_dense");
}

TEST(CompressedCorrupt, AffineFilesFailCleanly) {
  const std::string dir = save(simple_cnn_32(), options_for(kCases[0], false), "corrupt_int8");
  const std::string model_path = dir + kModel;
  const auto model_bytes = slurp(model_path);
  auto restore = [&] {
    ASSERT_TRUE(write_file_atomic(model_path, model_bytes).is_ok());
    ASSERT_TRUE(read_mlpackage(dir).has_value());
  };
  restore();
  edit_first(dir, "constexpr_affine_dequantize", [](mil::Operation& op) {
    (*op.mutable_attributes())["axis"].mutable_immediatevalue()->mutable_tensor()->mutable_ints()->set_values(0, 7);
  });
  expect_error(dir, StatusCode::kInvalidModel, "axis 7", "constexpr_affine_dequantize");
  restore();
  // Per-channel scales along axis 1: the count no longer matches.
  edit_first(dir, "constexpr_affine_dequantize", [](mil::Operation& op) {
    (*op.mutable_attributes())["axis"].mutable_immediatevalue()->mutable_tensor()->mutable_ints()->set_values(0, 1);
  });
  expect_error(dir, StatusCode::kInvalidModel, "must be a scalar or a vector", "constexpr_affine_dequantize");
  restore();
  // Quantized data declared uint8 while its blob holds int8.
  edit_first(dir, "constexpr_affine_dequantize", [](mil::Operation& op) {
    (*op.mutable_attributes())["quantized_data"].mutable_type()->mutable_tensortype()->set_datatype(mil::UINT8);
  });
  expect_error(dir, StatusCode::kUnsupported, "blob of data type 4", "constexpr_affine_dequantize");
  restore();
  // An integer scale.
  edit_first(dir, "constexpr_affine_dequantize", [](mil::Operation& op) {
    mil::Value v;
    auto* tt = v.mutable_type()->mutable_tensortype();
    tt->set_datatype(mil::INT32);
    tt->set_rank(0);
    v.mutable_immediatevalue()->mutable_tensor()->mutable_ints()->add_values(1);
    (*op.mutable_attributes())["scale"] = v;
  });
  expect_error(dir, StatusCode::kInvalidModel, "scale must be fp16 or fp32", "constexpr_affine_dequantize");
}

TEST(CompressedDescribe, NamesTheOpset) {
  const std::string dir = save(mobilenet_v2_64(), options_for(kCases[2], true), "describe");
  auto d = describe_coreml(dir);
  ASSERT_TRUE(d.has_value()) << d.status().to_string();
  for (const char* s : {"specification version: 7", "opset CoreML6", "constexpr_lut_to_dense"}) {
    EXPECT_NE(d->find(s), std::string::npos) << s << "\n" << *d;
  }
}

TEST(CompressedOptions, RejectsBadBits) {
  MlPackageOptions o;
  o.weights = PackageWeightFormat::kLookupTable;
  o.lookup_table_bits = 9;
  const std::string dir = pcv::testing::make_temp_dir("coreml_compressed") + "/bad.mlpackage";
  const Status s = save_mlpackage(simple_cnn_32(), dir, o);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << s.to_string();
}

}  // namespace
}  // namespace pcv::coreml
