#include "optimize/calibration.h"

#include <fmt/core.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "runtime/session.h"

namespace pcv::optimize {

const char* calibration_method_name(CalibrationMethod m) {
  switch (m) {
    case CalibrationMethod::kMinMax: return "minmax";
    case CalibrationMethod::kPercentile: return "percentile";
    case CalibrationMethod::kEntropy: return "entropy";
  }
  return "?";
}

Expected<CalibrationMethod> calibration_method_from_name(const std::string& name) {
  if (name == "minmax") return CalibrationMethod::kMinMax;
  if (name == "percentile") return CalibrationMethod::kPercentile;
  if (name == "entropy" || name == "kl") return CalibrationMethod::kEntropy;
  return invalid_argument(fmt::format("unknown calibration method '{}' (minmax, percentile, entropy)", name));
}

namespace {

size_t bin_of(float v, float lo, float hi, size_t bins) {
  if (!(hi > lo)) return 0;
  const double t = (static_cast<double>(v) - lo) / (static_cast<double>(hi) - lo) * static_cast<double>(bins);
  if (!(t > 0)) return 0;  // also NaN
  return std::min(bins - 1, static_cast<size_t>(t));
}

}  // namespace

void Histogram::add(std::span<const float> values) {
  for (float v : values) ++counts[bin_of(v, lo, hi, counts.size())];
}

void Histogram::add_abs(std::span<const float> values) {
  for (float v : values) {
    if (v != 0.f) ++counts[bin_of(std::fabs(v), lo, hi, counts.size())];
  }
}

uint64_t Histogram::total() const {
  uint64_t t = 0;
  for (uint64_t c : counts) t += c;
  return t;
}

Range range_minmax(std::span<const float> values) {
  if (values.empty()) return {};
  Range r{std::numeric_limits<float>::infinity(), -std::numeric_limits<float>::infinity()};
  for (float v : values) {
    if (!std::isfinite(v)) continue;
    r.min = std::min(r.min, v);
    r.max = std::max(r.max, v);
  }
  if (r.min > r.max) return {};
  return r;
}

Range range_percentile(const Histogram& h, float percentile) {
  const uint64_t total = h.total();
  if (total == 0 || h.counts.empty()) return {h.lo, h.hi};
  const double tail = (100.0 - static_cast<double>(percentile)) / 100.0 * static_cast<double>(total);
  const size_t bins = h.counts.size();
  const float w = h.bin_width();
  // Lower: the first bin after which more than `tail` values have been seen; its left edge.
  size_t lo_bin = 0;
  for (uint64_t acc = 0; lo_bin < bins; ++lo_bin) {
    acc += h.counts[lo_bin];
    if (static_cast<double>(acc) > tail) break;
  }
  size_t hi_bin = bins - 1;
  for (uint64_t acc = 0;; --hi_bin) {
    acc += h.counts[hi_bin];
    if (static_cast<double>(acc) > tail || hi_bin == 0) break;
  }
  Range r{h.lo + w * static_cast<float>(lo_bin), h.lo + w * static_cast<float>(hi_bin + 1)};
  if (lo_bin == 0) r.min = h.lo;
  if (hi_bin == bins - 1) r.max = h.hi;
  if (r.min > r.max) std::swap(r.min, r.max);
  return r;
}

float entropy_threshold(const Histogram& abs_hist, int levels) {
  const size_t bins = abs_hist.counts.size();
  const float w = abs_hist.bin_width();
  const size_t nq = static_cast<size_t>(std::max(2, levels));
  if (bins <= nq || abs_hist.total() == 0) return abs_hist.hi;
  const std::vector<uint64_t>& hist = abs_hist.counts;
  std::vector<double> p, q;
  double best_kl = std::numeric_limits<double>::infinity();
  size_t best_i = bins;
  uint64_t outliers = 0;
  for (size_t k = nq; k < bins; ++k) outliers += hist[k];
  for (size_t i = nq; i <= bins; ++i) {
    if (i > nq) outliers -= hist[i - 1];
    // P: the first i bins, everything beyond folded into the last one (clipping).
    p.assign(hist.begin(), hist.begin() + static_cast<std::ptrdiff_t>(i));
    p[i - 1] += static_cast<double>(outliers);
    // Q: the first i bins (without the folded outliers) merged into nq levels, each level's
    // mass spread evenly over the bins where P is non-empty.
    q.assign(i, 0.0);
    for (size_t j = 0; j < nq; ++j) {
      const size_t start = j * i / nq, stop = (j + 1) * i / nq;
      double sum = 0;
      size_t nonzero = 0;
      for (size_t b = start; b < stop; ++b) {
        sum += static_cast<double>(hist[b]);
        nonzero += p[b] != 0;
      }
      if (nonzero == 0) continue;
      for (size_t b = start; b < stop; ++b) {
        if (p[b] != 0) q[b] = sum / static_cast<double>(nonzero);
      }
    }
    double psum = 0, qsum = 0;
    for (size_t b = 0; b < i; ++b) {
      psum += p[b];
      qsum += q[b];
    }
    if (psum <= 0 || qsum <= 0) continue;
    double kl = 0;
    for (size_t b = 0; b < i; ++b) {
      if (p[b] <= 0) continue;
      const double pb = p[b] / psum;
      // The folded outlier bin may have mass where Q has none: a small floor keeps KL finite.
      const double qb = std::max(q[b] / qsum, 1e-12);
      kl += pb * std::log(pb / qb);
    }
    if (kl < best_kl) {
      best_kl = kl;
      best_i = i;
    }
  }
  return abs_hist.lo + w * static_cast<float>(best_i);
}

ir::QuantParams int8_params(Range r) {
  const double lo = std::min(0.0, static_cast<double>(r.min));
  const double hi = std::max(0.0, static_cast<double>(r.max));
  if (!(hi > lo)) return ir::QuantParams::per_tensor(1.f / 255.f, -128);
  const double scale = (hi - lo) / 255.0;
  const double zp = std::round(-128.0 - lo / scale);
  return ir::QuantParams::per_tensor(static_cast<float>(scale),
                                     static_cast<int32_t>(std::clamp(zp, -128.0, 127.0)));
}

Expected<std::map<std::string, Range>> calibrate(const ir::Model& model,
                                                 const std::vector<ir::Tensor>& inputs,
                                                 const CalibrationOptions& options) {
  if (inputs.empty()) return invalid_argument("calibration needs at least one input sample");
  if (options.bins < 16) return invalid_argument(fmt::format("calibration bins {} < 16", options.bins));
  if (options.method == CalibrationMethod::kPercentile && !(options.percentile > 50.f && options.percentile <= 100.f)) {
    return invalid_argument(fmt::format("percentile {} must be in (50, 100]", options.percentile));
  }
  runtime::SessionOptions so;
  so.keep_all_values = true;
  so.optimize_graph = false;
  so.threads = options.threads;
  PCV_ASSIGN_OR_RETURN(auto session, runtime::Session::create(model, so));
  const ir::Graph& g = session->graph();
  if (session->num_inputs() != 1) return unsupported("calibration supports models with one input");
  // Observed values: non-constant f32 values.
  std::vector<ir::ValueId> ids;
  for (size_t v = 0; v < g.values.size(); ++v) {
    const ir::Value& val = g.values[v];
    if (val.dtype == ir::DType::kF32 && !val.is_constant()) ids.push_back(static_cast<ir::ValueId>(v));
  }
  const auto is_input = [&](ir::ValueId v) { return std::find(g.inputs.begin(), g.inputs.end(), v) != g.inputs.end(); };
  auto run_one = [&](const ir::Tensor& x) -> Status {
    ir::Tensor& in = session->input(0);
    if (x.dtype() != in.dtype() || x.size_bytes() != in.size_bytes()) {
      return invalid_argument(fmt::format("calibration sample {} {} does not match input {} {}",
                                          ir::dtype_name(x.dtype()), ir::shape_to_string(x.shape()),
                                          ir::dtype_name(in.dtype()), ir::shape_to_string(in.shape())));
    }
    std::memcpy(in.raw(), x.raw(), x.size_bytes());
    return session->run();
  };
  auto values_of = [&](ir::ValueId v) {
    const ir::Tensor t = session->value(v);
    return std::span<const float>(t.data<float>(), static_cast<size_t>(t.num_elements()));
  };
  std::vector<Range> mm(ids.size(), Range{std::numeric_limits<float>::infinity(), -std::numeric_limits<float>::infinity()});
  for (const ir::Tensor& x : inputs) {
    PCV_RETURN_IF_ERROR(run_one(x));
    for (size_t k = 0; k < ids.size(); ++k) {
      if (session->value(ids[k]).empty()) continue;
      const Range r = range_minmax(values_of(ids[k]));
      mm[k].min = std::min(mm[k].min, r.min);
      mm[k].max = std::max(mm[k].max, r.max);
    }
  }
  for (Range& r : mm) {
    if (r.min > r.max) r = {};
  }
  std::map<std::string, Range> out;
  if (options.method == CalibrationMethod::kMinMax) {
    for (size_t k = 0; k < ids.size(); ++k) out[g.value(ids[k]).name] = mm[k];
    return out;
  }
  std::vector<Histogram> signed_h(ids.size()), abs_h(ids.size());
  for (size_t k = 0; k < ids.size(); ++k) {
    signed_h[k] = Histogram(mm[k].min, mm[k].max, options.bins);
    abs_h[k] = Histogram(0.f, std::max(std::fabs(mm[k].min), std::fabs(mm[k].max)), options.bins);
  }
  for (const ir::Tensor& x : inputs) {
    PCV_RETURN_IF_ERROR(run_one(x));
    for (size_t k = 0; k < ids.size(); ++k) {
      if (session->value(ids[k]).empty()) continue;
      if (options.method == CalibrationMethod::kPercentile) signed_h[k].add(values_of(ids[k]));
      else abs_h[k].add_abs(values_of(ids[k]));
    }
  }
  for (size_t k = 0; k < ids.size(); ++k) {
    Range r = mm[k];
    if (!is_input(ids[k])) {
      if (options.method == CalibrationMethod::kPercentile) {
        r = range_percentile(signed_h[k], options.percentile);
      } else {
        const int levels = mm[k].min >= 0.f ? 256 : 128;
        const float t = entropy_threshold(abs_h[k], levels);
        r = {std::max(mm[k].min, -t), std::min(mm[k].max, t)};
      }
    }
    out[g.value(ids[k]).name] = r;
  }
  return out;
}

}  // namespace pcv::optimize
