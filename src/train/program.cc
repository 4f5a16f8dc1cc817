// Program: forward with saved activations, backward through the gradient table (program.h).
#include "train/program.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <limits>

#include "base/aligned.h"
#include "base/thread_pool.h"
#include "kernels/conv/conv.h"
#include "kernels/conv/conv_backward.h"
#include "kernels/conv/conv_fast.h"
#include "kernels/conv/pointwise_depthwise.h"
#include "kernels/fully_connected/fully_connected.h"
#include "kernels/fully_connected/fully_connected_backward.h"
#include "kernels/gemm/gemm.h"
#include "kernels/gemm/gemm_backward.h"
#include "train/layers.h"

namespace pcv::train {

using ir::Activation;
using ir::OpType;
using ir::ValueId;

namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();

void activation_range(Activation a, float* lo, float* hi) {
  *lo = -kInf;
  *hi = kInf;
  if (a == Activation::kRelu) *lo = 0.f;
  if (a == Activation::kRelu6) {
    *lo = 0.f;
    *hi = 6.f;
  }
}

void clamp_inplace(size_t n, float lo, float hi, float* y, ThreadPool* pool) {
  if (lo == -kInf && hi == kInf) return;
  train::clamp_forward_inplace(n, lo, hi, y, pool);
}

float* as_f32(AlignedBuffer& b) { return reinterpret_cast<float*>(b.data()); }

// GEMM-sized work below this many multiply-adds runs on the caller's thread (see layers.cc).
constexpr int64_t kParallelMinMacs = int64_t{1} << 23;
ThreadPool* pool_for(ThreadPool* pool, int64_t macs) { return macs >= kParallelMinMacs ? pool : nullptr; }

// A conv is split over threads when it is heavy in multiply-adds or in memory: a depthwise
// conv does 9 per output, so MobileNetV2's 14x14x576 stride-2 one (8.1M, 3.6M input floats per
// batch of 32) ran on one thread: 1.8 ms forward, 7.2 ms backward of a 2-thread step.
ThreadPool* conv_pool(ThreadPool* pool, const kernels::Conv2dParams& p) {
  const int64_t macs =
      static_cast<int64_t>(p.batch) * p.out_h * p.out_w * p.out_c * p.kernel_h * p.kernel_w * (p.in_c / p.groups);
  const int64_t elems =
      static_cast<int64_t>(p.batch) * (int64_t{p.in_h} * p.in_w * p.in_c + int64_t{p.out_h} * p.out_w * p.out_c);
  return macs >= kParallelMinMacs || elems >= static_cast<int64_t>(kParallelMinElems) ? pool : nullptr;
}

}  // namespace

struct Slot {
  bool batched = false;
  bool constant = false;
  size_t per_sample = 0;  // elements per sample (batched) or all elements (constants)
  AlignedBuffer data;
  float* grad = nullptr;  // current gradient (pool buffer or parameter gradient)
  int grad_buffer = -1;   // pool index, -1 when not from the pool
  // The pool buffer holds no gradient yet and is not zeroed: the first writer either assigns
  // every element (grad_for_write) or zeroes it before adding (grad_for, zero_if_pending).
  bool grad_unset = false;
  // The gradient already passed the clamp fused into this value's producer (a max pool
  // masked it at the argmax: max_pool_backward_assign): the producer skips its mask pass.
  bool grad_premasked = false;
  bool needs_grad = false;
  int param = -1;         // index in parameters
  ValueId alias_of = ir::kNoValue;  // shares this value's buffer (a fused activation's output)
};

struct NodeState {
  bool skip = false;  // the final softmax under loss_head
  bool fused = false; // a relu/relu6 folded into its producer's clamp (output aliases its input)
  float act_lo = -kInf, act_hi = kInf;
  // conv2d
  kernels::Conv2dParams conv;
  kernels::F32Conv2dPacked conv_packed;
  uint64_t packed_version = ~uint64_t{0};
  int packed_batch = 0;
  kernels::F32Conv2dBackwardPlan conv_bwd;
  // Backward-data as a forward conv (kernels::conv2d_backward_data_as_conv; 3x3: Winograd):
  // the flipped filter, packed once per weight version and batch.
  bool dx_as_conv = false;
  kernels::F32Conv2dPacked dx_packed;
  uint64_t dx_packed_version = ~uint64_t{0};
  int dx_packed_batch = 0;
  // fully_connected
  kernels::FullyConnectedParams fc;
  kernels::F32FullyConnectedBackwardScratch fc_bwd;
  // pools
  kernels::Pool2dParams pool;
  AlignedBuffer argmax;  // int32, (batch, out_h, out_w, C)
  // max pool: its backward also applies the clamp fused into the producer of its input
  // (mask_lo, mask_hi), which then skips its own mask pass (Slot::grad_premasked).
  bool masks_producer = false;
  float mask_lo = -kInf, mask_hi = kInf;
  // batch norm
  std::vector<float> bn_mean, bn_invstd, bn_var;
  bool bn_train = false;
  // Batch norm whose input is the output of a 1x1 conv (node bn_into) read by nothing else:
  // its train-mode backward leaves dx to that conv's backward (kernels::F32BnOutputGrad),
  // with the factors here, and keeps its output gradient until then (bn_deferred).
  int bn_into = -1;
  bool bn_deferred = false;
  BnInputGradFactors bn_factors;
  // conv2d: the batch norm node whose input gradient this conv's backward computes, or -1.
  int bn_from = -1;
  // Batch norm whose output is read only by a depthwise conv (node bn_apply_into, through its
  // fused clamp): in train mode its forward computes the statistics and scale/shift only
  // (bn_output_deferred), and that conv computes the output from the batch norm's input, a
  // band of rows at a time, forward (kernels::f32_affine_depthwise) and backward (bn_input).
  int bn_apply_into = -1;
  bool bn_output_deferred = false;
  std::vector<float> bn_scale, bn_shift;
  kernels::BnFusedClamp bn_apply;  // points into bn_scale, bn_shift
  // The sums of this batch norm's backward, taken by that conv's backward where it computes
  // their gradient (kernels::F32BnGradSums; bn_sums_ready until this backward uses them).
  std::vector<double> bn_sum_dy, bn_sum_dyx;
  bool bn_sums_ready = false;
  // conv2d: the batch norm node whose output this conv computes, or -1.
  int bn_apply_from = -1;
  // conv2d (1x1 or depthwise): the batch norm node that reads its output
  // (ProgramOptions::fuse_bn_stats), or -1. In a train-mode forward the conv takes that batch
  // norm's statistics partials as it writes the output (kernels::f32_conv1x1_moments,
  // f32_affine_depthwise_moments) into the batch norm's bn_moments and sets bn_moments_ready,
  // which the batch norm's forward then uses instead of its own pass.
  int bn_stats_into = -1;
  std::vector<float> bn_moments;
  bool bn_moments_ready = false;
  bool bn_moments_used = false;  // the last train-mode forward used them
  // dropout
  AlignedBuffer mask;
  bool dropout_train = false;
};

struct Program::Impl {
  ProgramOptions opt;
  ThreadPool* pool = nullptr;
  ir::Graph graph;
  std::vector<Slot> slots;
  std::vector<NodeState> states;
  std::vector<Parameter> params;
  std::vector<AlignedBuffer> param_grads;
  std::vector<ValueId> outputs;
  ValueId input = ir::kNoValue;
  int n = 0;  // active batch of the last forward
  uint64_t version = 0;
  uint64_t seed = 1;
  Mode last_mode = Mode::kEval;
  AlignedBuffer scratch;
  // gradient buffer pool
  std::vector<AlignedBuffer> gbufs;
  std::vector<size_t> gbuf_elems;
  std::vector<bool> gbuf_used;
  std::vector<NodeTime> times;  // ProgramOptions::profile

  float* data(ValueId v) {
    while (slots[v].alias_of != ir::kNoValue) v = slots[v].alias_of;
    return as_f32(slots[v].data);
  }
  const ir::Shape& shape(ValueId v) const { return graph.value(v).shape; }
  size_t elems(ValueId v) const {
    const Slot& s = slots[v];
    return s.batched ? s.per_sample * static_cast<size_t>(n) : s.per_sample;
  }
  // Shape with the active batch.
  std::vector<int64_t> dims(ValueId v) const {
    std::vector<int64_t> d = shape(v);
    if (slots[v].batched) d[0] = n;
    return d;
  }

  float* scratch_floats(size_t elems) {
    if (scratch.size() < elems * sizeof(float)) scratch.resize(elems * sizeof(float));
    return as_f32(scratch);
  }

  float* acquire_grad(ValueId v) {
    Slot& s = slots[v];
    if (s.grad != nullptr) return s.grad;
    const size_t cap = s.batched ? s.per_sample * static_cast<size_t>(opt.batch) : s.per_sample;
    int best = -1;
    for (size_t i = 0; i < gbufs.size(); ++i) {
      if (!gbuf_used[i] && gbuf_elems[i] >= cap &&
          (best < 0 || gbuf_elems[i] < gbuf_elems[static_cast<size_t>(best)])) {
        best = static_cast<int>(i);
      }
    }
    if (best < 0) {
      gbufs.emplace_back(cap * sizeof(float));
      gbuf_elems.push_back(cap);
      gbuf_used.push_back(false);
      best = static_cast<int>(gbufs.size() - 1);
    }
    gbuf_used[static_cast<size_t>(best)] = true;
    s.grad_buffer = best;
    s.grad = as_f32(gbufs[static_cast<size_t>(best)]);
    s.grad_unset = true;
    s.grad_premasked = false;
    return s.grad;
  }
  // Zeroes a gradient nothing was written to yet (before it is added to or read).
  void zero_if_unset(ValueId v) {
    Slot& s = slots[v];
    if (s.grad_unset) {
      std::memset(s.grad, 0, elems(v) * sizeof(float));
      s.grad_unset = false;
    }
  }
  void release_grad(ValueId v) {
    Slot& s = slots[v];
    if (s.grad_buffer >= 0) {
      gbuf_used[static_cast<size_t>(s.grad_buffer)] = false;
      s.grad_buffer = -1;
      s.grad = nullptr;
      s.grad_unset = false;
      s.grad_premasked = false;
    }
  }
  // Gradient buffer of an input of a node, or nullptr when it needs none: the backward ADDS
  // its contribution.
  float* grad_for(ValueId v) {
    if (v == ir::kNoValue || !slots[v].needs_grad) return nullptr;
    if (slots[v].param >= 0) return slots[v].grad;
    float* g = acquire_grad(v);
    zero_if_unset(v);
    return g;
  }
  // The same for a backward that can assign every element instead of adding: *assign is true
  // when nothing was written to the buffer yet (then the caller MUST write all of it), false
  // when it must add (another consumer's contribution is there, or a parameter gradient).
  float* grad_for_write(ValueId v, bool* assign) {
    *assign = false;
    if (v == ir::kNoValue || !slots[v].needs_grad) return nullptr;
    if (slots[v].param >= 0) return slots[v].grad;
    float* g = acquire_grad(v);
    *assign = slots[v].grad_unset;
    slots[v].grad_unset = false;
    return g;
  }

  Status build();
  void propagate_needs_grad();
  void forward_node(size_t i, Mode mode, uint64_t step);
  void backward_node(size_t i);
  kernels::F32BnOutputGrad deferred_bn_grad(int bn);
  // A conv that computes its input from a batch norm's (bn_apply_from) whose last forward left
  // it to the conv: that batch norm's scale, shift and clamp, else nullptr; and its input.
  const kernels::BnFusedClamp* bn_input(const NodeState& conv) const {
    if (conv.bn_apply_from < 0) return nullptr;
    const NodeState& bs = states[static_cast<size_t>(conv.bn_apply_from)];
    return bs.bn_output_deferred ? &bs.bn_apply : nullptr;
  }
  const float* bn_input_x(const NodeState& conv) {
    return data(graph.nodes[static_cast<size_t>(conv.bn_apply_from)].inputs[0]);
  }
};

Program::Program(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Program::~Program() = default;

Status Program::Impl::build() {
  // Inputs: exactly one (the image batch).
  PCV_ENSURE(graph.inputs.size() == 1, StatusCode::kUnsupported,
             "training needs a graph with one input, this one has {}", graph.inputs.size());
  input = graph.inputs[0];
  ir::Value& in = graph.value(input);
  PCV_ENSURE(!in.shape.empty(), StatusCode::kUnsupported, "input '{}' has no shape", in.name);
  const int64_t old_batch = in.shape[0];
  in.shape[0] = opt.batch;
  for (ir::Node& node : graph.nodes) {
    if (node.op == OpType::kReshape) {
      auto& a = node.attr<ir::ReshapeAttrs>();
      if (!a.shape.empty() && a.shape[0] == old_batch) a.shape[0] = -1;
    }
  }
  PCV_RETURN_IF_ERROR(ir::infer_shapes(graph).with_context("training graph"));

  slots.resize(graph.values.size());
  for (size_t v = 0; v < graph.values.size(); ++v) {
    const ir::Value& val = graph.values[v];
    Slot& s = slots[v];
    if (val.is_constant()) {
      PCV_ENSURE(val.data.dtype() == ir::DType::kF32, StatusCode::kUnsupported,
                 "constant '{}' is {}: training needs float32 (dequantize the model first)",
                 val.name, ir::dtype_name(val.data.dtype()));
      s.constant = true;
      s.per_sample = static_cast<size_t>(val.data.num_elements());
      s.data.resize(s.per_sample * sizeof(float));
      std::memcpy(s.data.data(), val.data.raw(), s.per_sample * sizeof(float));
      if (val.trainable) {
        s.param = static_cast<int>(params.size());
        Parameter p;
        p.value = static_cast<ValueId>(v);
        p.name = val.name;
        p.size = s.per_sample;
        p.decay = val.data.shape().size() >= 2;
        params.push_back(p);
      }
    }
  }
  slots[input].batched = true;
  for (const ir::Node& node : graph.nodes) {
    bool batched = false;
    for (ValueId v : node.inputs) {
      if (v != ir::kNoValue) batched = batched || slots[v].batched;
    }
    for (ValueId v : node.outputs) slots[v].batched = batched;
  }
  // Outputs, and the loss head.
  outputs = graph.outputs;
  states.resize(graph.nodes.size());
  if (opt.profile) {
    times.resize(graph.nodes.size());
    for (size_t i = 0; i < graph.nodes.size(); ++i) {
      times[i].name = graph.value(graph.nodes[i].outputs[0]).name;
      times[i].op = ir::op_name(graph.nodes[i].op);
    }
  }
  if (opt.loss_head && !outputs.empty()) {
    const int prod = graph.producer(outputs[0]);
    if (prod >= 0 && graph.nodes[static_cast<size_t>(prod)].op == OpType::kSoftmax) {
      states[static_cast<size_t>(prod)].skip = true;
      outputs[0] = graph.nodes[static_cast<size_t>(prod)].inputs[0];
    }
  }

  // Activation fusion: relu/relu6 whose input comes from a conv2d, fully_connected, batch_norm
  // or add (without an activation of its own) and has no other reader becomes that producer's
  // output clamp; the relu's output shares the producer's buffer. Saves one full activation
  // pass forward and one backward per fused pair (conv -> relu in simple_cnn, bn -> relu6 in
  // mobilenet_v2): the backward masks the gradient in place (clamp_backward_inplace).
  std::vector<Activation> fused_act(graph.nodes.size(), Activation::kNone);
  // Readers of each value (graph outputs count as two: never fused away).
  std::vector<int> readers(graph.values.size(), 0);
  for (const ir::Node& node : graph.nodes) {
    for (ValueId v : node.inputs) {
      if (v != ir::kNoValue) ++readers[static_cast<size_t>(v)];
    }
  }
  for (ValueId v : graph.outputs) readers[static_cast<size_t>(v)] += 2;
  for (ValueId v : outputs) readers[static_cast<size_t>(v)] += 2;
  {
    for (size_t i = 0; i < graph.nodes.size(); ++i) {
      const ir::Node& node = graph.nodes[i];
      if (node.op != OpType::kRelu && node.op != OpType::kRelu6) continue;
      const ValueId v = node.inputs[0];
      const int prod = graph.producer(v);
      if (prod < 0 || readers[static_cast<size_t>(v)] != 1 || !slots[v].batched) continue;
      const ir::Node& pn = graph.nodes[static_cast<size_t>(prod)];
      bool plain = false;
      if (pn.op == OpType::kConv2d) plain = pn.attr<ir::Conv2dAttrs>().activation == Activation::kNone;
      if (pn.op == OpType::kFullyConnected) plain = pn.attr<ir::FullyConnectedAttrs>().activation == Activation::kNone;
      if (pn.op == OpType::kAdd) plain = pn.attr<ir::EltwiseAttrs>().activation == Activation::kNone;
      if (pn.op == OpType::kBatchNorm) plain = true;
      if (!plain) continue;
      fused_act[static_cast<size_t>(prod)] = node.op == OpType::kRelu ? Activation::kRelu : Activation::kRelu6;
      states[i].fused = true;
      slots[node.outputs[0]].alias_of = v;
    }
  }

  for (size_t v = 0; v < graph.values.size(); ++v) {
    const ir::Value& val = graph.values[v];
    Slot& s = slots[v];
    if (s.constant) continue;
    PCV_ENSURE(val.dtype == ir::DType::kF32, StatusCode::kUnsupported,
               "value '{}' is {}: training needs float32 (dequantize the model first)", val.name,
               ir::dtype_name(val.dtype));
    if (!s.batched) continue;
    PCV_ENSURE(!val.shape.empty() && val.shape[0] == opt.batch, StatusCode::kUnsupported,
               "value '{}' {} does not keep the batch as its first dimension", val.name,
               ir::shape_to_string(val.shape));
    s.per_sample = static_cast<size_t>(ir::num_elements(val.shape) / opt.batch);
    if (s.alias_of != ir::kNoValue) continue;
    PCV_ENSURE(s.data.resize(s.per_sample * static_cast<size_t>(opt.batch) * sizeof(float)),
               StatusCode::kOutOfMemory, "activation '{}': out of memory", val.name);
  }
  param_grads.resize(params.size());
  for (size_t i = 0; i < params.size(); ++i) {
    param_grads[i].resize(params[i].size * sizeof(float));
    params[i].data = data(params[i].value);
    params[i].grad = as_f32(param_grads[i]);
    slots[params[i].value].grad = params[i].grad;
  }

  // Per-node preparation: kernel params and checks.
  for (size_t i = 0; i < graph.nodes.size(); ++i) {
    const ir::Node& node = graph.nodes[i];
    NodeState& st = states[i];
    const std::string& name = node.name;
    for (ValueId v : node.inputs) {
      if (v != ir::kNoValue && !slots[v].batched && !slots[v].constant) {
        return unsupported(fmt::format("node '{}': input '{}' is neither batched nor constant",
                                       name, graph.value(v).name));
      }
    }
    switch (node.op) {
      case OpType::kConv2d: {
        const auto& a = node.attr<ir::Conv2dAttrs>();
        const ir::Shape& x = shape(node.inputs[0]);
        const ir::Shape& w = shape(node.inputs[1]);
        const ir::Shape& y = shape(node.outputs[0]);
        PCV_ENSURE(slots[node.inputs[1]].constant, StatusCode::kUnsupported,
                   "conv2d '{}': the filter must be a constant", name);
        PCV_ASSIGN_OR_RETURN(ir::Padding2d pad,
                             ir::resolve_padding(a.padding, static_cast<int>(x[1]), static_cast<int>(x[2]),
                                                 static_cast<int>(w[1]), static_cast<int>(w[2]), a.stride_h,
                                                 a.stride_w, a.dilation_h, a.dilation_w, a.pad_top,
                                                 a.pad_bottom, a.pad_left, a.pad_right));
        kernels::Conv2dParams& p = st.conv;
        p.batch = opt.batch;
        p.in_h = static_cast<int>(x[1]); p.in_w = static_cast<int>(x[2]); p.in_c = static_cast<int>(x[3]);
        p.out_h = static_cast<int>(y[1]); p.out_w = static_cast<int>(y[2]); p.out_c = static_cast<int>(y[3]);
        p.kernel_h = static_cast<int>(w[1]); p.kernel_w = static_cast<int>(w[2]);
        p.stride_h = a.stride_h; p.stride_w = a.stride_w;
        p.dilation_h = a.dilation_h; p.dilation_w = a.dilation_w;
        p.pad_top = pad.pad_top; p.pad_left = pad.pad_left;
        p.groups = a.groups;
        activation_range(a.activation, &st.act_lo, &st.act_hi);
        PCV_ASSIGN_OR_RETURN(st.conv_bwd, kernels::prepare_f32_conv2d_backward_fast(p));
        kernels::Conv2dParams dx_params;
        st.dx_as_conv = kernels::conv2d_backward_data_as_conv(p, &dx_params);
        break;
      }
      case OpType::kFullyConnected: {
        const auto& a = node.attr<ir::FullyConnectedAttrs>();
        const ir::Shape& w = shape(node.inputs[1]);
        PCV_ENSURE(slots[node.inputs[1]].constant, StatusCode::kUnsupported,
                   "fully_connected '{}': the weights must be a constant", name);
        PCV_ENSURE(slots[node.inputs[0]].per_sample == static_cast<size_t>(w[1]),
                   StatusCode::kUnsupported, "fully_connected '{}': input is not (N, {})", name, w[1]);
        st.fc.batch = opt.batch;
        st.fc.in_features = static_cast<int>(w[1]);
        st.fc.out_features = static_cast<int>(w[0]);
        activation_range(a.activation, &st.act_lo, &st.act_hi);
        break;
      }
      case OpType::kMaxPool:
      case OpType::kAveragePool: {
        const auto& a = node.attr<ir::Pool2dAttrs>();
        const ir::Shape& x = shape(node.inputs[0]);
        const ir::Shape& y = shape(node.outputs[0]);
        PCV_ASSIGN_OR_RETURN(ir::Padding2d pad,
                             ir::resolve_padding(a.padding, static_cast<int>(x[1]), static_cast<int>(x[2]),
                                                 a.kernel_h, a.kernel_w, a.stride_h, a.stride_w, 1, 1,
                                                 a.pad_top, a.pad_bottom, a.pad_left, a.pad_right));
        kernels::Pool2dParams& p = st.pool;
        p.batch = opt.batch;
        p.in_h = static_cast<int>(x[1]); p.in_w = static_cast<int>(x[2]); p.channels = static_cast<int>(x[3]);
        p.out_h = static_cast<int>(y[1]); p.out_w = static_cast<int>(y[2]);
        p.kernel_h = a.kernel_h; p.kernel_w = a.kernel_w;
        p.stride_h = a.stride_h; p.stride_w = a.stride_w;
        p.pad_top = pad.pad_top; p.pad_left = pad.pad_left;
        activation_range(a.activation, &st.act_lo, &st.act_hi);
        if (node.op == OpType::kMaxPool) st.argmax.resize(ir::num_elements(y) * sizeof(int32_t));
        break;
      }
      case OpType::kBatchNorm: {
        const int64_t c = shape(node.inputs[0]).back();
        for (int k = 1; k < 5; ++k) {
          PCV_ENSURE(slots[node.inputs[static_cast<size_t>(k)]].constant &&
                         slots[node.inputs[static_cast<size_t>(k)]].per_sample == static_cast<size_t>(c),
                     StatusCode::kUnsupported, "batch_norm '{}': parameters must be constants of {} channels",
                     name, c);
        }
        st.bn_mean.resize(static_cast<size_t>(c));
        st.bn_invstd.resize(static_cast<size_t>(c));
        st.bn_var.resize(static_cast<size_t>(c));
        break;
      }
      case OpType::kAdd:
      case OpType::kMul:
        activation_range(node.attr<ir::EltwiseAttrs>().activation, &st.act_lo, &st.act_hi);
        PCV_ENSURE(shape(node.inputs[0]).size() <= 5 && shape(node.inputs[1]).size() <= 5,
                   StatusCode::kUnsupported, "'{}': rank above 5", name);
        break;
      case OpType::kConcat: {
        const auto& a = node.attr<ir::ConcatAttrs>();
        const int rank = static_cast<int>(shape(node.outputs[0]).size());
        const int axis = a.axis < 0 ? a.axis + rank : a.axis;
        PCV_ENSURE(axis > 0 && axis < rank, StatusCode::kUnsupported,
                   "concat '{}': axis {} (the batch axis cannot be concatenated)", name, a.axis);
        activation_range(a.activation, &st.act_lo, &st.act_hi);
        break;
      }
      case OpType::kMean:
      case OpType::kPad:
        PCV_ENSURE(shape(node.inputs[0]).size() <= 5, StatusCode::kUnsupported, "'{}': rank above 5", name);
        if (node.op == OpType::kPad) {
          const auto& a = node.attr<ir::PadAttrs>();
          PCV_ENSURE(a.pads.size() >= 2 && a.pads[0] == 0 && a.pads[1] == 0, StatusCode::kUnsupported,
                     "pad '{}': padding the batch axis", name);
        } else {
          for (int64_t ax : node.attr<ir::MeanAttrs>().axes) {
            PCV_ENSURE(ax != 0 && ax != -static_cast<int64_t>(shape(node.inputs[0]).size()),
                       StatusCode::kUnsupported, "mean '{}': reducing the batch axis", name);
          }
        }
        break;
      case OpType::kDropout:
        st.mask.resize(slots[node.inputs[0]].per_sample * static_cast<size_t>(opt.batch) * sizeof(float));
        break;
      case OpType::kRelu: case OpType::kRelu6: case OpType::kLeakyRelu: case OpType::kHardSwish:
      case OpType::kSigmoid: case OpType::kReshape: case OpType::kFlatten: case OpType::kSoftmax:
        break;
      case OpType::kQuantize:
      case OpType::kDequantize:
        return unsupported(fmt::format("node '{}' ({}): dequantize the model before training",
                                       name, ir::op_name(node.op)));
    }
    if (fused_act[i] != Activation::kNone) activation_range(fused_act[i], &st.act_lo, &st.act_hi);
  }

  // Max pools that tile their input and read, as its only reader, the clamped output of a
  // conv, fully connected or add (e.g. conv -> relu -> max pool): the pool's backward passes
  // the gradient through that clamp at the argmax (the only input it reaches), so the
  // producer's backward skips a full read-modify pass over its output gradient.
  for (size_t i = 0; i < graph.nodes.size(); ++i) {
    const ir::Node& node = graph.nodes[i];
    NodeState& st = states[i];
    if (node.op != OpType::kMaxPool || st.act_lo != -kInf || st.act_hi != kInf ||
        !max_pool_tiles_input(st.pool)) {
      continue;
    }
    ValueId v = node.inputs[0];
    if (readers[static_cast<size_t>(v)] != 1) continue;
    while (slots[v].alias_of != ir::kNoValue) {  // a fused relu's output: the producer's buffer
      v = slots[v].alias_of;
      if (readers[static_cast<size_t>(v)] != 1) break;
    }
    const int prod = graph.producer(v);
    if (prod < 0 || readers[static_cast<size_t>(v)] != 1) continue;
    const ir::Node& pn = graph.nodes[static_cast<size_t>(prod)];
    const NodeState& ps = states[static_cast<size_t>(prod)];
    if (pn.op != OpType::kConv2d && pn.op != OpType::kFullyConnected && pn.op != OpType::kAdd) continue;
    if (ps.act_lo == -kInf && ps.act_hi == kInf) continue;
    st.masks_producer = true;
    st.mask_lo = ps.act_lo;
    st.mask_hi = ps.act_hi;
  }

  // Batch norms that read, as its only reader, the output of a 1x1 stride-1 conv without an
  // activation: the conv's backward computes the batch norm's input gradient a chunk at a time
  // where its GEMMs read it, instead of the batch norm writing it to memory for the conv to
  // read back (see kernels::F32BnOutputGrad). The same bits either way. After a depthwise conv
  // the same fusion (an image, or a band of rows ahead into a ring, at a time in its backward,
  // bit-identical too) measured no faster: the batch norm's pass shrank by as much as the
  // depthwise backward grew (MobileNetV2 at batch 32, 2 threads: batch norm 113 -> 86 ms,
  // depthwise 76 -> 105 ms per step).
  if (opt.fast_kernels && opt.fuse_bn_backward) {
    for (size_t i = 0; i < graph.nodes.size(); ++i) {
      const ir::Node& node = graph.nodes[i];
      if (node.op != OpType::kBatchNorm) continue;
      const ValueId v = node.inputs[0];
      const int prod = graph.producer(v);
      if (prod < 0 || readers[static_cast<size_t>(v)] != 1 || !slots[v].batched ||
          slots[v].alias_of != ir::kNoValue) {
        continue;
      }
      NodeState& ps = states[static_cast<size_t>(prod)];
      if (graph.nodes[static_cast<size_t>(prod)].op != OpType::kConv2d || !ps.conv_bwd.direct_1x1 ||
          ps.act_lo != -kInf || ps.act_hi != kInf) {
        continue;
      }
      PCV_ASSIGN_OR_RETURN(ps.conv_bwd, kernels::prepare_f32_conv2d_backward_fast(ps.conv, /*bn_output_grad=*/true));
      ps.bn_from = static_cast<int>(i);
      states[i].bn_into = prod;
    }
  }

  // Batch norms whose output (through a fused relu/relu6) only a depthwise conv reads: the conv
  // computes it from the batch norm's input a band of rows at a time, in its forward and in its
  // filter gradient, so that in train mode the batch norm's forward only takes the statistics
  // instead of writing its output for the conv to read back (two passes over each such tensor;
  // see kernels::f32_affine_depthwise). Its backward takes the batch norm's sums where it
  // computes their gradient, so the batch norm's backward makes no pass of its own over them
  // (kernels::F32BnGradSums). The same bits either way.
  if (opt.fast_kernels && opt.fuse_bn_apply) {
    std::vector<int> reader(graph.values.size(), -1);  // the last node that reads each value
    for (size_t i = 0; i < graph.nodes.size(); ++i) {
      for (ValueId v : graph.nodes[i].inputs) {
        if (v != ir::kNoValue) reader[static_cast<size_t>(v)] = static_cast<int>(i);
      }
    }
    for (size_t i = 0; i < graph.nodes.size(); ++i) {
      if (graph.nodes[i].op != OpType::kBatchNorm) continue;
      ValueId v = graph.nodes[i].outputs[0];
      if (readers[static_cast<size_t>(v)] != 1 || !slots[v].batched) continue;
      int r = reader[static_cast<size_t>(v)];
      if (states[static_cast<size_t>(r)].fused) {  // the relu whose clamp the batch norm applies
        v = graph.nodes[static_cast<size_t>(r)].outputs[0];
        if (readers[static_cast<size_t>(v)] != 1) continue;
        r = reader[static_cast<size_t>(v)];
      }
      const ir::Node& cn = graph.nodes[static_cast<size_t>(r)];
      NodeState& cs = states[static_cast<size_t>(r)];
      if (cn.op != OpType::kConv2d || cn.inputs[0] != v) continue;
      const kernels::Conv2dParams& cp = cs.conv;
      const bool depthwise = cp.groups == cp.in_c && cp.out_c == cp.in_c;
      // A 1x1 conv (the kGemm1x1 path) only where the tensor is large (fuse_bn_apply_1x1_min_bytes,
      // by default kStreamOutputBytes: the batch norm streams such an output to memory): it
      // computes chunks of rows, one GEMM each, per thread, and smaller tensors are in cache.
      const bool pointwise = cs.conv_bwd.direct_1x1 && cp.groups == 1 &&
                             static_cast<size_t>(cp.batch) * cp.in_h * cp.in_w * cp.in_c * sizeof(float) >=
                                 opt.fuse_bn_apply_1x1_min_bytes;
      if (!depthwise && !pointwise) continue;
      PCV_ASSIGN_OR_RETURN(kernels::F32Conv2dBackwardPlan plan,
                           kernels::prepare_f32_conv2d_backward_fast(cp, cs.bn_from >= 0, /*bn_input=*/true));
      if (!plan.bn_input) continue;
      cs.conv_bwd = std::move(plan);
      cs.bn_apply_from = static_cast<int>(i);
      states[i].bn_apply_into = r;
      states[i].bn_scale.resize(states[i].bn_mean.size());
      states[i].bn_shift.resize(states[i].bn_mean.size());
      states[i].bn_sum_dy.resize(states[i].bn_mean.size());
      states[i].bn_sum_dyx.resize(states[i].bn_mean.size());
    }
  }
  // 1x1 and depthwise convs whose output a batch norm reads: the conv takes the batch norm's
  // statistics as it writes its output, so that the batch norm's forward makes no pass over the
  // tensor for them (kernels::f32_conv1x1_moments: from the GEMM's registers;
  // f32_affine_depthwise_moments: each output row while it is in cache, where the conv computes
  // its input from a batch norm's and the batch is a multiple of 8).
  if (opt.fast_kernels && opt.fuse_bn_stats) {
    static_assert(kernels::kBnMomentsSlices == kReduceSlices, "the conv must cut the rows as the batch norm does");
    for (size_t i = 0; i < graph.nodes.size(); ++i) {
      if (graph.nodes[i].op != OpType::kBatchNorm) continue;
      const ValueId v = graph.nodes[i].inputs[0];
      const int prod = graph.producer(v);
      if (prod < 0 || !slots[v].batched || slots[v].alias_of != ir::kNoValue) continue;
      NodeState& ps = states[static_cast<size_t>(prod)];
      const kernels::Conv2dParams& cp = ps.conv;
      const bool pointwise = ps.conv_bwd.direct_1x1 && cp.groups == 1;
      const bool depthwise = cp.groups == cp.in_c && cp.out_c == cp.in_c && cp.groups > 1;
      if (graph.nodes[static_cast<size_t>(prod)].op != OpType::kConv2d || (!pointwise && !depthwise)) continue;
      ps.bn_stats_into = static_cast<int>(i);
    }
  }
  propagate_needs_grad();
  return Status::ok();
}

void Program::Impl::propagate_needs_grad() {
  for (Slot& s : slots) s.needs_grad = false;
  for (const Parameter& p : params) slots[p.value].needs_grad = !p.frozen;
  slots[input].needs_grad = opt.input_grad;
  for (const ir::Node& node : graph.nodes) {
    bool any = false;
    for (ValueId v : node.inputs) {
      if (v != ir::kNoValue) any = any || slots[v].needs_grad;
    }
    for (ValueId v : node.outputs) slots[v].needs_grad = any;
  }
}

// -------------------------------------------------------------------------------------------
// forward

void Program::Impl::forward_node(size_t i, Mode mode, uint64_t step) {
  const ir::Node& node = graph.nodes[i];
  NodeState& st = states[i];
  if (st.skip || st.fused) return;  // fused: the producer already clamped into the shared buffer
  const ValueId out = node.outputs[0];
  float* y = data(out);
  const float* x = data(node.inputs[0]);
  const size_t n_out = elems(out);
  switch (node.op) {
    case OpType::kConv2d: {  // (N, H, W, C) -> (N, OH, OW, OC)
      const float* w = data(node.inputs[1]);
      const float* b = node.inputs.size() > 2 && node.inputs[2] != ir::kNoValue ? data(node.inputs[2]) : nullptr;
      kernels::Conv2dParams p = st.conv;
      p.batch = n;
      if (!opt.fast_kernels) {
        kernels::f32_conv2d__ref(p, x, w, b, st.act_lo, st.act_hi, y);
        break;
      }
      if (st.packed_version != version || st.packed_batch != n) {
        auto packed = kernels::prepare_f32_conv2d_fast(p, w, b);
        st.conv_packed = std::move(packed.value());  // params validated at create
        st.packed_version = version;
        st.packed_batch = n;
      }
      ThreadPool* cpool = conv_pool(pool, p);
      const int threads = cpool != nullptr ? cpool->threads() : 1;
      // The statistics of the batch norm that reads the output (bn_stats_into), as it is written.
      if (mode == Mode::kTrain && st.bn_stats_into >= 0 && n_out * sizeof(float) >= opt.fuse_bn_stats_min_bytes) {
        const kernels::BnFusedClamp* bn = bn_input(st);
        const bool dw = st.conv_packed.path == kernels::F32Conv2dPacked::Path::kDepthwise && bn != nullptr &&
                        n % kReduceSlices == 0;
        if (dw || st.conv_packed.path == kernels::F32Conv2dPacked::Path::kGemm1x1) {
          NodeState& bs = states[static_cast<size_t>(st.bn_stats_into)];
          bs.bn_moments.resize(static_cast<size_t>(kReduceSlices) * 2 * static_cast<size_t>(p.out_c));
          const size_t bytes =
              dw ? kernels::f32_affine_depthwise_moments_scratch_bytes(st.conv_packed, threads)
                 : kernels::f32_conv1x1_moments_scratch_bytes(st.conv_packed, bn != nullptr, threads);
          float* scratch_ptr = scratch_floats(bytes / sizeof(float) + 16);
          if (dw) {
            kernels::f32_affine_depthwise_moments(st.conv_packed, bn_input_x(st), *bn, st.act_lo, st.act_hi, y,
                                                  bs.bn_moments.data(), scratch_ptr, cpool);
          } else {
            kernels::f32_conv1x1_moments(st.conv_packed, bn != nullptr ? bn_input_x(st) : x, bn, st.act_lo,
                                         st.act_hi, y, bs.bn_moments.data(), scratch_ptr, cpool);
          }
          bs.bn_moments_ready = true;
          break;
        }
      }
      if (const kernels::BnFusedClamp* bn = bn_input(st)) {
        const bool dw = st.conv_packed.path == kernels::F32Conv2dPacked::Path::kDepthwise;  // else kGemm1x1
        const size_t bytes = dw ? kernels::f32_affine_depthwise_scratch_bytes(st.conv_packed, threads)
                                : kernels::f32_affine_conv1x1_scratch_bytes(st.conv_packed, threads);
        float* scratch_ptr = scratch_floats(bytes / sizeof(float) + 16);
        if (dw) {
          kernels::f32_affine_depthwise(st.conv_packed, bn_input_x(st), *bn, st.act_lo, st.act_hi, y, scratch_ptr,
                                        cpool);
        } else {
          kernels::f32_affine_conv1x1(st.conv_packed, bn_input_x(st), *bn, st.act_lo, st.act_hi, y, scratch_ptr,
                                      cpool);
        }
        break;
      }
      float* scratch_ptr = scratch_floats(st.conv_packed.scratch_bytes(threads) / sizeof(float) + 16);
      kernels::f32_conv2d_fast(st.conv_packed, x, st.act_lo, st.act_hi, y, scratch_ptr, cpool);
      break;
    }
    case OpType::kFullyConnected: {  // (N, K) -> (N, O)
      const float* w = data(node.inputs[1]);
      const float* b = node.inputs.size() > 2 && node.inputs[2] != ir::kNoValue ? data(node.inputs[2]) : nullptr;
      kernels::FullyConnectedParams p = st.fc;
      p.batch = n;
      if (!opt.fast_kernels) {
        kernels::f32_fully_connected__ref(p, x, w, b, st.act_lo, st.act_hi, y);
        break;
      }
      // W read in place, not packed: training changes it every step, and a pack would read and
      // write all of it once more (simple_cnn's dense1: 37.7 MB).
      kernels::f32_fully_connected_forward_unpacked(p, x, w, b, y, &st.fc_bwd,
                                                    pool_for(pool, int64_t{n} * p.in_features * p.out_features));
      clamp_inplace(n_out, st.act_lo, st.act_hi, y, pool);
      break;
    }
    case OpType::kBatchNorm: {  // (rows, C)
      const size_t c = st.bn_mean.size();
      const size_t rows = n_out / c;
      const float* gamma = data(node.inputs[1]);
      const float* beta = data(node.inputs[2]);
      float* rmean = data(node.inputs[3]);
      float* rvar = data(node.inputs[4]);
      const auto& a = node.attr<ir::BatchNormAttrs>();
      st.bn_train = mode == Mode::kTrain;
      // Train mode with bn_apply_into: the statistics only, the output is the conv's.
      st.bn_output_deferred = st.bn_train && st.bn_apply_into >= 0;
      // The statistics partials its producer took in this forward (bn_stats_into), if any.
      st.bn_moments_used = st.bn_train && st.bn_moments_ready;
      st.bn_moments_ready = false;
      if (st.bn_train) {
        batch_norm_forward_train(rows, static_cast<int>(c), x, gamma, beta, a.epsilon,
                                 st.bn_output_deferred ? nullptr : y, st.bn_mean.data(), st.bn_invstd.data(),
                                 st.bn_var.data(), pool, st.act_lo, st.act_hi,
                                 st.bn_moments_used ? st.bn_moments.data() : nullptr);
        if (st.bn_output_deferred) {
          batch_norm_scale_shift(c, gamma, beta, st.bn_mean.data(), st.bn_invstd.data(), st.bn_scale.data(),
                                 st.bn_shift.data());
          st.bn_apply = {st.bn_scale.data(), st.bn_shift.data(), st.act_lo, st.act_hi};
        }
        batch_norm_update_running(static_cast<int>(c), rows, a.momentum, st.bn_mean.data(), st.bn_var.data(),
                                  rmean, rvar);
        // The running statistics changed: a later eval forward must see them, which it does
        // (eval reads them directly); nothing is cached from them.
      } else {
        std::copy(rmean, rmean + c, st.bn_mean.begin());
        for (size_t k = 0; k < c; ++k) st.bn_invstd[k] = 1.f / std::sqrt(rvar[k] + a.epsilon);
        batch_norm_forward_eval(rows, static_cast<int>(c), x, gamma, beta, st.bn_mean.data(),
                                st.bn_invstd.data(), y, pool, st.act_lo, st.act_hi);
      }
      break;
    }
    case OpType::kRelu: relu_forward(n_out, x, y, pool); break;
    case OpType::kRelu6: relu6_forward(n_out, x, y, pool); break;
    case OpType::kLeakyRelu: leaky_relu_forward(n_out, node.attr<ir::LeakyReluAttrs>().alpha, x, y, pool); break;
    case OpType::kHardSwish: hard_swish_forward(n_out, x, y, pool); break;
    case OpType::kSigmoid: sigmoid_forward(n_out, x, y, pool); break;
    case OpType::kAdd:
    case OpType::kMul: {
      const auto da = dims(node.inputs[0]), db = dims(node.inputs[1]);
      int ia[5], ib[5];
      for (size_t k = 0; k < da.size(); ++k) ia[k] = static_cast<int>(da[k]);
      for (size_t k = 0; k < db.size(); ++k) ib[k] = static_cast<int>(db[k]);
      kernels::BroadcastShape s;
      kernels::make_broadcast_shape(ia, static_cast<int>(da.size()), ib, static_cast<int>(db.size()), &s);
      if (node.op == OpType::kAdd) {
        add_forward(s, x, data(node.inputs[1]), y, pool);
      } else {
        mul_forward(s, x, data(node.inputs[1]), y, pool);
      }
      clamp_inplace(n_out, st.act_lo, st.act_hi, y, pool);
      break;
    }
    case OpType::kConcat: {
      const auto& a = node.attr<ir::ConcatAttrs>();
      const auto d = dims(out);
      const int rank = static_cast<int>(d.size());
      const int axis = a.axis < 0 ? a.axis + rank : a.axis;
      size_t outer = 1, inner = 1;
      for (int k = 0; k < axis; ++k) outer *= static_cast<size_t>(d[static_cast<size_t>(k)]);
      for (int k = axis + 1; k < rank; ++k) inner *= static_cast<size_t>(d[static_cast<size_t>(k)]);
      std::vector<int64_t> sizes;
      std::vector<const float*> xs;
      for (ValueId v : node.inputs) {
        sizes.push_back(shape(v)[static_cast<size_t>(axis)]);
        xs.push_back(data(v));
      }
      concat_forward(outer, inner, sizes, xs, y);
      clamp_inplace(n_out, st.act_lo, st.act_hi, y, pool);
      break;
    }
    case OpType::kMaxPool: {
      kernels::Pool2dParams p = st.pool;
      p.batch = n;
      max_pool_forward(p, x, y, reinterpret_cast<int32_t*>(st.argmax.data()), pool);
      clamp_inplace(n_out, st.act_lo, st.act_hi, y, pool);
      break;
    }
    case OpType::kAveragePool: {
      kernels::Pool2dParams p = st.pool;
      p.batch = n;
      average_pool_forward(p, x, y, pool);
      clamp_inplace(n_out, st.act_lo, st.act_hi, y, pool);
      break;
    }
    case OpType::kMean: {
      const auto d = dims(node.inputs[0]);
      bool reduce[5] = {};
      for (int64_t ax : node.attr<ir::MeanAttrs>().axes) {
        reduce[ax < 0 ? ax + static_cast<int64_t>(d.size()) : ax] = true;
      }
      mean_forward(static_cast<int>(d.size()), d.data(), reduce, x, y);
      break;
    }
    case OpType::kReshape:
    case OpType::kFlatten:
      std::memcpy(y, x, n_out * sizeof(float));
      break;
    case OpType::kPad: {
      const auto& a = node.attr<ir::PadAttrs>();
      const auto d = dims(node.inputs[0]);
      int64_t before[5], after[5];
      for (size_t k = 0; k < d.size(); ++k) {
        before[k] = a.pads[2 * k];
        after[k] = a.pads[2 * k + 1];
      }
      pad_forward(static_cast<int>(d.size()), d.data(), before, after, a.value, x, y);
      break;
    }
    case OpType::kSoftmax: {
      const int c = static_cast<int>(shape(out).back());
      softmax_forward(n_out / static_cast<size_t>(c), c, node.attr<ir::SoftmaxAttrs>().beta, x, y);
      break;
    }
    case OpType::kDropout: {
      st.dropout_train = mode == Mode::kTrain;
      if (st.dropout_train) {
        dropout_forward_train(n_out, node.attr<ir::DropoutAttrs>().rate, seed, step * 1024 + i, x, y,
                              as_f32(st.mask));
      } else {
        std::memcpy(y, x, n_out * sizeof(float));
      }
      break;
    }
    case OpType::kQuantize:
    case OpType::kDequantize:
      break;  // refused at create
  }
}

// -------------------------------------------------------------------------------------------
// backward: the gradient table. dy is dL/d(output); each case adds into its inputs' gradients.

// The output gradient of a conv whose backward computes the input gradient of the batch norm
// after it (bn_from), from the batch norm's saved input, output gradient and factors.
kernels::F32BnOutputGrad Program::Impl::deferred_bn_grad(int bn) {
  const ir::Node& bn_node = graph.nodes[static_cast<size_t>(bn)];
  const NodeState& bs = states[static_cast<size_t>(bn)];
  const BnInputGradFactors& f = bs.bn_factors;
  return {data(bn_node.inputs[0]), slots[bn_node.outputs[0]].grad, bs.bn_mean.data(), bs.bn_invstd.data(),
          f.clamp(),               f.coef.data(),                   f.mdy.data(),      f.mdyx.data()};
}

void Program::Impl::backward_node(size_t i) {
  const ir::Node& node = graph.nodes[i];
  NodeState& st = states[i];
  const ValueId out = node.outputs[0];
  float* dy = slots[out].grad;
  // A conv after whose output a batch norm deferred its input gradient: dy comes from there
  // (the conv has no clamp, and its own output's gradient buffer is never taken).
  const bool dy_from_bn = st.bn_from >= 0 && states[static_cast<size_t>(st.bn_from)].bn_deferred;
  if ((dy == nullptr && !dy_from_bn) || st.skip) return;  // nothing flows back through this node
  if (st.fused) {
    // The input has no other reader: its gradient is this one (the producer's backward masks it).
    Slot& so = slots[out];
    Slot& si = slots[node.inputs[0]];
    if (si.grad == nullptr) {
      si.grad = so.grad;
      si.grad_buffer = so.grad_buffer;
      si.grad_unset = so.grad_unset;
      si.grad_premasked = so.grad_premasked;
      so.grad = nullptr;
      so.grad_buffer = -1;
      so.grad_unset = false;
      so.grad_premasked = false;
    } else if (!so.grad_unset) {
      zero_if_unset(node.inputs[0]);
      add_inplace(elems(out), dy, si.grad, pool);
    }
    return;
  }
  zero_if_unset(out);  // no consumer contributed: dL/d(output) is zero
  const float* y = data(out);
  const ValueId xin = node.inputs[0];
  const float* x = data(xin);
  const size_t n_out = elems(out);
  // Fused output clamp first (conv, fc, add, mul, concat, pools, eval-mode batch norm; a
  // train-mode batch norm masks inside its own backward passes).
  const bool masks_itself = node.op == OpType::kBatchNorm && st.bn_train;
  if ((st.act_lo != -kInf || st.act_hi != kInf) && !masks_itself && !slots[out].grad_premasked) {
    clamp_backward_inplace(n_out, y, st.act_lo, st.act_hi, dy, pool);
  }
  switch (node.op) {
    case OpType::kConv2d: {
      float* dw = grad_for(node.inputs[1]);
      float* db = node.inputs.size() > 2 ? grad_for(node.inputs[2]) : nullptr;
      kernels::Conv2dParams p = st.conv;
      p.batch = n;
      if (!opt.fast_kernels) {
        kernels::f32_conv2d_backward__ref(p, x, data(node.inputs[1]), dy, grad_for(xin), dw, db);
      } else {
        bool assign = false;
        float* dx = grad_for_write(xin, &assign);
        float* scratch_ptr = scratch_floats(st.conv_bwd.scratch_elems);
        ThreadPool* cpool = conv_pool(pool, p);
        if (dx != nullptr && assign && st.dx_as_conv) {
          // dX as a forward conv of dY with the flipped filter (Winograd for 3x3): fewer
          // multiply-adds than the GEMM into columns + col2im. Filter and bias gradients below.
          kernels::f32_conv2d_backward_fast(st.conv_bwd, n, x, data(node.inputs[1]), dy, nullptr, dw, db,
                                            scratch_ptr, cpool);
          if (st.dx_packed_version != version || st.dx_packed_batch != n) {
            st.dx_packed = std::move(kernels::prepare_f32_conv2d_backward_data_as_conv(p, data(node.inputs[1])).value());
            st.dx_packed_version = version;
            st.dx_packed_batch = n;
          }
          const int threads = cpool != nullptr ? cpool->threads() : 1;
          scratch_ptr = scratch_floats(st.dx_packed.scratch_bytes(threads) / sizeof(float) + 16);
          kernels::f32_conv2d_fast(st.dx_packed, dy, -kInf, kInf, dx, scratch_ptr, cpool);
        } else {
          // Fusions (never with dx_as_conv, build): dY from the batch norm after this conv
          // (bn_from); X from the batch norm before it (bn_apply_from), and that batch norm's
          // sums where they come out the same as its own pass: the batch cuts into slices of
          // whole images as the batch norm cuts its rows.
          kernels::F32BnOutputGrad out_bn;
          if (dy_from_bn) out_bn = deferred_bn_grad(st.bn_from);
          const kernels::BnFusedClamp* in_bn = bn_input(st);
          kernels::F32BnGradSums sums;
          bool with_sums = false;
          if (in_bn != nullptr) {
            NodeState& bs = states[static_cast<size_t>(st.bn_apply_from)];
            with_sums = dx != nullptr && assign && n % kernels::kBnSumsSlices == 0 &&
                        kernels::kBnSumsSlices == kReduceSlices;
            bs.bn_sums_ready = with_sums;
            sums = {bs.bn_mean.data(), bs.bn_invstd.data(), bs.bn_sum_dy.data(), bs.bn_sum_dyx.data()};
          }
          kernels::f32_conv2d_backward_fast(st.conv_bwd, n, in_bn != nullptr ? bn_input_x(st) : x,
                                            data(node.inputs[1]), dy_from_bn ? nullptr : dy, dx, dw, db, scratch_ptr,
                                            cpool, assign, dy_from_bn ? &out_bn : nullptr, in_bn,
                                            with_sums ? &sums : nullptr);
          if (dy_from_bn) {
            states[static_cast<size_t>(st.bn_from)].bn_deferred = false;
            for (ValueId v : graph.nodes[static_cast<size_t>(st.bn_from)].outputs) release_grad(v);
          }
        }
      }
      break;
    }
    case OpType::kFullyConnected: {
      float* dx = grad_for(xin);
      float* dw = grad_for(node.inputs[1]);
      float* db = node.inputs.size() > 2 ? grad_for(node.inputs[2]) : nullptr;
      kernels::FullyConnectedParams p = st.fc;
      p.batch = n;
      if (!opt.fast_kernels) {
        kernels::f32_fully_connected_backward__ref(p, x, data(node.inputs[1]), dy, dx, dw, db);
      } else {
        kernels::f32_fully_connected_backward_fast(p, x, data(node.inputs[1]), dy, dx, dw, db, &st.fc_bwd,
                                                   pool_for(pool, int64_t{n} * p.in_features * p.out_features));
      }
      break;
    }
    case OpType::kBatchNorm: {
      const size_t c = st.bn_mean.size();
      const size_t rows = n_out / c;
      const float* gamma = data(node.inputs[1]);
      // The sums from the backward of the depthwise conv that computed this output (bn_apply_into).
      const double* sum_dy = st.bn_sums_ready ? st.bn_sum_dy.data() : nullptr;
      const double* sum_dyx = st.bn_sums_ready ? st.bn_sum_dyx.data() : nullptr;
      st.bn_sums_ready = false;
      if (st.bn_train && st.bn_into >= 0 && slots[xin].needs_grad) {
        // dx is computed by the backward of the conv that produced x (bn_into), which runs
        // later and releases this node's output gradient: only the sums here.
        batch_norm_backward_train_factors(rows, static_cast<int>(c), x, gamma, data(node.inputs[2]),
                                          st.bn_mean.data(), st.bn_invstd.data(), dy, grad_for(node.inputs[1]),
                                          grad_for(node.inputs[2]), pool, st.act_lo, st.act_hi, &st.bn_factors,
                                          sum_dy, sum_dyx);
        st.bn_deferred = true;
      } else if (st.bn_train) {
        bool assign = false;
        float* dx = grad_for_write(xin, &assign);
        float* dgamma = grad_for(node.inputs[1]);
        float* dbeta = grad_for(node.inputs[2]);
        batch_norm_backward_train(rows, static_cast<int>(c), x, gamma, data(node.inputs[2]), st.bn_mean.data(),
                                  st.bn_invstd.data(), dy, dx, dgamma, dbeta, pool, assign, st.act_lo, st.act_hi,
                                  sum_dy, sum_dyx);
      } else {
        float* dx = grad_for(xin);
        float* dgamma = grad_for(node.inputs[1]);
        float* dbeta = grad_for(node.inputs[2]);
        batch_norm_backward_eval(rows, static_cast<int>(c), x, gamma, st.bn_mean.data(), st.bn_invstd.data(),
                                 dy, dx, dgamma, dbeta, pool);
      }
      break;
    }
    case OpType::kRelu: if (float* dx = grad_for(xin)) relu_backward(n_out, x, dy, dx, pool); break;
    case OpType::kRelu6: if (float* dx = grad_for(xin)) relu6_backward(n_out, x, dy, dx, pool); break;
    case OpType::kLeakyRelu:
      if (float* dx = grad_for(xin)) leaky_relu_backward(n_out, node.attr<ir::LeakyReluAttrs>().alpha, x, dy, dx, pool);
      break;
    case OpType::kHardSwish: if (float* dx = grad_for(xin)) hard_swish_backward(n_out, x, dy, dx, pool); break;
    case OpType::kSigmoid: if (float* dx = grad_for(xin)) sigmoid_backward(n_out, y, dy, dx, pool); break;
    case OpType::kAdd:
    case OpType::kMul: {
      const auto da = dims(node.inputs[0]), dbd = dims(node.inputs[1]);
      int ia[5], ib[5];
      for (size_t k = 0; k < da.size(); ++k) ia[k] = static_cast<int>(da[k]);
      for (size_t k = 0; k < dbd.size(); ++k) ib[k] = static_cast<int>(dbd[k]);
      kernels::BroadcastShape s;
      kernels::make_broadcast_shape(ia, static_cast<int>(da.size()), ib, static_cast<int>(dbd.size()), &s);
      float* ga = grad_for(node.inputs[0]);
      float* gb = node.inputs[1] == node.inputs[0] ? nullptr : grad_for(node.inputs[1]);
      if (node.op == OpType::kAdd) {
        add_backward(s, dy, ga, gb, pool);
        if (node.inputs[1] == node.inputs[0] && ga != nullptr) add_backward(s, dy, ga, nullptr, pool);
      } else {
        mul_backward(s, x, data(node.inputs[1]), dy, ga, gb, pool);
        if (node.inputs[1] == node.inputs[0] && ga != nullptr) mul_backward(s, x, x, dy, nullptr, ga, pool);
      }
      break;
    }
    case OpType::kConcat: {
      const auto& a = node.attr<ir::ConcatAttrs>();
      const auto d = dims(out);
      const int rank = static_cast<int>(d.size());
      const int axis = a.axis < 0 ? a.axis + rank : a.axis;
      size_t outer = 1, inner = 1;
      for (int k = 0; k < axis; ++k) outer *= static_cast<size_t>(d[static_cast<size_t>(k)]);
      for (int k = axis + 1; k < rank; ++k) inner *= static_cast<size_t>(d[static_cast<size_t>(k)]);
      std::vector<int64_t> sizes;
      std::vector<float*> dxs;
      for (ValueId v : node.inputs) {
        sizes.push_back(shape(v)[static_cast<size_t>(axis)]);
        dxs.push_back(grad_for(v));
      }
      concat_backward(outer, inner, sizes, dy, dxs);
      break;
    }
    case OpType::kMaxPool: {
      kernels::Pool2dParams p = st.pool;
      p.batch = n;
      const int32_t* argmax = reinterpret_cast<const int32_t*>(st.argmax.data());
      bool assign = false;
      float* dx = grad_for_write(xin, &assign);
      if (dx == nullptr) break;
      if (assign && max_pool_tiles_input(p)) {
        max_pool_backward_assign(p, argmax, dy, st.masks_producer ? y : nullptr, st.mask_lo, st.mask_hi, dx, pool);
        slots[xin].grad_premasked = st.masks_producer;
      } else {
        if (assign) std::memset(dx, 0, elems(xin) * sizeof(float));
        max_pool_backward(p, argmax, dy, dx, pool);
      }
      break;
    }
    case OpType::kAveragePool: {
      if (float* dx = grad_for(xin)) {
        kernels::Pool2dParams p = st.pool;
        p.batch = n;
        average_pool_backward(p, dy, dx, pool);
      }
      break;
    }
    case OpType::kMean: {
      if (float* dx = grad_for(xin)) {
        const auto d = dims(xin);
        bool reduce[5] = {};
        for (int64_t ax : node.attr<ir::MeanAttrs>().axes) {
          reduce[ax < 0 ? ax + static_cast<int64_t>(d.size()) : ax] = true;
        }
        mean_backward(static_cast<int>(d.size()), d.data(), reduce, dy, dx);
      }
      break;
    }
    case OpType::kReshape:
    case OpType::kFlatten:
      if (float* dx = grad_for(xin)) add_inplace(n_out, dy, dx, pool);
      break;
    case OpType::kPad: {
      if (float* dx = grad_for(xin)) {
        const auto& a = node.attr<ir::PadAttrs>();
        const auto d = dims(xin);
        int64_t before[5], after[5];
        for (size_t k = 0; k < d.size(); ++k) {
          before[k] = a.pads[2 * k];
          after[k] = a.pads[2 * k + 1];
        }
        pad_backward(static_cast<int>(d.size()), d.data(), before, after, dy, dx);
      }
      break;
    }
    case OpType::kSoftmax: {
      if (float* dx = grad_for(xin)) {
        const int c = static_cast<int>(shape(out).back());
        softmax_backward(n_out / static_cast<size_t>(c), c, node.attr<ir::SoftmaxAttrs>().beta, y, dy, dx);
      }
      break;
    }
    case OpType::kDropout: {
      if (float* dx = grad_for(xin)) {
        if (st.dropout_train) {
          dropout_backward(n_out, as_f32(st.mask), dy, dx);
        } else {
          add_inplace(n_out, dy, dx, pool);
        }
      }
      break;
    }
    case OpType::kQuantize:
    case OpType::kDequantize:
      break;
  }
}

// -------------------------------------------------------------------------------------------
// public API

Expected<std::unique_ptr<Program>> Program::create(const ir::Model& model, const ProgramOptions& options,
                                                   ThreadPool* pool) {
  if (options.batch < 1 || options.batch > 4096) {
    return invalid_argument(fmt::format("training batch {} must be in 1..4096", options.batch));
  }
  auto impl = std::make_unique<Impl>();
  impl->opt = options;
  impl->pool = pool;
  impl->graph = model.graph;
  PCV_RETURN_IF_ERROR(impl->build());
  return std::unique_ptr<Program>(new Program(std::move(impl)));
}

int Program::batch() const { return impl_->opt.batch; }
float* Program::input() { return impl_->data(impl_->input); }
const ir::Shape& Program::input_shape() const { return impl_->shape(impl_->input); }
size_t Program::input_elems_per_sample() const { return impl_->slots[impl_->input].per_sample; }

void Program::forward(Mode mode, int n, uint64_t step) {
  Impl& m = *impl_;
  m.n = std::max(1, std::min(n, m.opt.batch));
  m.last_mode = mode;
  // Training steps change the weights between forwards: repack every time. Eval forwards
  // reuse packed weights until weights_changed() / import_weights().
  if (mode == Mode::kTrain) ++m.version;
  if (!m.opt.profile) {
    for (size_t i = 0; i < m.graph.nodes.size(); ++i) m.forward_node(i, mode, step);
    return;
  }
  for (size_t i = 0; i < m.graph.nodes.size(); ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    m.forward_node(i, mode, step);
    m.times[i].forward_s += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (mode == Mode::kTrain) ++m.times[i].calls;
  }
}

int Program::num_outputs() const { return static_cast<int>(impl_->outputs.size()); }
const float* Program::output(int i) const {
  return impl_->data(impl_->outputs[static_cast<size_t>(i)]);
}
size_t Program::output_elems_per_sample(int i) const {
  return impl_->slots[impl_->outputs[static_cast<size_t>(i)]].per_sample;
}
ir::ValueId Program::output_value(int i) const { return impl_->outputs[static_cast<size_t>(i)]; }

float* Program::output_grad(int i) {
  Impl& m = *impl_;
  // A buffer even when nothing trainable is upstream (then backward() ignores it).
  const ValueId v = m.outputs[static_cast<size_t>(i)];
  float* g = m.acquire_grad(v);
  m.zero_if_unset(v);
  return g;
}

void Program::backward() {
  Impl& m = *impl_;
  for (size_t p = 0; p < m.params.size(); ++p) {
    if (!m.params[p].frozen) std::memset(m.params[p].grad, 0, m.params[p].size * sizeof(float));
  }
  if (m.opt.input_grad) {
    m.release_grad(m.input);
    m.acquire_grad(m.input);
  }
  for (size_t i = m.graph.nodes.size(); i-- > 0;) {
    const ir::Node& node = m.graph.nodes[i];
    if (m.slots[node.outputs[0]].needs_grad) {
      if (m.opt.profile) {
        const auto t0 = std::chrono::steady_clock::now();
        m.backward_node(i);
        m.times[i].backward_s += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      } else {
        m.backward_node(i);
      }
    }
    // A deferred batch norm's output gradient is read by its conv's backward (which releases it).
    if (!m.states[i].bn_deferred) {
      for (ValueId v : node.outputs) m.release_grad(v);
    }
  }
  // Gradients of values nobody consumed (e.g. an output not on the loss path).
  for (ValueId v : m.outputs) m.release_grad(v);
  if (m.opt.input_grad) m.zero_if_unset(m.input);  // nothing flowed back to the input
}

const float* Program::input_grad() const {
  return impl_->opt.input_grad ? impl_->slots[impl_->input].grad : nullptr;
}

std::vector<Parameter>& Program::parameters() { return impl_->params; }

int Program::fused_bn_backwards() const {
  int n = 0;
  for (const NodeState& st : impl_->states) n += st.bn_into >= 0 ? 1 : 0;
  return n;
}

int Program::fused_bn_applies() const {
  int n = 0;
  for (const NodeState& st : impl_->states) n += st.bn_apply_into >= 0 ? 1 : 0;
  return n;
}

int Program::fused_bn_stats() const {
  int n = 0;
  for (const NodeState& st : impl_->states) n += st.bn_moments_used ? 1 : 0;
  return n;
}

void Program::set_frozen(const std::function<bool(const std::string&)>& frozen) {
  for (Parameter& p : impl_->params) p.frozen = frozen(p.name);
  impl_->propagate_needs_grad();
}

void Program::set_thread_pool(ThreadPool* pool) { impl_->pool = pool; }

void Program::weights_changed() { ++impl_->version; }
uint64_t Program::seed() const { return impl_->seed; }
void Program::set_seed(uint64_t seed) { impl_->seed = seed; }

Status Program::export_weights(ir::Model* model) const {
  const Impl& m = *impl_;
  ir::Graph& g = model->graph;
  PCV_ENSURE(g.values.size() == m.graph.values.size(), StatusCode::kInvalidArgument,
             "export_weights: the model has {} values, the program {}", g.values.size(), m.graph.values.size());
  for (size_t v = 0; v < m.slots.size(); ++v) {
    if (!m.slots[v].constant) continue;
    ir::Value& val = g.values[v];
    PCV_ENSURE(val.is_constant() && static_cast<size_t>(val.data.num_elements()) == m.slots[v].per_sample,
               StatusCode::kInvalidArgument, "export_weights: value '{}' differs", val.name);
    ir::Tensor t(ir::DType::kF32, val.data.shape());
    std::memcpy(t.raw(), m.slots[v].data.data(), m.slots[v].per_sample * sizeof(float));
    val.data = std::move(t);
    val.dtype = ir::DType::kF32;
  }
  return Status::ok();
}

Status Program::import_weights(const ir::Model& model) {
  Impl& m = *impl_;
  const ir::Graph& g = model.graph;
  PCV_ENSURE(g.values.size() == m.graph.values.size(), StatusCode::kInvalidArgument,
             "import_weights: the model has {} values, the program {}", g.values.size(), m.graph.values.size());
  for (size_t v = 0; v < m.slots.size(); ++v) {
    if (!m.slots[v].constant) continue;
    const ir::Value& val = g.values[v];
    PCV_ENSURE(val.is_constant() && val.data.dtype() == ir::DType::kF32 &&
                   static_cast<size_t>(val.data.num_elements()) == m.slots[v].per_sample,
               StatusCode::kInvalidArgument, "import_weights: value '{}' differs", val.name);
    std::memcpy(m.slots[v].data.data(), val.data.raw(), m.slots[v].per_sample * sizeof(float));
  }
  ++m.version;
  return Status::ok();
}

const ir::Graph& Program::graph() const { return impl_->graph; }

std::vector<NodeTime> Program::profile() const { return impl_->times; }

void Program::reset_profile() {
  for (NodeTime& t : impl_->times) {
    t.forward_s = t.backward_s = 0;
    t.calls = 0;
  }
}

}  // namespace pcv::train
