// Output 0 -> class probabilities -> top-k: the post-processing behind pcv_session_top_k.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "ir/graph.h"
#include "ir/tensor.h"

namespace pcv::capi {

// True when output `index` of the graph is a softmax, possibly behind shape-only or
// (de)quantization nodes (reshape, flatten, dropout, quantize, dequantize).
bool output_is_softmax(const ir::Graph& graph, int index);

// Batch element 0 of an output tensor (its last axis; f32, i8 or u8 with per-tensor quant)
// as probabilities in `probs` (resized; no allocation once big enough). Dequantizes; applies
// a numerically stable softmax unless `is_softmax` or the values already are a distribution
// (all in [0, 1], sum within 1e-3 of 1). Returns false for other dtypes.
bool output_probabilities(const ir::Tensor& out, const ir::QuantParams& quant, bool is_softmax,
                          std::vector<float>& probs);

// Indices of the k largest values, highest first, ties by lower index. `order` is scratch
// (resized to probs.size()); the result is its first min(k, size) entries.
std::span<const int32_t> top_k_indices(std::span<const float> probs, int k,
                                       std::vector<int32_t>& order);

}  // namespace pcv::capi
