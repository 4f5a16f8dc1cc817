// IR -> .mlpackage: an ML Program (specification version 6, opset "CoreML5"; 7 and "CoreML6"
// with compressed weights) in Data/com.apple.CoreML/model.mlmodel, its weights in
// Data/com.apple.CoreML/weights/weight.bin (blob storage v2), and Manifest.json.
//
// MIL is NCHW: an NHWC IR value (N, H, W, C) is the MIL tensor (N, C, H, W); 2-D values are
// unchanged. Every op parameter is written (as a `const` op bound by name, as coremltools
// does). Program shape:
//   image (fp32 [1, C, H, W]) -> mul(1/std) -> add(-mean/std) -> [cast fp16] -> network
//   -> [cast fp32] -> classify (when labelled) / outputs.
// Op map: conv2d -> conv (weights OIHW; pad_type same/valid/custom), fully_connected -> linear,
// batch_norm -> batch_norm, relu/relu6/sigmoid/leaky_relu -> same names, hard_swish ->
// sigmoid_hard(1/6, 0.5) * x, add/mul -> add/mul (constants laid out NCHW), concat -> concat
// (axis 1), pools -> max_pool/avg_pool (padding excluded from averages), mean(H, W) ->
// reduce_mean(axes 2, 3), flatten/reshape -> [transpose to NHWC] reshape [transpose to NCHW],
// pad -> pad (constant), softmax -> softmax; dropout/quantize/dequantize have no op.
//
// Compressed conv / linear weights (PackageWeightFormat) are iOS 16 constexpr ops written as
// coremltools writes them for opsets up to iOS 17: every parameter is an attribute of the op
// (a Value: in the blob file when it has >= 10 elements of fp16/fp32/uint8/int8, else
// immediate, int8/uint8/uint32 immediates as little-endian `bytes`), no inputs, one output of
// the weight's type:
//   w = constexpr_affine_dequantize(quantized_data: int8 (O, ...), zero_point: int8 (O),
//                                   scale: T (O), axis: int32 0)        w = scale * (q - zp)
//   w = constexpr_lut_to_dense(indices: uint8 (ceil(n * bits / 8)), lut: T (2^bits),
//                              shape: uint32 (rank))                    w = lut[index]
#include <fmt/core.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "base/file.h"
#include "ir/passes/passes.h"
#include "base/fp16.h"
#include "formats/coreml/blob_storage.h"
#include "formats/coreml/common.h"
#include "formats/coreml/coreml.h"
#include "formats/coreml/weights.h"

namespace pcv::coreml {

const char* package_weight_format_name(PackageWeightFormat f) {
  switch (f) {
    case PackageWeightFormat::kFloat: return "float";
    case PackageWeightFormat::kAffineInt8: return "int8";
    case PackageWeightFormat::kLookupTable: return "lut";
  }
  return "?";
}

namespace {

using namespace detail;
namespace mil = ::CoreML::Specification::MILSpec;
using ir::OpType;

using MilShape = std::vector<int64_t>;

MilShape mil_shape(const ir::Shape& s) {
  if (s.size() == 4) return {s[0], s[3], s[1], s[2]};
  return s;
}

void set_tensor_type(mil::ValueType* t, mil::DataType dt, const MilShape& shape) {
  auto* tt = t->mutable_tensortype();
  tt->set_datatype(dt);
  tt->set_rank(static_cast<int64_t>(shape.size()));
  for (int64_t d : shape) tt->add_dimensions()->mutable_constant()->set_size(static_cast<uint64_t>(d));
}

mil::Value string_value(const std::string& s) {
  mil::Value v;
  set_tensor_type(v.mutable_type(), mil::STRING, {});
  v.mutable_immediatevalue()->mutable_tensor()->mutable_strings()->add_values(s);
  return v;
}

// NHWC constant data (any rank <= 4) laid out for an NCHW operand of rank `other_rank`.
std::pair<std::vector<float>, MilShape> nchw_constant(const ir::Value& c, size_t other_rank) {
  const float* p = c.data.data<float>();
  const int64_t n = c.data.num_elements();
  std::vector<float> v(p, p + n);
  const ir::Shape& s = c.shape;
  if (n == 1) return {v, {}};
  if (other_rank == 4 && s.size() == 4) {
    std::vector<float> t(static_cast<size_t>(n));
    for (int64_t a = 0; a < s[0]; ++a)
      for (int64_t y = 0; y < s[1]; ++y)
        for (int64_t x = 0; x < s[2]; ++x)
          for (int64_t ch = 0; ch < s[3]; ++ch) t[static_cast<size_t>(((a * s[3] + ch) * s[1] + y) * s[2] + x)] = p[((a * s[1] + y) * s[2] + x) * s[3] + ch];
    return {t, {s[0], s[3], s[1], s[2]}};
  }
  if (other_rank == 4 && s.size() == 1) return {v, {1, s[0], 1, 1}};
  return {v, s};
}

class MilWriter {
 public:
  MilWriter(const ir::Model& m, const MlPackageOptions& o)
      : m_(m), g_(m.graph), o_(o), t_(o.fp16 ? mil::FLOAT16 : mil::FLOAT32), var_(g_.values.size()) {}

  Status run(spec::Model* out) {
    if (g_.inputs.size() != 1) return unsupported(fmt::format("ML Program writer: {} graph inputs; one is supported", g_.inputs.size()));
    const ir::Value& x = g_.value(g_.inputs[0]);
    if (x.shape.size() != 4 && x.shape.size() != 2) {
      return unsupported(fmt::format("ML Program writer: input {} must be NHWC or (N, K)", ir::shape_to_string(x.shape)));
    }
    const bool image = m_.input_spec.is_image() && x.shape.size() == 4;
    if (image && (x.shape[1] != m_.input_spec.height || x.shape[2] != m_.input_spec.width ||
                  x.shape[3] != (m_.input_spec.color == ir::ColorOrder::kGray ? 1 : 3))) {
      return invalid_model(fmt::format("ML Program writer: input {} does not match the input spec {}x{} {}",
                                       ir::shape_to_string(x.shape), m_.input_spec.height, m_.input_spec.width,
                                       ir::color_order_name(m_.input_spec.color)));
    }
    if (o_.weights == PackageWeightFormat::kLookupTable && (o_.lookup_table_bits < 1 || o_.lookup_table_bits > 8)) {
      return invalid_argument(fmt::format("ML Program writer: lookup_table_bits {} must be 1..8", o_.lookup_table_bits));
    }
    auto* program = out->mutable_mlprogram();
    program->set_version(1);
    auto& fn = (*program->mutable_functions())["main"];
    block_ = &block_storage_;

    const std::string in_name = fresh(mil_identifier(o_.input_name.empty() ? x.name : o_.input_name));
    auto* in = fn.add_inputs();
    in->set_name(in_name);
    const MilShape in_shape = mil_shape(x.shape);
    set_tensor_type(in->mutable_type(), mil::FLOAT32, in_shape);
    std::string cur = in_name;
    if (image) PCV_RETURN_IF_ERROR(write_preprocessing(&cur, in_shape));
    if (o_.fp16) cur = cast(cur, "fp16", in_shape, in_name + "_to_fp16");
    var_[static_cast<size_t>(g_.inputs[0])] = cur;

    for (const ir::Node& n : g_.nodes) {
      Status s = write_node(n);
      if (!s.is_ok()) return s.with_context(fmt::format("ML Program writer: node '{}' ({})", n.name, ir::op_name(n.op)));
    }

    auto* d = out->mutable_description();
    describe_input(m_, image, in_name, d);
    describe_metadata(m_, d);
    const ir::Value& y = g_.value(g_.outputs[0]);
    const bool classifier = o_.classifier && g_.outputs.size() == 1 && y.shape.size() == 2 &&
                            has_labels(m_, y.shape.back());
    std::vector<std::string> outputs;
    for (ir::ValueId o : g_.outputs) {
      const ir::Value& v = g_.value(o);
      std::string name = var(o);
      if (name == cur && g_.nodes.empty()) return unsupported("a graph output is the input itself");
      if (o_.fp16) name = cast(name, "fp32", mil_shape(v.shape), mil_identifier(v.name) + "_fp32");
      outputs.push_back(name);
    }
    if (classifier) {
      auto* c = op("classify", "classify");
      arg(c, "probabilities", outputs[0]);
      mil::Value classes;
      auto* lt = classes.mutable_type()->mutable_listtype();
      set_tensor_type(lt->mutable_type(), mil::STRING, {});
      lt->mutable_length()->mutable_constant()->set_size(m_.input_spec.labels.size());
      for (const auto& l : m_.input_spec.labels) *classes.mutable_immediatevalue()->mutable_list()->add_values() = string_value(l);
      *(*c->mutable_inputs())["classes"].add_arguments()->mutable_value() = classes;
      auto* label = c->add_outputs();
      label->set_name("classLabel");
      set_tensor_type(label->mutable_type(), mil::STRING, {});
      auto* probs = c->add_outputs();
      probs->set_name("classLabel_probs");
      auto* dt = probs->mutable_type()->mutable_dictionarytype();
      set_tensor_type(dt->mutable_keytype(), mil::STRING, {});
      set_tensor_type(dt->mutable_valuetype(), mil::FLOAT64, {});
      block_->add_outputs("classLabel");
      block_->add_outputs("classLabel_probs");
      auto* fl = d->add_output();
      fl->set_name("classLabel");
      fl->mutable_type()->mutable_stringtype();
      auto* fp = d->add_output();
      fp->set_name("classLabel_probs");
      fp->mutable_type()->mutable_dictionarytype()->mutable_stringkeytype();
      d->set_predictedfeaturename("classLabel");
      d->set_predictedprobabilitiesname("classLabel_probs");
    } else {
      for (size_t i = 0; i < outputs.size(); ++i) {
        block_->add_outputs(outputs[i]);
        auto* f = d->add_output();
        f->set_name(outputs[i]);
        auto* arr = f->mutable_type()->mutable_multiarraytype();
        arr->set_datatype(spec::ArrayFeatureType::FLOAT32);
        for (int64_t dim : mil_shape(g_.value(g_.outputs[i]).shape)) arr->add_shape(dim);
      }
    }
    // Ops were appended as they were built, a consumer before the `const` / `constexpr_*` ops
    // of its parameters; those have no inputs, so moving them to the front (stable) puts every
    // definition before its use.
    std::stable_partition(block_->mutable_operations()->pointer_begin(), block_->mutable_operations()->pointer_end(),
                          [](const mil::Operation* o) { return o->type() == "const" || o->type().rfind("constexpr_", 0) == 0; });
    const char* opset = compressed_ ? kOpsetMlProgramCompressed : kOpsetMlProgram;
    fn.set_opset(opset);
    (*fn.mutable_block_specializations())[opset] = std::move(block_storage_);
    block_ = nullptr;
    out->set_specificationversion(compressed_ ? kSpecVersionMlProgramCompressed : kSpecVersionMlProgram);
    return Status::ok();
  }

  const BlobWriter& blobs() const { return blobs_; }

 private:
  const std::string& var(ir::ValueId v) const { return var_[static_cast<size_t>(v)]; }
  MilShape shape_of(ir::ValueId v) const { return mil_shape(g_.value(v).shape); }

  std::string fresh(const std::string& base) {
    std::string n = base;
    for (int i = 1; names_.count(n); ++i) n = fmt::format("{}_{}", base, i);
    names_.insert(n);
    return n;
  }

  mil::Operation* op(const std::string& type, const std::string& name) {
    auto* o = block_->add_operations();
    o->set_type(type);
    (*o->mutable_attributes())["name"] = string_value(name);
    return o;
  }
  static void arg(mil::Operation* o, const std::string& param, const std::string& var) {
    (*o->mutable_inputs())[param].add_arguments()->set_name(var);
  }
  std::string output(mil::Operation* o, const std::string& base, mil::DataType dt, const MilShape& shape) {
    auto* nv = o->add_outputs();
    nv->set_name(fresh(base));
    set_tensor_type(nv->mutable_type(), dt, shape);
    return nv->name();
  }

  std::string const_op(const std::string& base, const mil::Value& val) {
    const std::string name = fresh(base);
    auto* o = op("const", name);
    (*o->mutable_attributes())["val"] = val;
    auto* nv = o->add_outputs();
    nv->set_name(name);
    *nv->mutable_type() = val.type();
    return name;
  }
  std::string const_ints(const std::string& base, const std::vector<int32_t>& v, bool scalar = false) {
    mil::Value val;
    set_tensor_type(val.mutable_type(), mil::INT32, scalar ? MilShape{} : MilShape{static_cast<int64_t>(v.size())});
    auto* ints = val.mutable_immediatevalue()->mutable_tensor()->mutable_ints();
    for (int32_t i : v) ints->add_values(i);
    return const_op(base, val);
  }
  std::string const_bool(const std::string& base, bool b) {
    mil::Value val;
    set_tensor_type(val.mutable_type(), mil::BOOL, {});
    val.mutable_immediatevalue()->mutable_tensor()->mutable_bools()->add_values(b);
    return const_op(base, val);
  }
  std::string const_string(const std::string& base, const std::string& s) { return const_op(base, string_value(s)); }
  // A float tensor in dtype `dt`: in the blob file when it has >= 10 elements (as coremltools
  // does), else immediate.
  std::string const_floats(const std::string& base, const std::vector<float>& v, const MilShape& shape, mil::DataType dt) {
    return const_op(base, float_value(v, shape, dt));
  }
  mil::Value float_value(const std::vector<float>& v, const MilShape& shape, mil::DataType dt) {
    mil::Value val;
    set_tensor_type(val.mutable_type(), dt, shape);
    if (v.size() >= 10) {
      std::vector<uint8_t> bytes;
      if (dt == mil::FLOAT16) {
        bytes.resize(v.size() * 2);
        for (size_t i = 0; i < v.size(); ++i) {
          const uint16_t h = fp16_from_f32(v[i]);
          bytes[2 * i] = static_cast<uint8_t>(h & 0xFF), bytes[2 * i + 1] = static_cast<uint8_t>(h >> 8);
        }
      } else {
        bytes.resize(v.size() * 4);
        std::memcpy(bytes.data(), v.data(), bytes.size());  // little-endian hosts only (x86, ARM)
      }
      const uint64_t off = blobs_.add(dt == mil::FLOAT16 ? BlobType::kFloat16 : BlobType::kFloat32, bytes);
      auto* b = val.mutable_blobfilevalue();
      b->set_filename("@model_path/weights/weight.bin");
      b->set_offset(off);
    } else if (dt == mil::FLOAT16) {
      std::string bytes(v.size() * 2, '\0');
      for (size_t i = 0; i < v.size(); ++i) {
        const uint16_t h = fp16_from_f32(v[i]);
        bytes[2 * i] = static_cast<char>(h & 0xFF), bytes[2 * i + 1] = static_cast<char>(h >> 8);
      }
      val.mutable_immediatevalue()->mutable_tensor()->mutable_bytes()->set_values(bytes);
    } else {
      auto* f = val.mutable_immediatevalue()->mutable_tensor()->mutable_floats();
      for (float x : v) f->add_values(x);
    }
    return val;
  }
  // An int8 / uint8 tensor: in the blob file when it has >= 10 elements, else immediate bytes.
  mil::Value byte_value(std::span<const uint8_t> bytes, const MilShape& shape, mil::DataType dt) {
    mil::Value val;
    set_tensor_type(val.mutable_type(), dt, shape);
    if (bytes.size() >= 10) {
      auto* b = val.mutable_blobfilevalue();
      b->set_filename("@model_path/weights/weight.bin");
      b->set_offset(blobs_.add(dt == mil::INT8 ? BlobType::kInt8 : BlobType::kUInt8, bytes));
    } else {
      val.mutable_immediatevalue()->mutable_tensor()->mutable_bytes()->set_values(
          std::string(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
    }
    return val;
  }
  // A uint32 vector, immediate (little-endian bytes, as MIL reads uint32 immediates).
  static mil::Value uint32_value(const std::vector<int64_t>& v) {
    mil::Value val;
    set_tensor_type(val.mutable_type(), mil::UINT32, {static_cast<int64_t>(v.size())});
    std::string bytes(v.size() * 4, '\0');
    for (size_t i = 0; i < v.size(); ++i) {
      for (size_t k = 0; k < 4; ++k) bytes[4 * i + k] = static_cast<char>((static_cast<uint64_t>(v[i]) >> (8 * k)) & 0xFF);
    }
    val.mutable_immediatevalue()->mutable_tensor()->mutable_bytes()->set_values(bytes);
    return val;
  }
  static mil::Value int32_scalar_value(int32_t x) {
    mil::Value val;
    set_tensor_type(val.mutable_type(), mil::INT32, {});
    val.mutable_immediatevalue()->mutable_tensor()->mutable_ints()->add_values(x);
    return val;
  }

  // About the bytes a tensor of `elems` elements of `elem_bytes` adds to the package: in the blob
  // file (64 bytes of metadata, data padded to 64) from 10 elements, else in the protobuf.
  static uint64_t stored_bytes(uint64_t elems, uint64_t elem_bytes) {
    const uint64_t bytes = elems * elem_bytes;
    return elems < 10 ? bytes : 64 + (bytes + 63) / 64 * 64;
  }

  // A conv / linear weight (`data` in MIL layout, output channels first) stored as
  // options.weights says; returns the variable name. A weight of at most
  // options.weight_threshold elements, or that compression would not make smaller (a small
  // tensor beside its table or scales), stays a float const.
  std::string weight_const(const std::string& base, const std::vector<float>& data, const MilShape& shape) {
    static constexpr int kStoredBits[9] = {0, 1, 2, 4, 4, 6, 6, 8, 8};  // iOS 16 table sizes
    const int64_t rows = shape.empty() ? 1 : shape[0];
    const uint64_t n = data.size(), es = o_.fp16 ? 2 : 4, rows_u = static_cast<uint64_t>(rows);
    const int bits = o_.weights == PackageWeightFormat::kLookupTable ? kStoredBits[std::clamp(o_.lookup_table_bits, 1, 8)] : 8;
    const uint64_t compressed = o_.weights == PackageWeightFormat::kAffineInt8
                                    ? stored_bytes(n, 1) + stored_bytes(rows_u, 1) + stored_bytes(rows_u, es)
                                    : stored_bytes((n * static_cast<uint64_t>(bits) + 7) / 8, 1) + stored_bytes(uint64_t{1} << bits, es);
    if (o_.weights == PackageWeightFormat::kFloat || compressed >= stored_bytes(n, es) ||
        n <= static_cast<uint64_t>(std::max<int64_t>(0, o_.weight_threshold))) {
      return const_floats(base, data, shape, t_);
    }
    const std::string name = fresh(base);
    mil::Operation* o = nullptr;
    auto attr = [&](const char* param, mil::Value v) { (*o->mutable_attributes())[param] = std::move(v); };
    if (o_.weights == PackageWeightFormat::kAffineInt8) {
      const AffineInt8 q = quantize_affine_int8(data, rows, o_.fp16);
      const auto out_channels = static_cast<int64_t>(q.scale.size());
      o = op("constexpr_affine_dequantize", name);
      attr("quantized_data", byte_value({reinterpret_cast<const uint8_t*>(q.q.data()), q.q.size()}, shape, mil::INT8));
      attr("zero_point", byte_value(std::vector<uint8_t>(q.scale.size(), 0), {out_channels}, mil::INT8));
      attr("scale", float_value(q.scale, {out_channels}, t_));
      attr("axis", int32_scalar_value(0));
    } else {
      const Palette p = palettize_table(data, o_.lookup_table_bits, o_.fp16);
      std::vector<float> table = p.table;
      table.resize(size_t{1} << bits, 0.f);
      o = op("constexpr_lut_to_dense", name);
      const std::vector<uint8_t> indices = pack_bits_lsb_first(p.codes, bits);
      attr("indices", byte_value(indices, {static_cast<int64_t>(indices.size())}, mil::UINT8));
      attr("lut", float_value(table, {static_cast<int64_t>(table.size())}, t_));
      attr("shape", uint32_value(shape));
    }
    compressed_ = true;
    auto* nv = o->add_outputs();
    nv->set_name(name);
    set_tensor_type(nv->mutable_type(), t_, shape);
    return name;
  }
  std::string const_value(const std::string& base, ir::ValueId c) {
    const auto& t = g_.value(c).data;
    return const_floats(base, std::vector<float>(t.data<float>(), t.data<float>() + t.num_elements()), g_.value(c).shape, t_);
  }

  std::string cast(const std::string& x, const std::string& dtype, const MilShape& shape, const std::string& base) {
    const std::string name = fresh(base);
    auto* o = op("cast", name);
    arg(o, "x", x);
    arg(o, "dtype", const_string(name + "_dtype", dtype));
    names_.erase(name);
    return output(o, name, dtype == "fp16" ? mil::FLOAT16 : mil::FLOAT32, shape);
  }

  Status write_preprocessing(std::string* cur, const MilShape& shape) {
    const ir::InputSpec& s = m_.input_spec;
    const int c = s.color == ir::ColorOrder::kGray ? 1 : 3;
    std::vector<float> scale, bias;
    for (int i = 0; i < c; ++i) {
      const float sd = s.std[static_cast<size_t>(i)];
      if (!(sd > 0.f)) return invalid_argument(fmt::format("input spec std[{}] = {} must be > 0", i, sd));
      scale.push_back(1.f / sd);
      bias.push_back(-s.mean[static_cast<size_t>(i)] / sd);
    }
    const MilShape cshape{1, c, 1, 1};
    auto* mul = op("mul", *cur + "__scaled");
    arg(mul, "x", *cur);
    arg(mul, "y", const_floats(*cur + "__scale", scale, cshape, mil::FLOAT32));
    const std::string scaled = output(mul, *cur + "__scaled", mil::FLOAT32, shape);
    auto* add = op("add", *cur + "__normalized");
    arg(add, "x", scaled);
    arg(add, "y", const_floats(*cur + "__bias", bias, cshape, mil::FLOAT32));
    *cur = output(add, *cur + "__normalized", mil::FLOAT32, shape);
    return Status::ok();
  }

  // Starts the op producing node `n`'s output (or a temporary when an activation follows).
  mil::Operation* main_op(const std::string& type, const ir::Node& n) { return op(type, mil_identifier(n.name)); }
  std::string finish(mil::Operation* o, const ir::Node& n, ir::Activation act) {
    const std::string base = mil_identifier(g_.value(n.outputs[0]).name);
    const MilShape shape = shape_of(n.outputs[0]);
    std::string y = output(o, act == ir::Activation::kNone ? base : base + "__preact", t_, shape);
    if (act != ir::Activation::kNone) {
      auto* a = op(act == ir::Activation::kRelu ? "relu" : "relu6", base);
      arg(a, "x", y);
      y = output(a, base, t_, shape);
    }
    var_[static_cast<size_t>(n.outputs[0])] = y;
    return y;
  }
  bool is_const(ir::ValueId v) const { return v != ir::kNoValue && g_.value(v).is_constant(); }

  // pad_type same (extra row/column at the bottom/right, as the IR), valid or custom.
  template <class A>
  void pads(mil::Operation* o, const std::string& name, const A& a) {
    const char* type = a.padding == ir::Padding::kSame ? "same" : a.padding == ir::Padding::kValid ? "valid" : "custom";
    arg(o, "pad_type", const_string(name + "_pad_type", type));
    std::vector<int32_t> p{0, 0, 0, 0};
    if (a.padding == ir::Padding::kExplicit) p = {a.pad_top, a.pad_bottom, a.pad_left, a.pad_right};
    arg(o, "pad", const_ints(name + "_pad", p));
  }

  Status write_node(const ir::Node& n) {
    for (ir::ValueId in : n.inputs) {
      if (in != ir::kNoValue && !is_const(in) && var(in).empty()) {
        return invalid_model(fmt::format("input '{}' is not defined before use", g_.value(in).name));
      }
    }
    const std::string name = mil_identifier(n.name);
    switch (n.op) {
      case OpType::kConv2d: {
        const auto& a = n.attr<ir::Conv2dAttrs>();
        if (!is_const(n.inputs[1])) return unsupported("convolution filters must be constants");
        const ir::Shape& w = g_.value(n.inputs[1]).shape;
        const auto oihw = ohwi_to_oihw(g_.value(n.inputs[1]).data.data<float>(), w[0], w[1], w[2], w[3]);
        auto* o = main_op("conv", n);
        arg(o, "x", var(n.inputs[0]));
        arg(o, "weight", weight_const(name + "_weight", oihw, {w[0], w[3], w[1], w[2]}));
        if (n.inputs.size() > 2 && n.inputs[2] != ir::kNoValue) {
          if (!is_const(n.inputs[2])) return unsupported("convolution bias must be a constant");
          arg(o, "bias", const_value(name + "_bias", n.inputs[2]));
        }
        arg(o, "strides", const_ints(name + "_strides", {a.stride_h, a.stride_w}));
        pads(o, name, a);
        arg(o, "dilations", const_ints(name + "_dilations", {a.dilation_h, a.dilation_w}));
        arg(o, "groups", const_ints(name + "_groups", {a.groups}, true));
        finish(o, n, a.activation);
        return Status::ok();
      }
      case OpType::kFullyConnected: {
        const auto& a = n.attr<ir::FullyConnectedAttrs>();
        if (!is_const(n.inputs[1])) return unsupported("fully-connected weights must be constants");
        auto* o = main_op("linear", n);
        arg(o, "x", var(n.inputs[0]));
        const auto& wt = g_.value(n.inputs[1]);
        arg(o, "weight", weight_const(name + "_weight", std::vector<float>(wt.data.data<float>(), wt.data.data<float>() + wt.data.num_elements()), wt.shape));
        if (n.inputs.size() > 2 && n.inputs[2] != ir::kNoValue) {
          if (!is_const(n.inputs[2])) return unsupported("fully-connected bias must be a constant");
          arg(o, "bias", const_value(name + "_bias", n.inputs[2]));
        }
        finish(o, n, a.activation);
        return Status::ok();
      }
      case OpType::kBatchNorm: {
        if (g_.value(n.inputs[0]).shape.size() != 4) return unsupported("batch norm of a tensor that is not NHWC");
        for (size_t i = 1; i < 5; ++i) {
          if (!is_const(n.inputs[i])) return unsupported("batch-norm parameters must be constants");
        }
        auto* o = main_op("batch_norm", n);
        arg(o, "x", var(n.inputs[0]));
        arg(o, "mean", const_value(name + "_mean", n.inputs[3]));
        arg(o, "variance", const_value(name + "_variance", n.inputs[4]));
        arg(o, "gamma", const_value(name + "_gamma", n.inputs[1]));
        arg(o, "beta", const_value(name + "_beta", n.inputs[2]));
        arg(o, "epsilon", const_floats(name + "_epsilon", {n.attr<ir::BatchNormAttrs>().epsilon}, {}, t_));
        finish(o, n, ir::Activation::kNone);
        return Status::ok();
      }
      case OpType::kRelu:
      case OpType::kRelu6:
      case OpType::kSigmoid: {
        auto* o = main_op(n.op == OpType::kRelu ? "relu" : n.op == OpType::kRelu6 ? "relu6" : "sigmoid", n);
        arg(o, "x", var(n.inputs[0]));
        finish(o, n, ir::Activation::kNone);
        return Status::ok();
      }
      case OpType::kLeakyRelu: {
        auto* o = main_op("leaky_relu", n);
        arg(o, "x", var(n.inputs[0]));
        arg(o, "alpha", const_floats(name + "_alpha", {n.attr<ir::LeakyReluAttrs>().alpha}, {}, t_));
        finish(o, n, ir::Activation::kNone);
        return Status::ok();
      }
      case OpType::kHardSwish: {
        auto* h = op("sigmoid_hard", name + "__hsigmoid");
        arg(h, "x", var(n.inputs[0]));
        arg(h, "alpha", const_floats(name + "_alpha", {1.f / 6.f}, {}, t_));
        arg(h, "beta", const_floats(name + "_beta", {0.5f}, {}, t_));
        const std::string hs = output(h, name + "__hsigmoid", t_, shape_of(n.outputs[0]));
        auto* o = main_op("mul", n);
        arg(o, "x", var(n.inputs[0]));
        arg(o, "y", hs);
        finish(o, n, ir::Activation::kNone);
        return Status::ok();
      }
      case OpType::kAdd:
      case OpType::kMul: {
        const auto act = n.attr<ir::EltwiseAttrs>().activation;
        auto* o = main_op(n.op == OpType::kAdd ? "add" : "mul", n);
        const size_t out_rank = g_.value(n.outputs[0]).shape.size();
        const char* params[] = {"x", "y"};
        for (int i = 0; i < 2; ++i) {
          const ir::ValueId v = n.inputs[static_cast<size_t>(i)];
          if (is_const(v)) {
            auto [data, shape] = nchw_constant(g_.value(v), out_rank);
            arg(o, params[i], const_floats(name + "_" + params[i], data, shape, t_));
          } else {
            if (g_.value(v).shape.size() != out_rank) return unsupported("broadcasting between ranks");
            arg(o, params[i], var(v));
          }
        }
        finish(o, n, act);
        return Status::ok();
      }
      case OpType::kConcat: {
        const auto& a = n.attr<ir::ConcatAttrs>();
        const auto rank = static_cast<int64_t>(g_.value(n.outputs[0]).shape.size());
        const int64_t axis = a.axis < 0 ? a.axis + rank : a.axis;
        const int64_t mil_axis = rank == 4 ? (axis == 0 ? 0 : axis == 3 ? 1 : axis + 1) : axis;
        auto* o = main_op("concat", n);
        for (ir::ValueId v : n.inputs) {
          if (is_const(v)) return unsupported("concat of a constant");
          (*o->mutable_inputs())["values"].add_arguments()->set_name(var(v));
        }
        arg(o, "axis", const_ints(name + "_axis", {static_cast<int32_t>(mil_axis)}, true));
        arg(o, "interleave", const_bool(name + "_interleave", false));
        finish(o, n, a.activation);
        return Status::ok();
      }
      case OpType::kMaxPool:
      case OpType::kAveragePool: {
        const auto& a = n.attr<ir::Pool2dAttrs>();
        const bool avg = n.op == OpType::kAveragePool;
        auto* o = main_op(avg ? "avg_pool" : "max_pool", n);
        arg(o, "x", var(n.inputs[0]));
        arg(o, "kernel_sizes", const_ints(name + "_kernel_sizes", {a.kernel_h, a.kernel_w}));
        arg(o, "strides", const_ints(name + "_strides", {a.stride_h, a.stride_w}));
        pads(o, name, a);
        if (avg) arg(o, "exclude_padding_from_average", const_bool(name + "_exclude_padding_from_average", true));
        arg(o, "ceil_mode", const_bool(name + "_ceil_mode", false));
        finish(o, n, a.activation);
        return Status::ok();
      }
      case OpType::kMean: {
        const auto& a = n.attr<ir::MeanAttrs>();
        const ir::Shape& in = g_.value(n.inputs[0]).shape;
        std::vector<int32_t> axes;
        for (int64_t ax : a.axes) {
          const int64_t r = ax < 0 ? ax + static_cast<int64_t>(in.size()) : ax;
          axes.push_back(static_cast<int32_t>(in.size() == 4 ? (r == 0 ? 0 : r == 3 ? 1 : r + 1) : r));
        }
        std::sort(axes.begin(), axes.end());
        auto* o = main_op("reduce_mean", n);
        arg(o, "x", var(n.inputs[0]));
        arg(o, "axes", const_ints(name + "_axes", axes));
        arg(o, "keep_dims", const_bool(name + "_keep_dims", a.keep_dims));
        finish(o, n, ir::Activation::kNone);
        return Status::ok();
      }
      case OpType::kFlatten:
      case OpType::kReshape: {
        const ir::Shape& in = g_.value(n.inputs[0]).shape;
        const ir::Shape& os = g_.value(n.outputs[0]).shape;
        std::string x = var(n.inputs[0]);
        // NCHW and NHWC order the elements alike when H = W = 1 (after global pooling) or C = 1.
        if (in.size() == 4 && in[1] * in[2] > 1 && in[3] > 1) {
          auto* t = op("transpose", name + "__nhwc");
          arg(t, "x", x);
          arg(t, "perm", const_ints(name + "__nhwc_perm", {0, 2, 3, 1}));
          x = output(t, name + "__nhwc", t_, in);
        }
        std::vector<int32_t> target(os.begin(), os.end());
        if (os.size() == 4) {
          auto* r = op("reshape", name + "__reshaped");
          arg(r, "x", x);
          arg(r, "shape", const_ints(name + "_shape", target));
          const std::string y = output(r, name + "__reshaped", t_, os);
          auto* t = main_op("transpose", n);
          arg(t, "x", y);
          arg(t, "perm", const_ints(name + "_perm", {0, 3, 1, 2}));
          finish(t, n, ir::Activation::kNone);
        } else {
          auto* r = main_op("reshape", n);
          arg(r, "x", x);
          arg(r, "shape", const_ints(name + "_shape", target));
          finish(r, n, ir::Activation::kNone);
        }
        return Status::ok();
      }
      case OpType::kPad: {
        const auto& a = n.attr<ir::PadAttrs>();
        std::vector<int32_t> p(a.pads.begin(), a.pads.end());
        if (p.size() == 8) p = {p[0], p[1], p[6], p[7], p[2], p[3], p[4], p[5]};  // N, C, H, W
        auto* o = main_op("pad", n);
        arg(o, "x", var(n.inputs[0]));
        arg(o, "pad", const_ints(name + "_pad", p));
        arg(o, "mode", const_string(name + "_mode", "constant"));
        arg(o, "constant_val", const_floats(name + "_constant_val", {a.value}, {}, t_));
        finish(o, n, ir::Activation::kNone);
        return Status::ok();
      }
      case OpType::kSoftmax: {
        const float beta = n.attr<ir::SoftmaxAttrs>().beta;
        std::string x = var(n.inputs[0]);
        const size_t rank = g_.value(n.inputs[0]).shape.size();
        if (beta != 1.f) {
          auto* m = op("mul", name + "__beta");
          arg(m, "x", x);
          arg(m, "y", const_floats(name + "_beta", {beta}, {}, t_));
          x = output(m, name + "__beta", t_, shape_of(n.inputs[0]));
        }
        auto* o = main_op("softmax", n);
        arg(o, "x", x);
        arg(o, "axis", const_ints(name + "_axis", {rank == 4 ? 1 : -1}, true));
        finish(o, n, ir::Activation::kNone);
        return Status::ok();
      }
      case OpType::kDropout:
      case OpType::kQuantize:
      case OpType::kDequantize: var_[static_cast<size_t>(n.outputs[0])] = var(n.inputs[0]); return Status::ok();
    }
    return unsupported("op has no ML Program mapping");
  }

  const ir::Model& m_;
  const ir::Graph& g_;
  MlPackageOptions o_;
  mil::DataType t_;
  std::vector<std::string> var_;
  std::set<std::string> names_;
  mil::Block block_storage_;  // "main"'s block, filed under the opset at the end of run()
  mil::Block* block_ = nullptr;
  bool compressed_ = false;  // a constexpr op was written: iOS 16 opset
  BlobWriter blobs_;
};

// An RFC 4122 version-4-shaped identifier derived from `seed` (deterministic output).
std::string uuid_from(uint64_t seed) {
  uint64_t a = seed ^ 0x9E3779B97F4A7C15ull, b = seed * 0xBF58476D1CE4E5B9ull + 0x94D049BB133111EBull;
  auto mix = [](uint64_t& x) {
    x ^= x >> 31;
    x *= 0x7FB5D329728EA185ull;
    x ^= x >> 27;
    return x;
  };
  mix(a), mix(b);
  a = (a & 0xFFFFFFFFFFFF0FFFull) | 0x4000;            // version 4
  b = (b & 0x3FFFFFFFFFFFFFFFull) | 0x8000000000000000ull;  // variant 10
  return fmt::format("{:08X}-{:04X}-{:04X}-{:04X}-{:012X}", a >> 32, (a >> 16) & 0xFFFF, a & 0xFFFF, b >> 48,
                     b & 0xFFFFFFFFFFFFull);
}

uint64_t fnv1a(std::span<const uint8_t> bytes) {
  uint64_t h = 0xCBF29CE484222325ull;
  for (uint8_t c : bytes) h = (h ^ c) * 0x100000001B3ull;
  return h;
}

}  // namespace

Status save_mlpackage(const ir::Model& model, const std::string& dir, const MlPackageOptions& options) {
  PCV_RETURN_IF_ERROR(ir::verify(model.graph).with_context("ML Program writer"));
  PCV_ASSIGN_OR_RETURN(ir::Model m, detail::to_float_model(model));
  if (options.fold_batch_norm) {
    PCV_ASSIGN_OR_RETURN(int folded, ir::fold_batch_norm(m.graph));
    (void)folded;
  }
  spec::Model proto;
  MilWriter w(m, options);
  PCV_RETURN_IF_ERROR(w.run(&proto));
  PCV_ASSIGN_OR_RETURN(std::vector<uint8_t> bytes, detail::serialize_model(proto));
  const uint64_t h = fnv1a(bytes) ^ fnv1a(w.blobs().bytes());
  const std::string model_id = uuid_from(h), weights_id = uuid_from(h + 1);
  nlohmann::ordered_json manifest;
  manifest["fileFormatVersion"] = "1.0.0";
  manifest["itemInfoEntries"][model_id] = {{"author", "com.apple.CoreML"},
                                           {"description", "CoreML Model Specification"},
                                           {"name", "model.mlmodel"},
                                           {"path", "com.apple.CoreML/model.mlmodel"}};
  manifest["itemInfoEntries"][weights_id] = {{"author", "com.apple.CoreML"},
                                             {"description", "CoreML Model Weights"},
                                             {"name", "weights"},
                                             {"path", "com.apple.CoreML/weights"}};
  manifest["rootModelIdentifier"] = model_id;
  const std::string manifest_text = manifest.dump(4) + "\n";
  return write_dir_atomic(dir, [&](const std::string& tmp) -> Status {
    const std::string data = tmp + "/Data/com.apple.CoreML";
    std::error_code ec;
    std::filesystem::create_directories(data + "/weights", ec);
    if (ec) return io_error(fmt::format("{}: cannot create directory: {}", data, ec.message()));
    PCV_RETURN_IF_ERROR(write_file_atomic(tmp + "/Manifest.json", manifest_text));
    PCV_RETURN_IF_ERROR(write_file_atomic(data + "/model.mlmodel", bytes));
    return write_file_atomic(data + "/weights/weight.bin", w.blobs().bytes());
  });
}

}  // namespace pcv::coreml
