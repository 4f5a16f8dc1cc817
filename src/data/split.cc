#include "data/split.h"

#include <fmt/core.h>

#include <algorithm>
#include <cmath>

#include "data/rng.h"

namespace pcv::data {

Expected<Split> stratified_split(std::span<const int> labels, double val_fraction,
                                 uint64_t seed) {
  PCV_ENSURE(val_fraction >= 0.0 && val_fraction < 1.0, StatusCode::kInvalidArgument,
             "split: val_fraction {} outside [0, 1)", val_fraction);
  int max_label = -1;
  for (int l : labels) {
    PCV_ENSURE(l >= 0, StatusCode::kInvalidArgument, "split: negative label {}", l);
    max_label = std::max(max_label, l);
  }
  std::vector<std::vector<size_t>> by_class(static_cast<size_t>(max_label + 1));
  for (size_t i = 0; i < labels.size(); ++i) by_class[labels[i]].push_back(i);
  Split s;
  for (size_t c = 0; c < by_class.size(); ++c) {
    std::vector<size_t>& idx = by_class[c];
    const size_t n = idx.size();
    size_t n_val = static_cast<size_t>(std::llround(static_cast<double>(n) * val_fraction));
    if (val_fraction > 0.0 && n >= 2) n_val = std::clamp<size_t>(n_val, 1, n - 1);
    if (n < 2) n_val = 0;
    Rng rng(seed, 0x5911u, c);
    rng.shuffle(&idx);
    s.val.insert(s.val.end(), idx.begin(), idx.begin() + static_cast<ptrdiff_t>(n_val));
    s.train.insert(s.train.end(), idx.begin() + static_cast<ptrdiff_t>(n_val), idx.end());
  }
  std::sort(s.train.begin(), s.train.end());
  std::sort(s.val.begin(), s.val.end());
  return s;
}

}  // namespace pcv::data
