// JPEG and PNG decoding to RGB8 (3 channels, packed), with EXIF orientation applied.
//
// Thread safety: every function here may be called from any number of threads at once.
// Errors come back as Expected (never a crash, never an exception) and the message starts
// with `name`: "cat.jpg: truncated JPEG data", "x.bin: not a JPEG or PNG image".
//
// JPEG (TurboJPEG):
//  - DCT-scaled decoding: the smallest scale in {1/8, 1/4, 3/8, ..., 7/8, 1} that keeps both
//    sides of the (oriented) result >= min_height x min_width. Scaled decoding is exact-size
//    per libjpeg's rounding (ceil(side * num / denom)) and averages in the DCT domain, so it
//    serves as the first, cheap stage of a downscale.
//  - EXIF orientation: the APP1 Exif IFD0 Orientation tag (0x0112) is parsed here and the
//    rotate/flip applied (see image.h), unless apply_exif_orientation is false.
//  - Grayscale JPEGs are expanded to RGB (R = G = B). CMYK/YCCK JPEGs are decoded to CMYK
//    as libjpeg stores them (Adobe convention: inverted, 255 = no ink) and converted with
//    R = C * K / 255 (same for G from M, B from Y), rounded: no color management.
//  - libjpeg warnings: "Premature end of JPEG file" (a truncated file) is an error unless
//    allow_truncated is set (then the missing part is gray, as libjpeg fills it, and a
//    warning is logged). Other warnings (e.g. "extraneous bytes before marker", common in
//    real photo sets) keep the decoded image and are logged at debug level. Fatal errors
//    (bad header, unsupported features) are errors.
// PNG (libpng): palette, gray, gray+alpha, RGB, RGBA, 1..16-bit, interlaced -> RGB8. 16-bit
//  samples are scaled with rounding (v * 255 / 65535). Alpha is DROPPED, not composited (as
//  PIL's convert("RGB") and tf.io.decode_png(channels=3) do): a transparent pixel keeps its
//  stored color. CRC errors in critical chunks and truncation are errors.
// Both: sides must be in [1, max_side] (default 2^15) and the decoded picture at most
// max_pixels (default 2^28, 768 MiB of RGB), else an error before any allocation: a few bytes
// of header must not make the decoder allocate gigabytes.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "base/status.h"
#include "vision/image.h"

namespace pcv::vision {

struct DecodeOptions {
  // Lower bounds on the decoded (oriented) size; 0 = full resolution. Only JPEG uses them
  // (PNG always decodes at full size). The result may be smaller only if the image is.
  int min_height = 0;
  int min_width = 0;
  bool apply_exif_orientation = true;
  bool allow_truncated = false;
  int max_side = 1 << 15;
  int64_t max_pixels = int64_t{1} << 28;
};

enum class ImageFormat { kUnknown, kJpeg, kPng };

// Sniffs the magic bytes.
ImageFormat detect_image_format(std::span<const uint8_t> bytes);

// Decodes JPEG or PNG bytes to RGB8. `name` is used in messages only.
Expected<Image> decode_image(std::span<const uint8_t> bytes, std::string_view name,
                             const DecodeOptions& options = {});

// read_file + decode_image(bytes, path).
Expected<Image> read_image(const std::string& path, const DecodeOptions& options = {});

// The EXIF orientation (1..8) of a JPEG, 1 when there is none or the Exif data is malformed.
int jpeg_exif_orientation(std::span<const uint8_t> jpeg);

}  // namespace pcv::vision
