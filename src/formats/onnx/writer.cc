// IR (NHWC) -> ONNX opset 13 (NCHW). See onnx.h for the contract.
//
// Every rank-4 IR value is an NCHW tensor in the ONNX graph; other ranks keep their shape.
// Each IR node becomes its ONNX op (plus Relu/Clip for a fused activation). int8 / uint8 IR
// values are ONNX int8 / uint8 tensors: a node that reads one reads DequantizeLinear(it), a
// node that produces one ends with QuantizeLinear (the QDQ form ONNX Runtime fuses back).
#include <fmt/core.h>

#include <map>
#include <set>

#include "base/file.h"
#include "base/fp16.h"
#include "formats/onnx/common.h"
#include "formats/onnx/onnx.h"

namespace pcv::onnx {
namespace {

using namespace detail;
using ir::DType;
using ir::OpType;
using ir::Shape;
using ir::ValueId;

constexpr int64_t kOpset = 13;
constexpr int64_t kIrVersion = 7;

std::string join_floats(const float* v, size_t n) {
  std::string s;
  for (size_t i = 0; i < n; ++i) s += (i ? "," : "") + fmt::format("{}", v[i]);
  return s;
}

class Writer {
 public:
  explicit Writer(const ir::Model& m) : model_(m), g_(m.graph) {}

  Expected<std::vector<uint8_t>> run() {
    PCV_RETURN_IF_ERROR(ir::verify(g_));
    PCV_RETURN_IF_ERROR(ir::infer_shapes(g_));
    for (const auto& v : g_.values) names_.insert(v.name);
    gp_ = mp_.mutable_graph();
    PCV_RETURN_IF_ERROR(write_inputs());
    for (const ir::Node& n : g_.nodes) {
      Status s = write_node(n);
      if (!s.is_ok()) return s.with_context(fmt::format("onnx writer: node '{}' ({})", n.name, ir::op_name(n.op)));
    }
    PCV_RETURN_IF_ERROR(write_outputs());
    write_metadata();
    std::string bytes;
    if (!mp_.SerializeToString(&bytes)) return internal_error("onnx writer: protobuf serialization failed (model > 2 GiB?)");
    return std::vector<uint8_t>(bytes.begin(), bytes.end());
  }

 private:
  // ---- names, nodes, attributes ---------------------------------------------------------
  std::string fresh(const std::string& base) {
    std::string name = base;
    for (int k = 1; names_.count(name); ++k) name = fmt::format("{}_{}", base, k);
    names_.insert(name);
    return name;
  }

  pb::NodeProto* node(const std::string& op, const std::vector<std::string>& ins, const std::string& out,
                      const std::string& name) {
    pb::NodeProto* n = gp_->add_node();
    n->set_op_type(op);
    n->set_name(fresh(name.empty() ? out : name));
    for (const auto& i : ins) n->add_input(i);
    n->add_output(out);
    return n;
  }
  static void attr_int(pb::NodeProto* n, const char* name, int64_t v) {
    auto* a = n->add_attribute();
    a->set_name(name);
    a->set_type(pb::AttributeProto::INT);
    a->set_i(v);
  }
  static void attr_float(pb::NodeProto* n, const char* name, float v) {
    auto* a = n->add_attribute();
    a->set_name(name);
    a->set_type(pb::AttributeProto::FLOAT);
    a->set_f(v);
  }
  static void attr_ints(pb::NodeProto* n, const char* name, const std::vector<int64_t>& v) {
    auto* a = n->add_attribute();
    a->set_name(name);
    a->set_type(pb::AttributeProto::INTS);
    for (int64_t x : v) a->add_ints(x);
  }

  std::string initializer(const ir::Tensor& t, const Shape& dims, const std::string& base) {
    const std::string name = fresh(base);
    tensor_to_proto(t, dims, name, gp_->add_initializer());
    return name;
  }
  template <class T>
  std::string initializer(const std::vector<T>& v, const Shape& dims, const std::string& base) {
    return initializer(ir::Tensor::from_vector<T>(dims, v), dims, base);
  }
  std::string scalar_f32(float v, const std::string& base) { return initializer(std::vector<float>{v}, {}, base); }

  // Scale and zero point initializers for QuantizeLinear / DequantizeLinear.
  std::pair<std::string, std::string> qparams(const ir::QuantParams& q, DType zp_type, const std::string& base) {
    const bool pc = q.per_channel();
    const Shape dims = pc ? Shape{static_cast<int64_t>(q.scale.size())} : Shape{};
    std::string s = initializer(q.scale, dims, base + "/scale");
    std::string z;
    if (zp_type == DType::kU8) {
      std::vector<uint8_t> zp;
      for (int32_t v : q.zero_point) zp.push_back(static_cast<uint8_t>(v));
      z = initializer(zp, dims, base + "/zero_point");
    } else if (zp_type == DType::kI32) {
      z = initializer(q.zero_point, dims, base + "/zero_point");
    } else {
      std::vector<int8_t> zp;
      for (int32_t v : q.zero_point) zp.push_back(static_cast<int8_t>(v));
      z = initializer(zp, dims, base + "/zero_point");
    }
    return {s, z};
  }

  // ---- values ---------------------------------------------------------------------------
  static bool is_quant(const ir::Value& v) { return ir::is_quantized_dtype(v.dtype) && !v.quant.empty(); }

  // ONNX dims of an activation (rank 4: NCHW).
  static Shape onnx_dims(const Shape& s) { return s.size() == 4 ? nhwc_shape_to_nchw(s) : s; }

  // Float ONNX tensor for an activation input (DequantizeLinear for int8 values).
  Expected<std::string> float_act(ValueId id) {
    const ir::Value& v = g_.value(id);
    if (v.is_constant()) return float_const(id, Role::kActivation, {});
    if (v.dtype == DType::kF32) return onnx_name(id);
    if (is_quant(v)) {
      if (auto it = dq_cache_.find(id); it != dq_cache_.end()) return it->second;
      auto [s, z] = qparams(v.quant, v.dtype, v.name);
      const std::string out = fresh(v.name + "/dequantized");
      node("DequantizeLinear", {onnx_name(id), s, z}, out, "");
      dq_cache_[id] = out;
      return out;
    }
    if (v.dtype == DType::kF16) {
      const std::string out = fresh(v.name + "/f32");
      attr_int(node("Cast", {onnx_name(id)}, out, ""), "to", pb::TensorProto::FLOAT);
      return out;
    }
    return unsupported(fmt::format("value '{}' of dtype {} has no float form", v.name, ir::dtype_name(v.dtype)));
  }
  // Every IR value keeps its name in the ONNX graph (int8 values name the int8 tensor).
  std::string onnx_name(ValueId id) const { return g_.value(id).name; }

  enum class Role { kActivation, kConvFilter, kPlain, kBroadcast4 };

  // A constant as the float ONNX tensor a consumer needs: conv filters OHWI -> OIHW, constants
  // broadcast against a rank-4 activation padded to rank 4 and permuted to NCHW. Quantized
  // constants become initializer + DequantizeLinear (weights int8, biases int32).
  Expected<std::string> float_const(ValueId id, Role role, const ir::QuantParams& bias_quant) {
    const ir::Value& v = g_.value(id);
    const ir::Tensor& t = v.data;
    Shape dims = t.shape();
    ir::Tensor data = t;
    auto permute = [&](const Shape& nhwc) {
      auto permute_typed = [&](auto tag) {
        using T = decltype(tag);
        std::vector<T> src(t.data<T>(), t.data<T>() + t.num_elements());
        return ir::Tensor::from_vector<T>(nhwc_shape_to_nchw(nhwc), nhwc_to_nchw(src, nhwc));
      };
      switch (t.dtype()) {
        case DType::kF32: return permute_typed(float{});
        case DType::kI8: return permute_typed(int8_t{});
        case DType::kU8: return permute_typed(uint8_t{});
        case DType::kI32: return permute_typed(int32_t{});
        case DType::kF16: return permute_typed(uint16_t{});
        case DType::kI64: return permute_typed(int64_t{});
      }
      return t;
    };
    if (role == Role::kConvFilter) {
      if (dims.size() != 4) return invalid_model(fmt::format("filter '{}' is not rank 4", v.name));
      data = permute(dims);
      dims = nhwc_shape_to_nchw(dims);
    } else if (role == Role::kBroadcast4 && dims.size() <= 4) {
      Shape s4 = dims;
      while (s4.size() < 4) s4.insert(s4.begin(), 1);
      data = permute(s4);
      dims = nhwc_shape_to_nchw(s4);
    }
    const std::string key = fmt::format("{}#{}", id, static_cast<int>(role));
    if (auto it = const_cache_.find(key); it != const_cache_.end()) return it->second;
    std::string out;
    if (data.dtype() == DType::kF32) {
      out = initializer(data, dims, v.name);
    } else if (data.dtype() == DType::kF16) {
      std::vector<float> f(static_cast<size_t>(data.num_elements()));
      for (size_t i = 0; i < f.size(); ++i) f[i] = f32_from_fp16(data.data<uint16_t>()[i]);
      out = initializer(f, dims, v.name);
    } else if (ir::is_quantized_dtype(data.dtype()) || data.dtype() == DType::kI32) {
      ir::QuantParams q = v.quant.empty() ? bias_quant : v.quant;
      if (q.empty()) return unsupported(fmt::format("integer constant '{}' has no quantization", v.name));
      const std::string raw = initializer(data, dims, v.name + "/quantized");
      auto [s, z] = qparams(q, data.dtype(), v.name);
      out = fresh(v.name);
      auto* n = node("DequantizeLinear", {raw, s, z}, out, "");
      if (q.per_channel()) attr_int(n, "axis", q.axis);
    } else {
      return unsupported(fmt::format("constant '{}' of dtype {}", v.name, ir::dtype_name(data.dtype())));
    }
    const_cache_[key] = out;
    return out;
  }

  // Where a node's float result goes: the IR value's own name, or (int8 output) a float
  // temporary that `finish_output` quantizes into it.
  std::string float_target(ValueId out) {
    const ir::Value& v = g_.value(out);
    return v.dtype == DType::kF32 ? v.name : fresh(v.name + "/float");
  }
  Status finish_output(ValueId out, const std::string& float_name) {
    const ir::Value& v = g_.value(out);
    if (v.dtype == DType::kF32) return Status::ok();
    if (!is_quant(v)) return unsupported(fmt::format("output '{}' of dtype {} without quantization", v.name, ir::dtype_name(v.dtype)));
    auto [s, z] = qparams(v.quant, v.dtype, v.name);
    node("QuantizeLinear", {float_name, s, z}, v.name, "");
    return Status::ok();
  }
  // Core op -> optional activation -> target.
  std::string act_target(ir::Activation a, const std::string& target) {
    return a == ir::Activation::kNone ? target : fresh(target + "/preact");
  }
  void emit_activation(ir::Activation a, const std::string& in, const std::string& target) {
    if (a == ir::Activation::kRelu) node("Relu", {in}, target, "");
    if (a == ir::Activation::kRelu6) clip(in, 0.f, 6.f, target);
  }
  void clip(const std::string& in, float lo, float hi, const std::string& target) {
    if (!clip_lo_.count(lo)) clip_lo_[lo] = scalar_f32(lo, "clip_min");
    if (!clip_hi_.count(hi)) clip_hi_[hi] = scalar_f32(hi, "clip_max");
    node("Clip", {in, clip_lo_[lo], clip_hi_[hi]}, target, "");
  }

  // Transposes an NCHW activation into NHWC element order (the IR's) when it has spatial
  // extent; (N, C, 1, 1) already has it.
  std::string to_nhwc_order(const std::string& in, const Shape& ir_shape) {
    if (ir_shape.size() != 4 || ir_shape[1] * ir_shape[2] == 1) return in;
    const std::string out = fresh(in + "/nhwc");
    attr_ints(node("Transpose", {in}, out, ""), "perm", {0, 2, 3, 1});
    return out;
  }

  // ---- graph ----------------------------------------------------------------------------
  static void value_info(const std::string& name, int32_t elem, const Shape& dims, pb::ValueInfoProto* vi) {
    vi->set_name(name);
    auto* tt = vi->mutable_type()->mutable_tensor_type();
    tt->set_elem_type(elem);
    auto* sh = tt->mutable_shape();
    for (int64_t d : dims) sh->add_dim()->set_dim_value(d);
  }

  Status write_inputs() {
    for (ValueId id : g_.inputs) {
      const ir::Value& v = g_.value(id);
      value_info(v.name, onnx_type_of(v.dtype), onnx_dims(v.shape), gp_->add_input());
    }
    return Status::ok();
  }

  Status write_outputs() {
    for (ValueId id : g_.outputs) {
      const ir::Value& v = g_.value(id);
      if (v.is_constant()) {
        return unsupported(fmt::format("graph output '{}' is not computed by a node", v.name));
      }
      value_info(v.name, onnx_type_of(v.dtype), onnx_dims(v.shape), gp_->add_output());
    }
    return Status::ok();
  }

  void write_metadata() {
    mp_.set_ir_version(kIrVersion);
    mp_.set_producer_name("pocketcv");
    mp_.set_producer_version("0.1.0");
    auto* os = mp_.add_opset_import();
    os->set_domain("");
    os->set_version(kOpset);
    const auto& md = model_.metadata;
    gp_->set_name(md.name.empty() ? "pocketcv" : md.name);
    if (!md.description.empty()) mp_.set_doc_string(md.description);
    if (!md.version.empty()) {
      char* end = nullptr;
      const long long v = std::strtoll(md.version.c_str(), &end, 10);
      if (end && *end == '\0') mp_.set_model_version(v);
      meta("pocketcv.version", md.version);
    }
    if (!md.author.empty()) meta(kMetaAuthor, md.author);
    if (!md.license.empty()) meta(kMetaLicense, md.license);
    const auto& s = model_.input_spec;
    if (s.is_image()) {
      meta(kMetaLayout, "NCHW");
      meta(kMetaColor, s.color == ir::ColorOrder::kBGR ? "bgr" : s.color == ir::ColorOrder::kGray ? "gray" : "rgb");
      meta(kMetaMean, join_floats(s.mean.data(), 3));
      meta(kMetaStd, join_floats(s.std.data(), 3));
      meta(kMetaCrop, fmt::format("{}", s.crop_fraction));
    }
    if (!s.labels.empty()) {
      std::string l;
      for (const auto& x : s.labels) l += x + "\n";
      meta(kMetaLabels, l);
    }
  }
  void meta(const std::string& k, const std::string& v) {
    auto* p = mp_.add_metadata_props();
    p->set_key(k);
    p->set_value(v);
  }

  // ---- nodes ----------------------------------------------------------------------------
  Status write_node(const ir::Node& n) {
    const ValueId out = n.outputs[0];
    const ir::Value& y = g_.value(out);
    const Shape& xs = g_.value(n.inputs[0]).shape;
    switch (n.op) {
      case OpType::kConv2d: {
        const auto& a = n.attr<ir::Conv2dAttrs>();
        const Shape& ws = g_.value(n.inputs[1]).shape;
        if (!g_.value(n.inputs[1]).is_constant()) return unsupported("non-constant filter");
        PCV_ASSIGN_OR_RETURN(std::string x, float_act(n.inputs[0]));
        PCV_ASSIGN_OR_RETURN(std::string w, float_const(n.inputs[1], Role::kConvFilter, {}));
        std::vector<std::string> ins{x, w};
        if (n.inputs.size() > 2 && n.inputs[2] != ir::kNoValue) {
          PCV_ASSIGN_OR_RETURN(std::string b, float_const(n.inputs[2], Role::kPlain, bias_quant(n)));
          ins.push_back(b);
        }
        PCV_ASSIGN_OR_RETURN(auto p, ir::resolve_padding(a.padding, static_cast<int>(xs[1]), static_cast<int>(xs[2]),
                                                         static_cast<int>(ws[1]), static_cast<int>(ws[2]), a.stride_h,
                                                         a.stride_w, a.dilation_h, a.dilation_w, a.pad_top,
                                                         a.pad_bottom, a.pad_left, a.pad_right));
        const std::string target = float_target(out);
        const std::string core = act_target(a.activation, target);
        auto* c = node("Conv", ins, core, n.name);
        attr_ints(c, "kernel_shape", {ws[1], ws[2]});
        attr_ints(c, "strides", {a.stride_h, a.stride_w});
        attr_ints(c, "dilations", {a.dilation_h, a.dilation_w});
        attr_ints(c, "pads", {p.pad_top, p.pad_left, p.pad_bottom, p.pad_right});
        attr_int(c, "group", a.groups);
        emit_activation(a.activation, core, target);
        return finish_output(out, target);
      }
      case OpType::kFullyConnected: {
        const auto& a = n.attr<ir::FullyConnectedAttrs>();
        if (!g_.value(n.inputs[1]).is_constant()) return unsupported("non-constant weights");
        PCV_ASSIGN_OR_RETURN(std::string x, float_act(n.inputs[0]));
        PCV_ASSIGN_OR_RETURN(std::string w, float_const(n.inputs[1], Role::kPlain, {}));
        std::vector<std::string> ins{x, w};
        if (n.inputs.size() > 2 && n.inputs[2] != ir::kNoValue) {
          PCV_ASSIGN_OR_RETURN(std::string b, float_const(n.inputs[2], Role::kPlain, bias_quant(n)));
          ins.push_back(b);
        }
        const std::string target = float_target(out);
        const std::string core = act_target(a.activation, target);
        attr_int(node("Gemm", ins, core, n.name), "transB", 1);
        emit_activation(a.activation, core, target);
        return finish_output(out, target);
      }
      case OpType::kBatchNorm: {
        std::vector<std::string> ins;
        PCV_ASSIGN_OR_RETURN(std::string x, float_act(n.inputs[0]));
        ins.push_back(x);
        for (size_t i = 1; i < 5; ++i) {
          if (!g_.value(n.inputs[i]).is_constant()) return unsupported("non-constant batch norm parameters");
          PCV_ASSIGN_OR_RETURN(std::string p, float_const(n.inputs[i], Role::kPlain, {}));
          ins.push_back(p);
        }
        const std::string target = float_target(out);
        attr_float(node("BatchNormalization", ins, target, n.name), "epsilon", n.attr<ir::BatchNormAttrs>().epsilon);
        return finish_output(out, target);
      }
      case OpType::kRelu:
      case OpType::kRelu6:
      case OpType::kSigmoid:
      case OpType::kLeakyRelu:
      case OpType::kHardSwish: {
        PCV_ASSIGN_OR_RETURN(std::string x, float_act(n.inputs[0]));
        const std::string target = float_target(out);
        if (n.op == OpType::kRelu) node("Relu", {x}, target, n.name);
        if (n.op == OpType::kRelu6) clip(x, 0.f, 6.f, target);
        if (n.op == OpType::kSigmoid) node("Sigmoid", {x}, target, n.name);
        if (n.op == OpType::kLeakyRelu) attr_float(node("LeakyRelu", {x}, target, n.name), "alpha", n.attr<ir::LeakyReluAttrs>().alpha);
        if (n.op == OpType::kHardSwish) {  // HardSwish is opset 14: x * HardSigmoid(x), as torch exports it
          const std::string h = fresh(target + "/hard_sigmoid");
          auto* hs = node("HardSigmoid", {x}, h, n.name + "/hard_sigmoid");
          attr_float(hs, "alpha", 1.f / 6.f);
          attr_float(hs, "beta", 0.5f);
          node("Mul", {x, h}, target, n.name);
        }
        return finish_output(out, target);
      }
      case OpType::kAdd:
      case OpType::kMul: {
        const auto& a = n.attr<ir::EltwiseAttrs>();
        const bool rank4 = y.shape.size() == 4;
        std::vector<std::string> ins;
        for (ValueId in : n.inputs) {
          const ir::Value& v = g_.value(in);
          if (v.is_constant()) {
            PCV_ASSIGN_OR_RETURN(std::string c, float_const(in, rank4 ? Role::kBroadcast4 : Role::kPlain, {}));
            ins.push_back(c);
          } else {
            if (rank4 && v.shape.size() != 4) {
              return unsupported(fmt::format("broadcasting rank-{} '{}' against a rank-4 activation", v.shape.size(), v.name));
            }
            PCV_ASSIGN_OR_RETURN(std::string x, float_act(in));
            ins.push_back(x);
          }
        }
        const std::string target = float_target(out);
        const std::string core = act_target(a.activation, target);
        node(n.op == OpType::kAdd ? "Add" : "Mul", ins, core, n.name);
        emit_activation(a.activation, core, target);
        return finish_output(out, target);
      }
      case OpType::kConcat: {
        const auto& a = n.attr<ir::ConcatAttrs>();
        const size_t rank = y.shape.size();
        int64_t axis = a.axis < 0 ? a.axis + static_cast<int64_t>(rank) : a.axis;
        if (rank == 4) axis = nhwc_axis_to_nchw(axis);
        std::vector<std::string> ins;
        for (ValueId in : n.inputs) {
          PCV_ASSIGN_OR_RETURN(std::string x, g_.value(in).is_constant()
                                                  ? float_const(in, rank == 4 ? Role::kBroadcast4 : Role::kPlain, {})
                                                  : float_act(in));
          ins.push_back(x);
        }
        const std::string target = float_target(out);
        const std::string core = act_target(a.activation, target);
        attr_int(node("Concat", ins, core, n.name), "axis", axis);
        emit_activation(a.activation, core, target);
        return finish_output(out, target);
      }
      case OpType::kMaxPool:
      case OpType::kAveragePool: {
        const auto& a = n.attr<ir::Pool2dAttrs>();
        PCV_ASSIGN_OR_RETURN(std::string x, float_act(n.inputs[0]));
        PCV_ASSIGN_OR_RETURN(auto p, ir::resolve_padding(a.padding, static_cast<int>(xs[1]), static_cast<int>(xs[2]),
                                                         a.kernel_h, a.kernel_w, a.stride_h, a.stride_w, 1, 1,
                                                         a.pad_top, a.pad_bottom, a.pad_left, a.pad_right));
        const std::string target = float_target(out);
        const std::string core = act_target(a.activation, target);
        auto* c = node(n.op == OpType::kMaxPool ? "MaxPool" : "AveragePool", {x}, core, n.name);
        attr_ints(c, "kernel_shape", {a.kernel_h, a.kernel_w});
        attr_ints(c, "strides", {a.stride_h, a.stride_w});
        attr_ints(c, "pads", {p.pad_top, p.pad_left, p.pad_bottom, p.pad_right});
        // The IR averages over the window's in-bounds elements only (TFLite's rule).
        if (n.op == OpType::kAveragePool) attr_int(c, "count_include_pad", 0);
        emit_activation(a.activation, core, target);
        return finish_output(out, target);
      }
      case OpType::kMean: {
        const auto& a = n.attr<ir::MeanAttrs>();
        PCV_ASSIGN_OR_RETURN(std::string x, float_act(n.inputs[0]));
        const std::string target = float_target(out);
        std::set<int64_t> axes;
        for (int64_t ax : a.axes) axes.insert(ax < 0 ? ax + static_cast<int64_t>(xs.size()) : ax);
        if (xs.size() == 4) {
          if (axes == std::set<int64_t>{1, 2} && a.keep_dims) {
            node("GlobalAveragePool", {x}, target, n.name);
            return finish_output(out, target);
          }
          // Without keep_dims the kept axes must come out in the same order in both layouts.
          if (!a.keep_dims && !axes.count(3) && !(axes.count(1) && axes.count(2))) {
            return unsupported("a mean that keeps channels and one spatial axis without keep_dims");
          }
          std::set<int64_t> mapped;
          for (int64_t ax : axes) mapped.insert(nhwc_axis_to_nchw(ax));
          axes = mapped;
        }
        auto* c = node("ReduceMean", {x}, target, n.name);
        attr_ints(c, "axes", std::vector<int64_t>(axes.begin(), axes.end()));
        attr_int(c, "keepdims", a.keep_dims ? 1 : 0);
        return finish_output(out, target);
      }
      case OpType::kReshape:
      case OpType::kFlatten: {
        PCV_ASSIGN_OR_RETURN(std::string x, float_act(n.inputs[0]));
        x = to_nhwc_order(x, xs);
        const std::string target = float_target(out);
        const bool post = y.shape.size() == 4 && y.shape[1] * y.shape[2] != 1;
        const std::string core = post ? fresh(target + "/nhwc") : target;
        if (n.op == OpType::kFlatten) {
          attr_int(node("Flatten", {x}, core, n.name), "axis", 1);
        } else {
          // NHWC target when a transpose follows; (N, C, 1, 1) is (N, 1, 1, C) in memory.
          const Shape to = y.shape.size() == 4 && !post ? nhwc_shape_to_nchw(y.shape) : y.shape;
          const std::string s = initializer(std::vector<int64_t>(to.begin(), to.end()),
                                            {static_cast<int64_t>(to.size())}, n.name + "/shape");
          node("Reshape", {x, s}, core, n.name);
        }
        if (post) attr_ints(node("Transpose", {core}, target, ""), "perm", {0, 3, 1, 2});
        return finish_output(out, target);
      }
      case OpType::kPad: {
        const auto& a = n.attr<ir::PadAttrs>();
        PCV_ASSIGN_OR_RETURN(std::string x, float_act(n.inputs[0]));
        const size_t rank = xs.size();
        std::vector<int64_t> pads(2 * rank);
        for (size_t d = 0; d < rank; ++d) {
          const size_t od = rank == 4 ? static_cast<size_t>(nhwc_axis_to_nchw(static_cast<int64_t>(d))) : d;
          pads[od] = a.pads[2 * d];
          pads[rank + od] = a.pads[2 * d + 1];
        }
        const std::string target = float_target(out);
        const std::string p = initializer(pads, {static_cast<int64_t>(pads.size())}, n.name + "/pads");
        node("Pad", {x, p, scalar_f32(a.value, n.name + "/value")}, target, n.name);
        return finish_output(out, target);
      }
      case OpType::kSoftmax: {
        const float beta = n.attr<ir::SoftmaxAttrs>().beta;
        PCV_ASSIGN_OR_RETURN(std::string x, float_act(n.inputs[0]));
        if (beta != 1.f) {
          const std::string scaled = fresh(x + "/scaled");
          node("Mul", {x, scalar_f32(beta, n.name + "/beta")}, scaled, "");
          x = scaled;
        }
        const std::string target = float_target(out);
        attr_int(node("Softmax", {x}, target, n.name), "axis", xs.size() == 4 ? 1 : -1);
        return finish_output(out, target);
      }
      case OpType::kDropout: {
        PCV_ASSIGN_OR_RETURN(std::string x, float_act(n.inputs[0]));
        const std::string target = float_target(out);
        node("Identity", {x}, target, n.name);
        return finish_output(out, target);
      }
      case OpType::kQuantize: {
        PCV_ASSIGN_OR_RETURN(std::string x, float_act(n.inputs[0]));
        return finish_output(out, x);
      }
      case OpType::kDequantize: {
        PCV_ASSIGN_OR_RETURN(std::string x, float_act(n.inputs[0]));
        node("Identity", {x}, y.name, n.name);
        return Status::ok();
      }
    }
    return unsupported("op has no ONNX mapping");
  }

  // The quantization of an int32 bias: its own, else input scale * weight scale.
  ir::QuantParams bias_quant(const ir::Node& n) const {
    const ir::Value& x = g_.value(n.inputs[0]);
    const ir::Value& w = g_.value(n.inputs[1]);
    ir::QuantParams q;
    if (x.quant.empty() || w.quant.empty()) return q;
    for (float ws : w.quant.scale) {
      q.scale.push_back(x.quant.scale[0] * ws);
      q.zero_point.push_back(0);
    }
    q.axis = 0;
    return q;
  }

  const ir::Model& model_;
  ir::Graph g_;
  pb::ModelProto mp_;
  pb::GraphProto* gp_ = nullptr;
  std::set<std::string> names_;
  std::map<ValueId, std::string> dq_cache_;
  std::map<std::string, std::string> const_cache_;
  std::map<float, std::string> clip_lo_, clip_hi_;
};

}  // namespace

Expected<std::vector<uint8_t>> write_onnx(const ir::Model& model) { return Writer(model).run(); }

Status save_onnx(const ir::Model& model, const std::string& path) {
  PCV_ASSIGN_OR_RETURN(auto bytes, write_onnx(model));
  return write_file_atomic(path, bytes);
}

}  // namespace pcv::onnx
