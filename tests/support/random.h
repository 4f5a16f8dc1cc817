// Random test inputs: the same values for a seed on every machine (mt19937_64, uniform floats).
#pragma once

#include <cstdint>

#include "ir/graph.h"

namespace pcv::testing {

// f32 tensor of `shape`, uniform in [lo, hi).
ir::Tensor uniform_tensor(const ir::Shape& shape, uint64_t seed, float lo = -1.f, float hi = 1.f);
// The same for graph input 0 of `g`.
ir::Tensor uniform_input(const ir::Graph& g, uint64_t seed, float lo = -1.f, float hi = 1.f);

}  // namespace pcv::testing
