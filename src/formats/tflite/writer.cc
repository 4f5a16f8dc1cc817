// ir::Model -> .tflite. See tflite.h for the contract and op_map.h for the op table.
#include <fmt/core.h>

#include <cmath>
#include <functional>
#include <map>
#include <limits>
#include <set>

#include "base/file.h"
#include "base/fp16.h"
#include "formats/tflite/metadata.h"
#include "formats/tflite/op_map.h"
#include "formats/tflite/tflite.h"
#include "formats/tflite/tflite_schema_generated.h"
#include "formats/tflite/zip.h"
#include "ir/passes/passes.h"

namespace pcv::tflite {
namespace {

using namespace pcv::ir;
using flatbuffers::FlatBufferBuilder;
using flatbuffers::Offset;

constexpr uint32_t kSchemaVersion = 3;

struct TensorSpec {
  std::string name;
  fb::TensorType type = fb::TensorType::FLOAT32;
  std::vector<int32_t> shape;
  uint32_t buffer = 0;
  QuantParams quant;
};

// One operator before serialization; options are built when the flatbuffer is.
struct OpSpec {
  fb::BuiltinOperator code;
  int version = 1;
  std::vector<int32_t> inputs, outputs;
  fb::BuiltinOptions options_type = fb::BuiltinOptions::NONE;
  std::function<Offset<void>(FlatBufferBuilder&)> options;
};

fb::ActivationFunctionType fused(Activation a) {
  switch (a) {
    case Activation::kNone: return fb::ActivationFunctionType::NONE;
    case Activation::kRelu: return fb::ActivationFunctionType::RELU;
    case Activation::kRelu6: return fb::ActivationFunctionType::RELU6;
  }
  return fb::ActivationFunctionType::NONE;
}

class Writer {
 public:
  Writer(const Model& model, const TfliteWriteOptions& options) : model_(model), g_(model.graph), opt_(options) {
    buffers_.emplace_back();  // buffers[0]: the empty sentinel
  }

  Expected<std::vector<uint8_t>> run();

 private:
  // Tensor for an IR value (created on first use; constants get their own buffer).
  Expected<int32_t> tensor(ValueId v);
  int32_t add_tensor(TensorSpec spec, std::vector<uint8_t> data = {});
  template <class T>
  int32_t add_const(const std::string& name, fb::TensorType type, std::vector<int32_t> shape,
                    const std::vector<T>& values, QuantParams quant = {}) {
    std::vector<uint8_t> bytes(values.size() * sizeof(T));
    if (!bytes.empty()) std::memcpy(bytes.data(), values.data(), bytes.size());
    return add_tensor({unique(name), type, std::move(shape), 0, std::move(quant)}, std::move(bytes));
  }
  std::string unique(const std::string& base);
  Status add_node(const Node& n, int index);
  Status conv(const Node& n);
  Status pool(const Node& n, fb::BuiltinOperator code);
  Expected<int32_t> bias_for(const Node& n, int64_t out_c, int32_t input_t, const Value& w);
  Expected<Padding2d> padding_of(const Node& n, Padding mode, int kh, int kw, int sh, int sw, int dh, int dw,
                                 int pt, int pb, int pl, int pr, fb::Padding* out);
  Expected<int32_t> explicit_pad_input(const Node& n, ValueId x, const Padding2d& p);
  bool non_negative(ValueId x) const;
  void emit(OpSpec op) { ops_.push_back(std::move(op)); }
  const Value& val(ValueId v) const { return g_.value(v); }
  static std::vector<int32_t> dims(const Shape& s) { return {s.begin(), s.end()}; }
  Status fail_node(const Node& n, const std::string& what) const {
    return unsupported(fmt::format("node '{}' ({}): {}", n.name, op_name(n.op), what));
  }
  std::vector<uint8_t> serialize();

  const Model& model_;
  const Graph& g_;
  const TfliteWriteOptions& opt_;
  std::vector<TensorSpec> tensors_;
  std::vector<std::vector<uint8_t>> buffers_;
  std::vector<OpSpec> ops_;
  std::vector<int32_t> value_tensor_;
  std::vector<char> dw_layout_;  // values written in depthwise filter layout
  uint32_t metadata_buffer_ = 0;
  std::set<std::string> names_;
};

std::string Writer::unique(const std::string& base) {
  std::string name = base;
  for (int i = 1; names_.count(name); ++i) name = fmt::format("{}_{}", base, i);
  names_.insert(name);
  return name;
}

int32_t Writer::add_tensor(TensorSpec spec, std::vector<uint8_t> data) {
  if (!data.empty()) {
    spec.buffer = static_cast<uint32_t>(buffers_.size());
    buffers_.push_back(std::move(data));
  }
  tensors_.push_back(std::move(spec));
  return static_cast<int32_t>(tensors_.size() - 1);
}

Expected<int32_t> Writer::tensor(ValueId v) {
  if (value_tensor_[static_cast<size_t>(v)] >= 0) return value_tensor_[static_cast<size_t>(v)];
  const Value& x = val(v);
  const int type = tensor_type_of(x.dtype);
  if (type < 0) return unsupported(fmt::format("value '{}': dtype {} has no TFLite type", x.name, dtype_name(x.dtype)));
  TensorSpec spec{unique(x.name), static_cast<fb::TensorType>(type), dims(x.shape), 0, x.quant};
  std::vector<uint8_t> data;
  if (x.is_constant()) data.assign(x.data.bytes().begin(), x.data.bytes().end());
  if (dw_layout_[static_cast<size_t>(v)]) {
    // Depthwise filter: IR (out_c, kh, kw, 1) -> TFLite (1, kh, kw, out_c); per-channel axis 0 -> 3.
    if (x.shape.size() != 4 || x.shape[3] != 1) {
      return internal_error(fmt::format("value '{}': depthwise filter shape {}", x.name, shape_to_string(x.shape)));
    }
    const int64_t out_c = x.shape[0], hw = x.shape[1] * x.shape[2];
    spec.shape = {1, static_cast<int32_t>(x.shape[1]), static_cast<int32_t>(x.shape[2]), static_cast<int32_t>(out_c)};
    if (spec.quant.per_channel()) spec.quant.axis = 3;
    if (!data.empty()) {
      const size_t es = dtype_size(x.dtype);
      std::vector<uint8_t> t(data.size());
      for (int64_t o = 0; o < out_c; ++o) {
        for (int64_t k = 0; k < hw; ++k) {
          std::memcpy(&t[static_cast<size_t>(k * out_c + o) * es], &data[static_cast<size_t>(o * hw + k) * es], es);
        }
      }
      data = std::move(t);
    }
  }
  const int32_t t = add_tensor(std::move(spec), std::move(data));
  value_tensor_[static_cast<size_t>(v)] = t;
  return t;
}

Expected<Padding2d> Writer::padding_of(const Node& n, Padding mode, int kh, int kw, int sh, int sw, int dh,
                                       int dw, int pt, int pb, int pl, int pr, fb::Padding* out) {
  const Shape& in = val(n.inputs[0]).shape;
  const int h = static_cast<int>(in[1]), w = static_cast<int>(in[2]);
  if (mode == Padding::kSame) {
    *out = fb::Padding::SAME;
    return Padding2d{};
  }
  if (mode == Padding::kValid || (pt == 0 && pb == 0 && pl == 0 && pr == 0)) {
    *out = fb::Padding::VALID;
    return Padding2d{};
  }
  // Explicit pads equal to what SAME gives are SAME; others need a PAD op (VALID after it).
  auto same = resolve_padding(Padding::kSame, h, w, kh, kw, sh, sw, dh, dw, 0, 0, 0, 0);
  auto expl = resolve_padding(Padding::kExplicit, h, w, kh, kw, sh, sw, dh, dw, pt, pb, pl, pr);
  if (!expl) return expl.status();
  if (same && same->pad_top == pt && same->pad_bottom == pb && same->pad_left == pl && same->pad_right == pr &&
      same->out_h == expl->out_h && same->out_w == expl->out_w) {
    *out = fb::Padding::SAME;
    return Padding2d{};
  }
  *out = fb::Padding::VALID;
  return *expl;
}

// A PAD op in front of `x` for explicit padding that SAME/VALID can't express.
Expected<int32_t> Writer::explicit_pad_input(const Node& n, ValueId x, const Padding2d& p) {
  PCV_ASSIGN_OR_RETURN(int32_t xt, tensor(x));
  const Value& xv = val(x);
  Shape padded = xv.shape;
  padded[1] += p.pad_top + p.pad_bottom;
  padded[2] += p.pad_left + p.pad_right;
  const std::vector<int32_t> pads{0, 0, p.pad_top, p.pad_bottom, p.pad_left, p.pad_right, 0, 0};
  const int32_t pt = add_const(n.name + "/paddings", fb::TensorType::INT32, {4, 2}, pads);
  const int32_t out = add_tensor({unique(n.name + "/padded"), tensors_[static_cast<size_t>(xt)].type,
                                  dims(padded), 0, xv.quant});
  OpSpec op{fb::BuiltinOperator::PAD, xv.dtype == DType::kI8 ? 2 : 1, {xt, pt}, {out}};
  op.options_type = fb::BuiltinOptions::PadOptions;
  op.options = [](FlatBufferBuilder& b) { return fb::CreatePadOptions(b).Union(); };
  emit(std::move(op));
  return out;
}

// True when `x` comes from a relu / relu6 / sigmoid, alone or fused into its producer.
bool Writer::non_negative(ValueId x) const {
  const int p = g_.producer(x);
  if (p < 0) return false;
  const Node& n = g_.nodes[static_cast<size_t>(p)];
  if (n.op == OpType::kRelu || n.op == OpType::kRelu6 || n.op == OpType::kSigmoid) return true;
  return std::visit(
      [](const auto& a) {
        if constexpr (requires { a.activation; }) return a.activation != Activation::kNone;
        return false;
      },
      n.attrs);
}

// The bias tensor: the node's own (int32 biases get scale input_scale * weight_scale[c]), or
// zeros when the node has none (TFLite's kernels and op versions expect one).
Expected<int32_t> Writer::bias_for(const Node& n, int64_t out_c, int32_t input_t, const Value& w) {
  const bool has = n.inputs.size() >= 3 && n.inputs[2] != kNoValue;
  const bool quantized = is_quantized_dtype(w.dtype);
  if (!quantized) {
    if (has) return tensor(n.inputs[2]);
    return add_const(n.name + "/bias", fb::TensorType::FLOAT32, {static_cast<int32_t>(out_c)},
                     std::vector<float>(static_cast<size_t>(out_c), 0.f));
  }
  const QuantParams& iq = tensors_[static_cast<size_t>(input_t)].quant;
  if (iq.scale.size() != 1 || w.quant.empty()) {
    return fail_node(n, "int8 op needs per-tensor input quantization and quantized weights");
  }
  QuantParams bq;
  bq.axis = 0;
  for (int64_t c = 0; c < out_c; ++c) {
    const float ws = w.quant.scale.size() == 1 ? w.quant.scale[0] : w.quant.scale[static_cast<size_t>(c)];
    bq.scale.push_back(iq.scale[0] * ws);
    bq.zero_point.push_back(0);
  }
  if (w.quant.scale.size() == 1) {
    bq.scale.resize(1);
    bq.zero_point.resize(1);
  }
  std::vector<int32_t> data(static_cast<size_t>(out_c), 0);
  std::string name = n.name + "/bias";
  if (has) {
    const Value& b = val(n.inputs[2]);
    if (b.dtype != DType::kI32 || !b.is_constant()) return fail_node(n, "int8 op needs an int32 constant bias");
    std::memcpy(data.data(), b.data.raw(), data.size() * sizeof(int32_t));
    name = b.name;
  }
  return add_const(name, fb::TensorType::INT32, {static_cast<int32_t>(out_c)}, data, std::move(bq));
}

Status Writer::conv(const Node& n) {
  const auto& a = n.attr<Conv2dAttrs>();
  const Value& x = val(n.inputs[0]);
  const Value& w = val(n.inputs[1]);
  const Value& y = val(n.outputs[0]);
  const int64_t in_c = x.shape[3], out_c = w.shape[0];
  const int kh = static_cast<int>(w.shape[1]), kw = static_cast<int>(w.shape[2]);
  const bool depthwise = a.groups > 1 && a.groups == in_c && w.shape[3] == 1;
  fb::Padding pad_mode;
  PCV_ASSIGN_OR_RETURN(Padding2d ep, padding_of(n, a.padding, kh, kw, a.stride_h, a.stride_w, a.dilation_h,
                                                a.dilation_w, a.pad_top, a.pad_bottom, a.pad_left,
                                                a.pad_right, &pad_mode));
  int32_t xt;
  if (ep.out_h > 0) {
    PCV_ASSIGN_OR_RETURN(xt, explicit_pad_input(n, n.inputs[0], ep));
  } else {
    PCV_ASSIGN_OR_RETURN(xt, tensor(n.inputs[0]));
  }
  const bool int8 = x.dtype == DType::kI8 && w.dtype == DType::kI8 && y.dtype == DType::kI8;
  OpSpec op{fb::BuiltinOperator::CONV_2D, 1, {}, {}};
  int32_t wt;
  if (depthwise) {
    PCV_ASSIGN_OR_RETURN(wt, tensor(n.inputs[1]));  // in (1, kh, kw, out_c) layout
    op.code = fb::BuiltinOperator::DEPTHWISE_CONV_2D;
    op.version = int8 ? 3 : (a.dilation_h != 1 || a.dilation_w != 1) ? 2 : 1;
    const int mult = static_cast<int>(out_c / in_c);
    op.options_type = fb::BuiltinOptions::DepthwiseConv2DOptions;
    op.options = [a, pad_mode, mult](FlatBufferBuilder& b) {
      return fb::CreateDepthwiseConv2DOptions(b, pad_mode, a.stride_w, a.stride_h, mult, fused(a.activation),
                                              a.dilation_w, a.dilation_h)
          .Union();
    };
  } else {
    PCV_ASSIGN_OR_RETURN(wt, tensor(n.inputs[1]));
    op.version = a.groups > 1 ? 6 : int8 ? 3 : 1;
    op.options_type = fb::BuiltinOptions::Conv2DOptions;
    op.options = [a, pad_mode](FlatBufferBuilder& b) {
      return fb::CreateConv2DOptions(b, pad_mode, a.stride_w, a.stride_h, fused(a.activation), a.dilation_w,
                                     a.dilation_h)
          .Union();
    };
  }
  PCV_ASSIGN_OR_RETURN(int32_t bt, bias_for(n, out_c, xt, w));
  PCV_ASSIGN_OR_RETURN(int32_t yt, tensor(n.outputs[0]));
  op.inputs = {xt, wt, bt};
  op.outputs = {yt};
  emit(std::move(op));
  return Status::ok();
}

Status Writer::pool(const Node& n, fb::BuiltinOperator code) {
  const auto& a = n.attr<Pool2dAttrs>();
  fb::Padding pad_mode;
  PCV_ASSIGN_OR_RETURN(Padding2d ep, padding_of(n, a.padding, a.kernel_h, a.kernel_w, a.stride_h, a.stride_w, 1, 1,
                                                a.pad_top, a.pad_bottom, a.pad_left, a.pad_right, &pad_mode));
  int32_t xt;
  if (ep.out_h > 0) {
    // Explicit pads SAME can't express (PyTorch's MaxPool2d(3, 2, padding=1) on an even size):
    // PAD with zeros + a VALID pool is exact for a max pool over non-negative values (a relu
    // before it), as every window holds a real element when the pads are smaller than the kernel.
    const bool pads_fit = ep.pad_top < a.kernel_h && ep.pad_bottom < a.kernel_h && ep.pad_left < a.kernel_w &&
                          ep.pad_right < a.kernel_w;
    if (code != fb::BuiltinOperator::MAX_POOL_2D || !pads_fit || !non_negative(n.inputs[0])) {
      return fail_node(n, "explicit pool padding other than SAME/VALID has no TFLite form (only a max pool of "
                          "non-negative values, after a relu, has: PAD + VALID)");
    }
    PCV_ASSIGN_OR_RETURN(xt, explicit_pad_input(n, n.inputs[0], ep));
  } else {
    PCV_ASSIGN_OR_RETURN(xt, tensor(n.inputs[0]));
  }
  PCV_ASSIGN_OR_RETURN(int32_t yt, tensor(n.outputs[0]));
  OpSpec op{code, val(n.inputs[0]).dtype == DType::kI8 ? 2 : 1, {xt}, {yt}};
  op.options_type = fb::BuiltinOptions::Pool2DOptions;
  op.options = [a, pad_mode](FlatBufferBuilder& b) {
    return fb::CreatePool2DOptions(b, pad_mode, a.stride_w, a.stride_h, a.kernel_w, a.kernel_h,
                                   fused(a.activation))
        .Union();
  };
  emit(std::move(op));
  return Status::ok();
}

Status Writer::add_node(const Node& n, int index) {
  const Value& x = val(n.inputs[0]);
  const Value& y = val(n.outputs[0]);
  const bool i8 = x.dtype == DType::kI8;
  auto simple = [&](fb::BuiltinOperator code, int version) -> Status {
    std::vector<int32_t> ins;
    for (ValueId v : n.inputs) {
      PCV_ASSIGN_OR_RETURN(int32_t t, tensor(v));
      ins.push_back(t);
    }
    PCV_ASSIGN_OR_RETURN(int32_t yt, tensor(n.outputs[0]));
    emit(OpSpec{code, version, std::move(ins), {yt}});
    return Status::ok();
  };
  switch (n.op) {
    case OpType::kConv2d: return conv(n);
    case OpType::kFullyConnected: {
      const Value& w = val(n.inputs[1]);
      PCV_ASSIGN_OR_RETURN(int32_t xt, tensor(n.inputs[0]));
      PCV_ASSIGN_OR_RETURN(int32_t wt, tensor(n.inputs[1]));
      PCV_ASSIGN_OR_RETURN(int32_t bt, bias_for(n, w.shape[0], xt, w));
      PCV_ASSIGN_OR_RETURN(int32_t yt, tensor(n.outputs[0]));
      const bool int8 = i8 && w.dtype == DType::kI8 && y.dtype == DType::kI8;
      OpSpec op{fb::BuiltinOperator::FULLY_CONNECTED, int8 ? 4 : 1, {xt, wt, bt}, {yt}};
      const Activation act = n.attr<FullyConnectedAttrs>().activation;
      op.options_type = fb::BuiltinOptions::FullyConnectedOptions;
      op.options = [act](FlatBufferBuilder& b) { return fb::CreateFullyConnectedOptions(b, fused(act)).Union(); };
      emit(std::move(op));
      return Status::ok();
    }
    case OpType::kBatchNorm: {
      // y = x * s + (beta - mean * s), s = gamma / sqrt(var + eps): MUL then ADD.
      if (x.dtype != DType::kF32) return fail_node(n, "a batch_norm left in a quantized graph has no TFLite form");
      const int64_t c = x.shape.back();
      std::vector<float> s(static_cast<size_t>(c)), t(static_cast<size_t>(c));
      const float eps = n.attr<BatchNormAttrs>().epsilon;
      for (size_t i = 1; i < 5; ++i) {
        if (!val(n.inputs[i]).is_constant() || val(n.inputs[i]).dtype != DType::kF32) {
          return fail_node(n, "batch_norm parameters must be f32 constants");
        }
      }
      const float* gamma = val(n.inputs[1]).data.data<float>();
      const float* beta = val(n.inputs[2]).data.data<float>();
      const float* mean = val(n.inputs[3]).data.data<float>();
      const float* var = val(n.inputs[4]).data.data<float>();
      for (int64_t i = 0; i < c; ++i) {
        s[static_cast<size_t>(i)] = gamma[i] / std::sqrt(var[i] + eps);
        t[static_cast<size_t>(i)] = beta[i] - mean[i] * s[static_cast<size_t>(i)];
      }
      PCV_ASSIGN_OR_RETURN(int32_t xt, tensor(n.inputs[0]));
      const int32_t st = add_const(n.name + "/scale", fb::TensorType::FLOAT32, {static_cast<int32_t>(c)}, s);
      const int32_t tt = add_const(n.name + "/shift", fb::TensorType::FLOAT32, {static_cast<int32_t>(c)}, t);
      const int32_t mid = add_tensor({unique(n.name + "/scaled"), fb::TensorType::FLOAT32, dims(x.shape), 0, {}});
      PCV_ASSIGN_OR_RETURN(int32_t yt, tensor(n.outputs[0]));
      OpSpec mul{fb::BuiltinOperator::MUL, 1, {xt, st}, {mid}};
      mul.options_type = fb::BuiltinOptions::MulOptions;
      mul.options = [](FlatBufferBuilder& b) { return fb::CreateMulOptions(b).Union(); };
      OpSpec add{fb::BuiltinOperator::ADD, 1, {mid, tt}, {yt}};
      add.options_type = fb::BuiltinOptions::AddOptions;
      add.options = [](FlatBufferBuilder& b) { return fb::CreateAddOptions(b).Union(); };
      emit(std::move(mul));
      emit(std::move(add));
      return Status::ok();
    }
    case OpType::kRelu: return simple(fb::BuiltinOperator::RELU, i8 || x.dtype == DType::kU8 ? 2 : 1);
    case OpType::kRelu6: return simple(fb::BuiltinOperator::RELU6, i8 ? 2 : 1);
    case OpType::kHardSwish: return simple(fb::BuiltinOperator::HARD_SWISH, 1);
    case OpType::kSigmoid: return simple(fb::BuiltinOperator::LOGISTIC, i8 ? 2 : 1);
    case OpType::kLeakyRelu: {
      PCV_RETURN_IF_ERROR(simple(fb::BuiltinOperator::LEAKY_RELU, 1));
      const float alpha = n.attr<LeakyReluAttrs>().alpha;
      ops_.back().options_type = fb::BuiltinOptions::LeakyReluOptions;
      ops_.back().options = [alpha](FlatBufferBuilder& b) { return fb::CreateLeakyReluOptions(b, alpha).Union(); };
      return Status::ok();
    }
    case OpType::kAdd:
    case OpType::kMul: {
      const Activation act = n.attr<EltwiseAttrs>().activation;
      int version = i8 ? 2 : 1;
      if (n.op == OpType::kMul && i8) {
        const Value& x2 = val(n.inputs[1]);
        if (!x.quant.empty() && !x2.quant.empty() && !y.quant.empty() &&
            double{x.quant.scale[0]} * x2.quant.scale[0] / y.quant.scale[0] >= 1.0) {
          version = 3;
        }
      }
      const bool add = n.op == OpType::kAdd;
      PCV_RETURN_IF_ERROR(simple(add ? fb::BuiltinOperator::ADD : fb::BuiltinOperator::MUL, version));
      ops_.back().options_type = add ? fb::BuiltinOptions::AddOptions : fb::BuiltinOptions::MulOptions;
      ops_.back().options = [act, add](FlatBufferBuilder& b) {
        return add ? fb::CreateAddOptions(b, fused(act)).Union() : fb::CreateMulOptions(b, fused(act)).Union();
      };
      return Status::ok();
    }
    case OpType::kConcat: {
      const auto& a = n.attr<ConcatAttrs>();
      const int axis = a.axis < 0 ? a.axis + static_cast<int>(x.shape.size()) : a.axis;
      PCV_RETURN_IF_ERROR(simple(fb::BuiltinOperator::CONCATENATION, i8 ? 2 : 1));
      const Activation act = a.activation;
      ops_.back().options_type = fb::BuiltinOptions::ConcatenationOptions;
      ops_.back().options = [axis, act](FlatBufferBuilder& b) {
        return fb::CreateConcatenationOptions(b, axis, fused(act)).Union();
      };
      return Status::ok();
    }
    case OpType::kMaxPool: return pool(n, fb::BuiltinOperator::MAX_POOL_2D);
    case OpType::kAveragePool: return pool(n, fb::BuiltinOperator::AVERAGE_POOL_2D);
    case OpType::kMean: {
      const auto& a = n.attr<MeanAttrs>();
      std::vector<int32_t> axes;
      for (int64_t ax : a.axes) axes.push_back(static_cast<int32_t>(ax < 0 ? ax + static_cast<int64_t>(x.shape.size()) : ax));
      PCV_ASSIGN_OR_RETURN(int32_t xt, tensor(n.inputs[0]));
      const int32_t at = add_const(n.name + "/axes", fb::TensorType::INT32, {static_cast<int32_t>(axes.size())}, axes);
      PCV_ASSIGN_OR_RETURN(int32_t yt, tensor(n.outputs[0]));
      OpSpec op{fb::BuiltinOperator::MEAN, i8 ? 2 : 1, {xt, at}, {yt}};
      const bool keep = a.keep_dims;
      op.options_type = fb::BuiltinOptions::ReducerOptions;
      op.options = [keep](FlatBufferBuilder& b) { return fb::CreateReducerOptions(b, keep).Union(); };
      emit(std::move(op));
      return Status::ok();
    }
    case OpType::kReshape:
    case OpType::kFlatten: {
      // The new shape is the static output shape (a -1 batch resolved to the graph's batch).
      const std::vector<int32_t> shape = dims(y.shape);
      PCV_ASSIGN_OR_RETURN(int32_t xt, tensor(n.inputs[0]));
      const int32_t st = add_const(n.name + "/shape", fb::TensorType::INT32, {static_cast<int32_t>(shape.size())}, shape);
      PCV_ASSIGN_OR_RETURN(int32_t yt, tensor(n.outputs[0]));
      OpSpec op{fb::BuiltinOperator::RESHAPE, 1, {xt, st}, {yt}};
      op.options_type = fb::BuiltinOptions::ReshapeOptions;
      op.options = [shape](FlatBufferBuilder& b) { return fb::CreateReshapeOptionsDirect(b, &shape).Union(); };
      emit(std::move(op));
      return Status::ok();
    }
    case OpType::kPad: {
      const auto& a = n.attr<PadAttrs>();
      if (a.value != 0.f) return fail_node(n, "only zero padding is supported (PAD)");
      std::vector<int32_t> pads(a.pads.begin(), a.pads.end());
      PCV_ASSIGN_OR_RETURN(int32_t xt, tensor(n.inputs[0]));
      const int32_t pt = add_const(n.name + "/paddings", fb::TensorType::INT32,
                                   {static_cast<int32_t>(x.shape.size()), 2}, pads);
      PCV_ASSIGN_OR_RETURN(int32_t yt, tensor(n.outputs[0]));
      OpSpec op{fb::BuiltinOperator::PAD, i8 ? 2 : 1, {xt, pt}, {yt}};
      op.options_type = fb::BuiltinOptions::PadOptions;
      op.options = [](FlatBufferBuilder& b) { return fb::CreatePadOptions(b).Union(); };
      emit(std::move(op));
      return Status::ok();
    }
    case OpType::kSoftmax: {
      if (y.dtype == DType::kI8 &&
          (y.quant.scale.size() != 1 || y.quant.scale[0] != 1.f / 256.f || y.quant.zero_point[0] != -128)) {
        return invalid_argument(fmt::format(
            "node '{}' (softmax): an int8 softmax output must have scale 1/256 and zero point -128 (TFLite)", n.name));
      }
      const float beta = n.attr<SoftmaxAttrs>().beta;
      PCV_RETURN_IF_ERROR(simple(fb::BuiltinOperator::SOFTMAX, i8 ? 2 : 1));
      ops_.back().options_type = fb::BuiltinOptions::SoftmaxOptions;
      ops_.back().options = [beta](FlatBufferBuilder& b) { return fb::CreateSoftmaxOptions(b, beta).Union(); };
      return Status::ok();
    }
    case OpType::kQuantize: {
      PCV_RETURN_IF_ERROR(simple(fb::BuiltinOperator::QUANTIZE, y.quant.per_channel() ? 3 : 1));
      ops_.back().options_type = fb::BuiltinOptions::QuantizeOptions;
      ops_.back().options = [](FlatBufferBuilder& b) { return fb::CreateQuantizeOptions(b).Union(); };
      return Status::ok();
    }
    case OpType::kDequantize: {
      const int version = x.dtype == DType::kF16 ? 3 : i8 ? (x.quant.per_channel() ? 5 : 2) : 1;
      PCV_RETURN_IF_ERROR(simple(fb::BuiltinOperator::DEQUANTIZE, version));
      ops_.back().options_type = fb::BuiltinOptions::DequantizeOptions;
      ops_.back().options = [](FlatBufferBuilder& b) { return fb::CreateDequantizeOptions(b).Union(); };
      return Status::ok();
    }
    case OpType::kDropout:
      return fail_node(n, "dropout between a graph input and output has no TFLite form");
  }
  return fail_node(n, fmt::format("no TFLite mapping (node {})", index));
}

// Float conv2d / fully_connected weights -> f16 constant + dequantize (what the fp16 converter
// writes). Edits the writer's own copy of the graph.
void convert_weights_to_f16(Graph& g) {
  const size_t count = g.nodes.size();
  std::vector<Node> out;
  out.reserve(count * 2);
  for (size_t i = 0; i < count; ++i) {
    Node n = g.nodes[i];
    if ((n.op == OpType::kConv2d || n.op == OpType::kFullyConnected) && n.inputs.size() >= 2) {
      const ValueId w = n.inputs[1];
      if (g.value(w).is_constant() && g.value(w).dtype == DType::kF32) {
        // Copies, not references: add_constant below grows g.values.
        const Tensor& src = g.value(w).data;
        const Shape shape = src.shape();
        Tensor h(DType::kF16, shape);
        for (int64_t k = 0; k < src.num_elements(); ++k) h.data<uint16_t>()[k] = fp16_from_f32(src.data<float>()[k]);
        const std::string name = g.value(w).name;
        const ValueId hv = g.add_constant(name + "/fp16", std::move(h));
        Value deq;
        deq.name = name + "/dequantized";
        deq.dtype = DType::kF32;
        deq.shape = shape;
        g.values.push_back(std::move(deq));
        const auto dv = static_cast<ValueId>(g.values.size() - 1);
        Node d;
        d.op = OpType::kDequantize;
        d.name = name + "/dequantize";
        d.inputs = {hv};
        d.outputs = {dv};
        d.attrs = NoAttrs{};
        out.push_back(std::move(d));
        n.inputs[1] = dv;
      }
    }
    out.push_back(std::move(n));
  }
  g.nodes = std::move(out);
}

std::vector<uint8_t> Writer::serialize() {
  FlatBufferBuilder fbb(1 << 16);
  // Buffers first: they end up at the end of the file, each 16-byte aligned.
  std::vector<Offset<fb::Buffer>> buffers;
  for (const auto& data : buffers_) {
    if (data.empty()) {
      buffers.push_back(fb::CreateBuffer(fbb));
      continue;
    }
    fbb.ForceVectorAlignment(data.size(), 1, 16);
    auto v = fbb.CreateVector(data);
    buffers.push_back(fb::CreateBuffer(fbb, v));
  }
  std::vector<Offset<fb::Tensor>> tensors;
  // Per-channel zero points are all 0 (symmetric weights and their int32 biases) and TFLite
  // wants as many as there are scales (int64 each: 16 bytes per output channel for a conv's
  // weights + bias). One zero vector per channel count is shared by every tensor that needs
  // it: flatbuffers allow several tables to point at one vector, and readers see the same
  // values. Per-tensor parameters are written as they come, so write(read(f)) of a
  // converter's per-tensor model stays byte-identical.
  std::map<size_t, Offset<flatbuffers::Vector<int64_t>>> shared_zero_points;
  for (const TensorSpec& t : tensors_) {
    Offset<fb::QuantizationParameters> q = 0;
    if (!t.quant.empty()) {
      const bool all_zero = std::all_of(t.quant.zero_point.begin(), t.quant.zero_point.end(),
                                        [](int32_t z) { return z == 0; });
      auto scale = fbb.CreateVector(t.quant.scale);  // before the zero points, as flatc's Direct does
      Offset<flatbuffers::Vector<int64_t>> zp;
      if (t.quant.per_channel() && all_zero) {
        auto [it, fresh] = shared_zero_points.try_emplace(t.quant.zero_point.size());
        if (fresh) it->second = fbb.CreateVector(std::vector<int64_t>(t.quant.zero_point.size(), 0));
        zp = it->second;
      } else {
        zp = fbb.CreateVector(std::vector<int64_t>(t.quant.zero_point.begin(), t.quant.zero_point.end()));
      }
      q = fb::CreateQuantizationParameters(fbb, 0, 0, scale, zp, fb::QuantizationDetails::NONE, 0,
                                           t.quant.per_channel() ? t.quant.axis : 0);
    }
    tensors.push_back(fb::CreateTensorDirect(fbb, &t.shape, t.type, t.buffer, t.name.c_str(), q));
  }
  // Operator codes: one per (builtin, version), in first-use order.
  std::vector<std::pair<fb::BuiltinOperator, int>> codes;
  std::vector<Offset<fb::Operator>> operators;
  for (const OpSpec& op : ops_) {
    uint32_t idx = 0;
    while (idx < codes.size() && codes[idx] != std::make_pair(op.code, op.version)) ++idx;
    if (idx == codes.size()) codes.emplace_back(op.code, op.version);
    Offset<void> options = op.options ? op.options(fbb) : Offset<void>();
    operators.push_back(fb::CreateOperatorDirect(fbb, idx, &op.inputs, &op.outputs,
                                                 op.options ? op.options_type : fb::BuiltinOptions::NONE, options));
  }
  std::vector<Offset<fb::OperatorCode>> opcodes;
  for (const auto& [code, version] : codes) {
    const auto c = static_cast<int32_t>(code);
    opcodes.push_back(fb::CreateOperatorCode(fbb, static_cast<int8_t>(std::min(c, 127)), 0, version, code));
  }
  std::vector<int32_t> inputs, outputs;
  for (ValueId v : g_.inputs) inputs.push_back(value_tensor_[static_cast<size_t>(v)]);
  for (ValueId v : g_.outputs) outputs.push_back(value_tensor_[static_cast<size_t>(v)]);
  auto subgraph = fb::CreateSubGraphDirect(fbb, &tensors, &inputs, &outputs, &operators, "main");
  std::vector<Offset<fb::TensorMap>> sig_in, sig_out;
  for (size_t i = 0; i < inputs.size(); ++i) {
    sig_in.push_back(fb::CreateTensorMapDirect(fbb, val(g_.inputs[i]).name.c_str(), static_cast<uint32_t>(inputs[i])));
  }
  for (size_t i = 0; i < outputs.size(); ++i) {
    sig_out.push_back(fb::CreateTensorMapDirect(fbb, val(g_.outputs[i]).name.c_str(), static_cast<uint32_t>(outputs[i])));
  }
  std::vector<Offset<fb::SignatureDef>> sigs{
      fb::CreateSignatureDefDirect(fbb, &sig_in, &sig_out, opt_.signature_key.c_str(), 0)};
  std::vector<Offset<fb::Metadata>> metadata;
  if (metadata_buffer_ > 0) {
    metadata.push_back(fb::CreateMetadataDirect(fbb, kMetadataBufferName, metadata_buffer_));
  }
  std::vector<Offset<fb::SubGraph>> subgraphs{subgraph};
  const std::string description = model_.metadata.description.empty() ? "pocketcv" : model_.metadata.description;
  auto root = fb::CreateModelDirect(fbb, kSchemaVersion, &opcodes, &subgraphs, description.c_str(), &buffers,
                                    nullptr, metadata.empty() ? nullptr : &metadata, &sigs);
  fbb.Finish(root, fb::ModelIdentifier());
  return {fbb.GetBufferPointer(), fbb.GetBufferPointer() + fbb.GetSize()};
}


// TFLite's int8 kernels need symmetric weights (zero point 0); an IR read from a uint8 model
// has asymmetric ones. Such a graph is written in TFLite's uint8 form: every int8 value becomes
// uint8 (q + 128, zero point + 128: exact), and the u8 <-> i8 quantize nodes at its edges,
// now identities, disappear. Per-channel weights have no uint8 form (unsupported).
Status to_uint8_form(Graph& g) {
  bool asymmetric = false;
  for (const Node& n : g.nodes) {
    if ((n.op != OpType::kConv2d && n.op != OpType::kFullyConnected) || n.inputs.size() < 2) continue;
    const Value& w = g.value(n.inputs[1]);
    if (w.dtype != DType::kI8) continue;
    for (int32_t z : w.quant.zero_point) asymmetric = asymmetric || z != 0;
  }
  if (!asymmetric) return Status::ok();
  for (const Node& n : g.nodes) {
    if ((n.op == OpType::kConv2d || n.op == OpType::kFullyConnected) && n.inputs.size() >= 2 &&
        g.value(n.inputs[1]).quant.per_channel()) {
      return unsupported(fmt::format("node '{}': per-channel weights mixed with asymmetric (uint8-style) weights",
                                     n.name));
    }
  }
  for (Value& v : g.values) {
    if (v.dtype != DType::kI8) continue;
    if (v.quant.empty()) return unsupported(fmt::format("value '{}': int8 without quantization", v.name));
    v.dtype = DType::kU8;
    for (int32_t& z : v.quant.zero_point) z += 128;
    if (v.is_constant()) {
      Tensor u(DType::kU8, v.shape);
      const int8_t* src = v.data.data<int8_t>();
      for (int64_t i = 0; i < u.num_elements(); ++i) u.data<uint8_t>()[i] = static_cast<uint8_t>(src[i] + 128);
      v.data = std::move(u);
    }
  }
  for (size_t i = 0; i < g.nodes.size();) {
    const Node& n = g.nodes[i];
    const Value& in = g.value(n.inputs[0]);
    const Value& out = g.value(n.outputs[0]);
    if (n.op != OpType::kQuantize || in.dtype != out.dtype || in.quant != out.quant) {
      ++i;
      continue;
    }
    const ValueId t = n.inputs[0], y = n.outputs[0];
    const int p = g.producer(t);
    if (!is_graph_output(g, y)) {
      g.nodes.erase(g.nodes.begin() + static_cast<std::ptrdiff_t>(i));
      replace_uses(g, y, t);
    } else if (p >= 0 && !is_graph_output(g, t)) {
      g.nodes.erase(g.nodes.begin() + static_cast<std::ptrdiff_t>(i));
      replace_uses(g, t, y);
      g.nodes[static_cast<size_t>(p)].outputs[0] = y;
    } else {
      ++i;
    }
  }
  return Status::ok();
}

bool is_depthwise(const Graph& g, const Node& n) {
  if (n.op != OpType::kConv2d || n.inputs.size() < 2) return false;
  const auto& a = n.attr<Conv2dAttrs>();
  return a.groups > 1 && a.groups == g.value(n.inputs[0]).shape[3] && g.value(n.inputs[1]).shape[3] == 1;
}

Expected<std::vector<uint8_t>> Writer::run() {
  const size_t nv = g_.values.size();
  value_tensor_.assign(nv, -1);
  dw_layout_.assign(nv, 0);
  // Depthwise filters (and the f16/i8 constants dequantized into them) use TFLite's layout;
  // such a value must not also be read in the IR layout.
  for (const Node& n : g_.nodes) {
    if (!is_depthwise(g_, n)) continue;
    ValueId w = n.inputs[1];
    dw_layout_[static_cast<size_t>(w)] = 1;
    if (int p = g_.producer(w); p >= 0 && g_.nodes[static_cast<size_t>(p)].op == OpType::kDequantize) {
      dw_layout_[static_cast<size_t>(g_.nodes[static_cast<size_t>(p)].inputs[0])] = 1;
    }
  }
  for (const Node& n : g_.nodes) {
    for (size_t i = 0; i < n.inputs.size(); ++i) {
      const ValueId v = n.inputs[i];
      if (v == kNoValue || !dw_layout_[static_cast<size_t>(v)]) continue;
      const bool ok = (is_depthwise(g_, n) && i == 1) || n.op == OpType::kDequantize;
      if (!ok) return fail_node(n, fmt::format("'{}' is a depthwise filter and also another op's input", val(v).name));
    }
  }
  for (ValueId v : g_.inputs) PCV_RETURN_IF_ERROR(tensor(v).status());
  for (size_t i = 0; i < g_.nodes.size(); ++i) PCV_RETURN_IF_ERROR(add_node(g_.nodes[i], static_cast<int>(i)));
  for (ValueId v : g_.outputs) PCV_RETURN_IF_ERROR(tensor(v).status());

  std::string labels;
  const auto& spec = model_.input_spec;
  if (opt_.metadata) {
    // Labels go with output 0 when they name its last axis.
    const Shape& out0 = val(g_.outputs[0]).shape;
    const bool with_labels = !spec.labels.empty() && !out0.empty() &&
                             out0.back() == static_cast<int64_t>(spec.labels.size());
    metadata_buffer_ = static_cast<uint32_t>(buffers_.size());
    buffers_.push_back(build_metadata(model_, static_cast<int>(g_.inputs.size()), static_cast<int>(g_.outputs.size()),
                                      with_labels ? opt_.labels_file_name : ""));
    if (with_labels) {
      for (const std::string& l : spec.labels) labels += l + "\n";
    }
  }
  std::vector<uint8_t> bytes = serialize();
  if (!labels.empty()) PCV_RETURN_IF_ERROR(append_zip(bytes, {{opt_.labels_file_name, labels}}));
  return bytes;
}

}  // namespace

Expected<std::vector<uint8_t>> write_tflite(const Model& source, const TfliteWriteOptions& options) {
  if (options.struct_size != sizeof(TfliteWriteOptions)) {
    return invalid_argument("TfliteWriteOptions: struct_size does not match this build");
  }
  PCV_RETURN_IF_ERROR(verify(source.graph).with_context("write_tflite"));
  Model m = source;  // Tensors are shared handles: the copy is cheap, passes make new ones.
  Graph& g = m.graph;
  PCV_RETURN_IF_ERROR(fold_batch_norm(g).status());
  PCV_RETURN_IF_ERROR(remove_identity(g).status());
  PCV_RETURN_IF_ERROR(fuse_activations(g).status());
  if (options.float16_weights) convert_weights_to_f16(g);
  PCV_RETURN_IF_ERROR(to_uint8_form(g));
  PCV_RETURN_IF_ERROR(prune_unused(g).status());
  PCV_RETURN_IF_ERROR(infer_shapes(g));
  PCV_RETURN_IF_ERROR(verify(g).with_context("write_tflite (after passes)"));
  for (ValueId v : g.inputs) {
    PCV_ENSURE(!g.value(v).shape.empty(), StatusCode::kUnsupported, "graph input '{}' is a scalar", g.value(v).name);
  }
  Writer w(m, options);
  return w.run();
}

Status save_tflite(const Model& model, const std::string& path, const TfliteWriteOptions& options) {
  PCV_ASSIGN_OR_RETURN(auto bytes, write_tflite(model, options));
  return write_file_atomic(path, bytes);
}

}  // namespace pcv::tflite
