// Helpers for the Core ML tests: zoo models, protoc --decode_raw, weight comparisons.
#pragma once

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "ir/graph.h"
#ifdef PCV_HAVE_VISION
#include "vision/decode.h"
#endif

namespace pcv::coreml::testing {

// simple_cnn at 32 px / mobilenet_v2 0.35 at 64 px, labels "cat", "dog".
ir::Model simple_cnn_32();
ir::Model mobilenet_v2_64();

// Runs `protoc --decode_raw` on `bytes`; returns its stdout ("" and a failure when it fails).
std::string decode_raw(const std::vector<uint8_t>& bytes);

// Field numbers at nesting depth 0 in decode_raw output ("1: 1", "2 {", "403 {").
std::vector<int> top_level_fields(const std::string& decoded);

// Random input tensor for the model's input, in [-1, 1).
ir::Tensor random_input(const ir::Model& m, uint64_t seed);

#ifdef PCV_HAVE_VISION
// A photo as a (1, size, size, 3) input: nearest-neighbour resize and the input spec's
// normalization (our own simple path, independent of vision::preprocess).
ir::Tensor photo_input(const vision::Image& img, const ir::InputSpec& spec, int size = 224);
#endif

// The model with batch norms folded into the preceding convolutions and identities removed
// is not needed: we compare weights by name where both graphs keep them. Returns the constant
// named `name` or nullptr.
const ir::Value* find_constant(const ir::Graph& g, const std::string& name);

// Max |a - b| / max(1, |b|) over two float tensors of equal size (inf on a size mismatch).
double max_rel_diff(const ir::Tensor& a, const ir::Tensor& b);

}  // namespace pcv::coreml::testing
