#include "vision/decode.h"

#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <random>
#include <sstream>

#include "base/file.h"
#include "support/paths.h"
#include "test_images.h"

namespace pcv::vision {
namespace {

using testing::encode_jpeg;
using testing::encode_png;
using testing::make_test_image;
using testing::PngSpec;

// Two 16x16 color blocks side by side: left red, right blue (JPEG-friendly).
Image two_blocks() {
  Image img(16, 32, 3);
  for (int y = 0; y < 16; ++y) {
    for (int x = 0; x < 32; ++x) {
      uint8_t* p = img.pixel(y, x);
      p[0] = x < 16 ? 220 : 20;
      p[1] = 20;
      p[2] = x < 16 ? 20 : 220;
    }
  }
  return img;
}

bool is_red(const uint8_t* p) { return p[0] > 180 && p[2] < 60; }
bool is_blue(const uint8_t* p) { return p[2] > 180 && p[0] < 60; }

TEST(DecodeTest, OxfordPetsMatchManifest) {
  PCV_REQUIRE_SHARED_DATA(manifest, "oxford-pets-sample/manifest.csv");
  const std::string dir = manifest.substr(0, manifest.rfind('/'));
  std::ifstream in(manifest);
  std::string line;
  std::getline(in, line);  // header
  int n = 0, rotated = 0;
  while (std::getline(in, line)) {
    std::stringstream ss(line);
    std::string path, label, breed, w, h;
    std::getline(ss, path, ',');
    std::getline(ss, label, ',');
    std::getline(ss, breed, ',');
    std::getline(ss, w, ',');
    std::getline(ss, h, ',');
    auto bytes = read_file(dir + "/" + path);
    ASSERT_TRUE(bytes.has_value()) << bytes.status().to_string();
    auto img = decode_image(*bytes, path);
    ASSERT_TRUE(img.has_value()) << img.status().to_string();
    // The manifest lists stored sizes; an EXIF rotation by 90/270 swaps them.
    const bool swap = jpeg_exif_orientation(*bytes) >= 5;
    rotated += swap;
    EXPECT_EQ(img->width(), std::stoi(swap ? h : w)) << path;
    EXPECT_EQ(img->height(), std::stoi(swap ? w : h)) << path;
    EXPECT_EQ(img->channels(), 3);
    ++n;
  }
  EXPECT_EQ(n, 222);
  RecordProperty("exif_rotated", rotated);
}

TEST(DecodeTest, DctScalingPicksSmallestScaleAboveMinimum) {
  PCV_REQUIRE_SHARED_DATA(path, "oxford-pets-sample/cat/Abyssinian_12.jpg");  // 335x500
  auto bytes = read_file(path);
  ASSERT_TRUE(bytes.has_value());
  DecodeOptions o;
  o.min_height = 100;
  o.min_width = 100;
  auto img = decode_image(*bytes, path, o);
  ASSERT_TRUE(img.has_value()) << img.status().to_string();
  // 3/8 would give 126x188; 1/4 gives 84x125 (too narrow) -> 3/8.
  EXPECT_EQ(img->width(), 126);
  EXPECT_EQ(img->height(), 188);
  o.min_height = o.min_width = 1;
  img = decode_image(*bytes, path, o);
  ASSERT_TRUE(img.has_value());
  EXPECT_EQ(img->width(), 42);  // ceil(335 / 8)
  EXPECT_EQ(img->height(), 63);
  o.min_height = o.min_width = 1000;  // larger than the image: full size, never upscaled
  img = decode_image(*bytes, path, o);
  ASSERT_TRUE(img.has_value());
  EXPECT_EQ(img->width(), 335);
}

TEST(DecodeTest, ExifOrientation6RotatesClockwise) {
  const auto jpeg = encode_jpeg(two_blocks());
  for (bool big_endian : {true, false}) {
    const auto tagged = testing::with_exif_orientation(jpeg, 6, big_endian);
    EXPECT_EQ(jpeg_exif_orientation(tagged), 6);
    auto img = decode_image(tagged, "exif6.jpg");
    ASSERT_TRUE(img.has_value()) << img.status().to_string();
    ASSERT_EQ(img->width(), 16);
    ASSERT_EQ(img->height(), 32);
    // Rotated 90 degrees clockwise: the left (red) half is now on top.
    EXPECT_TRUE(is_red(img->pixel(4, 8)));
    EXPECT_TRUE(is_blue(img->pixel(27, 8)));
  }
  DecodeOptions keep;
  keep.apply_exif_orientation = false;
  auto raw = decode_image(testing::with_exif_orientation(jpeg, 6), "exif6.jpg", keep);
  ASSERT_TRUE(raw.has_value());
  EXPECT_EQ(raw->width(), 32);
}

TEST(DecodeTest, AllExifOrientations) {
  const auto jpeg = encode_jpeg(two_blocks());
  // Where the red block ends up: (row, col) of a pixel deep inside it, and the size.
  struct Case { int orientation, w, h, ry, rx; };
  const Case cases[] = {{1, 32, 16, 8, 4},  {2, 32, 16, 8, 27}, {3, 32, 16, 8, 27},
                        {4, 32, 16, 8, 4},  {5, 16, 32, 4, 8},  {6, 16, 32, 4, 8},
                        {7, 16, 32, 27, 8}, {8, 16, 32, 27, 8}};
  for (const Case& c : cases) {
    auto img = decode_image(testing::with_exif_orientation(jpeg, c.orientation), "o.jpg");
    ASSERT_TRUE(img.has_value());
    EXPECT_EQ(img->width(), c.w) << c.orientation;
    EXPECT_EQ(img->height(), c.h) << c.orientation;
    EXPECT_TRUE(is_red(img->pixel(c.ry, c.rx))) << "orientation " << c.orientation;
  }
}

TEST(DecodeTest, ExifMinSizeIsInOrientedCoordinates) {
  const Image big = make_test_image(64, 128);  // stored 128 wide, 64 tall
  const auto jpeg = testing::with_exif_orientation(encode_jpeg(big), 6);
  DecodeOptions o;
  o.min_width = 16;  // oriented width = stored height 64 -> 1/4
  o.min_height = 1;
  auto img = decode_image(jpeg, "o.jpg", o);
  ASSERT_TRUE(img.has_value());
  EXPECT_EQ(img->width(), 16);
  EXPECT_EQ(img->height(), 32);
}

TEST(DecodeTest, GrayscaleJpegBecomesRgb) {
  Image gray(16, 16, 1);
  for (int i = 0; i < 256; ++i) gray.data()[i] = static_cast<uint8_t>(i);
  auto img = decode_image(encode_jpeg(gray), "gray.jpg");
  ASSERT_TRUE(img.has_value()) << img.status().to_string();
  ASSERT_EQ(img->channels(), 3);
  const uint8_t* p = img->pixel(8, 8);
  EXPECT_EQ(p[0], p[1]);
  EXPECT_EQ(p[1], p[2]);
  EXPECT_NEAR(p[0], 136, 6);
}

TEST(DecodeTest, CmykJpegBecomesRgb) {
  // CMYK pixels as libjpeg stores them (inverted): C=255 (no cyan) M=0 Y=255 K=255 -> magenta.
  std::vector<uint8_t> cmyk(16 * 16 * 4);
  for (size_t i = 0; i < cmyk.size(); i += 4) {
    cmyk[i] = 255;
    cmyk[i + 1] = 0;
    cmyk[i + 2] = 255;
    cmyk[i + 3] = 255;
  }
  tjhandle h = tjInitCompress();
  unsigned char* buf = nullptr;
  unsigned long size = 0;
  ASSERT_EQ(tjCompress2(h, cmyk.data(), 16, 64, 16, TJPF_CMYK, &buf, &size, TJSAMP_444, 95, 0),
            0);
  std::vector<uint8_t> jpeg(buf, buf + size);
  tjFree(buf);
  tjDestroy(h);
  auto img = decode_image(jpeg, "cmyk.jpg");
  ASSERT_TRUE(img.has_value()) << img.status().to_string();
  const uint8_t* p = img->pixel(8, 8);
  EXPECT_GT(p[0], 240);
  EXPECT_LT(p[1], 15);
  EXPECT_GT(p[2], 240);
}

TEST(DecodeTest, BadBytesAreErrorsNotCrashes) {
  const auto jpeg = encode_jpeg(make_test_image(64, 64));
  auto expect_error = [](std::span<const uint8_t> b, const std::string& what) {
    auto r = decode_image(b, "bad.jpg");
    EXPECT_FALSE(r.has_value()) << what;
    if (!r.has_value()) {
      EXPECT_NE(r.status().message().find("bad.jpg"), std::string::npos) << r.status().message();
    }
    return r.has_value() ? std::string() : r.status().message();
  };
  EXPECT_NE(expect_error({}, "empty").find("empty"), std::string::npos);
  const std::vector<uint8_t> text = {'h', 'e', 'l', 'l', 'o'};
  EXPECT_NE(expect_error(text, "text").find("not a JPEG or PNG"), std::string::npos);
  std::vector<uint8_t> head(jpeg.begin(), jpeg.begin() + 3);
  expect_error(head, "signature only");
  std::vector<uint8_t> half(jpeg.begin(), jpeg.begin() + jpeg.size() / 2);
  EXPECT_NE(expect_error(half, "truncated").find("truncated"), std::string::npos);
  DecodeOptions lenient;
  lenient.allow_truncated = true;
  auto partial = decode_image(half, "half.jpg", lenient);
  ASSERT_TRUE(partial.has_value()) << partial.status().to_string();
  EXPECT_EQ(partial->width(), 64);

  // Every prefix and a batch of random corruptions: errors or images, never a crash.
  for (size_t n = 0; n < jpeg.size(); n += 7) {
    (void)decode_image(std::span<const uint8_t>(jpeg.data(), n), "prefix.jpg");
  }
  std::mt19937 rng(1234);
  for (int i = 0; i < 300; ++i) {
    auto c = jpeg;
    for (int k = 0; k < 8; ++k) c[rng() % c.size()] = static_cast<uint8_t>(rng());
    (void)decode_image(c, "fuzz.jpg");
  }
  const auto png = testing::encode_png_rgb(make_test_image(20, 20));
  for (size_t n = 0; n < png.size(); n += 5) {
    auto r = decode_image(std::span<const uint8_t>(png.data(), n), "prefix.png");
    if (n > 8) {
      EXPECT_FALSE(r.has_value()) << n;
    }
  }
  for (int i = 0; i < 300; ++i) {
    auto c = png;
    for (int k = 0; k < 4; ++k) c[8 + rng() % (c.size() - 8)] = static_cast<uint8_t>(rng());
    (void)decode_image(c, "fuzz.png");
  }
}

TEST(DecodeTest, AbsurdDimensionsRejected) {
  // JPEG: patch the SOF0 height to 40000.
  auto jpeg = encode_jpeg(make_test_image(16, 16));
  for (size_t i = 2; i + 8 < jpeg.size();) {  // walk the marker segments to SOF0
    ASSERT_EQ(jpeg[i], 0xFF);
    if (jpeg[i + 1] == 0xC0) {
      jpeg[i + 5] = 40000 >> 8;
      jpeg[i + 6] = 40000 & 0xFF;
      break;
    }
    i += 2 + ((jpeg[i + 2] << 8) | jpeg[i + 3]);
  }
  auto r = decode_image(jpeg, "huge.jpg");
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.status().message().find("exceed"), std::string::npos) << r.status().message();
  // PNG: a real 40000x1 image.
  PngSpec s;
  s.width = 40000;
  s.height = 1;
  s.color_type = PNG_COLOR_TYPE_GRAY;
  s.rows.assign(40000, 7);
  auto p = decode_image(encode_png(s), "wide.png");
  ASSERT_FALSE(p.has_value());
  EXPECT_NE(p.status().message().find("40000"), std::string::npos) << p.status().message();
}

TEST(DecodePngTest, RgbRoundTripIsExact) {
  const Image img = make_test_image(13, 17);
  auto d = decode_image(testing::encode_png_rgb(img), "rgb.png");
  ASSERT_TRUE(d.has_value()) << d.status().to_string();
  ASSERT_EQ(d->width(), 17);
  ASSERT_EQ(d->height(), 13);
  EXPECT_EQ(0, std::memcmp(d->data(), img.data(), img.size_bytes()));
}

TEST(DecodePngTest, Variants) {
  // Palette with transparency: alpha dropped, palette colors kept.
  {
    PngSpec s;
    s.width = 4;
    s.height = 2;
    s.color_type = PNG_COLOR_TYPE_PALETTE;
    s.palette = {{10, 20, 30}, {200, 100, 50}};
    s.trans = {0, 255};
    s.rows = {0, 1, 0, 1, 1, 1, 0, 0};
    auto d = decode_image(encode_png(s), "pal.png");
    ASSERT_TRUE(d.has_value()) << d.status().to_string();
    EXPECT_EQ(d->pixel(0, 0)[0], 10);
    EXPECT_EQ(d->pixel(0, 0)[2], 30);  // transparent entry keeps its color (alpha dropped)
    EXPECT_EQ(d->pixel(0, 1)[1], 100);
  }
  // Gray 8-bit and gray + alpha.
  {
    PngSpec s;
    s.width = 2;
    s.height = 1;
    s.color_type = PNG_COLOR_TYPE_GRAY_ALPHA;
    s.rows = {77, 0, 200, 255};
    auto d = decode_image(encode_png(s), "ga.png");
    ASSERT_TRUE(d.has_value()) << d.status().to_string();
    EXPECT_EQ(d->pixel(0, 0)[0], 77);
    EXPECT_EQ(d->pixel(0, 0)[2], 77);
    EXPECT_EQ(d->pixel(0, 1)[1], 200);
  }
  // Gray 1-bit.
  {
    PngSpec s;
    s.width = 8;
    s.height = 1;
    s.color_type = PNG_COLOR_TYPE_GRAY;
    s.bit_depth = 1;
    s.rows = {0b10100000};
    auto d = decode_image(encode_png(s), "g1.png");
    ASSERT_TRUE(d.has_value()) << d.status().to_string();
    EXPECT_EQ(d->pixel(0, 0)[0], 255);
    EXPECT_EQ(d->pixel(0, 1)[0], 0);
    EXPECT_EQ(d->pixel(0, 2)[1], 255);
  }
  // RGBA: alpha dropped.
  {
    PngSpec s;
    s.width = 1;
    s.height = 1;
    s.color_type = PNG_COLOR_TYPE_RGBA;
    s.rows = {1, 2, 3, 0};
    auto d = decode_image(encode_png(s), "rgba.png");
    ASSERT_TRUE(d.has_value());
    EXPECT_EQ(d->pixel(0, 0)[0], 1);
    EXPECT_EQ(d->pixel(0, 0)[1], 2);
    EXPECT_EQ(d->pixel(0, 0)[2], 3);
  }
  // 16-bit RGB: scaled with rounding; interlaced.
  {
    PngSpec s;
    s.width = 2;
    s.height = 1;
    s.color_type = PNG_COLOR_TYPE_RGB;
    s.bit_depth = 16;
    s.interlaced = true;
    s.rows = {0xFF, 0xFF, 0x80, 0x80, 0x00, 0x00, 0x01, 0x01, 0x7F, 0xFF, 0x00, 0x80};
    auto d = decode_image(encode_png(s), "rgb16.png");
    ASSERT_TRUE(d.has_value()) << d.status().to_string();
    EXPECT_EQ(d->pixel(0, 0)[0], 255);
    EXPECT_EQ(d->pixel(0, 0)[1], 128);
    EXPECT_EQ(d->pixel(0, 0)[2], 0);
    EXPECT_EQ(d->pixel(0, 1)[0], 1);
    EXPECT_EQ(d->pixel(0, 1)[1], 127);  // 0x7FFF / 257 = 127.498
    EXPECT_EQ(d->pixel(0, 1)[2], 0);
  }
}

TEST(DecodePngTest, CorruptCrcIsAnError) {
  auto png = testing::encode_png_rgb(make_test_image(8, 8));
  png[29] ^= 0xFF;  // IHDR CRC (bytes 29..32)
  auto d = decode_image(png, "crc.png");
  EXPECT_FALSE(d.has_value());
}

}  // namespace
}  // namespace pcv::vision
