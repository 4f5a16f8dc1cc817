#include "data/idx.h"

#include <gtest/gtest.h>
#include <zlib.h>

#include <filesystem>

#include "base/file.h"
#include "support/paths.h"

namespace pcv::data {
namespace {

std::vector<uint8_t> idx_bytes(std::vector<uint32_t> dims, const std::vector<uint8_t>& data) {
  std::vector<uint8_t> b = {0, 0, 0x08, static_cast<uint8_t>(dims.size())};
  for (uint32_t d : dims) {
    b.push_back(static_cast<uint8_t>(d >> 24));
    b.push_back(static_cast<uint8_t>(d >> 16));
    b.push_back(static_cast<uint8_t>(d >> 8));
    b.push_back(static_cast<uint8_t>(d));
  }
  b.insert(b.end(), data.begin(), data.end());
  return b;
}

void write_gz(const std::string& path, const std::vector<uint8_t>& bytes) {
  gzFile f = gzopen(path.c_str(), "wb");
  ASSERT_NE(f, nullptr);
  ASSERT_EQ(gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size())),
            static_cast<int>(bytes.size()));
  gzclose(f);
}

TEST(IdxTest, ParsesTinyGzipFiles) {
  const std::string dir = pcv::testing::make_temp_dir("idx");
  // 3 images of 2x4, labels 0, 2, 1.
  std::vector<uint8_t> pixels(3 * 2 * 4);
  for (size_t i = 0; i < pixels.size(); ++i) pixels[i] = static_cast<uint8_t>(i * 10);
  write_gz(dir + "/img.gz", idx_bytes({3, 2, 4}, pixels));
  write_gz(dir + "/lab.gz", idx_bytes({3}, {0, 2, 1}));
  auto a = read_idx(dir + "/img.gz");
  ASSERT_TRUE(a.has_value()) << a.status().to_string();
  EXPECT_EQ(a->dims, (std::vector<uint32_t>{3, 2, 4}));
  EXPECT_EQ(a->data, pixels);

  auto d = IdxDataset::open(dir + "/img.gz", dir + "/lab.gz", {"a", "b", "c"});
  ASSERT_TRUE(d.has_value()) << d.status().to_string();
  EXPECT_EQ(d->size(), 3u);
  EXPECT_EQ(d->height(), 2);
  EXPECT_EQ(d->width(), 4);
  EXPECT_EQ(d->label(1), 2);
  EXPECT_EQ(d->image(2).pixel(1, 3)[0], pixels[2 * 8 + 7]);
  auto img = d->load(1, {});
  ASSERT_TRUE(img.has_value());
  EXPECT_EQ(img->channels(), 1);
  EXPECT_EQ(img->pixel(0, 0)[0], 80);

  // Plain (uncompressed) files read the same way.
  ASSERT_TRUE(write_file_atomic(dir + "/lab.raw", std::span<const uint8_t>(idx_bytes({3}, {0, 2, 1}))).is_ok());
  auto raw = read_idx(dir + "/lab.raw");
  ASSERT_TRUE(raw.has_value()) << raw.status().to_string();
  EXPECT_EQ(raw->data, (std::vector<uint8_t>{0, 2, 1}));

  // Label beyond the class names; count mismatch.
  EXPECT_FALSE(IdxDataset::open(dir + "/img.gz", dir + "/lab.gz", {"a", "b"}).has_value());
  write_gz(dir + "/lab2.gz", idx_bytes({2}, {0, 1}));
  auto bad = IdxDataset::open(dir + "/img.gz", dir + "/lab2.gz");
  ASSERT_FALSE(bad.has_value());
  EXPECT_NE(bad.status().message().find("labels"), std::string::npos);
  std::filesystem::remove_all(dir);
}

TEST(IdxTest, MalformedInputsAreErrors) {
  auto expect_bad = [](const std::vector<uint8_t>& b, const char* what) {
    auto r = parse_idx(b, "x.idx");
    EXPECT_FALSE(r.has_value()) << what;
    if (!r.has_value()) {
      EXPECT_NE(r.status().message().find(what), std::string::npos) << r.status().message();
    }
  };
  expect_bad({}, "truncated");
  expect_bad({1, 0, 8, 1, 0, 0, 0, 1, 5}, "magic");
  expect_bad({0, 0, 0x0D, 1, 0, 0, 0, 1, 5}, "unsupported");
  expect_bad({0, 0, 8, 0}, "dimensions");
  expect_bad({0, 0, 8, 2, 0, 0, 0, 2}, "truncated IDX header");
  expect_bad(idx_bytes({2, 3}, {1, 2, 3, 4, 5}), "truncated IDX data");
  expect_bad(idx_bytes({2}, {1, 2, 3}), "trailing");
  expect_bad(idx_bytes({0}, {}), "zero");
  EXPECT_FALSE(read_idx("/nonexistent/file.gz").has_value());
  // A truncated gzip stream.
  const std::string dir = pcv::testing::make_temp_dir("idx_gz");
  write_gz(dir + "/a.gz", idx_bytes({1000}, std::vector<uint8_t>(1000, 3)));
  auto full = read_file(dir + "/a.gz");
  ASSERT_TRUE(full.has_value());
  std::vector<uint8_t> cut(full->begin(), full->begin() + full->size() / 2);
  ASSERT_TRUE(write_file_atomic(dir + "/cut.gz", std::span<const uint8_t>(cut)).is_ok());
  EXPECT_FALSE(read_idx(dir + "/cut.gz").has_value());
  std::filesystem::remove_all(dir);
}

TEST(IdxTest, FashionMnist) {
  const std::string dir = kFashionMnistDir;
  if (!file_exists(dir + "/train-images-idx3-ubyte.gz")) {
    GTEST_SKIP() << "needs " << dir << " (Debian package dataset-fashion-mnist)";
  }
  auto train = IdxDataset::fashion_mnist(true);
  ASSERT_TRUE(train.has_value()) << train.status().to_string();
  EXPECT_EQ(train->size(), 60000u);
  EXPECT_EQ(train->height(), 28);
  EXPECT_EQ(train->width(), 28);
  EXPECT_EQ(train->num_classes(), 10);
  EXPECT_EQ(train->class_names()[0], "T-shirt/top");
  EXPECT_EQ(train->class_names()[9], "Ankle boot");
  auto test = IdxDataset::fashion_mnist(false);
  ASSERT_TRUE(test.has_value()) << test.status().to_string();
  EXPECT_EQ(test->size(), 10000u);
  // Balanced: 6000 / 1000 per class.
  std::vector<int> counts(10);
  for (int l : train->labels()) ++counts[l];
  for (int c : counts) EXPECT_EQ(c, 6000);
}

}  // namespace
}  // namespace pcv::data
