#include "data/image_folder.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "base/file.h"
#include "support/paths.h"
#include "vision/test_images.h"

namespace pcv::data {
namespace {
namespace fs = std::filesystem;
using vision::testing::encode_jpeg;
using vision::testing::encode_png_rgb;
using vision::testing::make_test_image;

void put(const std::string& path, const std::vector<uint8_t>& bytes) {
  fs::create_directories(fs::path(path).parent_path());
  ASSERT_TRUE(write_file_atomic(path, std::span<const uint8_t>(bytes)).is_ok());
}

// DIR/cat: 3 JPEGs (one .JPG upper case) + 1 corrupt; DIR/dog: 2 PNGs + 1 JPEG; DIR/empty:
// nothing usable; plus files that must be ignored.
std::string make_folder() {
  const std::string dir = pcv::testing::make_temp_dir("imgfolder");
  const auto jpg = encode_jpeg(make_test_image(20, 30));
  const auto png = encode_png_rgb(make_test_image(18, 12));
  put(dir + "/cat/b.jpg", jpg);
  put(dir + "/cat/a.JPG", jpg);
  put(dir + "/cat/c.jpeg", jpg);
  std::vector<uint8_t> broken(jpg.begin(), jpg.begin() + 40);
  put(dir + "/cat/broken.jpg", broken);
  put(dir + "/cat/notes.txt", {'h', 'i'});
  put(dir + "/dog/x.png", png);
  put(dir + "/dog/y.PNG", png);
  put(dir + "/dog/z.jpg", jpg);
  put(dir + "/dog/.hidden.jpg", jpg);
  fs::create_directories(dir + "/empty");
  put(dir + "/.cache/q.jpg", jpg);
  put(dir + "/loose.jpg", jpg);
  return dir;
}

TEST(ImageFolderTest, ScansSortedSkipsCorrupt) {
  const std::string dir = make_folder();
  auto d = ImageFolderDataset::open(dir);
  ASSERT_TRUE(d.has_value()) << d.status().to_string();
  EXPECT_EQ(d->class_names(), (std::vector<std::string>{"cat", "dog"}));
  ASSERT_EQ(d->size(), 6u);
  EXPECT_EQ(d->skipped(), 1u);
  EXPECT_NE(d->skipped_paths()[0].find("broken.jpg"), std::string::npos);
  // Byte-wise order: "a.JPG" < "b.jpg" < "c.jpeg"; "x.png" < "y.PNG" < "z.jpg".
  EXPECT_NE(d->path(0).find("cat/a.JPG"), std::string::npos);
  EXPECT_NE(d->path(2).find("cat/c.jpeg"), std::string::npos);
  EXPECT_NE(d->path(5).find("dog/z.jpg"), std::string::npos);
  EXPECT_EQ(d->labels(), (std::vector<int>{0, 0, 0, 1, 1, 1}));
  auto img = d->load(3, {});
  ASSERT_TRUE(img.has_value());
  EXPECT_EQ(img->width(), 12);
  EXPECT_EQ(img->height(), 18);
  fs::remove_all(dir);
}

TEST(ImageFolderTest, Errors) {
  auto missing = ImageFolderDataset::open("/nonexistent/photos");
  ASSERT_FALSE(missing.has_value());
  EXPECT_EQ(missing.status().code(), StatusCode::kIoError);

  const std::string dir = pcv::testing::make_temp_dir("imgfolder_err");
  auto none = ImageFolderDataset::open(dir);
  ASSERT_FALSE(none.has_value());
  EXPECT_NE(none.status().message().find("no class folders"), std::string::npos);

  const auto jpg = encode_jpeg(make_test_image(8, 8));
  put(dir + "/only/a.jpg", jpg);
  fs::create_directories(dir + "/empty_class");
  auto single = ImageFolderDataset::open(dir);  // the empty class is dropped -> 1 class
  ASSERT_FALSE(single.has_value());
  EXPECT_NE(single.status().message().find("at least 2 classes"), std::string::npos);

  put(dir + "/other/b.png", encode_png_rgb(make_test_image(8, 8)));
  auto ok = ImageFolderDataset::open(dir);
  ASSERT_TRUE(ok.has_value()) << ok.status().to_string();
  EXPECT_EQ(ok->class_names(), (std::vector<std::string>{"only", "other"}));

  put(dir + "/file_not_dir", jpg);
  EXPECT_FALSE(ImageFolderDataset::open(dir + "/file_not_dir").has_value());
  fs::remove_all(dir);
}

TEST(ImageFolderTest, OxfordPetsSample) {
  PCV_REQUIRE_SHARED_DATA(dir, "oxford-pets-sample");
  auto d = ImageFolderDataset::open(dir);
  ASSERT_TRUE(d.has_value()) << d.status().to_string();
  EXPECT_EQ(d->class_names(), (std::vector<std::string>{"cat", "dog"}));
  EXPECT_EQ(d->size(), 222u);
  EXPECT_EQ(d->skipped(), 0u);
}

}  // namespace
}  // namespace pcv::data
