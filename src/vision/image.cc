#include "vision/image.h"

#include <cstring>

namespace pcv::vision {

ImageView ImageView::crop(int top, int left, int crop_height, int crop_width) const {
  ImageView v = *this;
  v.data = pixel(top, left);
  v.height = crop_height;
  v.width = crop_width;
  return v;
}

Image::Image(int height, int width, int channels)
    : height_(height > 0 ? height : 0),
      width_(width > 0 ? width : 0),
      channels_(channels),
      pixels_(static_cast<size_t>(height_) * width_ * channels) {}

Image Image::copy_of(const ImageView& v) {
  Image img(v.height, v.width, v.channels);
  const size_t row_bytes = img.row_stride_bytes();
  for (int y = 0; y < v.height; ++y) std::memcpy(img.row(y), v.row(y), row_bytes);
  return img;
}

void exif_orientation_transform(int orientation, Rotation* rotation, bool* mirror) {
  static constexpr Rotation kRot[9] = {Rotation::k0,   Rotation::k0,  Rotation::k0,
                                       Rotation::k180, Rotation::k180, Rotation::k90,
                                       Rotation::k90,  Rotation::k270, Rotation::k270};
  static constexpr bool kMirror[9] = {false, false, true, false, true, true, false, true, false};
  if (orientation < 1 || orientation > 8) orientation = 1;
  *rotation = kRot[orientation];
  *mirror = kMirror[orientation];
}

Image rotate_image(const ImageView& src, Rotation rotation, bool mirror) {
  const bool swap = rotation == Rotation::k90 || rotation == Rotation::k270;
  const int out_h = swap ? src.width : src.height;
  const int out_w = swap ? src.height : src.width;
  const int c = src.channels;
  Image out(out_h, out_w, c);
  const int H = src.height, W = src.width;
  for (int y = 0; y < out_h; ++y) {
    uint8_t* dst = out.row(y);
    for (int x = 0; x < out_w; ++x) {
      const int rx = mirror ? out_w - 1 - x : x;  // position in the rotated image
      int sx = 0, sy = 0;
      switch (rotation) {
        case Rotation::k0: sx = rx; sy = y; break;
        case Rotation::k90: sx = y; sy = H - 1 - rx; break;
        case Rotation::k180: sx = W - 1 - rx; sy = H - 1 - y; break;
        case Rotation::k270: sx = W - 1 - y; sy = rx; break;
      }
      std::memcpy(dst + static_cast<size_t>(x) * c, src.pixel(sy, sx), c);
    }
  }
  return out;
}

}  // namespace pcv::vision
