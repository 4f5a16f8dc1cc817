// Preprocess: how a picture becomes a model input. It travels with the model (input spec)
// and is the one description used by training, evaluation, prediction and the camera path:
// preprocessing is never guessed twice.
//
// Geometry, on the upright picture (after rotation/mirror, inside an optional ROI):
//  - kStretch:      the central crop_fraction of each side is resized to out_h x out_w
//                   (tf.image.central_crop + resize; aspect not kept).
//  - kCenterCrop:   the largest centered rectangle with the output's aspect ratio, shrunk by
//                   crop_fraction, is resized to out_h x out_w. With crop_fraction 0.875 and a
//                   square output this is Keras/Inception eval: "resize the short side to
//                   out / 0.875, then take the central out x out".
//  - kFitLetterbox: the central crop_fraction region is scaled to fit inside the output,
//                   aspect kept, centered; the border is pad_value (a 0..255 pixel value,
//                   normalized like any pixel).
// Crop rectangles are continuous (not rounded to whole pixels). Sampling uses half-pixel
// centers: output pixel o of N over a source span [a, a + len) samples the source at
// a + (o + 0.5) * len / N (pixel i covers [i, i + 1)), clamped at the picture's edges.
// Resampling: area averaging by k = floor(scale) when a side is downscaled by >= 2x (block
// means of k x k pixels), then bilinear from the block means for the remaining factor;
// plain bilinear otherwise. Sides are handled separately (k may differ per axis).
//
// Values: pixels are 0..255 (floats after resampling). Per output channel c:
//   value = (pixel - mean[c]) / std[c]
// float32 target: value. int8/uint8 target: q = round_half_away(value / scale) + zero_point,
// clamped to the type's range, computed in the same pass.
// Color: kRGB, kBGR (3 channels) or kGray (1 channel, gray = 0.299 R + 0.587 G + 0.114 B,
// BT.601 luma; a gray source is taken as is). For kGray only mean[0]/std[0] are used.
#pragma once

#include <cstddef>
#include <cstdint>

#include "base/status.h"
#include "vision/decode.h"

namespace pcv::vision {

enum class ResizeMode { kStretch, kCenterCrop, kFitLetterbox };
enum class ColorOrder { kRGB, kBGR, kGray };

struct Preprocess {
  int out_h = 224;
  int out_w = 224;
  ResizeMode mode = ResizeMode::kCenterCrop;
  float crop_fraction = 1.0f;  // in (0, 1]
  ColorOrder color = ColorOrder::kRGB;
  float mean[3] = {0.f, 0.f, 0.f};
  float std[3] = {1.f, 1.f, 1.f};
  float pad_value = 0.f;  // kFitLetterbox border, 0..255 pixel units

  int out_channels() const { return color == ColorOrder::kGray ? 1 : 3; }
  size_t out_elems() const { return static_cast<size_t>(out_h) * out_w * out_channels(); }
};

// Checks sizes (1..16384), crop_fraction in (0, 1], std != 0 and finite.
Status validate(const Preprocess& p);

// Decode options that let JPEG DCT scaling shrink a photo as far as possible without the
// crop ever being upsampled: both sides >= ceil(max(out_h, out_w) / crop_fraction / zoom).
// `zoom` < 1 asks for more pixels (e.g. sqrt(min_area) for random resized crops).
DecodeOptions decode_options_for(const Preprocess& p, float zoom = 1.0f);

enum class TensorType { kFloat32, kInt8, kUInt8 };

// Where the (out_h, out_w, out_channels) HWC result goes (one batch element; the caller
// offsets `data` for batch element b). Not owned.
struct OutputTarget {
  TensorType type = TensorType::kFloat32;
  void* data = nullptr;
  size_t capacity_elems = 0;
  float scale = 1.0f;      // quantized targets only, > 0
  int32_t zero_point = 0;  // quantized targets only, in the type's range

  static OutputTarget float32(float* p, size_t elems) {
    return {TensorType::kFloat32, p, elems, 1.0f, 0};
  }
  static OutputTarget int8(int8_t* p, size_t elems, float scale, int32_t zero_point) {
    return {TensorType::kInt8, p, elems, scale, zero_point};
  }
  static OutputTarget uint8(uint8_t* p, size_t elems, float scale, int32_t zero_point) {
    return {TensorType::kUInt8, p, elems, scale, zero_point};
  }
};

// Upright-space geometry of one conversion, exposed for tests and for drawing overlays:
// the source rectangle (continuous, upright coordinates) and where it lands in the output.
struct ResizePlan {
  double src_x = 0, src_y = 0, src_w = 0, src_h = 0;
  int dst_x = 0, dst_y = 0, dst_w = 0, dst_h = 0;
};
// `roi_*` is the region of the upright picture to use (the whole picture if roi_w <= 0).
ResizePlan plan_resize(int upright_h, int upright_w, const Preprocess& p, int roi_x = 0,
                       int roi_y = 0, int roi_w = 0, int roi_h = 0);

}  // namespace pcv::vision
