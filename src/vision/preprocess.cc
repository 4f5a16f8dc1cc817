#include "vision/preprocess.h"

#include <fmt/core.h>

#include <algorithm>
#include <cmath>

namespace pcv::vision {

Status validate(const Preprocess& p) {
  PCV_ENSURE(p.out_h >= 1 && p.out_h <= 16384 && p.out_w >= 1 && p.out_w <= 16384,
             StatusCode::kInvalidArgument, "preprocess: output size {}x{} outside [1, 16384]",
             p.out_h, p.out_w);
  PCV_ENSURE(p.crop_fraction > 0.f && p.crop_fraction <= 1.f, StatusCode::kInvalidArgument,
             "preprocess: crop_fraction {} outside (0, 1]", p.crop_fraction);
  for (int c = 0; c < p.out_channels(); ++c) {
    PCV_ENSURE(std::isfinite(p.std[c]) && p.std[c] != 0.f && std::isfinite(p.mean[c]),
               StatusCode::kInvalidArgument, "preprocess: mean[{}]={} std[{}]={} invalid", c,
               p.mean[c], c, p.std[c]);
  }
  return Status::ok();
}

DecodeOptions decode_options_for(const Preprocess& p, float zoom) {
  DecodeOptions o;
  const float f = std::clamp(p.crop_fraction, 0.01f, 1.f) * std::clamp(zoom, 0.01f, 1.f);
  const int side = static_cast<int>(std::ceil(std::max(p.out_h, p.out_w) / f));
  o.min_height = side;
  o.min_width = side;
  return o;
}

ResizePlan plan_resize(int upright_h, int upright_w, const Preprocess& p, int roi_x, int roi_y,
                       int roi_w, int roi_h) {
  double rx = 0, ry = 0, rw = upright_w, rh = upright_h;
  if (roi_w > 0 && roi_h > 0) {
    rx = roi_x;
    ry = roi_y;
    rw = roi_w;
    rh = roi_h;
  }
  const double f = p.crop_fraction;
  ResizePlan plan;
  plan.dst_w = p.out_w;
  plan.dst_h = p.out_h;
  double sw = rw * f, sh = rh * f;
  if (p.mode == ResizeMode::kCenterCrop) {
    const double aspect = static_cast<double>(p.out_w) / p.out_h;
    if (rw / rh > aspect) {
      sh = rh * f;
      sw = rh * aspect * f;
    } else {
      sw = rw * f;
      sh = rw / aspect * f;
    }
  }
  plan.src_w = sw;
  plan.src_h = sh;
  plan.src_x = rx + (rw - sw) / 2;
  plan.src_y = ry + (rh - sh) / 2;
  if (p.mode == ResizeMode::kFitLetterbox) {
    const double s = std::min(p.out_w / sw, p.out_h / sh);
    plan.dst_w = std::clamp(static_cast<int>(std::lround(sw * s)), 1, p.out_w);
    plan.dst_h = std::clamp(static_cast<int>(std::lround(sh * s)), 1, p.out_h);
    plan.dst_x = (p.out_w - plan.dst_w) / 2;
    plan.dst_y = (p.out_h - plan.dst_h) / 2;
  }
  return plan;
}

}  // namespace pcv::vision
