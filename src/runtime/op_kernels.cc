// Kernel selection per op and dtype. Everything that can be checked is checked here, in
// prepare; the closures run blindly.
#include <fmt/core.h>

#include <array>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <limits>

#include "kernels/activation/activation.h"
#include "kernels/batch_norm/batch_norm.h"
#include "kernels/common/requant.h"
#include "kernels/concat/concat.h"
#include "kernels/conv/conv.h"
#include "kernels/conv/conv_fast.h"
#include "kernels/conv/pointwise_depthwise.h"
#include "kernels/conv/qs8_conv_fast.h"
#include "kernels/eltwise/eltwise.h"
#include "kernels/fully_connected/fully_connected.h"
#include "kernels/gemm/gemm.h"
#include "kernels/gemm/qs8_gemm.h"
#include "kernels/pad/pad.h"
#include "kernels/pool/pool.h"
#include "kernels/quantize/quantize.h"
#include "kernels/reduce/mean.h"
#include "kernels/softmax/softmax.h"
#include "runtime/op_kernel.h"

namespace pcv::runtime {
namespace {

using namespace pcv::ir;
namespace k = pcv::kernels;

class FnKernel : public OpKernel {
 public:
  std::function<void(const RunContext&)> fn;
  void run(const RunContext& c) const override { fn(c); }
};

template <class T>
T* ptr(const RunContext& c, ValueId id) {
  return (*c.values)[static_cast<size_t>(id)].template data<T>();
}

struct Ctx {
  const Graph& g;
  const Node& n;
  const Value& in(size_t i) const { return g.value(n.inputs[i]); }
  bool has(size_t i) const { return i < n.inputs.size() && n.inputs[i] != kNoValue; }
  const Value& out() const { return g.value(n.outputs[0]); }
  Status error(const std::string& what) const {
    return unsupported(fmt::format("node '{}' ({}): {}", n.name, op_name(n.op), what));
  }
};

k::FusedActivation fused(Activation a) {
  switch (a) {
    case Activation::kRelu: return k::FusedActivation::kRelu;
    case Activation::kRelu6: return k::FusedActivation::kRelu6;
    default: return k::FusedActivation::kNone;
  }
}

float per_tensor_scale(const Value& v) { return v.quant.scale.empty() ? 1.f : v.quant.scale[0]; }
int32_t per_tensor_zp(const Value& v) { return v.quant.zero_point.empty() ? 0 : v.quant.zero_point[0]; }

Status check_per_tensor_i8(const Ctx& c, const Value& v, const char* what) {
  if (v.dtype != DType::kI8) return c.error(fmt::format("{} must be i8, got {}", what, dtype_name(v.dtype)));
  if (v.quant.scale.size() != 1) return c.error(fmt::format("{} needs per-tensor quantization", what));
  return Status::ok();
}

// int8 requantization: LiteRT's (XNNPACK fp32) by default, so that outputs equal what users
// get from LiteRT; PCV_REQUANT=fixed_point selects TFLite's reference arithmetic instead.
k::RequantMode requant_mode() {
  static const k::RequantMode mode = [] {
    const char* e = std::getenv("PCV_REQUANT");
    return e != nullptr && std::strcmp(e, "fixed_point") == 0 ? k::RequantMode::kFixedPoint
                                                               : k::RequantMode::kFp32;
  }();
  return mode;
}

// Per-output-channel requantization for int8 conv / fully_connected, both arithmetics.
struct ChannelRequant {
  k::RequantMode mode = k::RequantMode::kFp32;
  std::vector<k::QuantizedMultiplier> fixed;  // kFixedPoint
  std::vector<float> scale;                   // kFp32
  k::QuantActivationRange range{-128, 127};
};

std::shared_ptr<ChannelRequant> channel_requant(const Value& x, const Value& w, const Value& y, int channels,
                                                Activation act) {
  auto r = std::make_shared<ChannelRequant>();
  r->mode = requant_mode();
  std::vector<float> wscale(static_cast<size_t>(channels));
  for (int oc = 0; oc < channels; ++oc) {
    wscale[static_cast<size_t>(oc)] = w.quant.scale[w.quant.scale.size() == 1 ? 0 : static_cast<size_t>(oc)];
  }
  if (r->mode == k::RequantMode::kFp32) {
    r->scale.resize(static_cast<size_t>(channels));
    k::compute_channel_requant_fp32(per_tensor_scale(x), wscale.data(), channels, per_tensor_scale(y), r->scale.data());
    r->range = k::quant_activation_range_fp32(fused(act), per_tensor_scale(y), per_tensor_zp(y));
  } else {
    r->fixed.resize(static_cast<size_t>(channels));
    k::compute_channel_requant(per_tensor_scale(x), wscale.data(), channels, per_tensor_scale(y), r->fixed.data());
    r->range = k::quant_activation_range(fused(act), per_tensor_scale(y), per_tensor_zp(y));
  }
  return r;
}

// An int8 graph read from a uint8 TFLite model: conv / dense weights with a nonzero zero point
// (write_tflite's rule for writing it back as uint8). LiteRT runs such a model with its uint8
// kernels, whose rounding differs from the int8 ones on ties for some ops (average pooling).
bool uint8_model(const Graph& g) {
  for (const Node& n : g.nodes) {
    if ((n.op != OpType::kConv2d && n.op != OpType::kFullyConnected) || n.inputs.size() < 2) continue;
    const Value& w = g.value(n.inputs[1]);
    if (w.dtype != DType::kI8) continue;
    for (int32_t z : w.quant.zero_point) {
      if (z != 0) return true;
    }
  }
  return false;
}

const char* requant_suffix(k::RequantMode m) { return m == k::RequantMode::kFp32 ? "_fp32" : ""; }

std::unique_ptr<FnKernel> make(std::string name) {
  auto kern = std::make_unique<FnKernel>();
  kern->name = std::move(name);
  return kern;
}

// ---- conv2d ----
// The kernel parameters of a conv2d node (constant filter and bias, padding resolved).
Expected<k::Conv2dParams> conv2d_params(const Ctx& c) {
  const auto& a = c.n.attr<Conv2dAttrs>();
  const Value& x = c.in(0);
  const Value& w = c.in(1);
  if (!w.is_constant()) return c.error("filter must be a constant");
  if (c.has(2) && !c.in(2).is_constant()) return c.error("bias must be a constant");
  auto pad = resolve_padding(a.padding, static_cast<int>(x.shape[1]), static_cast<int>(x.shape[2]),
                             static_cast<int>(w.shape[1]), static_cast<int>(w.shape[2]), a.stride_h,
                             a.stride_w, a.dilation_h, a.dilation_w, a.pad_top, a.pad_bottom,
                             a.pad_left, a.pad_right);
  if (!pad) return c.error(pad.status().message());
  k::Conv2dParams p;
  p.batch = static_cast<int>(x.shape[0]);
  p.in_h = static_cast<int>(x.shape[1]);
  p.in_w = static_cast<int>(x.shape[2]);
  p.in_c = static_cast<int>(x.shape[3]);
  p.out_h = pad->out_h;
  p.out_w = pad->out_w;
  p.out_c = static_cast<int>(w.shape[0]);
  p.kernel_h = static_cast<int>(w.shape[1]);
  p.kernel_w = static_cast<int>(w.shape[2]);
  p.stride_h = a.stride_h;
  p.stride_w = a.stride_w;
  p.dilation_h = a.dilation_h;
  p.dilation_w = a.dilation_w;
  p.pad_top = pad->pad_top;
  p.pad_left = pad->pad_left;
  p.groups = a.groups;
  return p;
}

Expected<std::unique_ptr<OpKernel>> conv2d(const PrepareContext& pc, const Ctx& c) {
  const auto& a = c.n.attr<Conv2dAttrs>();
  const Value& x = c.in(0);
  const Value& w = c.in(1);
  const Value& y = c.out();
  auto params = conv2d_params(c);
  if (!params) return params.status();
  const k::Conv2dParams p = *params;
  const int64_t macs = num_elements(y.shape) * w.shape[1] * w.shape[2] * w.shape[3];
  const ValueId xi = c.n.inputs[0], yi = c.n.outputs[0];
  const bool has_bias = c.has(2);
  const ValueId residual = c.n.inputs.size() > 3 ? c.n.inputs[3] : kNoValue;
  if (residual != kNoValue && (x.dtype != DType::kF32 || !pc.fast_kernels)) {
    return c.error("a fused residual add needs the fast f32 kernels");
  }

  if (x.dtype == DType::kF32) {
    if (w.dtype != DType::kF32 || y.dtype != DType::kF32 || (has_bias && c.in(2).dtype != DType::kF32)) {
      return c.error("float conv needs f32 filter, bias and output");
    }
    const auto range = k::float_activation_range(fused(a.activation));
    const float* filter = w.data.data<float>();
    const float* bias = has_bias ? c.in(2).data.data<float>() : nullptr;
    if (pc.fast_kernels) {
      auto packed = k::prepare_f32_conv2d_fast(p, filter, bias);
      if (!packed) return c.error(packed.status().message());
      auto shared = std::make_shared<k::F32Conv2dPacked>(std::move(packed).value());
      auto kern = make(fmt::format("f32_conv2d_fast ({} {})", shared->ukernel_name ? shared->ukernel_name : "",
                                   shared->isa ? shared->isa : ""));
      kern->scratch_bytes = shared->scratch_bytes(pc.threads);
      kern->packed_bytes = static_cast<int64_t>(shared->dw_weights.size());
      for (auto& gm : shared->group_gemm) kern->packed_bytes += static_cast<int64_t>(gm.data.size());
      for (auto& gm : shared->winograd_u) kern->packed_bytes += static_cast<int64_t>(gm.data.size());
      if (residual != kNoValue) {
        // A following ADD fused in by the session (fuse_residual_adds): input 3 is its other operand.
        if (!k::accepts_residual(*shared)) return c.error("a fused residual add needs a 1x1 stride-1 convolution");
        kern->name += " + add";
        kern->fn = [shared, range, xi, yi, residual](const RunContext& r) {
          k::f32_conv2d_fast_add(*shared, ptr<float>(r, xi), ptr<float>(r, residual), range.min, range.max,
                                 ptr<float>(r, yi), r.pool);
        };
        kern->macs = macs;
        return std::unique_ptr<OpKernel>(std::move(kern));
      }
      kern->fn = [shared, range, xi, yi](const RunContext& r) {
        k::f32_conv2d_fast(*shared, ptr<float>(r, xi), range.min, range.max, ptr<float>(r, yi),
                           static_cast<float*>(r.scratch), r.pool);
      };
      kern->macs = macs;
      return std::unique_ptr<OpKernel>(std::move(kern));
    }
    auto kern = make("f32_conv2d__ref");
    kern->fn = [p, filter, bias, range, xi, yi](const RunContext& r) {
      k::f32_conv2d__ref(p, ptr<float>(r, xi), filter, bias, range.min, range.max, ptr<float>(r, yi));
    };
    kern->macs = macs;
    return std::unique_ptr<OpKernel>(std::move(kern));
  }
  if (x.dtype == DType::kI8) {
    PCV_RETURN_IF_ERROR(check_per_tensor_i8(c, x, "input"));
    PCV_RETURN_IF_ERROR(check_per_tensor_i8(c, y, "output"));
    if (w.dtype != DType::kI8 || w.quant.empty()) return c.error("int8 conv needs a quantized i8 filter");
    if (w.quant.scale.size() != 1 && (w.quant.scale.size() != static_cast<size_t>(p.out_c) || w.quant.axis != 0)) {
      return c.error("filter quantization must be per-tensor or per output channel (axis 0)");
    }
    // Symmetric weights (TFLite int8), or one per-tensor zero point (uint8 models as int8).
    const int32_t filter_zp = w.quant.zero_point.empty() ? 0 : w.quant.zero_point[0];
    for (int32_t zp : w.quant.zero_point) {
      if (zp != 0 && w.quant.per_channel()) return c.error("per-channel int8 filters must be symmetric (zero point 0)");
    }
    if (has_bias && c.in(2).dtype != DType::kI32) return c.error("int8 conv needs an i32 bias");
    auto requant = channel_requant(x, w, y, p.out_c, a.activation);
    k::QuantConv2dParams q;
    q.input_zero_point = per_tensor_zp(x);
    q.filter_zero_point = filter_zp;
    q.output_zero_point = per_tensor_zp(y);
    q.mode = requant->mode;
    q.act_min = requant->range.min;
    q.act_max = requant->range.max;
    const int8_t* filter = w.data.data<int8_t>();
    const int32_t* bias = has_bias ? c.in(2).data.data<int32_t>() : nullptr;
    if (pc.fast_kernels && q.mode == k::RequantMode::kFp32) {
      k::QuantConv2dParams qf = q;
      qf.requant_scale = requant->scale.data();
      auto packed = k::prepare_qs8_conv2d_fast(p, qf, filter, bias);
      if (packed) {
        auto shared = std::make_shared<k::Qs8Conv2dPacked>(std::move(packed).value());
        auto kern = make(fmt::format("qs8_conv2d_fast ({} {})", shared->ukernel_name, shared->isa));
        kern->scratch_bytes = shared->scratch_bytes(pc.threads);
        kern->packed_bytes = static_cast<int64_t>(shared->gemm.data.size() + shared->dw_weights.size());
        kern->fn = [shared, xi, yi](const RunContext& r) {
          k::qs8_conv2d_fast(*shared, ptr<int8_t>(r, xi), ptr<int8_t>(r, yi), r.scratch, r.pool);
        };
        kern->macs = macs;
        return std::unique_ptr<OpKernel>(std::move(kern));
      }
      if (packed.status().code() != StatusCode::kUnsupported) return c.error(packed.status().message());
      // Shapes the fast path does not cover (grouped, depthwise multiplier > 1): reference.
    }
    auto kern = make(fmt::format("qs8_conv2d{}__ref", requant_suffix(q.mode)));
    kern->fn = [p, q, requant, filter, bias, xi, yi](const RunContext& r) {
      k::QuantConv2dParams qq = q;
      qq.requant = requant->fixed.data();
      qq.requant_scale = requant->scale.data();
      k::qs8_conv2d__ref(p, qq, ptr<int8_t>(r, xi), filter, bias, ptr<int8_t>(r, yi));
    };
    kern->macs = macs;
    return std::unique_ptr<OpKernel>(std::move(kern));
  }
  return c.error(fmt::format("no kernel for input dtype {}", dtype_name(x.dtype)));
}

// ---- fully_connected ----
Expected<std::unique_ptr<OpKernel>> fully_connected(const PrepareContext& pc, const Ctx& c) {
  const auto& a = c.n.attr<FullyConnectedAttrs>();
  const Value& x = c.in(0);
  const Value& w = c.in(1);
  const Value& y = c.out();
  if (!w.is_constant()) return c.error("weights must be a constant");
  const bool has_bias = c.has(2);
  if (has_bias && !c.in(2).is_constant()) return c.error("bias must be a constant");
  k::FullyConnectedParams p;
  p.batch = static_cast<int>(x.shape[0]);
  p.in_features = static_cast<int>(x.shape[1]);
  p.out_features = static_cast<int>(w.shape[0]);
  const int64_t macs = int64_t{p.batch} * p.in_features * p.out_features;
  const ValueId xi = c.n.inputs[0], yi = c.n.outputs[0];
  if (x.dtype == DType::kF32) {
    if (w.dtype != DType::kF32 || y.dtype != DType::kF32 || (has_bias && c.in(2).dtype != DType::kF32)) {
      return c.error("float fully_connected needs f32 weights, bias and output");
    }
    const auto range = k::float_activation_range(fused(a.activation));
    const float* weights = w.data.data<float>();
    const float* bias = has_bias ? c.in(2).data.data<float>() : nullptr;
    if (pc.fast_kernels) {
      auto packed = k::pack_f32_fully_connected(static_cast<size_t>(p.in_features),
                                                static_cast<size_t>(p.out_features), weights, bias);
      if (!packed) return c.error(packed.status().message());
      auto shared = std::make_shared<k::F32GemmPackedB>(std::move(packed).value());
      auto kern = make(fmt::format("f32_fully_connected_fast ({})", shared->isa ? shared->isa : ""));
      kern->packed_bytes = static_cast<int64_t>(shared->data.size());
      const size_t batch = static_cast<size_t>(p.batch);
      kern->fn = [shared, batch, range, xi, yi](const RunContext& r) {
        k::f32_fully_connected_fast(batch, ptr<float>(r, xi), *shared, range.min, range.max,
                                    ptr<float>(r, yi), r.pool);
      };
      kern->macs = macs;
      return std::unique_ptr<OpKernel>(std::move(kern));
    }
    auto kern = make("f32_fully_connected__ref");
    kern->fn = [p, weights, bias, range, xi, yi](const RunContext& r) {
      k::f32_fully_connected__ref(p, ptr<float>(r, xi), weights, bias, range.min, range.max, ptr<float>(r, yi));
    };
    kern->macs = macs;
    return std::unique_ptr<OpKernel>(std::move(kern));
  }
  if (x.dtype == DType::kI8) {
    PCV_RETURN_IF_ERROR(check_per_tensor_i8(c, x, "input"));
    PCV_RETURN_IF_ERROR(check_per_tensor_i8(c, y, "output"));
    if (w.dtype != DType::kI8 || w.quant.empty()) return c.error("int8 fully_connected needs quantized i8 weights");
    if (w.quant.scale.size() != 1 && w.quant.scale.size() != static_cast<size_t>(p.out_features)) {
      return c.error("weight quantization must be per-tensor or per output channel");
    }
    const int32_t weights_zp = w.quant.zero_point.empty() ? 0 : w.quant.zero_point[0];
    for (int32_t zp : w.quant.zero_point) {
      if (zp != 0 && w.quant.per_channel()) return c.error("per-channel int8 weights must be symmetric (zero point 0)");
    }
    if (has_bias && c.in(2).dtype != DType::kI32) return c.error("int8 fully_connected needs an i32 bias");
    auto requant = channel_requant(x, w, y, p.out_features, a.activation);
    k::QuantFullyConnectedParams q;
    q.input_zero_point = per_tensor_zp(x);
    q.weights_zero_point = weights_zp;
    q.output_zero_point = per_tensor_zp(y);
    q.mode = requant->mode;
    q.act_min = requant->range.min;
    q.act_max = requant->range.max;
    const int8_t* weights = w.data.data<int8_t>();
    const int32_t* bias = has_bias ? c.in(2).data.data<int32_t>() : nullptr;
    if (pc.fast_kernels && q.mode == k::RequantMode::kFp32) {
      auto packed = k::pack_qs8_gemm_w(static_cast<size_t>(p.in_features), static_cast<size_t>(p.out_features),
                                       weights, weights_zp, bias, requant->scale.data(), q.input_zero_point,
                                       q.output_zero_point, q.act_min, q.act_max);
      if (!packed) return c.error(packed.status().message());
      auto shared = std::make_shared<k::Qs8GemmPackedW>(std::move(packed).value());
      auto kern = make(fmt::format("qs8_fully_connected_fast ({} {})", shared->ukernel.name, shared->isa));
      kern->scratch_bytes = k::qs8_gemm_scratch_bytes(*shared, false, pc.threads);
      kern->packed_bytes = static_cast<int64_t>(shared->data.size());
      const size_t batch = static_cast<size_t>(p.batch);
      const size_t in_f = static_cast<size_t>(p.in_features), out_f = static_cast<size_t>(p.out_features);
      kern->fn = [shared, batch, in_f, out_f, xi, yi](const RunContext& r) {
        k::qs8_gemm_packed(batch, ptr<int8_t>(r, xi), in_f, {}, *shared, ptr<int8_t>(r, yi), out_f, r.scratch,
                           r.pool);
      };
      kern->macs = macs;
      return std::unique_ptr<OpKernel>(std::move(kern));
    }
    auto kern = make(fmt::format("qs8_fully_connected{}__ref", requant_suffix(q.mode)));
    kern->fn = [p, q, requant, weights, bias, xi, yi](const RunContext& r) {
      k::QuantFullyConnectedParams qq = q;
      qq.requant = requant->fixed.data();
      qq.requant_scale = requant->scale.data();
      k::qs8_fully_connected__ref(p, qq, ptr<int8_t>(r, xi), weights, bias, ptr<int8_t>(r, yi));
    };
    kern->macs = macs;
    return std::unique_ptr<OpKernel>(std::move(kern));
  }
  return c.error(fmt::format("no kernel for input dtype {}", dtype_name(x.dtype)));
}

// ---- unary activations ----
Expected<std::unique_ptr<OpKernel>> unary(const Ctx& c) {
  const Value& x = c.in(0);
  const Value& y = c.out();
  const size_t n = static_cast<size_t>(num_elements(x.shape));
  const ValueId xi = c.n.inputs[0], yi = c.n.outputs[0];
  if (x.dtype == DType::kF32 && y.dtype == DType::kF32) {
    std::function<void(const float*, float*)> f;
    const char* name = "";
    switch (c.n.op) {
      case OpType::kRelu: f = [n](const float* i, float* o) { k::f32_relu__ref(n, i, o); }; name = "f32_relu__ref"; break;
      case OpType::kRelu6: f = [n](const float* i, float* o) { k::f32_relu6__ref(n, i, o); }; name = "f32_relu6__ref"; break;
      case OpType::kLeakyRelu: {
        const float alpha = c.n.attr<LeakyReluAttrs>().alpha;
        f = [n, alpha](const float* i, float* o) { k::f32_leaky_relu__ref(n, alpha, i, o); };
        name = "f32_leaky_relu__ref";
        break;
      }
      case OpType::kHardSwish: f = [n](const float* i, float* o) { k::f32_hard_swish__ref(n, i, o); }; name = "f32_hard_swish__ref"; break;
      case OpType::kSigmoid: f = [n](const float* i, float* o) { k::f32_sigmoid__ref(n, i, o); }; name = "f32_sigmoid__ref"; break;
      default: return c.error("not a unary op");
    }
    auto kern = make(name);
    kern->fn = [f, xi, yi](const RunContext& r) { f(ptr<float>(r, xi), ptr<float>(r, yi)); };
    return std::unique_ptr<OpKernel>(std::move(kern));
  }
  if (x.dtype == DType::kI8) {
    PCV_RETURN_IF_ERROR(check_per_tensor_i8(c, x, "input"));
    PCV_RETURN_IF_ERROR(check_per_tensor_i8(c, y, "output"));
    k::QuantUnaryParams q;
    q.input_scale = per_tensor_scale(x);
    q.input_zero_point = per_tensor_zp(x);
    q.output_scale = per_tensor_scale(y);
    q.output_zero_point = per_tensor_zp(y);
    std::function<void(const int8_t*, int8_t*)> f;
    const char* name = "";
    switch (c.n.op) {
      case OpType::kRelu: f = [n, q](const int8_t* i, int8_t* o) { k::qs8_relu__ref(n, q, i, o); }; name = "qs8_relu__ref"; break;
      case OpType::kRelu6: f = [n, q](const int8_t* i, int8_t* o) { k::qs8_relu6__ref(n, q, i, o); }; name = "qs8_relu6__ref"; break;
      case OpType::kLeakyRelu: {
        const float alpha = c.n.attr<LeakyReluAttrs>().alpha;
        f = [n, q, alpha](const int8_t* i, int8_t* o) { k::qs8_leaky_relu__ref(n, q, alpha, i, o); };
        name = "qs8_leaky_relu__ref";
        break;
      }
      case OpType::kHardSwish: f = [n, q](const int8_t* i, int8_t* o) { k::qs8_hard_swish__ref(n, q, i, o); }; name = "qs8_hard_swish__ref"; break;
      case OpType::kSigmoid: f = [n, q](const int8_t* i, int8_t* o) { k::qs8_sigmoid__ref(n, q, i, o); }; name = "qs8_sigmoid__ref"; break;
      default: return c.error("not a unary op");
    }
    if (c.n.op == OpType::kLeakyRelu || c.n.op == OpType::kHardSwish || c.n.op == OpType::kSigmoid) {
      // An int8 -> int8 function is a 256-entry table: run the reference once on every input
      // value here (identical results by construction), then only look up at run time.
      k::QuantUnaryParams qq = q;
      const auto op = c.n.op;
      const float alpha = op == OpType::kLeakyRelu ? c.n.attr<LeakyReluAttrs>().alpha : 0.f;
      int8_t all[256];
      for (int v = 0; v < 256; ++v) all[v] = static_cast<int8_t>(static_cast<uint8_t>(v));
      auto lut = std::make_shared<std::array<int8_t, 256>>();
      if (op == OpType::kLeakyRelu && requant_mode() == k::RequantMode::kFp32) {
        k::qs8_leaky_relu_xnn__ref(256, qq, alpha, all, lut->data());
        name = "qs8_leaky_relu_xnn__ref";
      } else if (op == OpType::kLeakyRelu) {
        k::qs8_leaky_relu__ref(256, qq, alpha, all, lut->data());
      }
      if (op == OpType::kHardSwish) k::qs8_hard_swish__ref(256, qq, all, lut->data());
      if (op == OpType::kSigmoid) k::qs8_sigmoid__ref(256, qq, all, lut->data());
      auto kern = make(fmt::format("{} (lut)", name));
      kern->fn = [lut, n, xi, yi](const RunContext& r) { k::qs8_lut__ref(n, lut->data(), ptr<int8_t>(r, xi), ptr<int8_t>(r, yi)); };
      return std::unique_ptr<OpKernel>(std::move(kern));
    }
    auto kern = make(name);
    kern->fn = [f, xi, yi](const RunContext& r) { f(ptr<int8_t>(r, xi), ptr<int8_t>(r, yi)); };
    return std::unique_ptr<OpKernel>(std::move(kern));
  }
  return c.error(fmt::format("no kernel for {} -> {}", dtype_name(x.dtype), dtype_name(y.dtype)));
}

// ---- add / mul ----
Expected<std::unique_ptr<OpKernel>> binary(const PrepareContext& pc, const Ctx& c) {
  const auto& a = c.n.attr<EltwiseAttrs>();
  const Value& x0 = c.in(0);
  const Value& x1 = c.in(1);
  const Value& y = c.out();
  if (x0.shape.size() > static_cast<size_t>(k::kMaxBroadcastRank) || x1.shape.size() > static_cast<size_t>(k::kMaxBroadcastRank)) {
    return c.error("rank above 5 is not supported");
  }
  std::vector<int> d0(x0.shape.begin(), x0.shape.end()), d1(x1.shape.begin(), x1.shape.end());
  if (d0.empty()) d0 = {1};
  if (d1.empty()) d1 = {1};
  k::BroadcastShape s;
  if (!k::make_broadcast_shape(d0.data(), static_cast<int>(d0.size()), d1.data(), static_cast<int>(d1.size()), &s)) {
    return c.error("shapes do not broadcast");
  }
  const bool is_add = c.n.op == OpType::kAdd;
  const ValueId ai = c.n.inputs[0], bi = c.n.inputs[1], yi = c.n.outputs[0];
  if (x0.dtype == DType::kF32 && x1.dtype == DType::kF32) {
    const auto range = k::float_activation_range(fused(a.activation));
    auto kern = make(is_add ? "f32_add__ref" : "f32_mul__ref");
    kern->fn = [s, range, is_add, ai, bi, yi](const RunContext& r) {
      if (is_add) k::f32_add__ref(s, ptr<float>(r, ai), ptr<float>(r, bi), range.min, range.max, ptr<float>(r, yi));
      else k::f32_mul__ref(s, ptr<float>(r, ai), ptr<float>(r, bi), range.min, range.max, ptr<float>(r, yi));
    };
    return std::unique_ptr<OpKernel>(std::move(kern));
  }
  if (x0.dtype == DType::kI8 && x1.dtype == DType::kI8) {
    PCV_RETURN_IF_ERROR(check_per_tensor_i8(c, x0, "input 0"));
    PCV_RETURN_IF_ERROR(check_per_tensor_i8(c, x1, "input 1"));
    PCV_RETURN_IF_ERROR(check_per_tensor_i8(c, y, "output"));
    const auto range = k::quant_activation_range(fused(a.activation), per_tensor_scale(y), per_tensor_zp(y));
    if (is_add && requant_mode() == k::RequantMode::kFp32) {
      const auto r = k::quant_activation_range_fp32(fused(a.activation), per_tensor_scale(y), per_tensor_zp(y));
      auto q = k::make_qs8_add_xnn_params(per_tensor_scale(x0), per_tensor_zp(x0), per_tensor_scale(x1),
                                          per_tensor_zp(x1), per_tensor_scale(y), per_tensor_zp(y), r.min, r.max);
      if (q.shift < 12 || q.shift > 30) return c.error("int8 add: input / output scale ratio outside [2^-10, 2^8)");
      if (pc.fast_kernels && x0.shape == x1.shape) {
        const size_t n = static_cast<size_t>(num_elements(x0.shape));
        auto kern = make("qs8_vadd_xnn");
        kern->fn = [n, q, ai, bi, yi](const RunContext& r) {
          k::qs8_vadd_xnn(n, q, ptr<int8_t>(r, ai), ptr<int8_t>(r, bi), ptr<int8_t>(r, yi));
        };
        return std::unique_ptr<OpKernel>(std::move(kern));
      }
      auto kern = make("qs8_add_xnn__ref");
      kern->fn = [s, q, ai, bi, yi](const RunContext& r) {
        k::qs8_add_xnn__ref(s, q, ptr<int8_t>(r, ai), ptr<int8_t>(r, bi), ptr<int8_t>(r, yi));
      };
      return std::unique_ptr<OpKernel>(std::move(kern));
    }
    if (is_add) {
      auto q = k::make_qs8_add_params(per_tensor_scale(x0), per_tensor_zp(x0), per_tensor_scale(x1), per_tensor_zp(x1),
                                      per_tensor_scale(y), per_tensor_zp(y), range.min, range.max);
      auto kern = make("qs8_add__ref");
      kern->fn = [s, q, ai, bi, yi](const RunContext& r) {
        k::qs8_add__ref(s, q, ptr<int8_t>(r, ai), ptr<int8_t>(r, bi), ptr<int8_t>(r, yi));
      };
      return std::unique_ptr<OpKernel>(std::move(kern));
    }
    auto q = k::make_qs8_mul_params(per_tensor_scale(x0), per_tensor_zp(x0), per_tensor_scale(x1), per_tensor_zp(x1),
                                    per_tensor_scale(y), per_tensor_zp(y), range.min, range.max);
    auto kern = make("qs8_mul__ref");
    kern->fn = [s, q, ai, bi, yi](const RunContext& r) {
      k::qs8_mul__ref(s, q, ptr<int8_t>(r, ai), ptr<int8_t>(r, bi), ptr<int8_t>(r, yi));
    };
    return std::unique_ptr<OpKernel>(std::move(kern));
  }
  return c.error(fmt::format("no kernel for {} and {}", dtype_name(x0.dtype), dtype_name(x1.dtype)));
}

// ---- concat ----
Expected<std::unique_ptr<OpKernel>> concat(const Ctx& c) {
  const auto& a = c.n.attr<ConcatAttrs>();
  const Value& y = c.out();
  const size_t rank = y.shape.size();
  const int64_t axis = a.axis < 0 ? a.axis + static_cast<int64_t>(rank) : a.axis;
  int64_t outer = 1, inner = 1;
  for (int64_t d = 0; d < axis; ++d) outer *= y.shape[static_cast<size_t>(d)];
  for (size_t d = static_cast<size_t>(axis) + 1; d < rank; ++d) inner *= y.shape[d];
  auto dims = std::make_shared<std::vector<int>>();
  for (size_t i = 0; i < c.n.inputs.size(); ++i) dims->push_back(static_cast<int>(c.in(i).shape[static_cast<size_t>(axis)]));
  const std::vector<ValueId> ins = c.n.inputs;
  const ValueId yi = c.n.outputs[0];
  if (a.activation != Activation::kNone) return c.error("fused activation on concat is not supported");
  if (y.dtype == DType::kF32) {
    for (size_t i = 0; i < ins.size(); ++i) {
      if (c.in(i).dtype != DType::kF32) return c.error("all inputs must be f32");
    }
    auto kern = make("f32_concat__ref");
    kern->fn = [dims, outer, inner, ins, yi](const RunContext& r) {
      const float* srcs[64];
      for (size_t i = 0; i < ins.size(); ++i) srcs[i] = ptr<float>(r, ins[i]);
      k::ConcatParams p;
      p.num_inputs = static_cast<int>(ins.size());
      p.axis_dims = dims->data();
      p.outer_size = static_cast<int>(outer);
      p.inner_size = static_cast<int>(inner);
      k::f32_concat__ref(p, srcs, ptr<float>(r, yi));
    };
    return std::unique_ptr<OpKernel>(std::move(kern));
  }
  if (y.dtype == DType::kI8) {
    PCV_RETURN_IF_ERROR(check_per_tensor_i8(c, y, "output"));
    auto scales = std::make_shared<std::vector<float>>();
    auto zps = std::make_shared<std::vector<int32_t>>();
    for (size_t i = 0; i < ins.size(); ++i) {
      PCV_RETURN_IF_ERROR(check_per_tensor_i8(c, c.in(i), "input"));
      scales->push_back(per_tensor_scale(c.in(i)));
      zps->push_back(per_tensor_zp(c.in(i)));
    }
    const float os = per_tensor_scale(y);
    const int32_t oz = per_tensor_zp(y);
    auto kern = make("qs8_concat__ref");
    kern->fn = [dims, outer, inner, ins, yi, scales, zps, os, oz](const RunContext& r) {
      const int8_t* srcs[64];
      for (size_t i = 0; i < ins.size(); ++i) srcs[i] = ptr<int8_t>(r, ins[i]);
      k::ConcatParams p;
      p.num_inputs = static_cast<int>(ins.size());
      p.axis_dims = dims->data();
      p.outer_size = static_cast<int>(outer);
      p.inner_size = static_cast<int>(inner);
      k::QuantConcatParams q;
      q.input_scales = scales->data();
      q.input_zero_points = zps->data();
      q.output_scale = os;
      q.output_zero_point = oz;
      k::qs8_concat__ref(p, q, srcs, ptr<int8_t>(r, yi));
    };
    return std::unique_ptr<OpKernel>(std::move(kern));
  }
  return c.error(fmt::format("no kernel for {}", dtype_name(y.dtype)));
}

// ---- pooling ----
Expected<std::unique_ptr<OpKernel>> pool(const PrepareContext& pc, const Ctx& c) {
  const auto& a = c.n.attr<Pool2dAttrs>();
  const Value& x = c.in(0);
  const Value& y = c.out();
  auto pad = resolve_padding(a.padding, static_cast<int>(x.shape[1]), static_cast<int>(x.shape[2]), a.kernel_h,
                             a.kernel_w, a.stride_h, a.stride_w, 1, 1, a.pad_top, a.pad_bottom, a.pad_left, a.pad_right);
  if (!pad) return c.error(pad.status().message());
  k::Pool2dParams p;
  p.batch = static_cast<int>(x.shape[0]);
  p.in_h = static_cast<int>(x.shape[1]);
  p.in_w = static_cast<int>(x.shape[2]);
  p.channels = static_cast<int>(x.shape[3]);
  p.out_h = pad->out_h;
  p.out_w = pad->out_w;
  p.kernel_h = a.kernel_h;
  p.kernel_w = a.kernel_w;
  p.stride_h = a.stride_h;
  p.stride_w = a.stride_w;
  p.pad_top = pad->pad_top;
  p.pad_left = pad->pad_left;
  const bool is_max = c.n.op == OpType::kMaxPool;
  const ValueId xi = c.n.inputs[0], yi = c.n.outputs[0];
  if (x.dtype == DType::kF32) {
    const auto range = k::float_activation_range(fused(a.activation));
    if (pc.fast_kernels) {
      auto kern = make(is_max ? "f32_max_pool2d__hwy" : "f32_average_pool2d__hwy");
      kern->fn = [p, range, is_max, xi, yi](const RunContext& r) {
        if (is_max) k::f32_max_pool2d__hwy(p, ptr<float>(r, xi), range.min, range.max, ptr<float>(r, yi), r.pool);
        else k::f32_average_pool2d__hwy(p, ptr<float>(r, xi), range.min, range.max, ptr<float>(r, yi), r.pool);
      };
      return std::unique_ptr<OpKernel>(std::move(kern));
    }
    auto kern = make(is_max ? "f32_max_pool2d__ref" : "f32_average_pool2d__ref");
    kern->fn = [p, range, is_max, xi, yi](const RunContext& r) {
      if (is_max) k::f32_max_pool2d__ref(p, ptr<float>(r, xi), range.min, range.max, ptr<float>(r, yi));
      else k::f32_average_pool2d__ref(p, ptr<float>(r, xi), range.min, range.max, ptr<float>(r, yi));
    };
    return std::unique_ptr<OpKernel>(std::move(kern));
  }
  if (x.dtype == DType::kI8) {
    PCV_RETURN_IF_ERROR(check_per_tensor_i8(c, x, "input"));
    PCV_RETURN_IF_ERROR(check_per_tensor_i8(c, y, "output"));
    if (x.quant != y.quant) return c.error("int8 pooling needs the same quantization on input and output");
    const auto range = k::quant_activation_range(fused(a.activation), per_tensor_scale(y), per_tensor_zp(y));
    const auto rounding = uint8_model(c.g) ? k::AvgRounding::kHalfUp : k::AvgRounding::kHalfAwayFromZero;
    auto kern = make(is_max ? "qs8_max_pool2d__ref"
                            : (rounding == k::AvgRounding::kHalfUp ? "qs8_average_pool2d_halfup__ref"
                                                                   : "qs8_average_pool2d__ref"));
    kern->fn = [p, range, is_max, rounding, xi, yi](const RunContext& r) {
      if (is_max) k::qs8_max_pool2d__ref(p, ptr<int8_t>(r, xi), range.min, range.max, ptr<int8_t>(r, yi));
      else k::qs8_average_pool2d__ref(p, ptr<int8_t>(r, xi), range.min, range.max, rounding, ptr<int8_t>(r, yi));
    };
    return std::unique_ptr<OpKernel>(std::move(kern));
  }
  return c.error(fmt::format("no kernel for {}", dtype_name(x.dtype)));
}

// ---- mean ----
Expected<std::unique_ptr<OpKernel>> mean(const PrepareContext& pc, const Ctx& c) {
  const auto& a = c.n.attr<MeanAttrs>();
  const Value& x = c.in(0);
  const Value& y = c.out();
  if (x.shape.size() > static_cast<size_t>(k::kMaxReduceRank)) return c.error("rank above 5");
  k::MeanParams p;
  p.rank = static_cast<int>(x.shape.size());
  for (int d = 0; d < p.rank; ++d) p.in_dims[d] = static_cast<int>(x.shape[static_cast<size_t>(d)]);
  for (int64_t ax : a.axes) p.reduce_axis[ax < 0 ? ax + p.rank : ax] = true;
  const ValueId xi = c.n.inputs[0], yi = c.n.outputs[0];
  if (x.dtype == DType::kF32) {
    if (pc.fast_kernels) {
      auto kern = make("f32_mean__hwy");
      kern->fn = [p, xi, yi](const RunContext& r) { k::f32_mean__hwy(p, ptr<float>(r, xi), ptr<float>(r, yi)); };
      return std::unique_ptr<OpKernel>(std::move(kern));
    }
    auto kern = make("f32_mean__ref");
    kern->fn = [p, xi, yi](const RunContext& r) { k::f32_mean__ref(p, ptr<float>(r, xi), ptr<float>(r, yi)); };
    return std::unique_ptr<OpKernel>(std::move(kern));
  }
  if (x.dtype == DType::kI8) {
    PCV_RETURN_IF_ERROR(check_per_tensor_i8(c, x, "input"));
    PCV_RETURN_IF_ERROR(check_per_tensor_i8(c, y, "output"));
    auto q = k::make_qs8_mean_params(per_tensor_scale(x), per_tensor_zp(x), per_tensor_scale(y), per_tensor_zp(y));
    q.mode = requant_mode();
    if (pc.fast_kernels) {
      auto kern = make(fmt::format("qs8_mean{}__hwy", requant_suffix(q.mode)));
      kern->fn = [p, q, xi, yi](const RunContext& r) { k::qs8_mean__hwy(p, q, ptr<int8_t>(r, xi), ptr<int8_t>(r, yi)); };
      return std::unique_ptr<OpKernel>(std::move(kern));
    }
    auto kern = make(fmt::format("qs8_mean{}__ref", requant_suffix(q.mode)));
    kern->fn = [p, q, xi, yi](const RunContext& r) { k::qs8_mean__ref(p, q, ptr<int8_t>(r, xi), ptr<int8_t>(r, yi)); };
    return std::unique_ptr<OpKernel>(std::move(kern));
  }
  return c.error(fmt::format("no kernel for {}", dtype_name(x.dtype)));
}

// ---- reshape / flatten / dropout: a copy (same bytes) ----
Expected<std::unique_ptr<OpKernel>> copy(const Ctx& c) {
  const Value& x = c.in(0);
  const Value& y = c.out();
  if (x.dtype != y.dtype) return c.error("input and output dtypes differ");
  if (is_quantized_dtype(x.dtype) && x.quant != y.quant) return c.error("a reshape cannot change quantization");
  const size_t bytes = static_cast<size_t>(num_elements(x.shape)) * dtype_size(x.dtype);
  const ValueId xi = c.n.inputs[0], yi = c.n.outputs[0];
  auto kern = make("copy");
  kern->fn = [bytes, xi, yi](const RunContext& r) {
    std::memcpy((*r.values)[static_cast<size_t>(yi)].raw(), (*r.values)[static_cast<size_t>(xi)].raw(), bytes);
  };
  return std::unique_ptr<OpKernel>(std::move(kern));
}

// ---- pad ----
Expected<std::unique_ptr<OpKernel>> pad(const Ctx& c) {
  const auto& a = c.n.attr<PadAttrs>();
  const Value& x = c.in(0);
  const Value& y = c.out();
  if (x.shape.size() > static_cast<size_t>(k::kMaxPadRank)) return c.error("rank above 5");
  k::PadParams p;
  p.rank = static_cast<int>(x.shape.size());
  for (int d = 0; d < p.rank; ++d) {
    p.in_dims[d] = static_cast<int>(x.shape[static_cast<size_t>(d)]);
    p.pad_before[d] = static_cast<int>(a.pads[2 * static_cast<size_t>(d)]);
    p.pad_after[d] = static_cast<int>(a.pads[2 * static_cast<size_t>(d) + 1]);
  }
  const ValueId xi = c.n.inputs[0], yi = c.n.outputs[0];
  if (x.dtype == DType::kF32) {
    const float value = a.value;
    auto kern = make("f32_pad__ref");
    kern->fn = [p, value, xi, yi](const RunContext& r) { k::f32_pad__ref(p, ptr<float>(r, xi), value, ptr<float>(r, yi)); };
    return std::unique_ptr<OpKernel>(std::move(kern));
  }
  if (x.dtype == DType::kI8) {
    PCV_RETURN_IF_ERROR(check_per_tensor_i8(c, x, "input"));
    if (x.quant != y.quant) return c.error("int8 pad needs the same quantization on input and output");
    const float qv = std::round(a.value / per_tensor_scale(x)) + static_cast<float>(per_tensor_zp(x));
    const auto value = static_cast<int8_t>(std::clamp(qv, -128.f, 127.f));
    auto kern = make("qs8_pad__ref");
    kern->fn = [p, value, xi, yi](const RunContext& r) { k::qs8_pad__ref(p, ptr<int8_t>(r, xi), value, ptr<int8_t>(r, yi)); };
    return std::unique_ptr<OpKernel>(std::move(kern));
  }
  return c.error(fmt::format("no kernel for {}", dtype_name(x.dtype)));
}

// ---- softmax ----
Expected<std::unique_ptr<OpKernel>> softmax(const Ctx& c) {
  const auto& a = c.n.attr<SoftmaxAttrs>();
  const Value& x = c.in(0);
  const Value& y = c.out();
  k::SoftmaxParams p;
  p.channels = static_cast<int>(x.shape.back());
  p.outer_size = p.channels ? static_cast<size_t>(num_elements(x.shape) / p.channels) : 0;
  p.beta = a.beta;
  const ValueId xi = c.n.inputs[0], yi = c.n.outputs[0];
  if (x.dtype == DType::kF32) {
    auto kern = make("f32_softmax__ref");
    kern->fn = [p, xi, yi](const RunContext& r) { k::f32_softmax__ref(p, ptr<float>(r, xi), ptr<float>(r, yi)); };
    return std::unique_ptr<OpKernel>(std::move(kern));
  }
  if (x.dtype == DType::kI8) {
    PCV_RETURN_IF_ERROR(check_per_tensor_i8(c, x, "input"));
    PCV_RETURN_IF_ERROR(check_per_tensor_i8(c, y, "output"));
    if (std::fabs(per_tensor_scale(y) - 1.f / 256.f) > 1e-9f || per_tensor_zp(y) != -128) {
      return c.error("int8 softmax output must have scale 1/256 and zero point -128");
    }
    k::QuantSoftmaxParams q;
    q.input_scale = per_tensor_scale(x) * a.beta;
    auto table = std::make_shared<std::array<float, 256>>();  // built once, here
    k::make_qs8_softmax_table(q.input_scale, 1.f, table->data());
    auto kern = make("qs8_softmax__ref");
    kern->fn = [p, q, table, xi, yi](const RunContext& r) {
      k::SoftmaxParams pp = p;
      pp.beta = 1.f;
      k::QuantSoftmaxParams qq = q;
      qq.table = table->data();
      k::qs8_softmax__ref(pp, qq, ptr<int8_t>(r, xi), ptr<int8_t>(r, yi));
    };
    return std::unique_ptr<OpKernel>(std::move(kern));
  }
  return c.error(fmt::format("no kernel for {}", dtype_name(x.dtype)));
}

// ---- batch_norm (inference) ----
Expected<std::unique_ptr<OpKernel>> batch_norm(const Ctx& c) {
  const Value& x = c.in(0);
  if (x.dtype != DType::kF32) return c.error("batch_norm runs in f32 only (fold it before quantizing)");
  for (size_t i = 1; i < 5; ++i) {
    if (!c.in(i).is_constant() || c.in(i).dtype != DType::kF32) return c.error("parameters must be f32 constants");
  }
  k::BatchNormParams p;
  p.channels = static_cast<int>(x.shape.back());
  p.outer_size = static_cast<size_t>(num_elements(x.shape) / std::max<int64_t>(1, x.shape.back()));
  p.epsilon = c.n.attr<BatchNormAttrs>().epsilon;
  const float* gamma = c.in(1).data.data<float>();
  const float* beta = c.in(2).data.data<float>();
  const float* mu = c.in(3).data.data<float>();
  const float* var = c.in(4).data.data<float>();
  const ValueId xi = c.n.inputs[0], yi = c.n.outputs[0];
  auto kern = make("f32_batch_norm__ref");
  kern->fn = [p, gamma, beta, mu, var, xi, yi](const RunContext& r) {
    k::f32_batch_norm__ref(p, ptr<float>(r, xi), mu, var, gamma, beta, ptr<float>(r, yi));
  };
  return std::unique_ptr<OpKernel>(std::move(kern));
}

// ---- quantize / dequantize ----
Expected<std::unique_ptr<OpKernel>> quantize(const PrepareContext& pc, const Ctx& c) {
  const Value& x = c.in(0);
  const Value& y = c.out();
  const size_t n = static_cast<size_t>(num_elements(x.shape));
  const ValueId xi = c.n.inputs[0], yi = c.n.outputs[0];
  if (y.quant.scale.size() != 1) return c.error("output needs per-tensor quantization");
  const float os = per_tensor_scale(y);
  const int32_t oz = per_tensor_zp(y);
  if (x.dtype == DType::kF32 && y.dtype == DType::kI8 && pc.fast_kernels) {
    auto kern = make("qs8_quantize__hwy");
    kern->fn = [n, os, oz, xi, yi](const RunContext& r) {
      const float* x = ptr<float>(r, xi);
      int8_t* q = ptr<int8_t>(r, yi);
      // A 224x224x3 input is 0.05 ms of one thread: worth splitting (elementwise, same bytes).
      constexpr size_t kSplitElems = 64 * 1024;
      if (r.pool == nullptr || r.pool->threads() <= 1 || n < kSplitElems) {
        k::qs8_quantize__hwy(n, x, os, oz, q);
        return;
      }
      const size_t threads = static_cast<size_t>(r.pool->threads());
      const size_t tile = (n / threads + 63) / 64 * 64;
      r.pool->parallel_for_tiles(n, tile, [&](size_t b, size_t e) { k::qs8_quantize__hwy(e - b, x + b, os, oz, q + b); });
    };
    return std::unique_ptr<OpKernel>(std::move(kern));
  }
  if (x.dtype == DType::kF32 && y.dtype == DType::kI8) {
    auto kern = make("qs8_quantize__ref");
    kern->fn = [n, os, oz, xi, yi](const RunContext& r) { k::qs8_quantize__ref(n, ptr<float>(r, xi), os, oz, ptr<int8_t>(r, yi)); };
    return std::unique_ptr<OpKernel>(std::move(kern));
  }
  if (x.dtype == DType::kF32 && y.dtype == DType::kU8) {
    auto kern = make("qu8_quantize__ref");
    kern->fn = [n, os, oz, xi, yi](const RunContext& r) {
      const float* in = ptr<float>(r, xi);
      uint8_t* out = ptr<uint8_t>(r, yi);
      for (size_t i = 0; i < n; ++i) {
        const float q = std::round(in[i] / os) + static_cast<float>(oz);
        out[i] = static_cast<uint8_t>(std::clamp(q, 0.f, 255.f));
      }
    };
    return std::unique_ptr<OpKernel>(std::move(kern));
  }
  if (is_quantized_dtype(x.dtype) && is_quantized_dtype(y.dtype)) {
    if (x.quant.scale.size() != 1) return c.error("input needs per-tensor quantization");
    // Requantize between i8/u8 with TFLite's fixed-point multiplier: out = zp_o + M * (q - zp_i).
    const auto m = k::quantize_multiplier(static_cast<double>(per_tensor_scale(x)) / os);
    const int32_t iz = per_tensor_zp(x);
    const bool in_u8 = x.dtype == DType::kU8, out_u8 = y.dtype == DType::kU8;
    const bool identity = std::fabs(per_tensor_scale(x) - os) == 0.f;
    if (identity && in_u8 != out_u8 && oz - iz == (in_u8 ? -128 : 128)) {
      // u8 <-> i8 with the same scale and zero points 128 apart (a uint8 model's edges): the
      // requantization is exact and equals flipping the top bit.
      auto kern = make(fmt::format("{}_to_{}_flip", dtype_name(x.dtype), dtype_name(y.dtype)));
      kern->fn = [n, xi, yi](const RunContext& r) {
        const auto* in = static_cast<const uint8_t*>((*r.values)[static_cast<size_t>(xi)].raw());
        auto* out = static_cast<uint8_t*>((*r.values)[static_cast<size_t>(yi)].raw());
        size_t i = 0;
        for (; i + 8 <= n; i += 8) {
          uint64_t w;
          std::memcpy(&w, in + i, 8);
          w ^= 0x8080808080808080ull;
          std::memcpy(out + i, &w, 8);
        }
        for (; i < n; ++i) out[i] = static_cast<uint8_t>(in[i] ^ 0x80);
      };
      return std::unique_ptr<OpKernel>(std::move(kern));
    }
    auto kern = make(fmt::format("{}_to_{}_requantize", dtype_name(x.dtype), dtype_name(y.dtype)));
    kern->fn = [n, m, iz, oz, in_u8, out_u8, identity, xi, yi](const RunContext& r) {
      const void* in = (*r.values)[static_cast<size_t>(xi)].raw();
      void* out = (*r.values)[static_cast<size_t>(yi)].raw();
      for (size_t i = 0; i < n; ++i) {
        const int32_t q = in_u8 ? static_cast<const uint8_t*>(in)[i] : static_cast<const int8_t*>(in)[i];
        const int32_t v = oz + (identity ? q - iz : k::multiply_by_quantized_multiplier(q - iz, m));
        if (out_u8) static_cast<uint8_t*>(out)[i] = static_cast<uint8_t>(std::clamp(v, 0, 255));
        else static_cast<int8_t*>(out)[i] = static_cast<int8_t>(std::clamp(v, -128, 127));
      }
    };
    return std::unique_ptr<OpKernel>(std::move(kern));
  }
  return c.error(fmt::format("no kernel for {} -> {}", dtype_name(x.dtype), dtype_name(y.dtype)));
}

Expected<std::unique_ptr<OpKernel>> dequantize(const Ctx& c) {
  const Value& x = c.in(0);
  const size_t n = static_cast<size_t>(num_elements(x.shape));
  const ValueId xi = c.n.inputs[0], yi = c.n.outputs[0];
  if (x.dtype == DType::kF16) {
    auto kern = make("f16_dequantize__ref");
    kern->fn = [n, xi, yi](const RunContext& r) { k::f16_dequantize__ref(n, ptr<uint16_t>(r, xi), ptr<float>(r, yi)); };
    return std::unique_ptr<OpKernel>(std::move(kern));
  }
  if (!is_quantized_dtype(x.dtype) || x.quant.empty()) return c.error("input must be f16, or i8/u8 with quantization");
  if (x.quant.per_channel()) {
    // Per-channel (weights): out[i] = scale[c] * (q[i] - zp[c]) with c the index along axis.
    const Shape shape = x.shape;
    const int axis = x.quant.axis;
    int64_t inner = 1;
    for (size_t d = static_cast<size_t>(axis) + 1; d < shape.size(); ++d) inner *= shape[d];
    const int64_t channels = shape[static_cast<size_t>(axis)];
    const QuantParams q = x.quant;
    const bool u8 = x.dtype == DType::kU8;
    auto kern = make("per_channel_dequantize__ref");
    kern->fn = [n, inner, channels, q, u8, xi, yi](const RunContext& r) {
      const void* in = (*r.values)[static_cast<size_t>(xi)].raw();
      float* out = ptr<float>(r, yi);
      for (size_t i = 0; i < n; ++i) {
        const auto ch = static_cast<size_t>((static_cast<int64_t>(i) / inner) % channels);
        const int32_t v = u8 ? static_cast<const uint8_t*>(in)[i] : static_cast<const int8_t*>(in)[i];
        out[i] = q.scale[ch] * static_cast<float>(v - q.zero_point[ch]);
      }
    };
    return std::unique_ptr<OpKernel>(std::move(kern));
  }
  const float s = per_tensor_scale(x);
  const int32_t z = per_tensor_zp(x);
  if (x.dtype == DType::kI8) {
    auto kern = make("qs8_dequantize__ref");
    kern->fn = [n, s, z, xi, yi](const RunContext& r) { k::qs8_dequantize__ref(n, ptr<int8_t>(r, xi), s, z, ptr<float>(r, yi)); };
    return std::unique_ptr<OpKernel>(std::move(kern));
  }
  auto kern = make("qu8_dequantize__ref");
  kern->fn = [n, s, z, xi, yi](const RunContext& r) { k::qu8_dequantize__ref(n, ptr<uint8_t>(r, xi), s, z, ptr<float>(r, yi)); };
  return std::unique_ptr<OpKernel>(std::move(kern));
}

}  // namespace

Expected<std::unique_ptr<OpKernel>> make_pointwise_depthwise_kernel(const PrepareContext& pc, const Node& pointwise,
                                                                    const Node& depthwise) {
  const Ctx pcx{*pc.graph, pointwise}, dcx{*pc.graph, depthwise};
  if (!pc.fast_kernels) return dcx.error("a fused pointwise + depthwise conv needs the fast f32 kernels");
  for (const Ctx* c : {&pcx, &dcx}) {
    const bool f32 = c->in(0).dtype == DType::kF32 && c->in(1).dtype == DType::kF32 && c->out().dtype == DType::kF32 &&
                     (!c->has(2) || c->in(2).dtype == DType::kF32);
    if (c->n.op != OpType::kConv2d || c->n.inputs.size() > 3 || !f32) {
      return c->error("a fused pointwise + depthwise conv takes f32 conv2d nodes without a fused add");
    }
  }
  if (depthwise.inputs[0] != pointwise.outputs[0]) return dcx.error("its input is not the pointwise conv's output");
  auto pp = conv2d_params(pcx);
  if (!pp) return pp.status();
  auto dp = conv2d_params(dcx);
  if (!dp) return dp.status();
  auto bias_of = [](const Ctx& c) { return c.has(2) ? c.in(2).data.data<float>() : nullptr; };
  auto pw = k::prepare_f32_conv2d_fast(*pp, pcx.in(1).data.data<float>(), bias_of(pcx));
  if (!pw) return pcx.error(pw.status().message());
  auto dw = k::prepare_f32_conv2d_fast(*dp, dcx.in(1).data.data<float>(), bias_of(dcx));
  if (!dw) return dcx.error(dw.status().message());
  auto joined = k::fuse_f32_pointwise_depthwise(std::move(pw).value(), std::move(dw).value());
  if (!joined) return dcx.error(joined.status().message());
  auto shared = std::make_shared<k::F32PointwiseDepthwise>(std::move(joined).value());
  auto kern = make(fmt::format("f32_pointwise_depthwise ({} + {} {}, with {})", shared->pointwise.ukernel_name,
                               shared->depthwise.ukernel_name, shared->depthwise.isa, pointwise.name));
  kern->scratch_bytes = shared->scratch_bytes(pc.threads);
  kern->packed_bytes = static_cast<int64_t>(shared->pointwise.group_gemm[0].data.size() +
                                            shared->depthwise.dw_weights.size());
  kern->macs = num_elements(pcx.out().shape) * pp->in_c + num_elements(dcx.out().shape) * dp->kernel_h * dp->kernel_w;
  const auto pw_range = k::float_activation_range(fused(pointwise.attr<Conv2dAttrs>().activation));
  const auto dw_range = k::float_activation_range(fused(depthwise.attr<Conv2dAttrs>().activation));
  const ValueId xi = pointwise.inputs[0], yi = depthwise.outputs[0];
  kern->fn = [shared, pw_range, dw_range, xi, yi](const RunContext& r) {
    k::f32_pointwise_depthwise(*shared, ptr<float>(r, xi), pw_range.min, pw_range.max, dw_range.min, dw_range.max,
                               ptr<float>(r, yi), static_cast<float*>(r.scratch), r.pool);
  };
  return std::unique_ptr<OpKernel>(std::move(kern));
}

Expected<std::unique_ptr<OpKernel>> make_conv_max_pool_kernel(const PrepareContext& pc, const Node& conv,
                                                              const Node& pool) {
  const Ctx cc{*pc.graph, conv}, pcx{*pc.graph, pool};
  if (!pc.fast_kernels) return pcx.error("a fused conv + max pool needs the fast f32 kernels");
  const bool f32 = cc.in(0).dtype == DType::kF32 && cc.in(1).dtype == DType::kF32 && cc.out().dtype == DType::kF32 &&
                   (!cc.has(2) || cc.in(2).dtype == DType::kF32) && pcx.out().dtype == DType::kF32;
  if (conv.op != OpType::kConv2d || conv.inputs.size() > 3 || !f32) {
    return cc.error("a fused conv + max pool takes an f32 conv2d without a fused add");
  }
  if (pool.op != OpType::kMaxPool || pool.inputs[0] != conv.outputs[0]) {
    return pcx.error("a fused conv + max pool needs a max pool of the conv's output");
  }
  const auto& a = pool.attr<Pool2dAttrs>();
  const bool no_pad = a.padding == Padding::kValid ||
                      (a.padding == Padding::kExplicit && a.pad_top == 0 && a.pad_bottom == 0 && a.pad_left == 0 &&
                       a.pad_right == 0);
  if (a.kernel_h != 2 || a.kernel_w != 2 || a.stride_h != 2 || a.stride_w != 2 || !no_pad ||
      a.activation != Activation::kNone) {
    return pcx.error("a fused conv + max pool needs a 2x2 stride-2 pool without padding or activation");
  }
  auto p = conv2d_params(cc);
  if (!p) return p.status();
  const Shape pooled{p->batch, p->out_h / 2, p->out_w / 2, p->out_c};
  if (pcx.out().shape != pooled) {
    return pcx.error(fmt::format("output {} is not the conv's output {}x{} pooled 2x2", shape_to_string(pcx.out().shape),
                                 p->out_h, p->out_w));
  }
  auto packed = k::prepare_f32_conv2d_fast(*p, cc.in(1).data.data<float>(),
                                           cc.has(2) ? cc.in(2).data.data<float>() : nullptr);
  if (!packed) return cc.error(packed.status().message());
  if (!k::accepts_max_pool_2x2(*packed)) return cc.error("only Winograd and direct-rows convs take a fused max pool");
  auto shared = std::make_shared<k::F32Conv2dPacked>(std::move(packed).value());
  auto kern = make(fmt::format("f32_conv2d_fast_max_pool_2x2 ({} {}, with {})", shared->ukernel_name, shared->isa,
                               conv.name));
  kern->scratch_bytes = shared->scratch_bytes(pc.threads, true);
  kern->packed_bytes = static_cast<int64_t>(shared->winograd_bias.size());
  for (auto& gm : shared->winograd_u) kern->packed_bytes += static_cast<int64_t>(gm.data.size());
  for (auto& gm : shared->group_gemm) kern->packed_bytes += static_cast<int64_t>(gm.data.size());
  kern->macs = num_elements(cc.out().shape) * p->kernel_h * p->kernel_w * p->in_c;
  const auto range = k::float_activation_range(fused(conv.attr<Conv2dAttrs>().activation));
  const ValueId xi = conv.inputs[0], yi = pool.outputs[0];
  kern->fn = [shared, range, xi, yi](const RunContext& r) {
    k::f32_conv2d_fast_max_pool_2x2(*shared, ptr<float>(r, xi), range.min, range.max, ptr<float>(r, yi),
                                    static_cast<float*>(r.scratch), r.pool);
  };
  return std::unique_ptr<OpKernel>(std::move(kern));
}

Expected<std::unique_ptr<OpKernel>> make_fused_kernel(const PrepareContext& pc, const Node& producer,
                                                      const Node& consumer) {
  if (consumer.op == OpType::kMaxPool) return make_conv_max_pool_kernel(pc, producer, consumer);
  return make_pointwise_depthwise_kernel(pc, producer, consumer);
}

Expected<std::unique_ptr<OpKernel>> make_op_kernel(const PrepareContext& pc, const Node& node) {
  static_assert(kNumOps == 21, "add the new op to make_op_kernel");
  Ctx c{*pc.graph, node};
  switch (node.op) {
    case OpType::kConv2d: return conv2d(pc, c);
    case OpType::kFullyConnected: return fully_connected(pc, c);
    case OpType::kBatchNorm: return batch_norm(c);
    case OpType::kRelu:
    case OpType::kRelu6:
    case OpType::kLeakyRelu:
    case OpType::kHardSwish:
    case OpType::kSigmoid: return unary(c);
    case OpType::kAdd:
    case OpType::kMul: return binary(pc, c);
    case OpType::kConcat: return concat(c);
    case OpType::kMaxPool:
    case OpType::kAveragePool: return pool(pc, c);
    case OpType::kMean: return mean(pc, c);
    case OpType::kReshape:
    case OpType::kFlatten:
    case OpType::kDropout: return copy(c);
    case OpType::kPad: return pad(c);
    case OpType::kSoftmax: return softmax(c);
    case OpType::kQuantize: return quantize(pc, c);
    case OpType::kDequantize: return dequantize(c);
  }
  return c.error("unknown op");
}

}  // namespace pcv::runtime
