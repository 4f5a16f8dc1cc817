// The bad-input catalogue, pictures and training data: zero-size pictures (a 0-byte .jpg, a
// PNG header with width 0), pictures that are not pictures, a non-image file in a training
// folder (skipped with a warning and counted, training goes on), a one-class dataset, an empty
// class folder, a missing data folder.
#include <gtest/gtest.h>
#include <zlib.h>

#include <filesystem>

#include "pocketcv/pocketcv.h"
#include "robustness/robustness_util.h"
#include "support/paths.h"
#include "vision/test_images.h"

namespace pcv::testing {
namespace {
namespace fs = std::filesystem;
using formats::Format;

// A PNG whose IHDR says width x height (CRC recomputed: only the size is wrong).
std::vector<uint8_t> png_with_size(uint32_t width, uint32_t height) {
  std::vector<uint8_t> png = tiny_png();
  // Signature (8), IHDR length (4), "IHDR" (4), then width and height big-endian.
  auto be32 = [&](size_t at, uint32_t v) {
    for (int i = 0; i < 4; ++i)
      png[at + static_cast<size_t>(i)] = static_cast<uint8_t>(v >> (24 - 8 * i));
  };
  be32(16, width);
  be32(20, height);
  const uint32_t crc =
      static_cast<uint32_t>(crc32(0, png.data() + 12, 17));  // "IHDR" + 13 data bytes
  be32(29, crc);
  return png;
}

// The JPEG with its frame header (SOF0) claiming width x height.
std::vector<uint8_t> jpeg_with_size(uint16_t width, uint16_t height) {
  std::vector<uint8_t> jpg = tiny_jpeg();
  for (size_t i = 2; i + 9 < jpg.size(); ++i) {
    if (jpg[i] == 0xFF && jpg[i + 1] == 0xC0) {  // FF C0, length (2), precision (1), height, width
      jpg[i + 5] = static_cast<uint8_t>(height >> 8);
      jpg[i + 6] = static_cast<uint8_t>(height);
      jpg[i + 7] = static_cast<uint8_t>(width >> 8);
      jpg[i + 8] = static_cast<uint8_t>(width);
      return jpg;
    }
  }
  ADD_FAILURE() << "no SOF0 marker in the test JPEG";
  return jpg;
}

TEST(BadImage, ZeroSizeAndNonImages) {
  const std::string dir = make_temp_dir("pcv_robust_images");
  const std::string model = tiny_model(Format::kPcv);
  struct Case {
    std::string name;
    std::vector<uint8_t> bytes;
    std::string problem;
  };
  const std::vector<uint8_t>& jpg = tiny_jpeg();
  const std::string text = "just some text, not a picture\n";
  const std::vector<Case> cases = {
      {"zero.jpg", {}, "empty file"},
      {"zero.png", {}, "empty file"},
      {"width0.png", png_with_size(0, 24), "PNG"},
      {"height0.png", png_with_size(24, 0), "PNG"},
      {"huge.png", png_with_size(1u << 20, 1u << 20), "1048576x1048576"},
      // 75 bytes that claim 30000 x 30000 pixels: refused before 2.7 GB are allocated.
      {"bomb.png", png_with_size(30000, 30000), "above the limit of 268435456 pixels"},
      {"width0.jpg", jpeg_with_size(0, 24), "JPEG"},
      {"huge.jpg", jpeg_with_size(60000, 60000), "60000x60000"},
      {"text.jpg", std::vector<uint8_t>(text.begin(), text.end()), "not a JPEG or PNG"},
      {"header_only.jpg", std::vector<uint8_t>(jpg.begin(), jpg.begin() + 20), "JPEG"},
      {"truncated.jpg",
       std::vector<uint8_t>(jpg.begin(), jpg.begin() + static_cast<long>(jpg.size() / 2)), "JPEG"},
      {"truncated.png", std::vector<uint8_t>(tiny_png().begin(), tiny_png().begin() + 60), "PNG"},
  };
  for (const Case& c : cases) {
    const std::string path = dir + "/" + c.name;
    write_bytes(path, c.bytes);
    SCOPED_TRACE(c.name);
    EXPECT_TRUE(failed_cleanly(run_cli({"predict", model, path}), 1, {path, c.problem}));
  }
  // One good picture, then a bad one: the good block is printed, exit 1 names the bad one.
  write_bytes(dir + "/good.png", tiny_png());
  const CliResult r = run_cli({"predict", model, dir + "/good.png", dir + "/zero.jpg"});
  EXPECT_TRUE(failed_cleanly(r, 1, {"zero.jpg", "empty file"}));
  EXPECT_NE(r.out.find("good.png"), std::string::npos) << r.out;
}

TEST(BadImage, CapiZeroSizeImage) {
  pcv_model* m = nullptr;
  ASSERT_EQ(pcv_model_load_file(tiny_model(Format::kPcv).c_str(), &m), PCV_OK)
      << pcv_last_error_message();
  pcv_session* s = nullptr;
  ASSERT_EQ(pcv_session_create(m, nullptr, &s), PCV_OK) << pcv_last_error_message();
  const uint8_t px[3] = {1, 2, 3};
  EXPECT_EQ(pcv_session_set_input_image(s, px, 0, 1, 0, PCV_FRAME_RGB), PCV_ERROR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(pcv_last_error_message()).find("0x1"), std::string::npos)
      << pcv_last_error_message();
  EXPECT_EQ(pcv_session_set_input_image(s, px, 1, 0, 0, PCV_FRAME_RGB), PCV_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(pcv_session_set_input_image(s, nullptr, 1, 1, 0, PCV_FRAME_RGB),
            PCV_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(pcv_session_set_input_image(s, px, -1, 1, 0, PCV_FRAME_RGB),
            PCV_ERROR_INVALID_ARGUMENT);
  // The session still works after the refusals.
  EXPECT_EQ(pcv_session_set_input_image(s, px, 1, 1, 0, PCV_FRAME_RGB), PCV_OK)
      << pcv_last_error_message();
  EXPECT_EQ(pcv_session_run(s), PCV_OK);
  pcv_session_free(s);
  pcv_model_free(m);
}

// ---- training data ----

// DIR/<class>/<i>.png, `n` 16x16 pictures per class, each class its own brightness pattern.
void make_class(const std::string& dir, const std::string& cls, int n, int pattern) {
  for (int i = 0; i < n; ++i) {
    vision::Image img(16, 16, 3);
    for (int y = 0; y < 16; ++y) {
      for (int x = 0; x < 16; ++x) {
        const bool bright = pattern == 0 ? x < 8 : y < 8;
        for (int c = 0; c < 3; ++c)
          img.pixel(y, x)[c] = static_cast<uint8_t>((bright ? 180 : 20) + (i * 7 + c * 3) % 40);
      }
    }
    write_bytes(dir + "/" + cls + "/" + std::to_string(i) + ".png",
                vision::testing::encode_png_rgb(img));
  }
}

std::vector<std::string> quick_train(const std::string& data, const std::string& out) {
  return {"train",   "--data", data,        "--size", "16", "--epochs", "1",
          "--batch", "8",      "--threads", "1",      "-o", out};
}

TEST(BadTrainingData, NonImageFileIsSkippedWithAWarningAndCounted) {
  const std::string dir = make_temp_dir("pcv_robust_data_junk");
  make_class(dir + "/data", "left", 8, 0);
  make_class(dir + "/data", "top", 8, 1);
  write_text(dir + "/data/left/notes.jpg", "these are my notes, not a photo");
  write_bytes(dir + "/data/top/empty.png", {});
  write_text(dir + "/data/top/README.txt", "ignored: not a picture's extension");
  const CliResult r = run_cli(quick_train(dir + "/data", dir + "/m.pcv"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("notes.jpg"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("empty.png"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("skipped 2 unreadable image files"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("README.txt"), std::string::npos) << r.err;
  EXPECT_TRUE(fs::exists(dir + "/m.pcv"));
  // 16 good pictures, none of the skipped ones.
  EXPECT_NE(r.out.find("train 12 / val 4 images"), std::string::npos) << r.out;
}

TEST(BadTrainingData, OneClassNeedsTwo) {
  const std::string dir = make_temp_dir("pcv_robust_data_one");
  make_class(dir + "/data", "only", 6, 0);
  const Tree before = snapshot(dir);
  const CliResult r = run_cli(quick_train(dir + "/data", dir + "/m.pcv"));
  EXPECT_TRUE(failed_cleanly(r, 1, {dir + "/data", "at least 2 classes"}));
  EXPECT_EQ(tree_diff(before, snapshot(dir)), "");
}

TEST(BadTrainingData, EmptyClassFolder) {
  const std::string dir = make_temp_dir("pcv_robust_data_empty_class");
  make_class(dir + "/data", "left", 6, 0);
  make_class(dir + "/data", "top", 6, 1);
  fs::create_directories(dir + "/data/nothing_here");
  // With two good classes: the empty one is dropped with a warning naming it; training runs.
  CliResult r = run_cli(quick_train(dir + "/data", dir + "/m.pcv"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("nothing_here"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("dropped"), std::string::npos) << r.err;
  // With one good class left: the clear error.
  fs::remove_all(dir + "/data/top");
  const Tree before = snapshot(dir);
  r = run_cli(quick_train(dir + "/data", dir + "/n.pcv"));
  EXPECT_TRUE(failed_cleanly(r, 1, {"nothing_here", "at least 2 classes"}));
  EXPECT_EQ(tree_diff(before, snapshot(dir)), "");
  // Only empty class folders; no class folders at all.
  fs::remove_all(dir + "/data/left");
  EXPECT_TRUE(failed_cleanly(run_cli(quick_train(dir + "/data", dir + "/n.pcv")), 1,
                             {"at least 2 classes"}));
  fs::remove_all(dir + "/data/nothing_here");
  EXPECT_TRUE(
      failed_cleanly(run_cli(quick_train(dir + "/data", dir + "/n.pcv")), 1, {"no class folders"}));
}

TEST(BadTrainingData, MissingOrNotAFolder) {
  const std::string dir = make_temp_dir("pcv_robust_data_missing");
  EXPECT_TRUE(
      failed_cleanly(run_cli(quick_train(dir + "/absent", dir + "/m.pcv")), 1, {dir + "/absent"}));
  write_bytes(dir + "/photo.jpg", tiny_jpeg());
  EXPECT_TRUE(
      failed_cleanly(run_cli(quick_train(dir + "/photo.jpg", dir + "/m.pcv")), 1, {"photo.jpg"}));
  EXPECT_FALSE(fs::exists(dir + "/m.pcv"));
}

}  // namespace
}  // namespace pcv::testing
