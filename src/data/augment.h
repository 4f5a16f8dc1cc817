// Training augmentation and the matching evaluation transform, both through vision's one
// resampler (frame_to_tensor) and the model's Preprocess (mean/std, color order, size).
//
// Training sample = random resized crop (area fraction U[scale_min, scale_max] of the
// picture, aspect ratio log-uniform in [ratio_min, ratio_max], 10 tries then the largest
// centered crop with a clamped ratio, as torchvision's RandomResizedCrop) stretched to
// out_h x out_w, horizontal flip with p = 0.5, then color jitter on 0..255 pixels in this
// order: brightness (x b), contrast (blend with the image's mean gray by c), saturation (blend
// with each pixel's gray by s); b, c, s uniform in [1 - x, 1 + x]; clamped to 0..255, then
// normalized. Evaluation sample = image_to_tensor with the Preprocess unchanged (e.g. center
// crop), exactly what prediction does.
#pragma once

#include <cstddef>

#include "base/status.h"
#include "data/rng.h"
#include "vision/frame.h"
#include "vision/image.h"
#include "vision/preprocess.h"

namespace pcv::data {

struct AugmentOptions {
  float scale_min = 0.6f;
  float scale_max = 1.0f;
  float ratio_min = 3.0f / 4.0f;
  float ratio_max = 4.0f / 3.0f;
  bool horizontal_flip = true;
  float brightness = 0.1f;
  float contrast = 0.1f;
  float saturation = 0.1f;
};

// The crop and flip for one sample of an h x w picture (ROI + mirror, upright coordinates).
vision::FrameTransform random_resized_crop(int h, int w, const AugmentOptions& o, Rng& rng);

// Writes one augmented float32 HWC sample (pre.out_h, pre.out_w, pre.out_channels()).
Status augment_to_tensor(const vision::ImageView& img, const vision::Preprocess& pre,
                         const AugmentOptions& o, Rng& rng, float* out, size_t out_elems);

// Evaluation / prediction transform (float32 HWC).
Status eval_to_tensor(const vision::ImageView& img, const vision::Preprocess& pre, float* out,
                      size_t out_elems);

}  // namespace pcv::data
