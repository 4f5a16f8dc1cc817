/* Force-included by aarch64-linux-gnu.cmake: Highway compiles NEON only (no SVE variants).
   Expanded where Highway tests it, after hwy/detect_targets.h has defined the target bits. */
#ifndef PCV_HWY_NEON_ONLY_H_
#define PCV_HWY_NEON_ONLY_H_
#define HWY_DISABLED_TARGETS (HWY_SVE | HWY_SVE2 | HWY_SVE_256 | HWY_SVE2_128)
#endif
