#include "data/augment.h"

#include <algorithm>
#include <cmath>

namespace pcv::data {

vision::FrameTransform random_resized_crop(int h, int w, const AugmentOptions& o, Rng& rng) {
  vision::FrameTransform t;
  const double area = static_cast<double>(h) * w;
  const double log_lo = std::log(o.ratio_min), log_hi = std::log(o.ratio_max);
  bool found = false;
  for (int attempt = 0; attempt < 10 && !found; ++attempt) {
    const double target = area * rng.uniform(o.scale_min, o.scale_max);
    const double ratio = std::exp(log_lo + (log_hi - log_lo) * rng.uniform());
    const int cw = static_cast<int>(std::lround(std::sqrt(target * ratio)));
    const int ch = static_cast<int>(std::lround(std::sqrt(target / ratio)));
    if (cw >= 1 && ch >= 1 && cw <= w && ch <= h) {
      t.roi_w = cw;
      t.roi_h = ch;
      t.roi_x = static_cast<int>(rng.below(static_cast<uint64_t>(w - cw + 1)));
      t.roi_y = static_cast<int>(rng.below(static_cast<uint64_t>(h - ch + 1)));
      found = true;
    }
  }
  if (!found) {  // largest centered crop with the ratio clamped into range
    const double r = static_cast<double>(w) / h;
    if (r < o.ratio_min) {
      t.roi_w = w;
      t.roi_h = std::clamp(static_cast<int>(std::lround(w / o.ratio_min)), 1, h);
    } else if (r > o.ratio_max) {
      t.roi_h = h;
      t.roi_w = std::clamp(static_cast<int>(std::lround(h * o.ratio_max)), 1, w);
    } else {
      t.roi_w = w;
      t.roi_h = h;
    }
    t.roi_x = (w - t.roi_w) / 2;
    t.roi_y = (h - t.roi_h) / 2;
  }
  // Always draw the flip so the sequence length does not depend on the options.
  const bool flip = rng.uniform() < 0.5f;
  t.mirror = o.horizontal_flip && flip;
  return t;
}

Status augment_to_tensor(const vision::ImageView& img, const vision::Preprocess& pre,
                         const AugmentOptions& o, Rng& rng, float* out, size_t out_elems) {
  vision::Preprocess p = pre;
  p.mode = vision::ResizeMode::kStretch;  // the random crop replaces the center crop
  p.crop_fraction = 1.0f;
  const vision::FrameTransform t = random_resized_crop(img.height, img.width, o, rng);
  PCV_RETURN_IF_ERROR(
      vision::image_to_tensor(img, p, vision::OutputTarget::float32(out, out_elems), t));

  const float b = rng.uniform(1.f - o.brightness, 1.f + o.brightness);
  const float c = rng.uniform(1.f - o.contrast, 1.f + o.contrast);
  const float s = rng.uniform(1.f - o.saturation, 1.f + o.saturation);
  const int C = p.out_channels();
  const size_t n = static_cast<size_t>(p.out_h) * p.out_w;
  // Channel positions of R, G, B in the output (gray: all 0).
  int ir = 0, ig = 0, ib = 0;
  if (C == 3) {
    const bool bgr = p.color == vision::ColorOrder::kBGR;
    ir = bgr ? 2 : 0;
    ig = 1;
    ib = bgr ? 0 : 2;
  }
  // Back to 0..255 pixels, brightness, and the mean gray for contrast.
  double gray_sum = 0;
  for (size_t i = 0; i < n; ++i) {
    float* px = out + i * C;
    for (int k = 0; k < C; ++k) px[k] = (px[k] * p.std[k] + p.mean[k]) * b;
    gray_sum += C == 3 ? 0.299f * px[ir] + 0.587f * px[ig] + 0.114f * px[ib] : px[0];
  }
  const float mean_gray = static_cast<float>(gray_sum / static_cast<double>(n));
  for (size_t i = 0; i < n; ++i) {
    float* px = out + i * C;
    for (int k = 0; k < C; ++k) px[k] = (px[k] - mean_gray) * c + mean_gray;
    if (C == 3) {
      const float g = 0.299f * px[ir] + 0.587f * px[ig] + 0.114f * px[ib];
      for (int k = 0; k < 3; ++k) px[k] = (px[k] - g) * s + g;
    }
    for (int k = 0; k < C; ++k) px[k] = (std::clamp(px[k], 0.f, 255.f) - p.mean[k]) / p.std[k];
  }
  return Status::ok();
}

Status eval_to_tensor(const vision::ImageView& img, const vision::Preprocess& pre, float* out,
                      size_t out_elems) {
  return vision::image_to_tensor(img, pre, vision::OutputTarget::float32(out, out_elems));
}

}  // namespace pcv::data
