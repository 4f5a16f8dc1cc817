#include "support/paths.h"

#include <unistd.h>

#include <atomic>
#include <filesystem>

namespace pcv::testing {

std::string source_dir() { return PCV_SOURCE_DIR; }
std::string binary_dir() { return PCV_BINARY_DIR; }
std::string shared_data_dir() {
  if (const char* e = std::getenv("PCV_SHARED_DATA")) return e;
  return PCV_SHARED_DATA_DIR;
}

std::string shared_data(const std::string& rel) {
  std::string p = shared_data_dir() + "/" + rel;
  std::error_code ec;
  return std::filesystem::exists(p, ec) ? p : std::string();
}

std::string make_temp_dir(const std::string& prefix) {
  static std::atomic<int> counter{0};
  auto dir = std::filesystem::temp_directory_path() /
             (prefix + "_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir.string();
}

}  // namespace pcv::testing
