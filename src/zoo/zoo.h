// The model zoo: builders for the architectures pocketcv creates, trains and benchmarks,
// with seeded random initialization (He-normal convolutions, Glorot-uniform dense layers,
// batch norm gamma=1 beta=0 mean=0 var=1, zero biases).
//
// simple_cnn: the tutorial CNN. Blocks of conv3x3 (VALID) + ReLU + maxpool 2x2, widths
//   32, 64, 128, 128 (as many blocks as the input size allows, at most 4), flatten,
//   dense 512 + ReLU, dropout 0.5, dense classes, softmax. At 224x224x3 this is the "Small CNN"
//   of the anchors: 1.111 GFLOP.
// mobilenet_v2: MobileNetV2 (inverted residuals, linear bottlenecks) with a width multiplier
//   (channels rounded to multiples of 8) and any input size >= 32; batch norm after every conv
//   (folded by the exporters); global average pool, dense classes, softmax. 1.0 at 224: 3.5M
//   parameters (with 1000 classes), 0.60 GFLOP.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/status.h"
#include "ir/graph.h"

namespace pcv::zoo {

struct ZooOptions {
  std::string arch = "simple_cnn";  // simple_cnn | mobilenet_v2
  int size = 224;                   // input height = width
  int channels = 3;                 // 3 (RGB) or 1 (grayscale)
  int classes = 2;
  float width = 1.0f;               // mobilenet_v2 width multiplier
  uint64_t seed = 1;
  int batch = 1;
  std::vector<std::string> labels;  // optional; default "class0".."classN-1"
};

Expected<ir::Model> create_model(const ZooOptions& options);
const std::vector<std::string>& zoo_architectures();

// Multiply-accumulate count of a graph's conv and dense layers (FLOPs = 2 * MACs).
int64_t count_macs(const ir::Graph& graph);

}  // namespace pcv::zoo
