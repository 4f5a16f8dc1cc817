#include "runtime/memory_plan.h"

#include <algorithm>
#include <numeric>

namespace pcv::runtime {
namespace {
int64_t align64(int64_t n) { return (n + 63) / 64 * 64; }
}  // namespace

MemoryPlan plan_memory(const std::vector<BufferRequest>& requests, bool share) {
  MemoryPlan plan;
  plan.offsets.assign(requests.size(), 0);
  if (!share) {
    int64_t off = 0;
    for (size_t i = 0; i < requests.size(); ++i) {
      plan.offsets[i] = off;
      off += align64(requests[i].size_bytes);
    }
    plan.arena_bytes = off;
    return plan;
  }
  std::vector<size_t> order(requests.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return requests[a].size_bytes > requests[b].size_bytes;
  });
  std::vector<size_t> placed;
  for (size_t i : order) {
    const BufferRequest& r = requests[i];
    // Intervals already taken by values alive at the same time, sorted by offset.
    std::vector<std::pair<int64_t, int64_t>> busy;
    for (size_t j : placed) {
      const BufferRequest& o = requests[j];
      if (o.last_use < r.first_use || r.last_use < o.first_use) continue;
      busy.emplace_back(plan.offsets[j], plan.offsets[j] + align64(o.size_bytes));
    }
    std::sort(busy.begin(), busy.end());
    int64_t candidate = 0;
    for (auto& [begin, end] : busy) {
      if (candidate + align64(r.size_bytes) <= begin) break;
      candidate = std::max(candidate, end);
    }
    plan.offsets[i] = candidate;
    plan.arena_bytes = std::max(plan.arena_bytes, candidate + align64(r.size_bytes));
    placed.push_back(i);
  }
  return plan;
}

}  // namespace pcv::runtime
