#include "data/loader.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <map>

#include "base/file.h"
#include "data/idx.h"
#include "data/image_folder.h"
#include "data/split.h"
#include "support/paths.h"
#include "vision/test_images.h"

namespace pcv::data {
namespace {
namespace fs = std::filesystem;

TEST(SplitTest, StratifiedAndDeterministic) {
  std::vector<int> labels;
  for (int c = 0; c < 3; ++c) {
    for (int i = 0; i < 10 * (c + 1); ++i) labels.push_back(c);  // 10, 20, 30
  }
  labels.push_back(3);  // a class with one sample stays in train
  auto s = stratified_split(labels, 0.2, 42);
  ASSERT_TRUE(s.has_value());
  std::map<int, int> val_counts, train_counts;
  for (size_t i : s->val) ++val_counts[labels[i]];
  for (size_t i : s->train) ++train_counts[labels[i]];
  EXPECT_EQ(val_counts[0], 2);
  EXPECT_EQ(val_counts[1], 4);
  EXPECT_EQ(val_counts[2], 6);
  EXPECT_EQ(val_counts[3], 0);
  EXPECT_EQ(train_counts[3], 1);
  EXPECT_EQ(s->train.size() + s->val.size(), labels.size());
  EXPECT_TRUE(std::is_sorted(s->val.begin(), s->val.end()));
  auto again = stratified_split(labels, 0.2, 42);
  EXPECT_EQ(again->val, s->val);
  auto other = stratified_split(labels, 0.2, 43);
  EXPECT_NE(other->val, s->val);
  // Tiny classes still get one validation sample; never all of them.
  auto tiny = stratified_split(std::vector<int>{0, 0, 1, 1}, 0.1, 1);
  EXPECT_EQ(tiny->val.size(), 2u);
  EXPECT_FALSE(stratified_split(labels, 1.0, 1).has_value());
}

// A small image folder: 2 classes x 7 JPEG/PNG pictures of different sizes.
std::shared_ptr<ImageFolderDataset> folder(std::string* dir_out) {
  const std::string dir = pcv::testing::make_temp_dir("loader");
  for (int c = 0; c < 2; ++c) {
    for (int i = 0; i < 7; ++i) {
      const auto img = vision::testing::make_test_image(30 + 5 * i, 40 + 3 * i + 10 * c);
      const auto bytes = (i % 2) ? vision::testing::encode_png_rgb(img)
                                 : vision::testing::encode_jpeg(img);
      const std::string p = dir + (c ? "/b/" : "/a/") + std::to_string(i) + (i % 2 ? ".png" : ".jpg");
      fs::create_directories(fs::path(p).parent_path());
      EXPECT_TRUE(write_file_atomic(p, std::span<const uint8_t>(bytes)).is_ok());
    }
  }
  auto d = ImageFolderDataset::open(dir);
  EXPECT_TRUE(d.has_value()) << d.status().to_string();
  *dir_out = dir;
  return std::make_shared<ImageFolderDataset>(std::move(*d));
}

std::vector<Batch> run_epoch(std::shared_ptr<const Dataset> ds, LoaderOptions o, int epoch) {
  auto l = DataLoader::create(ds, {}, o);
  EXPECT_TRUE(l.has_value()) << l.status().to_string();
  std::vector<Batch> out;
  (*l)->start_epoch(epoch);
  for (;;) {
    Batch b;
    auto more = (*l)->next(&b);
    EXPECT_TRUE(more.has_value()) << more.status().to_string();
    if (!more.has_value() || !*more) break;
    out.push_back(std::move(b));
  }
  EXPECT_EQ(out.size(), (*l)->batches_per_epoch());
  return out;
}

LoaderOptions small_options(bool augment) {
  LoaderOptions o;
  o.batch_size = 4;
  o.seed = 7;
  o.augment = augment;
  o.preprocess.out_h = o.preprocess.out_w = 16;
  o.preprocess.crop_fraction = 0.875f;
  for (int c = 0; c < 3; ++c) {
    o.preprocess.mean[c] = 127.5f;
    o.preprocess.std[c] = 127.5f;
  }
  return o;
}

TEST(LoaderTest, SameSeedSameBatchesWithOneOrTwoThreads) {
  std::string dir;
  auto ds = folder(&dir);
  for (bool augment : {false, true}) {
    LoaderOptions o = small_options(augment);
    o.threads = 1;
    const auto a = run_epoch(ds, o, 3);
    o.threads = 2;
    const auto b = run_epoch(ds, o, 3);
    ASSERT_EQ(a.size(), 4u);  // 14 samples / 4 -> 4 batches, the last one of 2
    ASSERT_EQ(b.size(), a.size());
    EXPECT_EQ(a.back().size, 2);
    std::vector<size_t> seen;
    for (size_t i = 0; i < a.size(); ++i) {
      EXPECT_EQ(a[i].indices, b[i].indices);
      EXPECT_EQ(a[i].labels, b[i].labels);
      EXPECT_EQ(a[i].images, b[i].images) << "batch " << i << " augment " << augment;
      seen.insert(seen.end(), a[i].indices.begin(), a[i].indices.end());
    }
    std::sort(seen.begin(), seen.end());
    for (size_t i = 0; i < seen.size(); ++i) EXPECT_EQ(seen[i], i);  // every sample once
    // Another epoch: another order (and other augmentations).
    const auto c = run_epoch(ds, o, 4);
    bool differs = false;
    for (size_t i = 0; i < a.size(); ++i) differs |= a[i].indices != c[i].indices;
    EXPECT_TRUE(differs);
  }
  fs::remove_all(dir);
}

TEST(LoaderTest, AugmentationKeepsShapesAndRanges) {
  std::string dir;
  auto ds = folder(&dir);
  LoaderOptions o = small_options(true);
  o.drop_last = true;
  const auto batches = run_epoch(ds, o, 0);
  ASSERT_EQ(batches.size(), 3u);
  const auto eval = run_epoch(ds, small_options(false), 0);
  double diff = 0;
  for (const Batch& b : batches) {
    EXPECT_EQ(b.size, 4);
    EXPECT_EQ(b.height, 16);
    EXPECT_EQ(b.width, 16);
    EXPECT_EQ(b.channels, 3);
    ASSERT_EQ(b.images.size(), 4u * 16 * 16 * 3);
    for (float v : b.images) {
      ASSERT_GE(v, -1.f - 1e-5f);
      ASSERT_LE(v, 1.f + 1e-5f);
    }
  }
  // Augmented samples differ from the eval transform of the same picture.
  std::map<size_t, const float*> eval_of;
  for (const Batch& b : eval) {
    for (int k = 0; k < b.size; ++k) eval_of[b.indices[k]] = b.images.data() + k * 16 * 16 * 3;
  }
  for (const Batch& b : batches) {
    for (int k = 0; k < b.size; ++k) {
      const float* e = eval_of[b.indices[k]];
      for (int i = 0; i < 16 * 16 * 3; ++i) diff += std::fabs(b.images[k * 768 + i] - e[i]);
    }
  }
  EXPECT_GT(diff, 1.0);
  fs::remove_all(dir);
}

TEST(LoaderTest, EvalSampleEqualsPredictionPreprocessing) {
  std::string dir;
  auto ds = folder(&dir);
  LoaderOptions o = small_options(false);
  o.shuffle = false;
  const auto batches = run_epoch(ds, o, 0);
  auto img = vision::read_image(ds->path(0), vision::decode_options_for(o.preprocess));
  ASSERT_TRUE(img.has_value());
  std::vector<float> ref(o.preprocess.out_elems());
  ASSERT_TRUE(eval_to_tensor(*img, o.preprocess, ref.data(), ref.size()).is_ok());
  EXPECT_EQ(std::vector<float>(batches[0].images.begin(), batches[0].images.begin() + ref.size()),
            ref);
  fs::remove_all(dir);
}

TEST(LoaderTest, IdxGrayAndReplicatedRgb) {
  const std::string dir = pcv::testing::make_temp_dir("idx_loader");
  // Write a tiny IDX pair (5 images 28x28).
  std::vector<uint8_t> img = {0, 0, 8, 3, 0, 0, 0, 5, 0, 0, 0, 28, 0, 0, 0, 28};
  for (int i = 0; i < 5 * 28 * 28; ++i) img.push_back(static_cast<uint8_t>(i % 251));
  std::vector<uint8_t> lab = {0, 0, 8, 1, 0, 0, 0, 5, 0, 1, 0, 1, 1};
  ASSERT_TRUE(write_file_atomic(dir + "/i", std::span<const uint8_t>(img)).is_ok());
  ASSERT_TRUE(write_file_atomic(dir + "/l", std::span<const uint8_t>(lab)).is_ok());
  auto d = IdxDataset::open(dir + "/i", dir + "/l");
  ASSERT_TRUE(d.has_value()) << d.status().to_string();
  auto ds = std::make_shared<IdxDataset>(std::move(*d));
  LoaderOptions o;
  o.batch_size = 5;
  o.shuffle = false;
  o.preprocess.out_h = o.preprocess.out_w = 28;
  o.preprocess.mode = vision::ResizeMode::kStretch;
  o.preprocess.color = vision::ColorOrder::kGray;
  o.preprocess.std[0] = 255.f;
  auto gray = run_epoch(ds, o, 0);
  ASSERT_EQ(gray.size(), 1u);
  EXPECT_EQ(gray[0].channels, 1);
  EXPECT_FLOAT_EQ(gray[0].images[100], (100 % 251) / 255.f);  // 28x28 stays exact
  EXPECT_EQ(gray[0].labels, (std::vector<int32_t>{0, 1, 0, 1, 1}));
  o.preprocess.color = vision::ColorOrder::kRGB;
  o.preprocess.out_h = o.preprocess.out_w = 32;
  o.preprocess.std[1] = o.preprocess.std[2] = 255.f;
  auto rgb = run_epoch(ds, o, 0);
  EXPECT_EQ(rgb[0].channels, 3);
  EXPECT_EQ(rgb[0].height, 32);
  EXPECT_EQ(rgb[0].images[30], rgb[0].images[31]);
  EXPECT_EQ(rgb[0].images[30], rgb[0].images[32]);
  fs::remove_all(dir);
}

TEST(LoaderTest, FashionMnistBatch) {
  if (!file_exists(std::string(kFashionMnistDir) + "/t10k-images-idx3-ubyte.gz")) {
    GTEST_SKIP() << "needs dataset-fashion-mnist";
  }
  auto d = IdxDataset::fashion_mnist(false);
  ASSERT_TRUE(d.has_value());
  auto ds = std::make_shared<IdxDataset>(std::move(*d));
  LoaderOptions o;
  o.batch_size = 64;
  o.preprocess.out_h = o.preprocess.out_w = 28;
  o.preprocess.mode = vision::ResizeMode::kStretch;
  o.preprocess.color = vision::ColorOrder::kGray;
  auto l = DataLoader::create(ds, {}, o);
  ASSERT_TRUE(l.has_value());
  (*l)->start_epoch(0);
  Batch b;
  auto more = (*l)->next(&b);
  ASSERT_TRUE(more.has_value() && *more);
  EXPECT_EQ(b.size, 64);
  EXPECT_EQ(b.images.size(), 64u * 28 * 28);
  EXPECT_EQ((*l)->batches_per_epoch(), 157u);
}

}  // namespace
}  // namespace pcv::data
