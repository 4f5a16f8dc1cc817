// Image: an owning 8-bit interleaved image, and ImageView, a non-owning view of one.
//
// Layout: height rows of width pixels, each pixel `channels` bytes (1 = gray, 3 = RGB,
// 4 = RGBA), rows `row_stride_bytes` apart (>= width * channels). Images made here are packed
// (stride == width * channels). A view does not own its pixels: it is valid while the image
// (or buffer) it was taken from is alive and not resized.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace pcv::vision {

struct ImageView {
  const uint8_t* data = nullptr;
  int height = 0;
  int width = 0;
  int channels = 0;
  size_t row_stride_bytes = 0;

  const uint8_t* row(int y) const { return data + static_cast<size_t>(y) * row_stride_bytes; }
  const uint8_t* pixel(int y, int x) const { return row(y) + static_cast<size_t>(x) * channels; }
  bool empty() const { return data == nullptr || height <= 0 || width <= 0; }
  // A sub-rectangle (no copy). The caller keeps it inside the view.
  ImageView crop(int top, int left, int crop_height, int crop_width) const;
};

class Image {
 public:
  Image() = default;
  // A zero-filled packed image. channels in {1, 3, 4}; sides >= 0.
  Image(int height, int width, int channels);

  int height() const { return height_; }
  int width() const { return width_; }
  int channels() const { return channels_; }
  size_t row_stride_bytes() const { return static_cast<size_t>(width_) * channels_; }
  size_t size_bytes() const { return pixels_.size(); }
  bool empty() const { return pixels_.empty(); }

  uint8_t* data() { return pixels_.data(); }
  const uint8_t* data() const { return pixels_.data(); }
  uint8_t* row(int y) { return data() + static_cast<size_t>(y) * row_stride_bytes(); }
  const uint8_t* row(int y) const { return data() + static_cast<size_t>(y) * row_stride_bytes(); }
  uint8_t* pixel(int y, int x) { return row(y) + static_cast<size_t>(x) * channels_; }
  const uint8_t* pixel(int y, int x) const { return row(y) + static_cast<size_t>(x) * channels_; }

  ImageView view() const { return {data(), height_, width_, channels_, row_stride_bytes()}; }
  operator ImageView() const { return view(); }  // NOLINT: a view is always safe to take

  // A packed copy of a view.
  static Image copy_of(const ImageView& v);

 private:
  int height_ = 0;
  int width_ = 0;
  int channels_ = 0;
  std::vector<uint8_t> pixels_;
};

// Clockwise rotation that turns a stored image or a sensor frame upright.
enum class Rotation : int { k0 = 0, k90 = 90, k180 = 180, k270 = 270 };

// The upright image is mirror_h(rotate_cw(src, rotation)): rotate clockwise first, then (if
// mirror) flip left-right. Rotations by 90/270 swap height and width. Returns a packed copy.
Image rotate_image(const ImageView& src, Rotation rotation, bool mirror);

// EXIF orientation (1..8) as the (rotation, mirror) pair above:
// 1 (0,no) 2 (0,yes) 3 (180,no) 4 (180,yes) 5 (90,yes) 6 (90,no) 7 (270,yes) 8 (270,no).
// Values outside 1..8 read as 1.
void exif_orientation_transform(int orientation, Rotation* rotation, bool* mirror);

}  // namespace pcv::vision
