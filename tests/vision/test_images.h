// Test helpers for vision and data tests: synthetic images, in-memory JPEG/PNG encoding,
// RGB -> YUV 4:2:0 (BT.601 full range, the forward transform of the one frame.h documents).
#pragma once

#include <png.h>
#include <turbojpeg.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <vector>

#include "vision/image.h"

namespace pcv::vision::testing {

// A smooth color image with some structure (gradients, a soft blob, a hard vertical edge at
// 2/3 of the width): values span most of 0..255 in every channel.
inline Image make_test_image(int h, int w, bool hard_edge = true) {
  Image img(h, w, 3);
  for (int y = 0; y < h; ++y) {
    for (int x = 0; x < w; ++x) {
      const double fx = (x + 0.5) / w, fy = (y + 0.5) / h;
      const double blob = std::exp(-((fx - 0.4) * (fx - 0.4) + (fy - 0.5) * (fy - 0.5)) * 12);
      double r = 30 + 200 * fx;
      double g = 20 + 180 * fy;
      double b = 60 + 150 * blob;
      if (hard_edge && x >= ((2 * w / 3) | 1)) {  // odd column: splits 2x2 chroma blocks
        r = 20;
        b = 230;
      }
      uint8_t* p = img.pixel(y, x);
      p[0] = static_cast<uint8_t>(std::clamp(r, 0.0, 255.0));
      p[1] = static_cast<uint8_t>(std::clamp(g, 0.0, 255.0));
      p[2] = static_cast<uint8_t>(std::clamp(b, 0.0, 255.0));
    }
  }
  return img;
}

inline std::vector<uint8_t> encode_jpeg(const Image& img, int quality = 95,
                                        int subsamp = TJSAMP_444) {
  tjhandle h = tjInitCompress();
  unsigned char* buf = nullptr;
  unsigned long size = 0;
  const int pf = img.channels() == 1 ? TJPF_GRAY : TJPF_RGB;
  if (img.channels() == 1) subsamp = TJSAMP_GRAY;
  const int rc = tjCompress2(h, img.data(), img.width(), static_cast<int>(img.row_stride_bytes()),
                             img.height(), pf, &buf, &size, subsamp, quality, 0);
  std::vector<uint8_t> out;
  if (rc == 0) out.assign(buf, buf + size);
  tjFree(buf);
  tjDestroy(h);
  if (rc != 0) throw std::runtime_error("tjCompress2 failed");
  return out;
}

// Inserts an APP1 Exif segment with IFD0 Orientation = `orientation` right after SOI.
inline std::vector<uint8_t> with_exif_orientation(const std::vector<uint8_t>& jpeg,
                                                  int orientation, bool big_endian = true) {
  std::vector<uint8_t> tiff;
  auto u16 = [&](uint32_t v) {
    if (big_endian) {
      tiff.push_back(static_cast<uint8_t>(v >> 8));
      tiff.push_back(static_cast<uint8_t>(v));
    } else {
      tiff.push_back(static_cast<uint8_t>(v));
      tiff.push_back(static_cast<uint8_t>(v >> 8));
    }
  };
  auto u32 = [&](uint32_t v) {
    if (big_endian) {
      u16(v >> 16);
      u16(v & 0xFFFF);
    } else {
      u16(v & 0xFFFF);
      u16(v >> 16);
    }
  };
  tiff.push_back(big_endian ? 'M' : 'I');
  tiff.push_back(big_endian ? 'M' : 'I');
  u16(42);
  u32(8);  // IFD0 offset
  u16(2);  // two entries: an unrelated one first, then Orientation
  u16(0x010F); u16(2); u32(4); tiff.insert(tiff.end(), {'A', 'c', 'm', 0});  // Make
  u16(0x0112); u16(3); u32(1); u16(static_cast<uint32_t>(orientation)); u16(0);
  u32(0);  // no next IFD
  std::vector<uint8_t> payload = {'E', 'x', 'i', 'f', 0, 0};
  payload.insert(payload.end(), tiff.begin(), tiff.end());
  const size_t len = payload.size() + 2;
  std::vector<uint8_t> out(jpeg.size() + 4 + payload.size());
  size_t o = 0;
  out[o++] = jpeg[0];
  out[o++] = jpeg[1];
  out[o++] = 0xFF;
  out[o++] = 0xE1;
  out[o++] = static_cast<uint8_t>(len >> 8);
  out[o++] = static_cast<uint8_t>(len);
  for (uint8_t b : payload) out[o++] = b;
  for (size_t i = 2; i < jpeg.size(); ++i) out[o++] = jpeg[i];
  return out;
}

struct PngSpec {
  int width = 0, height = 0;
  int color_type = PNG_COLOR_TYPE_RGB;
  int bit_depth = 8;
  bool interlaced = false;
  std::vector<uint8_t> rows;  // packed rows as libpng expects them (16-bit: big endian)
  std::vector<png_color> palette;
  std::vector<png_byte> trans;  // palette alpha
};

inline void png_write_vec(png_structp png, png_bytep data, size_t n) {
  auto* v = static_cast<std::vector<uint8_t>*>(png_get_io_ptr(png));
  v->insert(v->end(), data, data + n);
}
inline void png_flush_noop(png_structp) {}

inline std::vector<uint8_t> encode_png(const PngSpec& s) {
  std::vector<uint8_t> out;
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, nullptr, nullptr, nullptr);
  png_infop info = png_create_info_struct(png);
  if (setjmp(png_jmpbuf(png))) {
    png_destroy_write_struct(&png, &info);
    throw std::runtime_error("png write failed");
  }
  png_set_write_fn(png, &out, png_write_vec, png_flush_noop);
  png_set_IHDR(png, info, s.width, s.height, s.bit_depth, s.color_type,
               s.interlaced ? PNG_INTERLACE_ADAM7 : PNG_INTERLACE_NONE,
               PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  if (!s.palette.empty()) {
    png_set_PLTE(png, info, s.palette.data(), static_cast<int>(s.palette.size()));
  }
  if (!s.trans.empty()) {
    png_set_tRNS(png, info, s.trans.data(), static_cast<int>(s.trans.size()), nullptr);
  }
  png_write_info(png, info);
  const size_t row_bytes = png_get_rowbytes(png, info);
  std::vector<png_bytep> rows(s.height);
  for (int y = 0; y < s.height; ++y) {
    rows[y] = const_cast<png_bytep>(s.rows.data() + y * row_bytes);
  }
  png_write_image(png, rows.data());
  png_write_end(png, nullptr);
  png_destroy_write_struct(&png, &info);
  return out;
}

inline std::vector<uint8_t> encode_png_rgb(const Image& img) {
  PngSpec s;
  s.width = img.width();
  s.height = img.height();
  s.color_type = img.channels() == 1 ? PNG_COLOR_TYPE_GRAY : PNG_COLOR_TYPE_RGB;
  s.rows.assign(img.data(), img.data() + img.size_bytes());
  return encode_png(s);
}

// BT.601 full-range RGB -> YUV 4:2:0 planes (chroma = mean of the 2x2 block, rounded), the
// inverse of the transform frame_to_tensor applies.
struct Yuv420 {
  int width = 0, height = 0;
  std::vector<uint8_t> y, u, v;  // packed: width x height, cw x ch, cw x ch
  int cw() const { return (width + 1) / 2; }
  int ch() const { return (height + 1) / 2; }
};

inline uint8_t clamp_u8(double v) {
  return static_cast<uint8_t>(std::clamp(std::lround(v), 0L, 255L));
}

inline Yuv420 rgb_to_yuv420(const Image& img) {
  Yuv420 f;
  f.width = img.width();
  f.height = img.height();
  const int W = f.width, H = f.height;
  std::vector<double> U(static_cast<size_t>(W) * H), V(U.size());
  f.y.resize(static_cast<size_t>(W) * H);
  for (int y = 0; y < H; ++y) {
    for (int x = 0; x < W; ++x) {
      const uint8_t* p = img.pixel(y, x);
      const double r = p[0], g = p[1], b = p[2];
      f.y[y * W + x] = clamp_u8(0.299 * r + 0.587 * g + 0.114 * b);
      U[y * W + x] = -0.168736 * r - 0.331264 * g + 0.5 * b + 128;
      V[y * W + x] = 0.5 * r - 0.418688 * g - 0.081312 * b + 128;
    }
  }
  f.u.resize(static_cast<size_t>(f.cw()) * f.ch());
  f.v.resize(f.u.size());
  for (int j = 0; j < f.ch(); ++j) {
    for (int i = 0; i < f.cw(); ++i) {
      double su = 0, sv = 0;
      int n = 0;
      for (int dy = 0; dy < 2; ++dy) {
        for (int dx = 0; dx < 2; ++dx) {
          const int x = 2 * i + dx, y = 2 * j + dy;
          if (x >= W || y >= H) continue;
          su += U[y * W + x];
          sv += V[y * W + x];
          ++n;
        }
      }
      f.u[j * f.cw() + i] = clamp_u8(su / n);
      f.v[j * f.cw() + i] = clamp_u8(sv / n);
    }
  }
  return f;
}

}  // namespace pcv::vision::testing
