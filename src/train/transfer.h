// Transfer learning on IR models: make any readable model trainable, keep its feature
// extractor, put a new classifier head on it.
//
// dequantize_model: quantized IR -> float IR.
//   before:  x(u8, s=1/128, zp=128) -> conv(w: u8 per-channel, b: i32) -> y(u8) -> dequantize -> z(f32)
//   after:   x(f32)                 -> conv(w: f32,             b: f32) -> y(f32) ----------------> z
// Constants of dtype i8/u8/i32 with quantization parameters become f32 (real = scale * (q - zp),
// per tensor or per channel along `quant.axis`), f16 constants become f32, activations become
// f32 with their quantization dropped, and quantize/dequantize nodes disappear (their
// consumers read the node's input). The input spec is unchanged: it already maps pixels to
// real values, which is what the float input now takes.
//
// replace_head: keeps the backbone (every node needed for the feature value) and adds
//   features (N, 1, 1, C) or (N, C) -> [flatten] -> head/logits: fully_connected (classes)
//   -> head/probabilities: softmax
// The feature value is the output of the last global pooling (mean over H and W, or an
// average pool whose window covers the whole feature map); without one, the input of the last
// fully_connected (or of the last 1x1 conv on a 1x1 map, TFLite's classifier form). The new
// dense layer is Glorot-uniform initialized from `seed`, bias zero. Backbone conv/dense
// weights and biases and batch-norm gamma/beta are marked trainable (readers do not mark
// them); batch-norm running statistics are not.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/status.h"
#include "ir/graph.h"

namespace pcv::train {

inline constexpr const char* kHeadPrefix = "head/";

Status dequantize_model(ir::Model* model);

struct HeadReplacement {
  ir::Model model;           // backbone + new head
  ir::Model backbone;        // backbone only: output = features (N, C) (for feature caching)
  std::string feature_name;  // the cut value in the source model
  int64_t feature_channels = 0;
  int removed_nodes = 0;     // nodes of the old head
};

// `labels`: class names (their count is the class count, >= 2).
Expected<HeadReplacement> replace_head(const ir::Model& source,
                                       const std::vector<std::string>& labels, uint64_t seed);

inline bool is_head_parameter(const std::string& name) {
  return name.rfind(kHeadPrefix, 0) == 0;
}

}  // namespace pcv::train
