#include "report/thumbnail.h"

#include <fmt/core.h>
#include <png.h>

#include <algorithm>

#include "vision/frame.h"

namespace pcv::report {
namespace {

void write_to_vector(png_structp png, png_bytep data, png_size_t length) {
  auto* out = static_cast<std::vector<uint8_t>*>(png_get_io_ptr(png));
  out->insert(out->end(), data, data + length);
}

}  // namespace

Expected<std::vector<uint8_t>> encode_png(const vision::ImageView& image) {
  PCV_ENSURE(!image.empty() && (image.channels == 1 || image.channels == 3 || image.channels == 4),
             StatusCode::kInvalidArgument, "encode_png: empty image or {} channels", image.channels);
  std::vector<uint8_t> out;
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, nullptr, nullptr, nullptr);
  if (!png) return internal_error("encode_png: png_create_write_struct failed");
  png_infop info = png_create_info_struct(png);
  if (!info) {
    png_destroy_write_struct(&png, nullptr);
    return internal_error("encode_png: png_create_info_struct failed");
  }
  // NOTE: libpng reports errors by longjmp; nothing with a destructor is created below.
  if (setjmp(png_jmpbuf(png))) {
    png_destroy_write_struct(&png, &info);
    return internal_error("encode_png: libpng failed");
  }
  const int color = image.channels == 1 ? PNG_COLOR_TYPE_GRAY
                    : image.channels == 3 ? PNG_COLOR_TYPE_RGB
                                          : PNG_COLOR_TYPE_RGBA;
  png_set_write_fn(png, &out, write_to_vector, nullptr);
  png_set_IHDR(png, info, static_cast<png_uint_32>(image.width), static_cast<png_uint_32>(image.height), 8, color,
               PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  png_write_info(png, info);
  for (int y = 0; y < image.height; ++y) png_write_row(png, const_cast<png_bytep>(image.row(y)));
  png_write_end(png, nullptr);
  png_destroy_write_struct(&png, &info);
  return out;
}

std::string base64_encode(std::string_view bytes) {
  static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 2 < bytes.size(); i += 3) {
    const uint32_t v = (static_cast<uint8_t>(bytes[i]) << 16) | (static_cast<uint8_t>(bytes[i + 1]) << 8) |
                       static_cast<uint8_t>(bytes[i + 2]);
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += kAlphabet[v & 63];
  }
  if (i + 1 == bytes.size()) {
    const uint32_t v = static_cast<uint8_t>(bytes[i]) << 16;
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += "==";
  } else if (i + 2 == bytes.size()) {
    const uint32_t v = (static_cast<uint8_t>(bytes[i]) << 16) | (static_cast<uint8_t>(bytes[i + 1]) << 8);
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += '=';
  }
  return out;
}

Expected<std::string> thumbnail_data_uri(const vision::ImageView& image, int max_side) {
  PCV_ENSURE(!image.empty(), StatusCode::kInvalidArgument, "thumbnail: empty image");
  vision::Image small;
  vision::ImageView src = image;
  const int longer = std::max(image.height, image.width);
  if (longer > max_side && max_side > 0) {
    const double f = static_cast<double>(max_side) / longer;
    const int h = std::max(1, static_cast<int>(image.height * f + 0.5));
    const int w = std::max(1, static_cast<int>(image.width * f + 0.5));
    PCV_ASSIGN_OR_RETURN(small, vision::resize_image(image, h, w));
    src = small;
  }
  PCV_ASSIGN_OR_RETURN(auto png, encode_png(src));
  return "data:image/png;base64," +
         base64_encode(std::string_view(reinterpret_cast<const char*>(png.data()), png.size()));
}

}  // namespace pcv::report
