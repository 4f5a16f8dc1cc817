// pcv_capi_fixtures: files for the tests that run programs (the Java binding's host test, the
// camera command's tests) and for benchmarks.
//   pcv_capi_fixtures model OUT.pcv [arch size classes width]   seeded zoo model (default
//       mobilenet_v2 0.35 at 64x64, 5 classes labelled cat dog bird fish frog)
//   pcv_capi_fixtures frames DIR N W H     N test pictures: DIR/frame_000.jpg (even) / .png (odd)
//   pcv_capi_fixtures nv21 FILE N W H      N raw NV21 frames back to back
#include <png.h>
#include <turbojpeg.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "capi/capi_test_util.h"
#include "ir/pcv_format.h"
#include "zoo/zoo.h"

namespace {

int usage(const char* argv0) {
  std::fprintf(stderr,
               "usage: %s model OUT.pcv [arch size classes width]\n"
               "       %s frames DIR N W H\n"
               "       %s nv21 FILE N W H\n",
               argv0, argv0, argv0);
  return 2;
}

bool write_bytes(const std::string& path, const uint8_t* data, size_t n) {
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) return false;
  const bool ok = std::fwrite(data, 1, n, f) == n;
  return std::fclose(f) == 0 && ok;
}

bool write_jpeg(const std::string& path, const std::vector<uint8_t>& rgb, int w, int h) {
  tjhandle t = tjInitCompress();
  unsigned char* buf = nullptr;
  unsigned long size = 0;
  const int rc = tjCompress2(t, rgb.data(), w, w * 3, h, TJPF_RGB, &buf, &size, TJSAMP_420, 92, 0);
  const bool ok = rc == 0 && write_bytes(path, buf, size);
  tjFree(buf);
  tjDestroy(t);
  return ok;
}

bool write_png(const std::string& path, const std::vector<uint8_t>& rgb, int w, int h) {
  png_image img{};
  img.version = PNG_IMAGE_VERSION;
  img.width = static_cast<png_uint_32>(w);
  img.height = static_cast<png_uint_32>(h);
  img.format = PNG_FORMAT_RGB;
  return png_image_write_to_file(&img, path.c_str(), 0, rgb.data(), w * 3, nullptr) != 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) return usage(argv[0]);
  const std::string mode = argv[1];
  if (mode == "model") {
    pcv::zoo::ZooOptions o;
    o.arch = argc > 3 ? argv[3] : "mobilenet_v2";
    o.size = argc > 4 ? std::atoi(argv[4]) : 64;
    o.classes = argc > 5 ? std::atoi(argv[5]) : 5;
    o.width = argc > 6 ? static_cast<float>(std::atof(argv[6])) : 0.35f;
    o.seed = 7;
    if (o.classes == 5) o.labels = {"cat", "dog", "bird", "fish", "frog"};
    auto model = pcv::zoo::create_model(o);
    if (!model) {
      std::fprintf(stderr, "%s\n", model.status().to_string().c_str());
      return 1;
    }
    const pcv::Status s = pcv::ir::save_pcv(*model, argv[2]);
    if (!s.is_ok()) {
      std::fprintf(stderr, "%s\n", s.to_string().c_str());
      return 1;
    }
    return 0;
  }
  if (argc < 6) return usage(argv[0]);
  const int n = std::atoi(argv[3]), w = std::atoi(argv[4]), h = std::atoi(argv[5]);
  if (n < 1 || w < 2 || h < 2) return usage(argv[0]);
  if (mode == "frames") {
    for (int i = 0; i < n; ++i) {
      const auto rgb = pcv::capi_testing::make_rgb(w, h, i);
      char name[64];
      std::snprintf(name, sizeof name, "/frame_%03d.%s", i, i % 2 ? "png" : "jpg");
      const std::string path = std::string(argv[2]) + name;
      if (!(i % 2 ? write_png(path, rgb, w, h) : write_jpeg(path, rgb, w, h))) {
        std::fprintf(stderr, "cannot write %s\n", path.c_str());
        return 1;
      }
    }
    return 0;
  }
  if (mode == "nv21") {
    std::FILE* f = std::fopen(argv[2], "wb");
    if (f == nullptr) return 1;
    for (int i = 0; i < n; ++i) {
      const auto nv = pcv::capi_testing::rgb_to_nv21(pcv::capi_testing::make_rgb(w, h, i), w, h);
      std::fwrite(nv.y.data(), 1, nv.y.size(), f);
      std::fwrite(nv.vu.data(), 1, nv.vu.size(), f);
    }
    return std::fclose(f) == 0 ? 0 : 1;
  }
  return usage(argv[0]);
}
