// Shared by the libFuzzer targets: after a reader accepts bytes, the model must also pass
// prepare and one run without crashing (prepare validates; run trusts it), under a small
// memory limit so huge-but-valid models are refused rather than allocated.
#pragma once

#include <cstdint>

#include "ir/graph.h"
#include "runtime/session.h"

namespace pcv::fuzz {

inline void exercise_model(const ir::Model& model) {
  runtime::SessionOptions o;
  o.max_memory_bytes = 64 << 20;
  auto session = runtime::Session::create(model, o);
  if (!session) return;
  (void)(*session)->run();
}

}  // namespace pcv::fuzz
