// Where tests find things: the source tree, the build tree, and ../shared/data.
#pragma once

#include <string>

namespace pcv::testing {

std::string source_dir();
std::string binary_dir();
// ../shared/data beside the checkout (photos, pretrained models); may be absent.
std::string shared_data_dir();
// shared_data_dir() + "/" + rel if it exists, else "" (callers GTEST_SKIP with a message).
std::string shared_data(const std::string& rel);
// A fresh empty directory under the system temp dir, unique per call.
std::string make_temp_dir(const std::string& prefix);

}  // namespace pcv::testing

// Skips the test visibly when a file from ../shared/data is missing.
#define PCV_REQUIRE_SHARED_DATA(var, rel)                                            \
  const std::string var = ::pcv::testing::shared_data(rel);                          \
  if (var.empty()) GTEST_SKIP() << "needs ../shared/data/" << (rel) << " (absent here)"
