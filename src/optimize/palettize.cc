// Palettization: per-tensor 1-D k-means weight clustering (passes.h).
#include <fmt/core.h>

#include <algorithm>
#include <cmath>
#include <numeric>

#include "optimize/passes.h"

namespace pcv::optimize {

std::vector<float> kmeans_1d(const float* values, size_t n, int k, int max_iterations,
                             std::vector<uint16_t>* assignment) {
  std::vector<float> sorted(values, values + n);
  std::sort(sorted.begin(), sorted.end());
  std::vector<float> distinct = sorted;
  distinct.erase(std::unique(distinct.begin(), distinct.end()), distinct.end());
  std::vector<float> centers;
  if (distinct.size() <= static_cast<size_t>(k)) {
    centers = distinct;  // already representable exactly
  } else {
    // Prefix sums over the sorted values: a cluster is a contiguous run [lo, hi).
    std::vector<double> prefix(n + 1, 0.0);
    for (size_t i = 0; i < n; ++i) prefix[i + 1] = prefix[i] + static_cast<double>(sorted[i]);
    centers.resize(static_cast<size_t>(k));
    for (int j = 0; j < k; ++j) {  // quantile initialization
      const size_t at = std::min(n - 1, static_cast<size_t>((static_cast<double>(j) + 0.5) / k * static_cast<double>(n)));
      centers[static_cast<size_t>(j)] = sorted[at];
    }
    centers.erase(std::unique(centers.begin(), centers.end()), centers.end());
    // Quantiles can collide on repeated values: fill up from the distinct values.
    for (size_t d = 0; centers.size() < static_cast<size_t>(k) && d < distinct.size(); ++d) {
      if (!std::binary_search(centers.begin(), centers.end(), distinct[d])) {
        centers.insert(std::upper_bound(centers.begin(), centers.end(), distinct[d]), distinct[d]);
      }
    }
    for (int iter = 0; iter < max_iterations; ++iter) {
      std::vector<float> next;
      next.reserve(centers.size());
      size_t lo = 0;
      for (size_t j = 0; j < centers.size(); ++j) {
        // Boundary with the next center: the midpoint.
        size_t hi = n;
        if (j + 1 < centers.size()) {
          const float mid = centers[j] + (centers[j + 1] - centers[j]) * 0.5f;
          hi = static_cast<size_t>(std::upper_bound(sorted.begin() + static_cast<std::ptrdiff_t>(lo), sorted.end(), mid) - sorted.begin());
        }
        if (hi > lo) next.push_back(static_cast<float>((prefix[hi] - prefix[lo]) / static_cast<double>(hi - lo)));
        lo = hi;
      }
      std::sort(next.begin(), next.end());
      next.erase(std::unique(next.begin(), next.end()), next.end());
      if (next == centers) break;
      centers = std::move(next);
    }
  }
  if (assignment) {
    assignment->resize(n);
    for (size_t i = 0; i < n; ++i) {
      auto it = std::lower_bound(centers.begin(), centers.end(), values[i]);
      size_t j = static_cast<size_t>(it - centers.begin());
      if (j == centers.size() || (j > 0 && values[i] - centers[j - 1] <= centers[j] - values[i])) --j;
      (*assignment)[i] = static_cast<uint16_t>(j);
    }
  }
  return centers;
}

Expected<PalettizationInfo> palettize(ir::Graph& g, const PalettizeOptions& o) {
  if (o.bits < 1 || o.bits > 8) return invalid_argument(fmt::format("palettization bits {} must be 1..8", o.bits));
  PalettizationInfo info;
  for (const WeightUse& u : find_weights(g, o.exclude, o.min_elements)) {
    ir::Value& w = g.value(u.weight);
    if (info.count(w.name)) continue;
    const auto n = static_cast<size_t>(w.data.num_elements());
    std::vector<uint16_t> assign;
    std::vector<float> lut = kmeans_1d(w.data.data<float>(), n, 1 << o.bits, o.max_iterations, &assign);
    ir::Tensor t(ir::DType::kF32, w.shape);
    for (size_t i = 0; i < n; ++i) t.data<float>()[i] = lut[assign[i]];
    w.data = std::move(t);
    info[w.name] = PaletteEntry{o.bits, std::move(lut)};
  }
  return info;
}

}  // namespace pcv::optimize
