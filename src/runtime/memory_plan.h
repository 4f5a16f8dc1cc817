// Activation memory planning: one arena, values with disjoint lifetimes share bytes.
//
// Greedy by size (as TFLite's arena planner): values sorted by size, largest first; each
// takes the lowest 64-byte aligned offset that does not overlap any already placed value
// whose lifetime [first, last] intersects its own. Never worse than giving every value its
// own buffer; on MobileNetV2 the arena is a few times the largest activation.
#pragma once

#include <cstdint>
#include <vector>

namespace pcv::runtime {

struct BufferRequest {
  int64_t size_bytes = 0;
  int first_use = 0;  // step that writes it (-1: before the first step, e.g. graph inputs)
  int last_use = 0;   // last step that reads it (INT32_MAX: graph outputs)
};

struct MemoryPlan {
  std::vector<int64_t> offsets;  // per request
  int64_t arena_bytes = 0;
};

// `share` false: every request gets its own bytes (for keeping all values observable).
MemoryPlan plan_memory(const std::vector<BufferRequest>& requests, bool share);

}  // namespace pcv::runtime
