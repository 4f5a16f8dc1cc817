// Calibration: the activation ranges that full int8 quantization maps onto [-128, 127].
//
// calibrate() runs the (prepared, f32) model over sample inputs with every intermediate value
// kept, and reduces each f32 activation to a Range by one of three methods:
//   kMinMax:     the observed [min, max] (nothing clipped; outliers stretch the scale);
//   kPercentile: [p_lo, p_hi] = the (100 - percentile) and percentile points of the observed
//                values (default 99.99: clips the rare extremes, finer steps for the rest);
//   kEntropy:    TensorRT's KL-divergence method on |x|: the clip threshold T whose int8
//                histogram (128 levels, 256 for non-negative values) loses the least
//                information, KL(P || Q); range = [max(min, -T), min(max, T)].
// Graph inputs always use kMinMax (clipping the input would clip real pixels).
// Histogram methods take two passes over the samples (the first finds [min, max]).
//
// Numerics: histograms hold 2048 bins over [min, max] (two-sided) and [0, max|x|] (for the
// KL search); a percentile is located to within one bin width (range / 2048).
#pragma once

#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <vector>

#include "base/status.h"
#include "ir/graph.h"
#include "ir/quant.h"

namespace pcv::optimize {

enum class CalibrationMethod : uint8_t { kMinMax, kPercentile, kEntropy };
const char* calibration_method_name(CalibrationMethod m);  // "minmax", "percentile", "entropy"
Expected<CalibrationMethod> calibration_method_from_name(const std::string& name);

struct Range {
  float min = 0.f;
  float max = 0.f;
  bool operator==(const Range&) const = default;
};

struct CalibrationOptions {
  CalibrationMethod method = CalibrationMethod::kMinMax;
  float percentile = 99.99f;  // kPercentile, in (50, 100]
  int bins = 2048;
  int threads = 1;
};

// Fixed-range histogram; values outside [lo, hi] count in the edge bins.
struct Histogram {
  float lo = 0.f, hi = 0.f;
  std::vector<uint64_t> counts;

  Histogram() = default;
  Histogram(float lo_, float hi_, int bins) : lo(lo_), hi(hi_), counts(static_cast<size_t>(bins), 0) {}
  void add(std::span<const float> values);
  // |x| of the non-zero values: zero is exact in every range, and a ReLU's spike of zeros
  // would otherwise dominate the KL search.
  void add_abs(std::span<const float> values);
  uint64_t total() const;
  float bin_width() const { return counts.empty() ? 0.f : (hi - lo) / static_cast<float>(counts.size()); }
};

Range range_minmax(std::span<const float> values);
// [lower, upper] percentile points of a two-sided histogram (bin edges: the range never
// cuts inside the bin holding the percentile, so at most (100 - p)% falls outside each side).
Range range_percentile(const Histogram& h, float percentile);
// KL-optimal clip threshold T on a histogram of |x| (see above): levels = 128 or 256.
float entropy_threshold(const Histogram& abs_hist, int levels);

// The int8 per-tensor asymmetric parameters for a range: widened to contain 0, then
// scale = (max - min) / 255 and zero_point = round(-128 - min / scale) clamped to [-128, 127].
// An empty range (max == min == 0) gets scale 1/255 (any positive scale represents 0 exactly).
ir::QuantParams int8_params(Range r);

// Ranges of every non-constant f32 value of `model` (keyed by value name) over `inputs`
// (each a tensor matching graph input 0, batch 1). `model` must be runnable by the runtime;
// run optimize::prepare_for_inference first so the names match the graph quantize_int8 sees.
// Errors: invalid_argument when `inputs` is empty or a tensor does not match; runtime errors.
Expected<std::map<std::string, Range>> calibrate(const ir::Model& model,
                                                 const std::vector<ir::Tensor>& inputs,
                                                 const CalibrationOptions& options = {});

}  // namespace pcv::optimize
