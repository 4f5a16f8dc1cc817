#include "support/random.h"

#include <random>

namespace pcv::testing {

ir::Tensor uniform_tensor(const ir::Shape& shape, uint64_t seed, float lo, float hi) {
  ir::Tensor t(ir::DType::kF32, shape);
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> d(lo, hi);
  for (int64_t i = 0; i < t.num_elements(); ++i) t.data<float>()[i] = d(rng);
  return t;
}

ir::Tensor uniform_input(const ir::Graph& g, uint64_t seed, float lo, float hi) {
  return uniform_tensor(g.value(g.inputs[0]).shape, seed, lo, hi);
}

}  // namespace pcv::testing
