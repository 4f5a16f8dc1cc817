#include "capi/classify.h"

#include <algorithm>
#include <cmath>

namespace pcv::capi {

bool output_is_softmax(const ir::Graph& graph, int index) {
  if (index < 0 || index >= static_cast<int>(graph.outputs.size())) return false;
  ir::ValueId v = graph.outputs[static_cast<size_t>(index)];
  for (int hops = 0; hops < 16; ++hops) {
    const int n = graph.producer(v);
    if (n < 0) return false;
    const ir::Node& node = graph.nodes[static_cast<size_t>(n)];
    switch (node.op) {
      case ir::OpType::kSoftmax: return true;
      case ir::OpType::kReshape:
      case ir::OpType::kFlatten:
      case ir::OpType::kDropout:
      case ir::OpType::kQuantize:
      case ir::OpType::kDequantize:
        if (node.inputs.empty()) return false;
        v = node.inputs[0];
        break;
      default: return false;
    }
  }
  return false;
}

bool output_probabilities(const ir::Tensor& out, const ir::QuantParams& quant, bool is_softmax,
                          std::vector<float>& probs) {
  const auto& shape = out.shape();
  const int64_t classes = shape.empty() ? 1 : shape.back();
  if (classes <= 0 || out.num_elements() < classes) return false;
  probs.resize(static_cast<size_t>(classes));
  const float scale = quant.empty() ? 1.f : quant.scale[0];
  const int32_t zp = quant.zero_point.empty() ? 0 : quant.zero_point[0];
  switch (out.dtype()) {
    case ir::DType::kF32:
      std::copy_n(out.data<float>(), classes, probs.begin());
      break;
    case ir::DType::kI8:
      for (int64_t i = 0; i < classes; ++i) probs[i] = scale * static_cast<float>(out.data<int8_t>()[i] - zp);
      break;
    case ir::DType::kU8:
      for (int64_t i = 0; i < classes; ++i) probs[i] = scale * static_cast<float>(out.data<uint8_t>()[i] - zp);
      break;
    default: return false;
  }
  if (!is_softmax) {
    double sum = 0;
    bool in_range = true;
    for (float p : probs) {
      in_range = in_range && p >= 0.f && p <= 1.f;
      sum += p;
    }
    is_softmax = in_range && std::abs(sum - 1.0) <= 1e-3;
  }
  if (is_softmax) {
    // Quantized probabilities can sum a step above 1: clamp each, keep the order.
    for (float& p : probs) p = std::clamp(std::isfinite(p) ? p : 0.f, 0.f, 1.f);
    return true;
  }
  // softmax(x) = exp(x - max) / sum(exp(x - max)): every exponent <= 0, so no overflow;
  // the sum is >= 1 (the max term), so no division by zero. NaN logits give 0.
  float mx = -INFINITY;
  for (float x : probs) {
    if (x > mx) mx = x;
  }
  if (!std::isfinite(mx)) mx = 0.f;
  double sum = 0;
  for (float& x : probs) {
    x = std::isnan(x) ? 0.f : std::exp(x - mx);
    sum += x;
  }
  const float inv = sum > 0 ? static_cast<float>(1.0 / sum) : 0.f;
  for (float& x : probs) x *= inv;
  return true;
}

std::span<const int32_t> top_k_indices(std::span<const float> probs, int k, std::vector<int32_t>& order) {
  order.resize(probs.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = static_cast<int32_t>(i);
  const size_t n = std::min(order.size(), static_cast<size_t>(std::max(k, 0)));
  std::partial_sort(order.begin(), order.begin() + static_cast<long>(n), order.end(), [&](int32_t a, int32_t b) {
    return probs[a] > probs[b] || (probs[a] == probs[b] && a < b);
  });
  return {order.data(), n};
}

}  // namespace pcv::capi
