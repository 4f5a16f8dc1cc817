#include "vision/decode.h"

#include <fmt/core.h>
#include <png.h>
#include <turbojpeg.h>

#include <csetjmp>
#include <cstring>
#include <vector>

#include "base/file.h"
#include "base/log.h"

namespace pcv::vision {
namespace {

// ---- EXIF ------------------------------------------------------------------------------

uint32_t read_u16(const uint8_t* p, bool little) {
  return little ? (p[0] | (p[1] << 8)) : ((p[0] << 8) | p[1]);
}
uint32_t read_u32(const uint8_t* p, bool little) {
  return little ? (uint32_t{p[0]} | (uint32_t{p[1]} << 8) | (uint32_t{p[2]} << 16) |
                   (uint32_t{p[3]} << 24))
                : ((uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) |
                   uint32_t{p[3]});
}

// Orientation from the TIFF structure inside an Exif APP1 payload (after "Exif\0\0").
int tiff_orientation(const uint8_t* t, size_t n) {
  if (n < 8) return 1;
  bool little;
  if (t[0] == 'I' && t[1] == 'I') {
    little = true;
  } else if (t[0] == 'M' && t[1] == 'M') {
    little = false;
  } else {
    return 1;
  }
  if (read_u16(t + 2, little) != 42) return 1;
  const uint32_t ifd = read_u32(t + 4, little);
  if (ifd > n || n - ifd < 2) return 1;
  const uint32_t count = read_u16(t + ifd, little);
  for (uint32_t i = 0; i < count; ++i) {
    const size_t e = ifd + 2 + size_t{i} * 12;
    if (e + 12 > n) return 1;
    if (read_u16(t + e, little) != 0x0112) continue;
    const uint32_t type = read_u16(t + e + 2, little);
    uint32_t v = 1;
    if (type == 3) {  // SHORT, stored left-justified in the value field
      v = read_u16(t + e + 8, little);
    } else if (type == 4) {  // LONG (non-standard but seen)
      v = read_u32(t + e + 8, little);
    }
    return (v >= 1 && v <= 8) ? static_cast<int>(v) : 1;
  }
  return 1;
}

}  // namespace

int jpeg_exif_orientation(std::span<const uint8_t> b) {
  if (b.size() < 4 || b[0] != 0xFF || b[1] != 0xD8) return 1;
  size_t pos = 2;
  while (pos + 4 <= b.size()) {
    if (b[pos] != 0xFF) return 1;
    const uint8_t marker = b[pos + 1];
    if (marker == 0xFF) {  // fill byte
      ++pos;
      continue;
    }
    if (marker == 0xDA || marker == 0xD9) return 1;  // start of scan / end: no Exif before
    if (marker == 0x01 || (marker >= 0xD0 && marker <= 0xD7)) {  // markers without length
      pos += 2;
      continue;
    }
    const size_t len = (size_t{b[pos + 2]} << 8) | b[pos + 3];
    if (len < 2 || pos + 2 + len > b.size()) return 1;
    const uint8_t* payload = b.data() + pos + 4;
    const size_t payload_len = len - 2;
    if (marker == 0xE1 && payload_len >= 6 && std::memcmp(payload, "Exif\0\0", 6) == 0) {
      return tiff_orientation(payload + 6, payload_len - 6);
    }
    pos += 2 + len;
  }
  return 1;
}

ImageFormat detect_image_format(std::span<const uint8_t> b) {
  static constexpr uint8_t kPng[8] = {0x89, 'P', 'N', 'G', 0x0D, 0x0A, 0x1A, 0x0A};
  if (b.size() >= 3 && b[0] == 0xFF && b[1] == 0xD8 && b[2] == 0xFF) return ImageFormat::kJpeg;
  if (b.size() >= 8 && std::memcmp(b.data(), kPng, 8) == 0) return ImageFormat::kPng;
  return ImageFormat::kUnknown;
}

namespace {

// ---- JPEG ------------------------------------------------------------------------------

// One decompressor per thread, created on first use (tjInitDecompress allocates).
// NOTE: after a failed call a TurboJPEG 2.1 handle can keep failing on valid input (a later
// tjDecompressHeader3 returns the previous error), so a handle that saw an error is replaced.
struct TjHandle {
  tjhandle h = nullptr;
  TjHandle() : h(tjInitDecompress()) {}
  ~TjHandle() {
    if (h) tjDestroy(h);
  }
  void reset() {
    if (h) tjDestroy(h);
    h = tjInitDecompress();
  }
};

// Resets the thread's handle when the enclosing decode ends with an error.
struct ResetOnError {
  TjHandle* tj;
  bool ok = false;
  ~ResetOnError() {
    if (!ok) tj->reset();
  }
};

Expected<Image> decode_jpeg(std::span<const uint8_t> bytes, std::string_view name,
                            const DecodeOptions& opt) {
  thread_local TjHandle tj;
  if (tj.h == nullptr) tj.reset();
  if (tj.h == nullptr) return internal_error(fmt::format("{}: tjInitDecompress failed", name));
  ResetOnError guard{&tj};
  int w = 0, h = 0, subsamp = 0, colorspace = 0;
  if (tjDecompressHeader3(tj.h, bytes.data(), bytes.size(), &w, &h, &subsamp, &colorspace) !=
      0) {
    return invalid_argument(
        fmt::format("{}: not a valid JPEG header ({})", name, tjGetErrorStr2(tj.h)));
  }
  PCV_ENSURE(w > 0 && h > 0, StatusCode::kInvalidArgument,
             "{}: JPEG has zero size or a truncated header ({}x{})", name, w, h);
  PCV_ENSURE(w <= opt.max_side && h <= opt.max_side, StatusCode::kInvalidArgument,
             "{}: JPEG dimensions {}x{} exceed the limit {}", name, w, h, opt.max_side);

  const int orientation = opt.apply_exif_orientation ? jpeg_exif_orientation(bytes) : 1;
  Rotation rotation;
  bool mirror;
  exif_orientation_transform(orientation, &rotation, &mirror);
  const bool swap = rotation == Rotation::k90 || rotation == Rotation::k270;
  // Minimums in stored (unrotated) orientation.
  const int min_w = swap ? opt.min_height : opt.min_width;
  const int min_h = swap ? opt.min_width : opt.min_height;

  int sw = w, sh = h;
  const bool scale_down = min_w > 0 || min_h > 0;
  int nf = 0;
  const tjscalingfactor* sf = tjGetScalingFactors(&nf);
  double best = 1.0;
  for (int i = 0; scale_down && sf != nullptr && i < nf; ++i) {
    if (sf[i].num > sf[i].denom) continue;
    const double s = static_cast<double>(sf[i].num) / sf[i].denom;
    const int cw = TJSCALED(w, sf[i]);
    const int ch = TJSCALED(h, sf[i]);
    if (s < best && cw >= min_w && ch >= min_h) {
      best = s;
      sw = cw;
      sh = ch;
    }
  }

  PCV_ENSURE(int64_t{sw} * sh <= opt.max_pixels, StatusCode::kInvalidArgument,
             "{}: JPEG of {}x{} pixels is above the limit of {} pixels", name, sw, sh, opt.max_pixels);
  const bool cmyk = colorspace == TJCS_CMYK || colorspace == TJCS_YCCK;
  const int pf = cmyk ? TJPF_CMYK : TJPF_RGB;
  const int pixel_bytes = cmyk ? 4 : 3;
  std::vector<uint8_t> cmyk_buf;
  Image rgb(sh, sw, 3);
  uint8_t* dst = rgb.data();
  if (cmyk) {
    cmyk_buf.resize(static_cast<size_t>(sw) * sh * 4);
    dst = cmyk_buf.data();
  }
  const int rc = tjDecompress2(tj.h, bytes.data(), bytes.size(), dst, sw, sw * pixel_bytes, sh,
                               pf, 0);
  if (rc != 0) {
    const std::string msg = tjGetErrorStr2(tj.h);
    if (tjGetErrorCode(tj.h) != TJERR_WARNING) {
      return invalid_argument(fmt::format("{}: JPEG decode failed: {}", name, msg));
    }
    if (msg.find("Premature end") != std::string::npos) {
      if (!opt.allow_truncated) {
        return invalid_argument(fmt::format("{}: truncated JPEG data ({})", name, msg));
      }
      log_warning("{}: truncated JPEG data, missing part filled with gray", name);
    } else {
      log_debug("{}: libjpeg warning: {}", name, msg);
    }
  }
  guard.ok = rc == 0;  // a handle that warned is replaced too
  if (cmyk) {
    const size_t n = static_cast<size_t>(sw) * sh;
    uint8_t* out = rgb.data();
    for (size_t i = 0; i < n; ++i) {
      const uint8_t* p = &cmyk_buf[i * 4];
      const uint32_t k = p[3];
      for (int c = 0; c < 3; ++c) out[i * 3 + c] = static_cast<uint8_t>((p[c] * k + 127) / 255);
    }
  }
  if (rotation == Rotation::k0 && !mirror) return rgb;
  return rotate_image(rgb, rotation, mirror);
}

// ---- PNG -------------------------------------------------------------------------------

struct PngReader {
  const uint8_t* data;
  size_t size;
  size_t pos;
  char error[160];
};

void png_read_cb(png_structp png, png_bytep out, size_t n) {
  auto* r = static_cast<PngReader*>(png_get_io_ptr(png));
  if (n > r->size - r->pos) png_error(png, "truncated PNG data");
  std::memcpy(out, r->data + r->pos, n);
  r->pos += n;
}
void png_error_cb(png_structp png, png_const_charp msg) {
  auto* r = static_cast<PngReader*>(png_get_error_ptr(png));
  std::snprintf(r->error, sizeof(r->error), "%s", msg);
  png_longjmp(png, 1);
}
void png_warning_cb(png_structp, png_const_charp) {}  // ancillary problems: ignored

// Plain C-style body: no object with a destructor lives across setjmp.
// Returns 0 on success, 1 on a libpng error (message in r->error), 2 on a size error.
int png_decode_raw(PngReader* r, int max_side, int64_t max_pixels, std::vector<uint8_t>* pixels,
                   int* out_w, int* out_h) {
  png_structp png =
      png_create_read_struct(PNG_LIBPNG_VER_STRING, r, png_error_cb, png_warning_cb);
  if (png == nullptr) return 1;
  png_infop info = png_create_info_struct(png);
  if (info == nullptr) {
    png_destroy_read_struct(&png, nullptr, nullptr);
    return 1;
  }
  std::vector<png_bytep>* volatile rows = nullptr;
  if (setjmp(png_jmpbuf(png))) {
    delete rows;
    png_destroy_read_struct(&png, &info, nullptr);
    return 1;
  }
  png_set_read_fn(png, r, png_read_cb);
  png_set_user_limits(png, 0x7fffffff, 0x7fffffff);
  png_read_info(png, info);
  const png_uint_32 w = png_get_image_width(png, info);
  const png_uint_32 h = png_get_image_height(png, info);
  if (w == 0 || h == 0 || w > static_cast<png_uint_32>(max_side) ||
      h > static_cast<png_uint_32>(max_side)) {
    std::snprintf(r->error, sizeof(r->error), "PNG dimensions %ux%u outside [1, %d]",
                  static_cast<unsigned>(w), static_cast<unsigned>(h), max_side);
    png_destroy_read_struct(&png, &info, nullptr);
    return 2;
  }
  if (int64_t{w} * h > max_pixels) {
    std::snprintf(r->error, sizeof(r->error), "PNG of %ux%u pixels is above the limit of %lld pixels",
                  static_cast<unsigned>(w), static_cast<unsigned>(h), static_cast<long long>(max_pixels));
    png_destroy_read_struct(&png, &info, nullptr);
    return 2;
  }
  png_set_expand(png);  // palette -> RGB, gray < 8 bit -> 8 bit, tRNS -> alpha
  png_set_scale_16(png);
  png_set_gray_to_rgb(png);
  png_set_strip_alpha(png);
  png_set_interlace_handling(png);
  png_read_update_info(png, info);
  if (png_get_rowbytes(png, info) != size_t{w} * 3) {
    png_error(png, "unexpected PNG row layout after transforms");
  }
  pixels->assign(size_t{w} * h * 3, 0);
  rows = new std::vector<png_bytep>(h);
  for (png_uint_32 y = 0; y < h; ++y) (*rows)[y] = pixels->data() + size_t{y} * w * 3;
  png_read_image(png, rows->data());
  png_read_end(png, nullptr);
  delete rows;
  rows = nullptr;
  png_destroy_read_struct(&png, &info, nullptr);
  *out_w = static_cast<int>(w);
  *out_h = static_cast<int>(h);
  return 0;
}

Expected<Image> decode_png(std::span<const uint8_t> bytes, std::string_view name,
                           const DecodeOptions& opt) {
  PngReader r{bytes.data(), bytes.size(), 0, {0}};
  std::vector<uint8_t> pixels;
  int w = 0, h = 0;
  const int rc = png_decode_raw(&r, opt.max_side, opt.max_pixels, &pixels, &w, &h);
  if (rc != 0) {
    return invalid_argument(
        fmt::format("{}: PNG decode failed: {}", name, r.error[0] ? r.error : "libpng error"));
  }
  Image img(h, w, 3);
  std::memcpy(img.data(), pixels.data(), pixels.size());
  return img;
}

}  // namespace

Expected<Image> decode_image(std::span<const uint8_t> bytes, std::string_view name,
                             const DecodeOptions& options) {
  PCV_ENSURE(!bytes.empty(), StatusCode::kInvalidArgument, "{}: empty file (0 bytes)", name);
  switch (detect_image_format(bytes)) {
    case ImageFormat::kJpeg: return decode_jpeg(bytes, name, options);
    case ImageFormat::kPng: return decode_png(bytes, name, options);
    case ImageFormat::kUnknown: break;
  }
  return invalid_argument(
      fmt::format("{}: not a JPEG or PNG image ({} bytes, unknown signature)", name,
                  bytes.size()));
}

Expected<Image> read_image(const std::string& path, const DecodeOptions& options) {
  PCV_ASSIGN_OR_RETURN(std::vector<uint8_t> bytes, read_file(path, uint64_t{1} << 30));
  return decode_image(bytes, path, options);
}

}  // namespace pcv::vision
