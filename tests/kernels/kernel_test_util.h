// Small helpers shared by the kernel tests: deterministic random tensors and the float
// value of a quantized computation, for "within one step" checks.
#pragma once

#include <hwy/targets.h>

#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "kernels/gemm/gemm.h"

namespace pcv::kernels::testing {

inline std::vector<float> random_f32(size_t n, uint32_t seed, float lo = -1.0f, float hi = 1.0f) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(n);
  for (auto& x : v) x = dist(rng);
  return v;
}

inline std::vector<int8_t> random_s8(size_t n, uint32_t seed, int lo = -128, int hi = 127) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> dist(lo, hi);
  std::vector<int8_t> v(n);
  for (auto& x : v) x = static_cast<int8_t>(dist(rng));
  return v;
}

inline std::vector<int32_t> random_s32(size_t n, uint32_t seed, int lo, int hi) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> dist(lo, hi);
  std::vector<int32_t> v(n);
  for (auto& x : v) x = dist(rng);
  return v;
}

// round-half-away, then clamp to int8: the ideal quantized value of a real number.
inline int32_t ideal_q8(double real, double scale, int32_t zero_point, int32_t lo = -128,
                        int32_t hi = 127) {
  const double q = std::round(real / scale) + zero_point;
  return static_cast<int32_t>(std::fmin(std::fmax(q, lo), hi));
}

// fn() once per Highway target compiled and supported here, with dispatch pinned to it
// (PCV_FORCE_ISA pins one target: the others are skipped). Callers add their own trace.
template <class Fn>
void for_each_hwy_target(Fn fn) {
  for (int64_t target : hwy::SupportedAndGeneratedTargets()) {
    hwy::SetSupportedTargetsForTest(target);
    if (apply_forced_isa() != nullptr && std::string(apply_forced_isa()) != hwy::TargetName(target)) continue;
    fn(hwy::TargetName(target));
  }
  hwy::SetSupportedTargetsForTest(0);
}

}  // namespace pcv::kernels::testing
