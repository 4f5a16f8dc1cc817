#include "runtime/session.h"

#include <fmt/core.h>

#include <chrono>
#include <climits>
#include <cstring>

#include "base/aligned.h"
#include "base/thread_pool.h"
#include "ir/passes/passes.h"
#include "runtime/memory_plan.h"
#include "runtime/op_kernel.h"

namespace pcv::runtime {

using namespace pcv::ir;

struct Session::Impl {
  Graph graph;
  SessionOptions options;
  std::unique_ptr<ThreadPool> pool;
  AlignedBuffer arena;
  void* scratch = nullptr;
  std::vector<Tensor> tensors;  // by value id
  std::vector<int> steps;       // node indices executed by run(), in order
  std::vector<std::unique_ptr<OpKernel>> kernels;  // by step
  std::vector<Tensor> inputs, outputs;
  Profile profile;
  int64_t packed_bytes = 0;
  int64_t arena_bytes = 0;
  int64_t scratch_bytes = 0;
};

namespace {

Status fold_constants(Graph& g, std::vector<bool>& folded) {
  PrepareContext pc{&g, /*fast_kernels=*/false, 1};
  for (size_t ni = 0; ni < g.nodes.size(); ++ni) {
    const Node& n = g.nodes[ni];
    bool all_const = true;
    for (ValueId in : n.inputs) {
      if (in != kNoValue && !g.value(in).is_constant()) all_const = false;
    }
    if (!all_const) continue;
    auto kern = make_op_kernel(pc, n);
    if (!kern) return kern.status();
    Value& out = g.value(n.outputs[0]);
    std::vector<Tensor> tensors(g.values.size());
    for (size_t i = 0; i < g.values.size(); ++i) tensors[i] = g.values[i].data;
    tensors[static_cast<size_t>(n.outputs[0])] = Tensor(out.dtype, out.shape);
    AlignedBuffer scratch((*kern)->scratch_bytes);
    RunContext rc{&tensors, scratch.data(), nullptr};
    (*kern)->run(rc);
    out.data = tensors[static_cast<size_t>(n.outputs[0])];
    folded[ni] = true;
  }
  return Status::ok();
}

// A 1x1 conv (stride 1, no padding, groups 1) with a constant filter, f32 input and output.
bool pointwise_f32_conv(const Graph& g, const Node& n) {
  if (n.op != OpType::kConv2d || n.inputs.size() < 2 || n.inputs.size() > 3) return false;
  const auto& a = n.attr<Conv2dAttrs>();
  const Value& w = g.value(n.inputs[1]);
  const bool no_pad = a.padding != Padding::kExplicit ||
                      (a.pad_top == 0 && a.pad_bottom == 0 && a.pad_left == 0 && a.pad_right == 0);
  return a.groups == 1 && a.stride_h == 1 && a.stride_w == 1 && no_pad && w.is_constant() && w.shape.size() == 4 &&
         w.shape[1] == 1 && w.shape[2] == 1 && g.value(n.inputs[0]).dtype == DType::kF32 &&
         g.value(n.outputs[0]).dtype == DType::kF32;
}

// Runtime-only rewrite (the session's own graph copy): a 1x1 f32 convolution without
// activation whose only consumer is an ADD of a tensor computed earlier becomes one node that
// adds during the GEMM's store (input 3 = the other operand, the ADD's activation):
//
//   x ─► conv2d 1x1 ─► t ─► add(+ s) ─► y            x, s ─► conv2d 1x1 (+ s) ─► y
//
// (MobileNetV2's projection and its residual connection.) The result is bit-identical: the
// conv's sum is rounded to f32, then s is added and the clamp applied, as the two ops would.
// Returns how many ADDs were fused.
int fuse_residual_adds(Graph& g) {
  const size_t nv = g.values.size();
  std::vector<int> producer(nv, -1), consumers(nv, 0);
  for (size_t ni = 0; ni < g.nodes.size(); ++ni) {
    for (ValueId in : g.nodes[ni].inputs) {
      if (in != kNoValue) ++consumers[static_cast<size_t>(in)];
    }
    for (ValueId out : g.nodes[ni].outputs) producer[static_cast<size_t>(out)] = static_cast<int>(ni);
  }
  for (ValueId o : g.outputs) ++consumers[static_cast<size_t>(o)];  // graph outputs stay values
  auto pointwise_conv = [&](int ni) {
    if (ni < 0) return false;
    const Node& n = g.nodes[static_cast<size_t>(ni)];
    return pointwise_f32_conv(g, n) && n.attr<Conv2dAttrs>().activation == Activation::kNone;
  };
  std::vector<bool> erase(g.nodes.size(), false);
  int fused = 0;
  for (size_t ai = 0; ai < g.nodes.size(); ++ai) {
    const Node& add = g.nodes[ai];
    if (add.op != OpType::kAdd || add.inputs.size() != 2) continue;
    const Activation act = add.attr<EltwiseAttrs>().activation;
    if (act != Activation::kNone && act != Activation::kRelu && act != Activation::kRelu6) continue;
    const Value& y = g.value(add.outputs[0]);
    if (y.dtype != DType::kF32) continue;
    for (int side = 0; side < 2; ++side) {
      const ValueId t = add.inputs[static_cast<size_t>(side)];
      const ValueId s = add.inputs[static_cast<size_t>(1 - side)];
      const int ci = producer[static_cast<size_t>(t)];
      if (!pointwise_conv(ci) || consumers[static_cast<size_t>(t)] != 1 || erase[static_cast<size_t>(ci)]) continue;
      const Value& sv = g.value(s);
      // s must exist when the conv runs, and have the output's shape (no broadcast).
      if (sv.is_constant() || sv.dtype != DType::kF32 || sv.shape != y.shape || g.value(t).shape != y.shape) continue;
      if (producer[static_cast<size_t>(s)] >= ci || t == s) continue;
      Node& conv = g.nodes[static_cast<size_t>(ci)];
      conv.inputs.resize(3, kNoValue);
      conv.inputs.push_back(s);
      conv.attr<Conv2dAttrs>().activation = act;
      conv.outputs[0] = add.outputs[0];
      producer[static_cast<size_t>(add.outputs[0])] = ci;
      erase[ai] = true;
      ++fused;
      break;
    }
  }
  if (fused == 0) return 0;
  std::vector<Node> kept;
  kept.reserve(g.nodes.size());
  for (size_t ni = 0; ni < g.nodes.size(); ++ni) {
    if (!erase[ni]) kept.push_back(std::move(g.nodes[ni]));
  }
  g.nodes = std::move(kept);
  return fused;
}

// Expanded tensors at least this large per image run fused (make_pointwise_depthwise_kernel):
// MobileNetV2's 112x112x96, 56x56x144 and 28x28x192 ones; smaller ones stay in cache anyway.
constexpr int64_t kFuseExpandedBytes = 512 * 1024;

// Producer -> consumer pairs that run as one kernel (make_fused_kernel), by producer node: the
// consumer's index, -1 elsewhere. The producer is an f32 conv whose output only the consumer
// reads, and the consumer
//   - a depthwise conv (channel multiplier 1), the producer a 1x1 conv (stride 1, no padding,
//     groups 1) with an output of at least kFuseExpandedBytes per image, or
//   - a max pool (make_conv_max_pool_kernel checks its window and the conv's path).
// Folded nodes are left out.
std::vector<int> fusable_pairs(const Graph& g, const std::vector<bool>& folded) {
  const size_t nv = g.values.size();
  std::vector<int> consumer(nv, -1), consumers(nv, 0);
  for (size_t ni = 0; ni < g.nodes.size(); ++ni) {
    for (ValueId in : g.nodes[ni].inputs) {
      if (in == kNoValue) continue;
      ++consumers[static_cast<size_t>(in)];
      consumer[static_cast<size_t>(in)] = static_cast<int>(ni);
    }
  }
  for (ValueId o : g.outputs) ++consumers[static_cast<size_t>(o)];
  auto f32_conv = [&](const Node& n) {
    if (n.op != OpType::kConv2d || n.inputs.size() < 2 || n.inputs.size() > 3) return false;
    for (ValueId v : {n.inputs[0], n.inputs[1], n.outputs[0]}) {
      if (g.value(v).dtype != DType::kF32 || g.value(v).shape.size() != 4) return false;
    }
    return g.value(n.inputs[1]).is_constant() && !g.value(n.inputs[0]).is_constant();
  };
  std::vector<int> pair(g.nodes.size(), -1);
  for (size_t ni = 0; ni < g.nodes.size(); ++ni) {
    const Node& n = g.nodes[ni];
    if (folded[ni] || !f32_conv(n)) continue;
    const auto ti = static_cast<size_t>(n.outputs[0]);
    if (consumers[ti] != 1 || consumer[ti] < 0 || folded[static_cast<size_t>(consumer[ti])]) continue;
    const Node& d = g.nodes[static_cast<size_t>(consumer[ti])];
    if (d.inputs[0] != n.outputs[0]) continue;
    if (d.op == OpType::kMaxPool) {
      if (g.value(d.outputs[0]).dtype == DType::kF32) pair[ni] = consumer[ti];
      continue;
    }
    const Value& t = g.value(n.outputs[0]);
    if (!pointwise_f32_conv(g, n) || !f32_conv(d)) continue;
    if (num_elements(t.shape) / t.shape[0] * static_cast<int64_t>(sizeof(float)) < kFuseExpandedBytes) continue;
    const int64_t c = t.shape[3];
    if (d.attr<Conv2dAttrs>().groups != c || g.value(d.outputs[0]).shape[3] != c) continue;
    pair[ni] = consumer[ti];
  }
  return pair;
}

}  // namespace

Session::Session(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Session::~Session() = default;

Expected<std::unique_ptr<Session>> Session::create(const Model& model, const SessionOptions& options) {
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  if (options.threads > 64) return invalid_argument(fmt::format("threads={} is above the limit of 64", options.threads));
  if (options.batch < 0 || options.batch > 4096) return invalid_argument(fmt::format("batch={} must be in 0..4096", options.batch));
  int64_t weight_bytes = 0;
  for (const Value& v : model.graph.values) {
    if (v.is_constant()) weight_bytes += static_cast<int64_t>(v.data.size_bytes());
  }
  if (weight_bytes > options.max_memory_bytes) {
    return out_of_memory(fmt::format("the model's weights are {} bytes, above the memory limit of {} bytes",
                                     weight_bytes, options.max_memory_bytes));
  }
  Graph& g = impl->graph;
  g = model.graph;
  PCV_RETURN_IF_ERROR(verify(g));
  if (options.batch > 0) {
    for (ValueId in : g.inputs) {
      if (!g.value(in).shape.empty()) g.value(in).shape[0] = options.batch;
    }
    PCV_RETURN_IF_ERROR(infer_shapes(g).with_context(fmt::format("batch {}", options.batch)));
  }
  if (options.optimize_graph && !options.keep_all_values) {
    PCV_RETURN_IF_ERROR(remove_identity(g).status());
    PCV_RETURN_IF_ERROR(fold_batch_norm(g).status());
    PCV_RETURN_IF_ERROR(fuse_activations(g).status());
    PCV_RETURN_IF_ERROR(prune_unused(g).status());
    if (options.fast_kernels) fuse_residual_adds(g);
  }
  impl->pool = std::make_unique<ThreadPool>(options.threads);
  const int threads = impl->pool->threads();

  std::vector<bool> folded(g.nodes.size(), false);
  PCV_RETURN_IF_ERROR(fold_constants(g, folded));

  PrepareContext pc{&g, options.fast_kernels, threads};
  // A producer fused into its consumer (fusable_pairs) runs in the consumer's step, which reads
  // the producer's input; the tensor between them gets no buffer.
  std::vector<int> pair(g.nodes.size(), -1);
  if (options.fast_kernels && options.optimize_graph && !options.keep_all_values && options.fuse_kernels) {
    pair = fusable_pairs(g, folded);
  }
  std::vector<std::unique_ptr<OpKernel>> fused_kernels(g.nodes.size());  // by consumer node
  std::vector<int> fused_producer(g.nodes.size(), -1);                   // by consumer node
  std::vector<int> step_producer;  // by step: the producer node it also runs, or -1
  size_t scratch_bytes = 0;
  for (size_t ni = 0; ni < g.nodes.size(); ++ni) {
    if (folded[ni]) continue;
    if (pair[ni] >= 0) {
      auto fused = make_fused_kernel(pc, g.nodes[ni], g.nodes[static_cast<size_t>(pair[ni])]);
      if (fused) {
        fused_kernels[static_cast<size_t>(pair[ni])] = std::move(fused).value();
        fused_producer[static_cast<size_t>(pair[ni])] = static_cast<int>(ni);
        continue;
      }
      pair[ni] = -1;  // not fusable after all: the two run on their own
    }
    step_producer.push_back(fused_producer[ni]);
    Expected<std::unique_ptr<OpKernel>> kern =
        fused_kernels[ni] ? std::move(fused_kernels[ni]) : make_op_kernel(pc, g.nodes[ni]);
    if (!kern) return kern.status();
    scratch_bytes = std::max(scratch_bytes, (*kern)->scratch_bytes);
    impl->packed_bytes += (*kern)->packed_bytes;
    if (weight_bytes + impl->packed_bytes > options.max_memory_bytes) {
      return out_of_memory(fmt::format("the model's weights ({} bytes) and packed weights ({} bytes so far) are "
                                       "above the memory limit of {} bytes",
                                       weight_bytes, impl->packed_bytes, options.max_memory_bytes));
    }
    impl->steps.push_back(static_cast<int>(ni));
    impl->kernels.push_back(std::move(kern).value());
  }

  // Lifetimes of non-constant values, in steps.
  const size_t nv = g.values.size();
  std::vector<int> first(nv, INT_MAX), last(nv, -2);
  for (ValueId in : g.inputs) {
    first[static_cast<size_t>(in)] = -1;
    last[static_cast<size_t>(in)] = std::max(last[static_cast<size_t>(in)], -1);
  }
  for (size_t s = 0; s < impl->steps.size(); ++s) {
    const Node& n = g.nodes[static_cast<size_t>(impl->steps[s])];
    // A fused step reads its producer's inputs (its consumer's other inputs are constants).
    const std::vector<ValueId>& inputs =
        step_producer[s] >= 0 ? g.nodes[static_cast<size_t>(step_producer[s])].inputs : n.inputs;
    for (ValueId in : inputs) {
      if (in == kNoValue || g.value(in).is_constant()) continue;
      last[static_cast<size_t>(in)] = std::max(last[static_cast<size_t>(in)], static_cast<int>(s));
    }
    const auto out = static_cast<size_t>(n.outputs[0]);
    first[out] = std::min(first[out], static_cast<int>(s));
    last[out] = std::max(last[out], static_cast<int>(s));
  }
  for (ValueId o : g.outputs) {
    if (!g.value(o).is_constant()) last[static_cast<size_t>(o)] = INT_MAX;
  }
  std::vector<BufferRequest> requests;
  std::vector<size_t> request_value;
  for (size_t v = 0; v < nv; ++v) {
    if (g.values[v].is_constant() || first[v] == INT_MAX) continue;
    BufferRequest r;
    r.size_bytes = num_elements(g.values[v].shape) * static_cast<int64_t>(dtype_size(g.values[v].dtype));
    r.first_use = first[v];
    r.last_use = options.keep_all_values ? INT_MAX : last[v];
    requests.push_back(r);
    request_value.push_back(v);
  }
  MemoryPlan plan = plan_memory(requests, !options.keep_all_values);
  const int64_t scratch_aligned = static_cast<int64_t>((scratch_bytes + 63) / 64 * 64);
  const int64_t total = plan.arena_bytes + scratch_aligned;
  if (weight_bytes + total + impl->packed_bytes > options.max_memory_bytes) {
    return out_of_memory(fmt::format("the model needs {} bytes of weights, {} of activations and {} of packed "
                                     "weights, above the memory limit of {} bytes",
                                     weight_bytes, total, impl->packed_bytes, options.max_memory_bytes));
  }
  if (!impl->arena.resize(static_cast<size_t>(std::max<int64_t>(total, 64)))) {
    return out_of_memory(fmt::format("cannot allocate the {}-byte arena", total));
  }
  impl->arena_bytes = total;
  impl->scratch_bytes = scratch_aligned;
  impl->scratch = impl->arena.data() + plan.arena_bytes;
  impl->tensors.resize(nv);
  for (size_t v = 0; v < nv; ++v) {
    if (g.values[v].is_constant()) impl->tensors[v] = g.values[v].data;
  }
  for (size_t i = 0; i < requests.size(); ++i) {
    const Value& v = g.values[request_value[i]];
    impl->tensors[request_value[i]] = Tensor::view(v.dtype, v.shape, impl->arena.data() + plan.offsets[i]);
  }
  for (ValueId in : g.inputs) impl->inputs.push_back(impl->tensors[static_cast<size_t>(in)]);
  for (ValueId o : g.outputs) impl->outputs.push_back(impl->tensors[static_cast<size_t>(o)]);

  for (size_t s = 0; s < impl->steps.size(); ++s) {
    const Node& n = g.nodes[static_cast<size_t>(impl->steps[s])];
    NodeProfile np;
    np.name = n.name;
    np.op = op_name(n.op);
    np.kernel = impl->kernels[s]->name;
    np.output_shape = g.value(n.outputs[0]).shape;
    np.macs = impl->kernels[s]->macs;
    impl->profile.nodes.push_back(std::move(np));
  }
  return std::unique_ptr<Session>(new Session(std::move(impl)));
}

int Session::num_inputs() const { return static_cast<int>(impl_->inputs.size()); }
int Session::num_outputs() const { return static_cast<int>(impl_->outputs.size()); }
Tensor& Session::input(int i) { return impl_->inputs[static_cast<size_t>(i)]; }
const Tensor& Session::output(int i) const { return impl_->outputs[static_cast<size_t>(i)]; }
const Value& Session::input_info(int i) const { return impl_->graph.value(impl_->graph.inputs[static_cast<size_t>(i)]); }
const Value& Session::output_info(int i) const { return impl_->graph.value(impl_->graph.outputs[static_cast<size_t>(i)]); }
const Graph& Session::graph() const { return impl_->graph; }
const Profile& Session::profile() const { return impl_->profile; }
int64_t Session::arena_bytes() const { return impl_->arena_bytes; }
int64_t Session::scratch_bytes() const { return impl_->scratch_bytes; }
int64_t Session::packed_weight_bytes() const { return impl_->packed_bytes; }
int Session::threads() const { return impl_->pool->threads(); }

void Session::reset_profile() {
  impl_->profile.runs = 0;
  for (auto& n : impl_->profile.nodes) n.total_ms = 0;
}

Status Session::run() {
  Impl& s = *impl_;
  RunContext rc{&s.tensors, s.scratch, s.pool.get()};
  if (!s.options.profile) {
    for (auto& k : s.kernels) k->run(rc);
    return Status::ok();
  }
  for (size_t i = 0; i < s.kernels.size(); ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    s.kernels[i]->run(rc);
    const auto t1 = std::chrono::steady_clock::now();
    s.profile.nodes[i].total_ms += std::chrono::duration<double, std::milli>(t1 - t0).count();
  }
  ++s.profile.runs;
  return Status::ok();
}

Expected<std::vector<Tensor>> Session::run(const std::vector<Tensor>& inputs) {
  if (inputs.size() != impl_->inputs.size()) {
    return invalid_argument(fmt::format("the model has {} inputs, {} given", impl_->inputs.size(), inputs.size()));
  }
  for (size_t i = 0; i < inputs.size(); ++i) {
    Tensor& dst = impl_->inputs[i];
    if (inputs[i].dtype() != dst.dtype() || inputs[i].shape() != dst.shape()) {
      return invalid_argument(fmt::format("input {} '{}' must be {}{}, got {}{}", i, input_info(static_cast<int>(i)).name,
                                          dtype_name(dst.dtype()), shape_to_string(dst.shape()),
                                          dtype_name(inputs[i].dtype()), shape_to_string(inputs[i].shape())));
    }
    if (dst.size_bytes()) std::memcpy(dst.raw(), inputs[i].raw(), dst.size_bytes());
  }
  PCV_RETURN_IF_ERROR(run());
  std::vector<Tensor> out;
  for (auto& t : impl_->outputs) out.push_back(t.clone());
  return out;
}

Tensor Session::value(ValueId id) const {
  if (id < 0 || static_cast<size_t>(id) >= impl_->tensors.size()) return Tensor();
  return impl_->tensors[static_cast<size_t>(id)];
}

Expected<std::vector<Tensor>> run_model(const Model& model, const std::vector<Tensor>& inputs,
                                        const SessionOptions& options) {
  PCV_ASSIGN_OR_RETURN(auto session, Session::create(model, options));
  return session->run(inputs);
}

}  // namespace pcv::runtime
