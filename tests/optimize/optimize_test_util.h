// Helpers for the optimize tests: zoo models, random inputs, running a model.
#pragma once

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "ir/graph.h"
#include "optimize/samples.h"

namespace pcv::optimize::testing {

// A zoo model (batch 1) with its graph prepared for inference (BN folded, activations fused).
ir::Model zoo_model(const std::string& arch, int size, int channels, int classes, float width = 1.0f,
                    bool prepared = true, uint64_t seed = 1);
// Output 0 of `model` on `input` (f32 in; int8 outputs dequantized).
std::vector<float> run(const ir::Model& model, const ir::Tensor& input);
// Values of graph value `name` after running with keep_all_values (dequantized).
int count_ops(const ir::Graph& g, ir::OpType op);
double max_abs_diff(const std::vector<float>& a, const std::vector<float>& b);
// The node reading / producing a value.
const ir::Node* producer_of(const ir::Graph& g, ir::ValueId v);
int argmax(const std::vector<float>& v);

}  // namespace pcv::optimize::testing
