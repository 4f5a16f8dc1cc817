// Camera frames and pictures -> model input, in one pass: frame_to_tensor.
//
// The frame is never copied or rotated as a whole. For each output pixel the source position
// in the rotated / mirrored / cropped frame is computed and sampled (area averaging + bilinear,
// see preprocess.h), converting YUV -> RGB and normalizing or quantizing while writing the
// model input. Images use the same function (image_to_tensor wraps an ImageView as a Frame),
// so a photo and a camera frame of the same scene give the same input up to chroma
// subsampling.
//
// YUV -> RGB: BT.601 full range (JFIF; what Android's camera delivers):
//   R = Y + 1.402 (V - 128)
//   G = Y - 0.344136 (U - 128) - 0.714136 (V - 128)
//   B = Y + 1.772 (U - 128)
// clamped to 0..255. Resampling is done on Y, U and V separately (each on its own grid), and
// the conversion applied to the resampled values. 4:2:0 chroma is center-sited: chroma sample
// (i, j) covers luma pixels [2i, 2i + 2) x [2j, 2j + 2); odd sides round the chroma size up.
//
// Thread safety: reentrant; scratch buffers are per thread and reused (no allocation after
// the first call of a given size on a thread).
#pragma once

#include <cstdint>

#include "base/status.h"
#include "vision/image.h"
#include "vision/preprocess.h"

namespace pcv::vision {

enum class FrameFormat {
  kNV21,        // planes[0] Y; planes[1] interleaved V,U (pixel stride 2), half size (Android)
  kNV12,        // planes[0] Y; planes[1] interleaved U,V
  kI420,        // planes[0] Y, planes[1] U, planes[2] V, each pixel stride 1
  kYUV_420_888, // as I420 but every plane has its own row and pixel stride (Android Image)
  kBGRA,        // planes[0], 4 bytes per pixel
  kRGBA,        // planes[0], 4 bytes per pixel
  kRGB,         // planes[0], 3 bytes per pixel
  kGray,        // planes[0], 1 byte per pixel
};

struct FramePlane {
  const uint8_t* data = nullptr;
  int row_stride_bytes = 0;    // 0 = packed
  int pixel_stride_bytes = 0;  // 0 = the format's default (1, 2 for NV21/NV12 chroma, 3, 4)
};

// A view of one frame; nothing is owned.
struct Frame {
  FrameFormat format = FrameFormat::kRGB;
  int width = 0;   // luma / pixel size
  int height = 0;
  FramePlane planes[3];
};

// How the frame is turned upright before cropping (see rotate_image in image.h):
// upright = mirror_h(rotate_cw(frame, rotation)). Android: rotation = the sensor orientation
// (adjusted for the display); mirror = true for the front camera. `roi_*`, if roi_w > 0,
// selects a region of the upright frame (pixels) that then goes through Preprocess.
struct FrameTransform {
  Rotation rotation = Rotation::k0;
  bool mirror = false;
  int roi_x = 0, roi_y = 0, roi_w = 0, roi_h = 0;
};

// Writes the (out_h, out_w, out_channels) HWC input for `pre` into `out`.
// Errors (invalid_argument): bad frame (null plane, strides too small, zero size), ROI outside
// the upright frame, invalid Preprocess, too small a target, bad quantization parameters.
Status frame_to_tensor(const Frame& frame, const FrameTransform& transform,
                       const Preprocess& pre, OutputTarget out);

// A 1-, 3- or 4-channel (RGBA) image as a frame (a view, valid while `img` is).
Frame frame_from_image(const ImageView& img);

// frame_to_tensor(frame_from_image(img), transform, pre, out).
Status image_to_tensor(const ImageView& img, const Preprocess& pre, OutputTarget out,
                       const FrameTransform& transform = {});

// Resizes (stretch) with the same resampler; 1-channel stays gray, 3/4 channels give RGB.
// Values are rounded to the nearest integer.
Expected<Image> resize_image(const ImageView& img, int out_h, int out_w);

}  // namespace pcv::vision
