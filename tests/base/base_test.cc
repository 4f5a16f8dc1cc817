#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <limits>

#include "base/file.h"
#include "base/fp16.h"
#include "base/status.h"
#include "base/thread_pool.h"

namespace pcv {
namespace {

TEST(Status, CarriesCodeAndMessage) {
  Status s = invalid_model("m.pcv: truncated");
  EXPECT_FALSE(s.is_ok());
  EXPECT_EQ(s.code(), StatusCode::kInvalidModel);
  EXPECT_EQ(s.to_string(), "invalid_model: m.pcv: truncated");
  EXPECT_EQ(s.with_context("loading").message(), "loading: m.pcv: truncated");
  EXPECT_TRUE(Status::ok().is_ok());
}

Expected<int> half_of(int x) {
  if (x % 2) return invalid_argument("odd");
  return x / 2;
}
Status use_half(int x, int* out) {
  PCV_ASSIGN_OR_RETURN(*out, half_of(x));
  return Status::ok();
}

TEST(Expected, ValueOrStatus) {
  int v = 0;
  EXPECT_TRUE(use_half(8, &v).is_ok());
  EXPECT_EQ(v, 4);
  Status s = use_half(3, &v);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(), "odd");
}

TEST(Fp16, KnownValues) {
  // Hand-checked binary16 encodings.
  EXPECT_EQ(fp16_from_f32(1.0f), 0x3C00);
  EXPECT_EQ(fp16_from_f32(-2.0f), 0xC000);
  EXPECT_EQ(fp16_from_f32(65504.0f), 0x7BFF);
  EXPECT_EQ(fp16_from_f32(65520.0f), 0x7C00);  // rounds to inf
  EXPECT_EQ(fp16_from_f32(5.9604644775390625e-08f), 0x0001);  // smallest subnormal
  EXPECT_EQ(fp16_from_f32(0.0f), 0x0000);
  EXPECT_EQ(fp16_from_f32(0.333333343f), 0x3555);
  // Ties go to even: 1 + 2^-11 is halfway between 0x3C00 and 0x3C01.
  EXPECT_EQ(fp16_from_f32(1.0f + std::ldexp(1.0f, -11)), 0x3C00);
  EXPECT_EQ(fp16_from_f32(1.0f + 3 * std::ldexp(1.0f, -11)), 0x3C02);
  EXPECT_TRUE(std::isnan(f32_from_fp16(fp16_from_f32(std::numeric_limits<float>::quiet_NaN()))));
  EXPECT_EQ(f32_from_fp16(0x3555), 0.333251953125f);
  EXPECT_EQ(f32_from_fp16(0x0001), 5.9604644775390625e-08f);
}

TEST(Fp16, RoundTripsEveryHalf) {
  for (uint32_t h = 0; h < 0x10000; ++h) {
    const uint16_t x = static_cast<uint16_t>(h);
    const float f = f32_from_fp16(x);
    if (std::isnan(f)) continue;
    ASSERT_EQ(fp16_from_f32(f), x) << std::hex << h;
  }
}

class TempDir : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("pcv_base_test_" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string path(const char* name) { return (dir_ / name).string(); }
  std::filesystem::path dir_;
};

TEST_F(TempDir, AtomicWriteReplacesAndReadsBack) {
  const std::string p = path("a.bin");
  ASSERT_TRUE(write_file_atomic(p, std::string_view("first")).is_ok());
  ASSERT_TRUE(write_file_atomic(p, std::string_view("second")).is_ok());
  auto text = read_text_file(p);
  ASSERT_TRUE(text.has_value());
  EXPECT_EQ(*text, "second");
  // No temporary files are left behind.
  int n = 0;
  for (auto& e : std::filesystem::directory_iterator(dir_)) n += e.is_regular_file();
  EXPECT_EQ(n, 1);
}

TEST_F(TempDir, WriteIntoMissingDirectoryFailsClearly) {
  Status s = write_file_atomic(path("nope/x.bin"), std::string_view("x"));
  EXPECT_EQ(s.code(), StatusCode::kIoError);
  EXPECT_NE(s.message().find("does not exist"), std::string::npos) << s.message();
}

TEST_F(TempDir, UnwritableDirectoryKeepsPreviousFile) {
  if (::geteuid() == 0) {
    // root ignores directory permissions; use a path that is a directory instead.
    const std::string p = path("d");
    std::filesystem::create_directories(p);
    Status s = write_file_atomic(p, std::string_view("x"));
    EXPECT_EQ(s.code(), StatusCode::kIoError);
    EXPECT_TRUE(is_directory(p));
    return;
  }
  const std::string p = path("keep.txt");
  ASSERT_TRUE(write_file_atomic(p, std::string_view("old")).is_ok());
  std::filesystem::permissions(dir_, std::filesystem::perms::owner_read |
                                         std::filesystem::perms::owner_exec);
  Status s = write_file_atomic(p, std::string_view("new"));
  std::filesystem::permissions(dir_, std::filesystem::perms::owner_all);
  EXPECT_EQ(s.code(), StatusCode::kIoError);
  EXPECT_EQ(*read_text_file(p), "old");
}

TEST_F(TempDir, ReadMissingFileNamesIt) {
  auto r = read_file(path("missing.pcv"));
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.status().code(), StatusCode::kIoError);
  EXPECT_NE(r.status().message().find("missing.pcv"), std::string::npos);
}

TEST_F(TempDir, DirAtomicReplacesWholeTree) {
  const std::string p = path("pkg.mlpackage");
  auto fill = [](const std::string& content) {
    return [content](const std::string& dir) {
      return write_file_atomic(dir + "/f.txt", std::string_view(content));
    };
  };
  ASSERT_TRUE(write_dir_atomic(p, fill("one")).is_ok());
  ASSERT_TRUE(write_dir_atomic(p, fill("two")).is_ok());
  EXPECT_EQ(*read_text_file(p + "/f.txt"), "two");
  // A failing fill leaves the previous tree.
  Status s = write_dir_atomic(p, [](const std::string&) { return io_error("disk full"); });
  EXPECT_FALSE(s.is_ok());
  EXPECT_EQ(*read_text_file(p + "/f.txt"), "two");
}

TEST(ThreadPool, ParallelForCoversEveryIndexOnce) {
  for (int threads : {1, 2, 3}) {
    ThreadPool pool(threads);
    std::vector<std::atomic<int>> hits(1000);
    pool.parallel_for(hits.size(), [&](size_t i) { hits[i]++; });
    for (auto& h : hits) ASSERT_EQ(h.load(), 1);
    std::vector<std::atomic<int>> tiles(1001);
    pool.parallel_for_tiles(tiles.size(), 64, [&](size_t b, size_t e) {
      for (size_t i = b; i < e; ++i) tiles[i]++;
    });
    for (auto& h : tiles) ASSERT_EQ(h.load(), 1);
  }
}

}  // namespace
}  // namespace pcv
