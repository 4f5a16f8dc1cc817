// Stratified train/validation split: each class contributes round(n_c * val_fraction)
// samples to validation (at least 1 and at most n_c - 1 when n_c >= 2 and val_fraction > 0;
// a class with 1 sample stays in train). Which samples: a per-class shuffle seeded from
// (seed, class), so the split depends only on the labels and the seed. Both index lists come
// back sorted.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "base/status.h"

namespace pcv::data {

struct Split {
  std::vector<size_t> train;
  std::vector<size_t> val;
};

// Errors: invalid_argument when val_fraction is outside [0, 1) or a label is negative.
Expected<Split> stratified_split(std::span<const int> labels, double val_fraction, uint64_t seed);

}  // namespace pcv::data
