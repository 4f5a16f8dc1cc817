// Magnitude pruning, sparsity schedules and structured (channel) pruning (passes.h).
#include <fmt/core.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <numeric>

#include "ir/passes/passes.h"
#include "optimize/passes.h"

namespace pcv::optimize {

using ir::DType;
using ir::Graph;
using ir::OpType;
using ir::ValueId;

namespace {

std::vector<ValueId> prunable_weights(const Graph& g, const PruneOptions& o) {
  std::vector<ValueId> ids;
  for (const WeightUse& u : find_weights(g, o.exclude, o.min_elements)) {
    if (u.depthwise && !o.include_depthwise) continue;
    if (std::find(ids.begin(), ids.end(), u.weight) == ids.end()) ids.push_back(u.weight);
  }
  return ids;
}

// Marks exactly k of `mags` (the smallest, ties by position) as pruned in `keep` (0).
void mark_smallest(const std::vector<std::pair<const float*, size_t>>& tensors, size_t k,
                   std::vector<std::vector<uint8_t>>* keep) {
  size_t total = 0;
  for (const auto& t : tensors) total += t.second;
  keep->clear();
  for (const auto& t : tensors) keep->emplace_back(t.second, uint8_t{1});
  if (k == 0 || total == 0) return;
  k = std::min(k, total);
  std::vector<float> mags;
  mags.reserve(total);
  for (const auto& t : tensors) {
    for (size_t i = 0; i < t.second; ++i) mags.push_back(std::fabs(t.first[i]));
  }
  std::nth_element(mags.begin(), mags.begin() + static_cast<std::ptrdiff_t>(k - 1), mags.end());
  const float threshold = mags[k - 1];
  size_t below = 0;
  for (const auto& t : tensors) {
    for (size_t i = 0; i < t.second; ++i) below += std::fabs(t.first[i]) < threshold;
  }
  size_t ties_to_prune = k - below;
  for (size_t j = 0; j < tensors.size(); ++j) {
    for (size_t i = 0; i < tensors[j].second; ++i) {
      const float a = std::fabs(tensors[j].first[i]);
      if (a < threshold) {
        (*keep)[j][i] = 0;
      } else if (a == threshold && ties_to_prune > 0) {
        (*keep)[j][i] = 0;
        --ties_to_prune;
      }
    }
  }
}

// A weight tensor to prune: its data, size, and output channels (rows of size / rows).
struct PruneTensor {
  const float* data;
  size_t size;
  size_t rows;
};

size_t output_channels(const ir::Value& w) {
  const size_t n = static_cast<size_t>(w.data.num_elements());
  const size_t rows = w.shape.empty() ? 1 : static_cast<size_t>(std::max<int64_t>(1, w.shape[0]));
  return n % rows == 0 ? rows : 1;
}

// Keep masks (1 = kept) giving `sparsity` within each channel, tensor or over all of them.
std::vector<std::vector<uint8_t>> choose_masks(const std::vector<PruneTensor>& tensors, PruneScope scope,
                                               float sparsity) {
  auto round_k = [&](size_t n) {
    return static_cast<size_t>(std::llround(static_cast<double>(sparsity) * static_cast<double>(n)));
  };
  std::vector<std::vector<uint8_t>> keep;
  if (scope == PruneScope::kGlobal) {
    std::vector<std::pair<const float*, size_t>> all;
    size_t total = 0;
    for (const PruneTensor& t : tensors) {
      all.emplace_back(t.data, t.size);
      total += t.size;
    }
    mark_smallest(all, round_k(total), &keep);
    return keep;
  }
  std::vector<std::vector<uint8_t>> part;
  for (const PruneTensor& t : tensors) {
    const size_t rows = scope == PruneScope::kChannel ? t.rows : 1;
    const size_t len = t.size / rows;
    std::vector<uint8_t> mask;
    mask.reserve(t.size);
    for (size_t r = 0; r < rows; ++r) {
      mark_smallest({{t.data + r * len, len}}, round_k(len), &part);
      mask.insert(mask.end(), part[0].begin(), part[0].end());
    }
    keep.push_back(std::move(mask));
  }
  return keep;
}

}  // namespace

const char* prune_scope_name(PruneScope scope) {
  switch (scope) {
    case PruneScope::kChannel: return "channel";
    case PruneScope::kLayer: return "layer";
    case PruneScope::kGlobal: return "global";
  }
  return "?";
}

Expected<PruneScope> prune_scope_from_name(const std::string& name) {
  if (name == "channel") return PruneScope::kChannel;
  if (name == "layer") return PruneScope::kLayer;
  if (name == "global") return PruneScope::kGlobal;
  return invalid_argument(fmt::format("unknown pruning scope '{}' (channel, layer, global)", name));
}

Expected<PruneMasks> prune_magnitude(Graph& g, const PruneOptions& o) {
  if (!(o.sparsity >= 0.f && o.sparsity < 1.f)) {
    return invalid_argument(fmt::format("sparsity {} must be in [0, 1)", o.sparsity));
  }
  const std::vector<ValueId> ids = prunable_weights(g, o);
  std::vector<PruneTensor> tensors;
  for (ValueId v : ids) {
    const ir::Value& w = g.value(v);
    tensors.push_back({w.data.data<float>(), static_cast<size_t>(w.data.num_elements()), output_channels(w)});
  }
  std::vector<std::vector<uint8_t>> keep = choose_masks(tensors, o.scope, o.sparsity);
  PruneMasks masks;
  for (size_t j = 0; j < ids.size(); ++j) masks[g.value(ids[j]).name] = std::move(keep[j]);
  PCV_RETURN_IF_ERROR(apply_masks(g, masks));
  return masks;
}

Status apply_masks(Graph& g, const PruneMasks& masks) {
  for (const auto& [name, mask] : masks) {
    const ValueId v = g.find_value(name);
    if (v == ir::kNoValue) return invalid_argument(fmt::format("prune mask for unknown weight '{}'", name));
    ir::Value& w = g.value(v);
    if (!w.is_constant() || w.dtype != DType::kF32 || static_cast<size_t>(w.data.num_elements()) != mask.size()) {
      return invalid_argument(fmt::format("prune mask for '{}' does not fit the weight", name));
    }
    ir::Tensor t = w.data.clone();
    float* d = t.data<float>();
    for (size_t i = 0; i < mask.size(); ++i) {
      if (!mask[i]) d[i] = 0.f;
    }
    w.data = std::move(t);
  }
  return Status::ok();
}

double weight_sparsity(const Graph& g, const PruneMasks& masks) {
  int64_t zeros = 0, total = 0;
  auto count = [&](const ir::Value& w) {
    const float* d = w.data.data<float>();
    for (int64_t i = 0; i < w.data.num_elements(); ++i) zeros += d[i] == 0.f;
    total += w.data.num_elements();
  };
  if (masks.empty()) {
    std::vector<ValueId> seen;
    for (const WeightUse& u : find_weights(g, {})) {
      if (std::find(seen.begin(), seen.end(), u.weight) != seen.end()) continue;
      seen.push_back(u.weight);
      count(g.value(u.weight));
    }
  } else {
    for (const auto& [name, mask] : masks) {
      const ValueId v = g.find_value(name);
      if (v != ir::kNoValue && g.value(v).dtype == DType::kF32 && g.value(v).is_constant()) count(g.value(v));
    }
  }
  return total ? static_cast<double>(zeros) / static_cast<double>(total) : 0.0;
}

float SparsitySchedule::sparsity_at(int64_t step) const {
  if (step < begin) return kind == Kind::kConstant ? 0.f : initial;
  if (kind == Kind::kConstant || step >= end || end <= begin) return final;
  const double p = static_cast<double>(step - begin) / static_cast<double>(end - begin);
  return static_cast<float>(final + (initial - final) * std::pow(1.0 - p, power));
}

bool SparsitySchedule::update_at(int64_t step) const {
  if (step < begin) return false;
  if (kind == Kind::kConstant) return step == begin;
  if (step > end) return false;
  return step == end || (frequency > 0 && (step - begin) % frequency == 0);
}

Expected<SparsitySchedule::Kind> schedule_kind_from_name(const std::string& name) {
  if (name == "polynomial" || name == "polynomial_decay") return SparsitySchedule::Kind::kPolynomial;
  if (name == "constant") return SparsitySchedule::Kind::kConstant;
  return invalid_argument(fmt::format("unknown pruning schedule '{}' (polynomial, constant)", name));
}

Expected<PruneMasks> prune_magnitude_finetuned(ir::Model& model, const PruneOptions& o, SparsitySchedule sched,
                                               Finetuner* finetuner) {
  if (!finetuner) return prune_magnitude(model.graph, o);
  if (!(o.sparsity >= 0.f && o.sparsity < 1.f)) {
    return invalid_argument(fmt::format("sparsity {} must be in [0, 1)", o.sparsity));
  }
  const int64_t total = finetuner->total_steps();
  sched.final = o.sparsity;
  if (sched.end <= 0 || sched.end > total) {
    sched.begin = 0;
    sched.end = std::max<int64_t>(0, total * 7 / 10 - 1);
    sched.frequency = std::max<int64_t>(1, total / 20);
  }
  std::map<std::string, size_t> names;  // pruned weight -> output channels
  for (ValueId v : prunable_weights(model.graph, o)) names[model.graph.value(v).name] = output_channels(model.graph.value(v));
  // Masks by name, recomputed from the live weights at schedule points.
  std::map<std::string, std::vector<uint8_t>> masks;
  auto hook = [&](int64_t step, int64_t, std::vector<WeightRef>& weights) {
    std::vector<WeightRef*> pruned;
    for (WeightRef& w : weights) {
      if (names.count(w.name)) pruned.push_back(&w);
    }
    if (sched.update_at(step) || (step == sched.end && masks.empty())) {
      std::vector<PruneTensor> tensors;
      for (WeightRef* w : pruned) {
        const size_t rows = names[w->name];
        tensors.push_back({w->data, w->size, w->size % rows == 0 ? rows : 1});
      }
      std::vector<std::vector<uint8_t>> keep = choose_masks(tensors, o.scope, sched.sparsity_at(step));
      for (size_t j = 0; j < pruned.size(); ++j) masks[pruned[j]->name] = std::move(keep[j]);
    }
    for (WeightRef* w : pruned) {
      auto it = masks.find(w->name);
      if (it == masks.end() || it->second.size() != w->size) continue;
      for (size_t i = 0; i < w->size; ++i) {
        if (!it->second[i]) w->data[i] = 0.f;
      }
    }
  };
  PCV_RETURN_IF_ERROR(finetuner->run(model, hook));
  return prune_magnitude(model.graph, o);
}

// ---- structured pruning ----
namespace {

// Copy of `t` keeping the indices `keep` along `axis`.
ir::Tensor slice_axis(const ir::Tensor& t, size_t axis, const std::vector<int64_t>& keep) {
  ir::Shape shape = t.shape();
  int64_t outer = 1, inner = 1;
  for (size_t d = 0; d < axis; ++d) outer *= shape[d];
  for (size_t d = axis + 1; d < shape.size(); ++d) inner *= shape[d];
  const int64_t dim = shape[axis];
  shape[axis] = static_cast<int64_t>(keep.size());
  ir::Tensor out(t.dtype(), shape);
  const size_t es = ir::dtype_size(t.dtype());
  const auto* src = static_cast<const uint8_t*>(t.raw());
  auto* dst = static_cast<uint8_t*>(out.raw());
  for (int64_t o = 0; o < outer; ++o) {
    for (size_t j = 0; j < keep.size(); ++j) {
      std::memcpy(dst + ((o * static_cast<int64_t>(keep.size()) + static_cast<int64_t>(j)) * inner) * static_cast<int64_t>(es),
                  src + ((o * dim + keep[j]) * inner) * static_cast<int64_t>(es), static_cast<size_t>(inner) * es);
    }
  }
  return out;
}

// A slice to apply once the region is known to be prunable.
struct Edit {
  enum Kind { kRows, kInputChannels, kColumns, kDepthwise, kBatchNorm } kind;
  int node;
  int64_t spatial = 1;  // kColumns after flatten: H * W positions
};

std::vector<int> consumers(const Graph& g, ValueId v) {
  std::vector<int> out;
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    for (ValueId in : g.nodes[i].inputs) {
      if (in == v) {
        out.push_back(static_cast<int>(i));
        break;
      }
    }
  }
  return out;
}

bool const_f32(const Graph& g, ValueId v) {
  return v != ir::kNoValue && g.value(v).is_constant() && g.value(v).dtype == DType::kF32;
}

// Collects the edits for pruning the output channels of conv node `p`; false when some
// consumer of the channels is not channel-separable (add, concat, graph output...).
bool plan_region(const Graph& g, int p, std::vector<Edit>* edits) {
  const int64_t channels = g.value(g.nodes[static_cast<size_t>(p)].inputs[1]).shape[0];
  edits->push_back({Edit::kRows, p});
  std::vector<ValueId> work{g.nodes[static_cast<size_t>(p)].outputs[0]};
  while (!work.empty()) {
    const ValueId v = work.back();
    work.pop_back();
    if (ir::is_graph_output(g, v)) return false;
    for (int ci : consumers(g, v)) {
      const ir::Node& c = g.nodes[static_cast<size_t>(ci)];
      if (c.inputs[0] != v) return false;  // read as a weight or a second operand
      for (size_t k = 1; k < c.inputs.size(); ++k) {
        if (c.inputs[k] == v) return false;
      }
      switch (c.op) {
        case OpType::kRelu: case OpType::kRelu6: case OpType::kLeakyRelu: case OpType::kHardSwish:
        case OpType::kSigmoid: case OpType::kDropout: case OpType::kMaxPool: case OpType::kAveragePool:
          work.push_back(c.outputs[0]);
          break;
        case OpType::kPad: {
          const auto& pads = c.attr<ir::PadAttrs>().pads;
          if (pads.size() < 2 || pads[pads.size() - 1] != 0 || pads[pads.size() - 2] != 0) return false;
          work.push_back(c.outputs[0]);
          break;
        }
        case OpType::kBatchNorm:
          for (size_t k = 1; k < 5; ++k) {
            if (!const_f32(g, c.inputs[k])) return false;
          }
          edits->push_back({Edit::kBatchNorm, ci});
          work.push_back(c.outputs[0]);
          break;
        case OpType::kConv2d: {
          const auto& a = c.attr<ir::Conv2dAttrs>();
          const ir::Value& w = g.value(c.inputs[1]);
          if (!const_f32(g, c.inputs[1])) return false;
          if (c.inputs.size() > 2 && c.inputs[2] != ir::kNoValue && !const_f32(g, c.inputs[2])) return false;
          if (a.groups == 1) {
            edits->push_back({Edit::kInputChannels, ci});
          } else if (a.groups == channels && w.shape[0] == channels && w.shape[3] == 1) {
            edits->push_back({Edit::kDepthwise, ci});
            work.push_back(c.outputs[0]);
          } else {
            return false;
          }
          break;
        }
        case OpType::kFullyConnected:
          if (g.value(v).shape.size() != 2 || !const_f32(g, c.inputs[1])) return false;
          edits->push_back({Edit::kColumns, ci, 1});
          break;
        case OpType::kFlatten:
        case OpType::kMean: {
          const ir::Shape& s = g.value(v).shape;
          if (s.size() != 4) return false;
          int64_t spatial = 1;
          if (c.op == OpType::kMean) {
            const auto& m = c.attr<ir::MeanAttrs>();
            std::vector<int64_t> axes = m.axes;
            std::sort(axes.begin(), axes.end());
            if (m.keep_dims || axes != std::vector<int64_t>{1, 2}) return false;
          } else {
            spatial = s[1] * s[2];
          }
          const ValueId f = c.outputs[0];
          if (ir::is_graph_output(g, f)) return false;
          for (int fi : consumers(g, f)) {
            const ir::Node& fc = g.nodes[static_cast<size_t>(fi)];
            if (fc.op != OpType::kFullyConnected || fc.inputs[0] != f || !const_f32(g, fc.inputs[1])) return false;
            edits->push_back({Edit::kColumns, fi, spatial});
          }
          break;
        }
        default:
          return false;
      }
    }
  }
  return true;
}

void set_data(Graph& g, ValueId v, ir::Tensor t) {
  ir::Value& val = g.value(v);
  val.shape = t.shape();
  val.data = std::move(t);
}

void apply_edit(Graph& g, const Edit& e, const std::vector<int64_t>& keep, int64_t channels) {
  ir::Node& n = g.nodes[static_cast<size_t>(e.node)];
  auto slice_input = [&](size_t k, size_t axis) {
    if (k < n.inputs.size() && n.inputs[k] != ir::kNoValue) {
      set_data(g, n.inputs[k], slice_axis(g.value(n.inputs[k]).data, axis, keep));
    }
  };
  switch (e.kind) {
    case Edit::kRows:
      slice_input(1, 0);
      slice_input(2, 0);
      break;
    case Edit::kDepthwise:
      slice_input(1, 0);
      slice_input(2, 0);
      n.attr<ir::Conv2dAttrs>().groups = static_cast<int>(keep.size());
      break;
    case Edit::kBatchNorm:
      for (size_t k = 1; k < 5; ++k) slice_input(k, 0);
      break;
    case Edit::kInputChannels:
      slice_input(1, 3);
      break;
    case Edit::kColumns: {
      // Flattened NHWC: column (s * C + c) for spatial position s.
      std::vector<int64_t> cols;
      for (int64_t s = 0; s < e.spatial; ++s) {
        for (int64_t c : keep) cols.push_back(s * channels + c);
      }
      const ValueId w = n.inputs[1];
      set_data(g, w, slice_axis(g.value(w).data, 1, cols));
      break;
    }
  }
}

}  // namespace

Expected<int> prune_structured(Graph& g, const StructuredPruneOptions& o,
                               std::map<std::string, std::vector<int64_t>>* kept) {
  if (!(o.fraction >= 0.f && o.fraction < 1.f)) {
    return invalid_argument(fmt::format("structured pruning fraction {} must be in [0, 1)", o.fraction));
  }
  if (o.round_to < 1) return invalid_argument("round_to must be >= 1");
  PCV_RETURN_IF_ERROR(ir::infer_shapes(g));
  int removed = 0;
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    const ir::Node& n = g.nodes[i];
    if (n.op != OpType::kConv2d || o.exclude.count(n.name) || n.attr<ir::Conv2dAttrs>().groups != 1) continue;
    if (!const_f32(g, n.inputs[1])) continue;
    if (n.inputs.size() > 2 && n.inputs[2] != ir::kNoValue && !const_f32(g, n.inputs[2])) continue;
    std::vector<Edit> edits;
    if (!plan_region(g, static_cast<int>(i), &edits)) continue;
    const ir::Value& w = g.value(n.inputs[1]);
    const int64_t channels = w.shape[0];
    const int64_t per = w.data.num_elements() / channels;
    int64_t keep_n = std::llround(static_cast<double>(channels) * (1.0 - o.fraction));
    keep_n = std::max<int64_t>(o.round_to, (keep_n + o.round_to - 1) / o.round_to * o.round_to);
    keep_n = std::min(keep_n, channels);
    if (keep_n == channels) continue;
    std::vector<double> l1(static_cast<size_t>(channels), 0.0);
    for (int64_t c = 0; c < channels; ++c) {
      for (int64_t k = 0; k < per; ++k) l1[static_cast<size_t>(c)] += std::fabs(w.data.data<float>()[c * per + k]);
    }
    for (const Edit& e : edits) {
      const ir::Node& bn = g.nodes[static_cast<size_t>(e.node)];
      if (e.kind != Edit::kBatchNorm || bn.inputs[0] != n.outputs[0]) continue;
      const float eps = bn.attr<ir::BatchNormAttrs>().epsilon;
      const float* gamma = g.value(bn.inputs[1]).data.data<float>();
      const float* var = g.value(bn.inputs[4]).data.data<float>();
      for (int64_t c = 0; c < channels; ++c) {
        l1[static_cast<size_t>(c)] *= std::fabs(gamma[c]) / std::sqrt(std::max(0.f, var[c]) + eps);
      }
    }
    std::vector<int64_t> order(static_cast<size_t>(channels));
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return l1[static_cast<size_t>(a)] > l1[static_cast<size_t>(b)]; });
    std::vector<int64_t> keep(order.begin(), order.begin() + keep_n);
    std::sort(keep.begin(), keep.end());
    const std::string name = n.name;
    for (const Edit& e : edits) apply_edit(g, e, keep, channels);
    PCV_RETURN_IF_ERROR(ir::infer_shapes(g));
    removed += static_cast<int>(channels - keep_n);
    if (kept) (*kept)[name] = keep;
  }
  return removed;
}

}  // namespace pcv::optimize
