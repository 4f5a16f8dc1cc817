// .tflite -> ir::Model. See tflite.h for the contract (what each kind of model becomes).
#include <fmt/core.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <set>

#include "base/aligned.h"
#include "base/file.h"
#include "formats/tflite/metadata.h"
#include "formats/tflite/op_map.h"
#include "formats/tflite/tflite.h"
#include "formats/tflite/tflite_schema_generated.h"
#include "formats/tflite/zip.h"

namespace pcv::tflite {
namespace {

using namespace pcv::ir;
using fb::BuiltinOperator;

// Limits for untrusted files: dims and window parameters stay far from int overflow.
constexpr int64_t kMaxDim = int64_t{1} << 24;
constexpr int kMaxWindow = 1 << 16;
constexpr int kMaxRank = 8;

struct TensorInfo {
  const fb::Tensor* t = nullptr;
  std::string name;
  DType file_dtype = DType::kF32;  // as in the file (u8 stays u8 here)
  bool dtype_ok = false;
  Shape shape;
  QuantParams quant;        // as in the file
  const flatbuffers::Vector<uint8_t>* data = nullptr;  // constant data, or null
};

class Reader {
 public:
  Reader(std::span<const uint8_t> bytes, std::string name) : bytes_(bytes), name_(std::move(name)) {}
  Expected<Model> run();

 private:
  Status err(const std::string& what) const { return invalid_model(fmt::format("{}: {}", name_, what)); }
  Status op_err(StatusCode code, const std::string& what) const {
    return Status(code, fmt::format("{}: operator {} ({}): {}", name_, op_index_, op_name_, what));
  }
  Status load_tensors();
  Status read_op(const fb::Operator* op);
  // IR value of tensor `t` read as an op's data input; constants are created on first use.
  Expected<ValueId> input_value(int32_t t);
  // A new IR value defined by the current op for tensor `t` (quantized u8 becomes i8).
  Expected<ValueId> output_value(int32_t t);
  Expected<ValueId> constant_value(int32_t t, bool dequantize_to_f32);
  Expected<Tensor> constant_tensor(int32_t t, bool dequantize_to_f32, QuantParams* quant);
  ValueId add_constant_value(const std::string& base, Tensor data, QuantParams q);
  Expected<ValueId> depthwise_filter(int32_t t, bool dequantize_to_f32);
  Expected<ValueId> dequantized_depthwise_filter(int32_t t);
  Expected<std::vector<int64_t>> int_constant(int32_t t, const char* what);
  Status check_tensor_index(int32_t t, const char* role) const;
  ValueId add_node(OpType type, std::vector<ValueId> inputs, Attrs attrs, ValueId out) {
    Node n;
    n.op = type;
    n.name = unique_node_name(g_.value(out).name);
    n.inputs = std::move(inputs);
    n.outputs = {out};
    n.attrs = std::move(attrs);
    g_.nodes.push_back(std::move(n));
    return out;
  }
  ValueId new_value(const std::string& base, DType dtype, Shape shape, QuantParams q) {
    Value v;
    v.name = unique_value_name(base);
    v.dtype = dtype;
    v.shape = std::move(shape);
    v.quant = std::move(q);
    g_.values.push_back(std::move(v));
    return static_cast<ValueId>(g_.values.size() - 1);
  }
  std::string unique_value_name(const std::string& base) {
    std::string n = base.empty() ? "t" : base;
    for (int i = 1; value_names_.count(n); ++i) n = fmt::format("{}_{}", base, i);
    value_names_.insert(n);
    return n;
  }
  std::string unique_node_name(const std::string& base) {
    std::string n = base;
    for (int i = 1; node_names_.count(n); ++i) n = fmt::format("{}_{}", base, i);
    node_names_.insert(n);
    return n;
  }
  // IR dtype/quant of a tensor: uint8 -> int8 with zero points - 128.
  DType ir_dtype(const TensorInfo& ti) const { return ti.file_dtype == DType::kU8 ? DType::kI8 : ti.file_dtype; }
  QuantParams ir_quant(const TensorInfo& ti) const {
    QuantParams q = ti.quant;
    if (ti.file_dtype == DType::kU8) {
      for (int32_t& z : q.zero_point) z -= 128;
    }
    return q;
  }
  Status check_window(int v, const char* what) const {
    if (v < 1 || v > kMaxWindow) return op_err(StatusCode::kInvalidModel, fmt::format("{} {} out of range", what, v));
    return Status::ok();
  }
  Expected<Activation> activation(fb::ActivationFunctionType a) const {
    switch (a) {
      case fb::ActivationFunctionType::NONE: return Activation::kNone;
      case fb::ActivationFunctionType::RELU: return Activation::kRelu;
      case fb::ActivationFunctionType::RELU6: return Activation::kRelu6;
      default:
        return op_err(StatusCode::kUnsupported,
                      fmt::format("fused activation {} is not supported", static_cast<int>(a)));
    }
  }
  Status read_metadata(Model& model);
  void default_input_spec(Model& model);

  std::span<const uint8_t> bytes_;
  std::string name_;
  const fb::Model* m_ = nullptr;
  const fb::SubGraph* sg_ = nullptr;
  std::vector<TensorInfo> tensors_;
  std::vector<ValueId> tensor_value_;        // tensor -> IR value (kNoValue until defined)
  std::map<std::pair<int32_t, int>, ValueId> special_constants_;  // (tensor, layout kind)
  std::set<std::string> value_names_, node_names_;
  Graph g_;
  int op_index_ = -1;
  std::string op_name_;
};

Status Reader::check_tensor_index(int32_t t, const char* role) const {
  if (t < 0 || static_cast<size_t>(t) >= tensors_.size()) {
    return op_err(StatusCode::kInvalidModel,
                  fmt::format("{} tensor index {} out of range ({} tensors)", role, t, tensors_.size()));
  }
  return Status::ok();
}

Status Reader::load_tensors() {
  const auto* ts = sg_->tensors();
  const auto* bufs = m_->buffers();
  const size_t nbuf = bufs ? bufs->size() : 0;
  if (ts == nullptr) return err("subgraph 0 has no tensors");
  tensors_.resize(ts->size());
  for (size_t i = 0; i < ts->size(); ++i) {
    const fb::Tensor* t = ts->Get(static_cast<flatbuffers::uoffset_t>(i));
    TensorInfo& ti = tensors_[i];
    ti.t = t;
    ti.name = t->name() ? t->name()->str() : fmt::format("tensor{}", i);
    ti.dtype_ok = dtype_from_tensor_type(static_cast<int>(t->type()), &ti.file_dtype);
    const std::string who = fmt::format("tensor {} '{}'", i, ti.name);
    if (t->shape()) {
      if (t->shape()->size() > kMaxRank) return err(fmt::format("{}: rank {} is too large", who, t->shape()->size()));
      for (int32_t d : *t->shape()) {
        if (d < 0 || d > kMaxDim) return err(fmt::format("{}: dimension {} out of range", who, d));
        ti.shape.push_back(d);
      }
    }
    if (t->sparsity()) return unsupported(fmt::format("{}: {}: sparse tensors are not supported", name_, who));
    if (const auto* q = t->quantization()) {
      if (q->details_type() != fb::QuantizationDetails::NONE) {
        return unsupported(fmt::format("{}: {}: custom quantization is not supported", name_, who));
      }
      if (q->scale() && q->scale()->size() > 0) {
        const size_t n = q->scale()->size();
        if (!q->zero_point() || (q->zero_point()->size() != n && q->zero_point()->size() != 1)) {
          return err(fmt::format("{}: {} scales but {} zero points", who, n, q->zero_point() ? q->zero_point()->size() : 0));
        }
        for (size_t k = 0; k < n; ++k) {
          const float s = q->scale()->Get(static_cast<flatbuffers::uoffset_t>(k));
          // The verifier checks the vector's 4-byte alignment only: copy the int64 bytes (a
          // damaged file can place them at 4 mod 8, and a misaligned load is undefined).
          int64_t z;
          std::memcpy(&z, q->zero_point()->Data() + (q->zero_point()->size() == 1 ? 0 : k) * sizeof(int64_t), sizeof(z));
          if (!(s > 0.f) || !std::isfinite(s)) return err(fmt::format("{}: quantization scale {} is not positive", who, s));
          if (z < INT32_MIN || z > INT32_MAX) return err(fmt::format("{}: zero point {} out of range", who, z));
          ti.quant.scale.push_back(s);
          ti.quant.zero_point.push_back(static_cast<int32_t>(z));
        }
        ti.quant.axis = q->quantized_dimension();
        if (n > 1 && (ti.quant.axis < 0 || static_cast<size_t>(ti.quant.axis) >= ti.shape.size() ||
                      ti.shape[static_cast<size_t>(ti.quant.axis)] != static_cast<int64_t>(n))) {
          return err(fmt::format("{}: {} per-channel scales do not match axis {} of shape {}", who, n,
                                 ti.quant.axis, shape_to_string(ti.shape)));
        }
        if (n == 1) ti.quant.axis = 0;
      }
    }
    if (t->buffer() >= nbuf) {
      return err(fmt::format("{}: buffer index {} out of range ({} buffers)", who, t->buffer(), nbuf));
    }
    const fb::Buffer* b = bufs->Get(t->buffer());
    if (b->offset() > 1) return unsupported(fmt::format("{}: {}: data outside the flatbuffer (> 2 GB models)", name_, who));
    if (b->data() && b->data()->size() > 0) {
      if (!ti.dtype_ok) {
        return unsupported(fmt::format("{}: {}: type {} is not supported", name_, who,
                                       tensor_type_name(static_cast<int>(t->type()))));
      }
      const auto n = checked_num_elements(ti.shape);
      const uint64_t want = n ? static_cast<uint64_t>(*n) * dtype_size(ti.file_dtype) : 0;
      if (!n || want != b->data()->size()) {
        return err(fmt::format("{}: buffer {} holds {} bytes, shape {} of {} needs {}", who, t->buffer(),
                               b->data()->size(), shape_to_string(ti.shape), dtype_name(ti.file_dtype), want));
      }
      ti.data = b->data();
    }
  }
  return Status::ok();
}

// Constant tensor data as an owning IR tensor (u8 -> i8 shift; optional dequantize to f32).
Expected<Tensor> Reader::constant_tensor(int32_t t, bool dequantize_to_f32, QuantParams* quant) {
  const TensorInfo& ti = tensors_[static_cast<size_t>(t)];
  const auto bytes = std::span<const uint8_t>(ti.data->data(), ti.data->size());
  *quant = {};
  if (dequantize_to_f32) {
    if (ti.quant.empty()) return op_err(StatusCode::kInvalidModel, fmt::format("weights '{}' have no quantization", ti.name));
    Tensor f(DType::kF32, ti.shape);
    const int64_t n = f.num_elements();
    const size_t nc = ti.quant.scale.size();
    int64_t inner = 1;
    if (nc > 1) {
      for (size_t d = static_cast<size_t>(ti.quant.axis) + 1; d < ti.shape.size(); ++d) inner *= ti.shape[d];
    }
    for (int64_t i = 0; i < n; ++i) {
      const size_t c = nc > 1 ? static_cast<size_t>((i / inner) % static_cast<int64_t>(nc)) : 0;
      const int32_t qv = ti.file_dtype == DType::kI8 ? static_cast<int8_t>(bytes[static_cast<size_t>(i)])
                                                      : static_cast<int32_t>(bytes[static_cast<size_t>(i)]);
      f.data<float>()[i] = ti.quant.scale[c] * static_cast<float>(qv - ti.quant.zero_point[c]);
    }
    return f;
  }
  if (ti.file_dtype == DType::kU8 && !ti.quant.empty()) {
    Tensor s(DType::kI8, ti.shape);
    for (size_t i = 0; i < bytes.size(); ++i) s.data<int8_t>()[i] = static_cast<int8_t>(static_cast<int>(bytes[i]) - 128);
    *quant = ir_quant(ti);
    return s;
  }
  *quant = ti.quant;
  return Tensor::from_bytes(ti.file_dtype, ti.shape, bytes);
}

ValueId Reader::add_constant_value(const std::string& base, Tensor data, QuantParams q) {
  Value v;
  v.name = unique_value_name(base);
  v.dtype = data.dtype();
  v.shape = data.shape();
  v.data = std::move(data);
  v.quant = std::move(q);
  g_.values.push_back(std::move(v));
  return static_cast<ValueId>(g_.values.size() - 1);
}

Expected<ValueId> Reader::constant_value(int32_t t, bool dequantize_to_f32) {
  const int kind = dequantize_to_f32 ? 1 : 0;
  if (auto it = special_constants_.find({t, kind}); it != special_constants_.end()) return it->second;
  QuantParams q;
  PCV_ASSIGN_OR_RETURN(Tensor data, constant_tensor(t, dequantize_to_f32, &q));
  const ValueId id = add_constant_value(tensors_[static_cast<size_t>(t)].name, std::move(data), std::move(q));
  special_constants_[{t, kind}] = id;
  return id;
}

// TFLite depthwise filter (1, kh, kw, out_c) -> IR (out_c, kh, kw, 1); quant axis 3 -> 0.
Expected<ValueId> Reader::depthwise_filter(int32_t t, bool dequantize_to_f32) {
  const int kind = dequantize_to_f32 ? 3 : 2;
  if (auto it = special_constants_.find({t, kind}); it != special_constants_.end()) return it->second;
  const TensorInfo& ti = tensors_[static_cast<size_t>(t)];
  if (ti.shape.size() != 4 || ti.shape[0] != 1) {
    return op_err(StatusCode::kInvalidModel, fmt::format("depthwise filter '{}' must be (1, kh, kw, out_c), got {}",
                                                         ti.name, shape_to_string(ti.shape)));
  }
  if (ti.quant.per_channel() && ti.quant.axis != 3) {
    return op_err(StatusCode::kUnsupported, fmt::format("depthwise filter '{}' quantized along axis {}", ti.name, ti.quant.axis));
  }
  QuantParams q;
  PCV_ASSIGN_OR_RETURN(Tensor src, constant_tensor(t, dequantize_to_f32, &q));
  const int64_t kh = ti.shape[1], kw = ti.shape[2], oc = ti.shape[3], hw = kh * kw;
  Tensor dst(src.dtype(), {oc, kh, kw, 1});
  const size_t es = dtype_size(src.dtype());
  const auto* s = static_cast<const uint8_t*>(src.raw());
  auto* d = static_cast<uint8_t*>(dst.raw());
  for (int64_t o = 0; o < oc; ++o) {
    for (int64_t k = 0; k < hw; ++k) std::memcpy(d + static_cast<size_t>(o * hw + k) * es, s + static_cast<size_t>(k * oc + o) * es, es);
  }
  if (q.per_channel()) q.axis = 0;
  const ValueId id = add_constant_value(ti.name, std::move(dst), std::move(q));
  special_constants_[{t, kind}] = id;
  return id;
}

// A depthwise filter computed by DEQUANTIZE from a constant (fp16 / int8 weights): the constant
// and the dequantize output move to the IR layout (out_c, kh, kw, 1).
Expected<ValueId> Reader::dequantized_depthwise_filter(int32_t t) {
  PCV_ASSIGN_OR_RETURN(ValueId w, input_value(t));
  const int p = g_.producer(w);
  if (p < 0 || g_.nodes[static_cast<size_t>(p)].op != OpType::kDequantize) {
    return op_err(StatusCode::kUnsupported, "the filter must be a constant or a dequantized constant");
  }
  const ValueId c = g_.nodes[static_cast<size_t>(p)].inputs[0];
  int uses = 0;
  for (const Node& n : g_.nodes) {
    for (ValueId in : n.inputs) uses += (in == w) + (in == c);
  }
  const Value& cv = g_.value(c);
  const Shape& s = cv.shape;
  if (!cv.is_constant() || uses != 1 || s.size() != 4 || s[0] != 1 || (cv.quant.per_channel() && cv.quant.axis != 3)) {
    return op_err(StatusCode::kUnsupported, "depthwise filter: unsupported dequantize pattern");
  }
  const int64_t kh = s[1], kw = s[2], oc = s[3], hw = kh * kw;
  Tensor dst(cv.dtype, {oc, kh, kw, 1});
  const size_t es = dtype_size(cv.dtype);
  const auto* src = static_cast<const uint8_t*>(cv.data.raw());
  auto* d = static_cast<uint8_t*>(dst.raw());
  for (int64_t o = 0; o < oc; ++o) {
    for (int64_t k = 0; k < hw; ++k) std::memcpy(d + static_cast<size_t>(o * hw + k) * es, src + static_cast<size_t>(k * oc + o) * es, es);
  }
  Value& cm = g_.value(c);
  cm.shape = dst.shape();
  cm.data = std::move(dst);
  if (cm.quant.per_channel()) cm.quant.axis = 0;
  g_.value(w).shape = cm.shape;
  return w;
}

Expected<ValueId> Reader::input_value(int32_t t) {
  if (t < 0) return kNoValue;
  PCV_RETURN_IF_ERROR(check_tensor_index(t, "input"));
  if (tensor_value_[static_cast<size_t>(t)] != kNoValue) return tensor_value_[static_cast<size_t>(t)];
  const TensorInfo& ti = tensors_[static_cast<size_t>(t)];
  if (ti.data == nullptr) {
    return op_err(StatusCode::kInvalidModel,
                  fmt::format("input tensor {} '{}' is used before any operator produces it", t, ti.name));
  }
  PCV_ASSIGN_OR_RETURN(ValueId v, constant_value(t, false));
  tensor_value_[static_cast<size_t>(t)] = v;
  return v;
}

Expected<ValueId> Reader::output_value(int32_t t) {
  PCV_RETURN_IF_ERROR(check_tensor_index(t, "output"));
  const TensorInfo& ti = tensors_[static_cast<size_t>(t)];
  if (tensor_value_[static_cast<size_t>(t)] != kNoValue || ti.data != nullptr) {
    return op_err(StatusCode::kInvalidModel, fmt::format("output tensor {} '{}' is defined twice", t, ti.name));
  }
  if (!ti.dtype_ok) {
    return op_err(StatusCode::kUnsupported, fmt::format("tensor '{}' has type {}", ti.name,
                                                        tensor_type_name(static_cast<int>(ti.t->type()))));
  }
  const ValueId v = new_value(ti.name, ir_dtype(ti), ti.shape, ir_quant(ti));
  tensor_value_[static_cast<size_t>(t)] = v;
  return v;
}

Expected<std::vector<int64_t>> Reader::int_constant(int32_t t, const char* what) {
  PCV_RETURN_IF_ERROR(check_tensor_index(t, what));
  const TensorInfo& ti = tensors_[static_cast<size_t>(t)];
  if (ti.data == nullptr || (ti.file_dtype != DType::kI32 && ti.file_dtype != DType::kI64)) {
    return op_err(StatusCode::kUnsupported, fmt::format("{} must be a constant int32/int64 tensor", what));
  }
  std::vector<int64_t> out;
  const size_t n = ti.data->size() / dtype_size(ti.file_dtype);
  for (size_t i = 0; i < n; ++i) {
    if (ti.file_dtype == DType::kI32) {
      int32_t x;
      std::memcpy(&x, ti.data->data() + 4 * i, 4);
      out.push_back(x);
    } else {
      int64_t x;
      std::memcpy(&x, ti.data->data() + 8 * i, 8);
      out.push_back(x);
    }
  }
  return out;
}

Status Reader::read_op(const fb::Operator* op) {
  const auto* codes = m_->operator_codes();
  if (codes == nullptr || op->opcode_index() >= codes->size()) {
    return err(fmt::format("operator {}: opcode index {} out of range ({} operator codes)", op_index_,
                           op->opcode_index(), codes ? codes->size() : 0));
  }
  const fb::OperatorCode* oc = codes->Get(op->opcode_index());
  const int32_t code = std::max<int32_t>(oc->deprecated_builtin_code(), static_cast<int32_t>(oc->builtin_code()));
  op_name_ = code == static_cast<int32_t>(BuiltinOperator::CUSTOM) && oc->custom_code()
                 ? "CUSTOM " + oc->custom_code()->str()
                 : builtin_name(code);
  std::vector<int32_t> ins, outs;
  if (op->inputs()) ins.assign(op->inputs()->begin(), op->inputs()->end());
  if (op->outputs()) outs.assign(op->outputs()->begin(), op->outputs()->end());
  for (int32_t t : ins) {
    if (t != -1) PCV_RETURN_IF_ERROR(check_tensor_index(t, "input"));
  }
  for (int32_t t : outs) PCV_RETURN_IF_ERROR(check_tensor_index(t, "output"));
  auto need = [&](size_t min_in, size_t max_in) -> Status {
    if (ins.size() < min_in || ins.size() > max_in || outs.size() != 1) {
      return op_err(StatusCode::kInvalidModel, fmt::format("has {} inputs and {} outputs, expects {}..{} and 1",
                                                           ins.size(), outs.size(), min_in, max_in));
    }
    for (size_t i = 0; i < min_in; ++i) {
      if (ins[i] < 0) return op_err(StatusCode::kInvalidModel, fmt::format("input {} is missing", i));
    }
    return Status::ok();
  };
  auto tinfo = [&](int32_t t) -> const TensorInfo& { return tensors_[static_cast<size_t>(t)]; };
  auto unary = [&](OpType type, Attrs attrs) -> Status {
    PCV_RETURN_IF_ERROR(need(1, 1));
    PCV_ASSIGN_OR_RETURN(ValueId x, input_value(ins[0]));
    PCV_ASSIGN_OR_RETURN(ValueId y, output_value(outs[0]));
    add_node(type, {x}, std::move(attrs), y);
    return Status::ok();
  };
  // Weights of a float op stored as int8/uint8 (dynamic-range quantization) become f32.
  auto hybrid = [&](int32_t x_t, int32_t w_t) {
    return tinfo(x_t).file_dtype == DType::kF32 && tinfo(w_t).data != nullptr &&
           (tinfo(w_t).file_dtype == DType::kI8 || tinfo(w_t).file_dtype == DType::kU8);
  };

  switch (static_cast<BuiltinOperator>(code)) {
    case BuiltinOperator::CONV_2D:
    case BuiltinOperator::DEPTHWISE_CONV_2D: {
      PCV_RETURN_IF_ERROR(need(2, 3));
      const bool dw = static_cast<BuiltinOperator>(code) == BuiltinOperator::DEPTHWISE_CONV_2D;
      Conv2dAttrs a;
      fb::ActivationFunctionType act;
      fb::Padding pad;
      if (dw) {
        const auto* o = op->builtin_options_as_DepthwiseConv2DOptions();
        if (!o) return op_err(StatusCode::kInvalidModel, "missing DepthwiseConv2DOptions");
        a.stride_h = o->stride_h(), a.stride_w = o->stride_w();
        a.dilation_h = o->dilation_h_factor(), a.dilation_w = o->dilation_w_factor();
        act = o->fused_activation_function();
        pad = o->padding();
      } else {
        const auto* o = op->builtin_options_as_Conv2DOptions();
        if (!o) return op_err(StatusCode::kInvalidModel, "missing Conv2DOptions");
        a.stride_h = o->stride_h(), a.stride_w = o->stride_w();
        a.dilation_h = o->dilation_h_factor(), a.dilation_w = o->dilation_w_factor();
        act = o->fused_activation_function();
        pad = o->padding();
      }
      PCV_RETURN_IF_ERROR(check_window(a.stride_h, "stride"));
      PCV_RETURN_IF_ERROR(check_window(a.stride_w, "stride"));
      PCV_RETURN_IF_ERROR(check_window(a.dilation_h, "dilation"));
      PCV_RETURN_IF_ERROR(check_window(a.dilation_w, "dilation"));
      PCV_ASSIGN_OR_RETURN(a.activation, activation(act));
      a.padding = pad == fb::Padding::VALID ? Padding::kValid : Padding::kSame;
      const TensorInfo& xi = tinfo(ins[0]);
      const TensorInfo& wi = tinfo(ins[1]);
      if (xi.shape.size() != 4 || wi.shape.size() != 4) {
        return op_err(StatusCode::kInvalidModel, fmt::format("input {} and filter {} must be rank 4",
                                                             shape_to_string(xi.shape), shape_to_string(wi.shape)));
      }
      const bool deq = hybrid(ins[0], ins[1]);
      PCV_ASSIGN_OR_RETURN(ValueId x, input_value(ins[0]));
      ValueId w;
      if (dw && wi.data == nullptr) {
        PCV_ASSIGN_OR_RETURN(w, dequantized_depthwise_filter(ins[1]));
        a.groups = static_cast<int>(xi.shape[3]);
      } else if (dw) {
        PCV_ASSIGN_OR_RETURN(w, depthwise_filter(ins[1], deq));
        a.groups = static_cast<int>(xi.shape[3]);
        if (a.groups < 1 || wi.shape[3] % a.groups != 0) {
          return op_err(StatusCode::kInvalidModel, fmt::format("filter channels {} are not a multiple of input channels {}",
                                                               wi.shape[3], xi.shape[3]));
        }
      } else {
        if (deq) {
          PCV_ASSIGN_OR_RETURN(w, constant_value(ins[1], true));
        } else {
          PCV_ASSIGN_OR_RETURN(w, input_value(ins[1]));
        }
        if (wi.shape[3] < 1 || xi.shape[3] % wi.shape[3] != 0) {
          return op_err(StatusCode::kInvalidModel, fmt::format("input channels {} are not a multiple of filter channels {}",
                                                               xi.shape[3], wi.shape[3]));
        }
        a.groups = static_cast<int>(xi.shape[3] / wi.shape[3]);
      }
      std::vector<ValueId> in{x, w};
      if (ins.size() == 3 && ins[2] >= 0) {
        if (deq && tinfo(ins[2]).file_dtype != DType::kF32) return op_err(StatusCode::kUnsupported, "hybrid op with a non-float bias");
        PCV_ASSIGN_OR_RETURN(ValueId b, input_value(ins[2]));
        in.push_back(b);
      }
      PCV_ASSIGN_OR_RETURN(ValueId y, output_value(outs[0]));
      add_node(OpType::kConv2d, std::move(in), a, y);
      return Status::ok();
    }
    case BuiltinOperator::FULLY_CONNECTED: {
      PCV_RETURN_IF_ERROR(need(2, 3));
      FullyConnectedAttrs a;
      if (const auto* o = op->builtin_options_as_FullyConnectedOptions()) {
        PCV_ASSIGN_OR_RETURN(a.activation, activation(o->fused_activation_function()));
        if (o->weights_format() != fb::FullyConnectedOptionsWeightsFormat::DEFAULT) {
          return op_err(StatusCode::kUnsupported, "shuffled weights are not supported");
        }
        if (o->keep_num_dims()) return op_err(StatusCode::kUnsupported, "keep_num_dims is not supported");
      }
      const TensorInfo& wi = tinfo(ins[1]);
      if (wi.shape.size() != 2 || wi.shape[1] < 1) {
        return op_err(StatusCode::kInvalidModel, fmt::format("weights must be (out, in), got {}", shape_to_string(wi.shape)));
      }
      const bool deq = hybrid(ins[0], ins[1]);
      PCV_ASSIGN_OR_RETURN(ValueId x, input_value(ins[0]));
      ValueId w;
      if (deq) {
        PCV_ASSIGN_OR_RETURN(w, constant_value(ins[1], true));
      } else {
        PCV_ASSIGN_OR_RETURN(w, input_value(ins[1]));
      }
      const Value& xv = g_.value(x);
      if (xv.shape.size() != 2) {
        // TFLite flattens the input to (-1, in); the IR needs an explicit reshape.
        const int64_t k = wi.shape[1];
        const int64_t total = num_elements(xv.shape);
        if (total % k != 0) {
          return op_err(StatusCode::kInvalidModel, fmt::format("input {} does not flatten to (-1, {})", shape_to_string(xv.shape), k));
        }
        ReshapeAttrs r;
        r.shape = {total / k, k};
        const ValueId flat = new_value(xv.name + "/flat", xv.dtype, r.shape, xv.quant);
        add_node(OpType::kReshape, {x}, r, flat);
        x = flat;
      }
      std::vector<ValueId> in{x, w};
      if (ins.size() == 3 && ins[2] >= 0) {
        PCV_ASSIGN_OR_RETURN(ValueId b, input_value(ins[2]));
        in.push_back(b);
      }
      PCV_ASSIGN_OR_RETURN(ValueId y, output_value(outs[0]));
      add_node(OpType::kFullyConnected, std::move(in), a, y);
      return Status::ok();
    }
    case BuiltinOperator::AVERAGE_POOL_2D:
    case BuiltinOperator::MAX_POOL_2D: {
      const auto* o = op->builtin_options_as_Pool2DOptions();
      if (!o) return op_err(StatusCode::kInvalidModel, "missing Pool2DOptions");
      Pool2dAttrs a;
      a.kernel_h = o->filter_height(), a.kernel_w = o->filter_width();
      a.stride_h = o->stride_h(), a.stride_w = o->stride_w();
      for (int v : {a.kernel_h, a.kernel_w}) PCV_RETURN_IF_ERROR(check_window(v, "window"));
      for (int v : {a.stride_h, a.stride_w}) PCV_RETURN_IF_ERROR(check_window(v, "stride"));
      a.padding = o->padding() == fb::Padding::VALID ? Padding::kValid : Padding::kSame;
      PCV_ASSIGN_OR_RETURN(a.activation, activation(o->fused_activation_function()));
      return unary(static_cast<BuiltinOperator>(code) == BuiltinOperator::MAX_POOL_2D ? OpType::kMaxPool
                                                                                      : OpType::kAveragePool,
                   a);
    }
    case BuiltinOperator::ADD:
    case BuiltinOperator::MUL: {
      PCV_RETURN_IF_ERROR(need(2, 2));
      EltwiseAttrs a;
      const bool add = static_cast<BuiltinOperator>(code) == BuiltinOperator::ADD;
      if (add) {
        if (const auto* o = op->builtin_options_as_AddOptions()) {
          PCV_ASSIGN_OR_RETURN(a.activation, activation(o->fused_activation_function()));
        }
      } else if (const auto* o = op->builtin_options_as_MulOptions()) {
        PCV_ASSIGN_OR_RETURN(a.activation, activation(o->fused_activation_function()));
      }
      PCV_ASSIGN_OR_RETURN(ValueId x0, input_value(ins[0]));
      PCV_ASSIGN_OR_RETURN(ValueId x1, input_value(ins[1]));
      PCV_ASSIGN_OR_RETURN(ValueId y, output_value(outs[0]));
      add_node(add ? OpType::kAdd : OpType::kMul, {x0, x1}, a, y);
      return Status::ok();
    }
    case BuiltinOperator::CONCATENATION: {
      if (ins.empty() || ins.size() > 64 || outs.size() != 1) {
        return op_err(StatusCode::kInvalidModel, fmt::format("has {} inputs (1..64) and {} outputs", ins.size(), outs.size()));
      }
      ConcatAttrs a;
      if (const auto* o = op->builtin_options_as_ConcatenationOptions()) {
        a.axis = o->axis();
        PCV_ASSIGN_OR_RETURN(a.activation, activation(o->fused_activation_function()));
      }
      std::vector<ValueId> in;
      for (int32_t t : ins) {
        if (t < 0) return op_err(StatusCode::kInvalidModel, "missing input");
        PCV_ASSIGN_OR_RETURN(ValueId x, input_value(t));
        in.push_back(x);
      }
      PCV_ASSIGN_OR_RETURN(ValueId y, output_value(outs[0]));
      add_node(OpType::kConcat, std::move(in), a, y);
      return Status::ok();
    }
    case BuiltinOperator::RESHAPE:
    case BuiltinOperator::SQUEEZE: {
      // The IR reshape takes the file's static output shape (shape tensors, new_shape and
      // squeeze_dims all lead there; a mismatch shows up when shapes are checked).
      if (ins.empty() || ins[0] < 0 || outs.size() != 1) return op_err(StatusCode::kInvalidModel, "needs an input and one output");
      ReshapeAttrs r;
      r.shape = tinfo(outs[0]).shape;
      PCV_ASSIGN_OR_RETURN(ValueId x, input_value(ins[0]));
      PCV_ASSIGN_OR_RETURN(ValueId y, output_value(outs[0]));
      add_node(OpType::kReshape, {x}, r, y);
      return Status::ok();
    }
    case BuiltinOperator::SOFTMAX: {
      SoftmaxAttrs a;
      if (const auto* o = op->builtin_options_as_SoftmaxOptions()) a.beta = o->beta();
      if (!std::isfinite(a.beta)) return op_err(StatusCode::kInvalidModel, "beta is not finite");
      return unary(OpType::kSoftmax, a);
    }
    case BuiltinOperator::MEAN: {
      PCV_RETURN_IF_ERROR(need(2, 2));
      MeanAttrs a;
      PCV_ASSIGN_OR_RETURN(a.axes, int_constant(ins[1], "axes"));
      if (const auto* o = op->builtin_options_as_ReducerOptions()) a.keep_dims = o->keep_dims();
      PCV_ASSIGN_OR_RETURN(ValueId x, input_value(ins[0]));
      PCV_ASSIGN_OR_RETURN(ValueId y, output_value(outs[0]));
      add_node(OpType::kMean, {x}, a, y);
      return Status::ok();
    }
    case BuiltinOperator::PAD:
    case BuiltinOperator::PADV2: {
      const bool v2 = static_cast<BuiltinOperator>(code) == BuiltinOperator::PADV2;
      PCV_RETURN_IF_ERROR(need(2, v2 ? 3 : 2));
      PadAttrs a;
      PCV_ASSIGN_OR_RETURN(a.pads, int_constant(ins[1], "paddings"));
      if (v2 && ins.size() == 3 && ins[2] >= 0) {
        const TensorInfo& ci = tinfo(ins[2]);
        if (ci.data == nullptr || ci.data->size() == 0) return op_err(StatusCode::kUnsupported, "the pad value must be a constant");
        const TensorInfo& xi = tinfo(ins[0]);
        if (ci.file_dtype == DType::kF32 && ci.data->size() == 4) {
          std::memcpy(&a.value, ci.data->data(), 4);
        } else if ((ci.file_dtype == DType::kI8 || ci.file_dtype == DType::kU8) && ci.data->size() == 1 &&
                   !xi.quant.empty()) {
          const int32_t q = ci.file_dtype == DType::kI8 ? static_cast<int8_t>(ci.data->Get(0)) : ci.data->Get(0);
          a.value = xi.quant.scale[0] * static_cast<float>(q - xi.quant.zero_point[0]);
        } else {
          return op_err(StatusCode::kUnsupported, "pad value of this type");
        }
      }
      PCV_ASSIGN_OR_RETURN(ValueId x, input_value(ins[0]));
      PCV_ASSIGN_OR_RETURN(ValueId y, output_value(outs[0]));
      add_node(OpType::kPad, {x}, a, y);
      return Status::ok();
    }
    case BuiltinOperator::RELU: return unary(OpType::kRelu, NoAttrs{});
    case BuiltinOperator::RELU6: return unary(OpType::kRelu6, NoAttrs{});
    case BuiltinOperator::HARD_SWISH: return unary(OpType::kHardSwish, NoAttrs{});
    case BuiltinOperator::LOGISTIC: return unary(OpType::kSigmoid, NoAttrs{});
    case BuiltinOperator::LEAKY_RELU: {
      LeakyReluAttrs a;
      if (const auto* o = op->builtin_options_as_LeakyReluOptions()) a.alpha = o->alpha();
      return unary(OpType::kLeakyRelu, a);
    }
    case BuiltinOperator::QUANTIZE: {
      PCV_RETURN_IF_ERROR(need(1, 1));
      if (!is_quantized_dtype(tinfo(outs[0]).file_dtype) || tinfo(outs[0]).quant.empty()) {
        return op_err(StatusCode::kUnsupported, "output must be int8/uint8 with quantization parameters");
      }
      return unary(OpType::kQuantize, NoAttrs{});
    }
    case BuiltinOperator::DEQUANTIZE: {
      PCV_RETURN_IF_ERROR(need(1, 1));
      if (tinfo(outs[0]).file_dtype != DType::kF32) return op_err(StatusCode::kUnsupported, "output must be float32");
      return unary(OpType::kDequantize, NoAttrs{});
    }
    default:
      return op_err(StatusCode::kUnsupported, "this operator is not supported");
  }
}

void Reader::default_input_spec(Model& model) {
  InputSpec& spec = model.input_spec;
  if (g_.inputs.empty()) return;
  // The file's input (before any u8 -> i8 quantize node).
  const Value& in = g_.value(g_.inputs[0]);
  if (in.shape.size() == 4 && (in.shape[3] == 1 || in.shape[3] == 3)) {
    spec.height = static_cast<int>(in.shape[1]);
    spec.width = static_cast<int>(in.shape[2]);
    spec.channels = static_cast<int>(in.shape[3]);
    spec.color = spec.channels == 1 ? ColorOrder::kGray : ColorOrder::kRGB;
    if (is_quantized_dtype(in.dtype) && in.quant.scale.size() == 1) {
      // Raw pixels quantize to themselves: q = (p - mean) / std / scale + zp = p.
      const float mean = static_cast<float>(in.quant.zero_point[0]);
      const float stdv = 1.f / in.quant.scale[0];
      spec.mean = {mean, mean, mean};
      spec.std = {stdv, stdv, stdv};
    }
  }
}

Status Reader::read_metadata(Model& model) {
  const auto* md = m_->metadata();
  const auto* bufs = m_->buffers();
  if (md == nullptr) return Status::ok();
  for (const fb::Metadata* e : *md) {
    if (e->name() == nullptr || e->name()->str() != kMetadataBufferName) continue;
    if (bufs == nullptr || e->buffer() >= bufs->size()) {
      return err(fmt::format("metadata '{}': buffer index {} out of range", kMetadataBufferName, e->buffer()));
    }
    const fb::Buffer* b = bufs->Get(e->buffer());
    if (b->data() == nullptr || b->data()->size() == 0) return err("TFLITE_METADATA buffer is empty");
    auto parsed = parse_metadata({b->data()->data(), b->data()->size()});
    if (!parsed) return parsed.status().with_context(name_);
    model.metadata = parsed->info;
    InputSpec& spec = model.input_spec;
    if (parsed->has_color) spec.color = parsed->color;
    auto fill = [](const std::vector<float>& src, std::array<float, 3>& dst) {
      if (src.empty()) return;
      for (size_t c = 0; c < 3; ++c) dst[c] = src[std::min(c, src.size() - 1)];
    };
    fill(parsed->mean, spec.mean);
    fill(parsed->std, spec.std);
    for (float s : spec.std) {
      if (!(s > 0.f) || !std::isfinite(s)) return err("TFLITE_METADATA: normalization std must be positive");
    }
    if (!parsed->labels_file.empty()) {
      PCV_ASSIGN_OR_RETURN(auto files, read_zip(bytes_));
      bool found = false;
      for (const auto& [fname, contents] : files) {
        if (fname != parsed->labels_file) continue;
        found = true;
        size_t pos = 0;
        while (pos < contents.size()) {
          size_t end = contents.find('\n', pos);
          if (end == std::string::npos) end = contents.size();
          std::string line = contents.substr(pos, end - pos);
          if (!line.empty() && line.back() == '\r') line.pop_back();
          spec.labels.push_back(std::move(line));
          pos = end + 1;
        }
      }
      if (!found) return err(fmt::format("metadata names labels file '{}', not in the appended zip", parsed->labels_file));
    }
  }
  return Status::ok();
}

Expected<Model> Reader::run() {
  if (bytes_.size() < 8) return err(fmt::format("truncated: {} bytes", bytes_.size()));
  if (!fb::ModelBufferHasIdentifier(bytes_.data())) return err("not a TFLite model (no TFL3 identifier)");
  flatbuffers::Verifier verifier(bytes_.data(), bytes_.size(), 128, 10'000'000);
  if (!fb::VerifyModelBuffer(verifier)) return err("corrupt or truncated flatbuffer (verification failed)");
  m_ = fb::GetModel(bytes_.data());
  if (m_->version() != 3) return unsupported(fmt::format("{}: schema version {} (only 3 is supported)", name_, m_->version()));
  if (m_->subgraphs() == nullptr || m_->subgraphs()->size() == 0) return err("no subgraphs");
  sg_ = m_->subgraphs()->Get(0);
  PCV_RETURN_IF_ERROR(load_tensors());
  tensor_value_.assign(tensors_.size(), kNoValue);

  // Graph inputs. A uint8 input stays uint8 at the model's edge and is requantized to int8.
  if (sg_->inputs() == nullptr || sg_->inputs()->size() == 0) return err("subgraph 0 has no inputs");
  std::vector<std::pair<ValueId, ValueId>> u8_inputs;  // (u8 graph input, i8 value)
  for (int32_t t : *sg_->inputs()) {
    if (t < 0 || static_cast<size_t>(t) >= tensors_.size()) {
      return err(fmt::format("subgraph input tensor index {} out of range ({} tensors)", t, tensors_.size()));
    }
    const TensorInfo& ti = tensors_[static_cast<size_t>(t)];
    if (!ti.dtype_ok) return unsupported(fmt::format("{}: input '{}' has an unsupported type", name_, ti.name));
    if (tensor_value_[static_cast<size_t>(t)] != kNoValue || ti.data) return err(fmt::format("input tensor {} listed twice or constant", t));
    const ValueId in = g_.add_input(unique_value_name(ti.name), ti.file_dtype, ti.shape, ti.quant);
    if (ti.file_dtype == DType::kU8 && !ti.quant.empty()) {
      const ValueId q = new_value(ti.name + "/int8", DType::kI8, ti.shape, ir_quant(ti));
      add_node(OpType::kQuantize, {in}, NoAttrs{}, q);
      tensor_value_[static_cast<size_t>(t)] = q;
    } else {
      tensor_value_[static_cast<size_t>(t)] = in;
    }
  }
  if (sg_->operators()) {
    op_index_ = 0;
    for (const fb::Operator* op : *sg_->operators()) {
      PCV_RETURN_IF_ERROR(read_op(op));
      ++op_index_;
    }
  }
  op_index_ = -1;
  if (sg_->outputs() == nullptr || sg_->outputs()->size() == 0) return err("subgraph 0 has no outputs");
  for (int32_t t : *sg_->outputs()) {
    if (t < 0 || static_cast<size_t>(t) >= tensors_.size()) {
      return err(fmt::format("subgraph output tensor index {} out of range ({} tensors)", t, tensors_.size()));
    }
    const ValueId v = tensor_value_[static_cast<size_t>(t)];
    if (v == kNoValue) return err(fmt::format("output tensor {} '{}' is never computed", t, tensors_[static_cast<size_t>(t)].name));
    const TensorInfo& ti = tensors_[static_cast<size_t>(t)];
    if (ti.file_dtype == DType::kU8 && !ti.quant.empty() && g_.value(v).dtype == DType::kI8) {
      // Back to uint8 at the model's edge; the output keeps the file's tensor name.
      Value& inner = g_.value(v);
      const std::string name = inner.name;
      value_names_.erase(name);
      inner.name = unique_value_name(name + "/int8");
      for (Node& n : g_.nodes) {
        if (n.outputs[0] == v && n.name == name) {
          node_names_.erase(n.name);
          n.name = unique_node_name(inner.name);
        }
      }
      const ValueId out = new_value(name, DType::kU8, ti.shape, ti.quant);
      add_node(OpType::kQuantize, {v}, NoAttrs{}, out);
      g_.mark_output(out);
    } else {
      g_.mark_output(v);
    }
  }
  // Shapes: the IR's rules must reproduce the file's shapes.
  std::vector<Shape> file_shapes;
  for (const Value& v : g_.values) file_shapes.push_back(v.shape);
  PCV_RETURN_IF_ERROR(infer_shapes(g_).with_context(name_));
  for (size_t i = 0; i < g_.values.size(); ++i) {
    if (g_.values[i].shape != file_shapes[i]) {
      return err(fmt::format("tensor '{}' has shape {} in the file but its operator gives {}", g_.values[i].name,
                             shape_to_string(file_shapes[i]), shape_to_string(g_.values[i].shape)));
    }
  }
  PCV_RETURN_IF_ERROR(verify(g_).with_context(name_));

  Model model;
  default_input_spec(model);  // reads g_
  model.graph = std::move(g_);
  if (m_->description()) model.metadata.description = m_->description()->str();
  PCV_RETURN_IF_ERROR(read_metadata(model));
  return model;
}

}  // namespace

Expected<Model> read_tflite(std::span<const uint8_t> bytes, const std::string& name) {
  std::vector<uint8_t> aligned_copy;
  Reader r(aligned_for_flatbuffers(bytes, &aligned_copy), name);
  return r.run();
}

Expected<Model> load_tflite(const std::string& path) {
  PCV_ASSIGN_OR_RETURN(auto bytes, read_file(path));
  return read_tflite(bytes, path);
}

bool looks_like_tflite(std::span<const uint8_t> bytes) {
  return bytes.size() >= 8 && fb::ModelBufferHasIdentifier(bytes.data());
}

Expected<std::vector<std::pair<std::string, std::string>>> read_associated_files(std::span<const uint8_t> bytes) {
  return read_zip(bytes);
}

}  // namespace pcv::tflite
