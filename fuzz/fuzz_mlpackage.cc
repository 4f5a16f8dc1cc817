// The .mlpackage reader takes a directory: the input is split into the ML Program protobuf
// (first 4 bytes: its length, little-endian) and weights/weight.bin (the rest), written under
// a fixed Manifest.json into a scratch bundle.
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>

#include "formats/coreml/coreml.h"
#include "fuzz_util.h"

namespace {

std::string bundle_dir() {
  static const std::string dir = [] {
    auto d = std::filesystem::temp_directory_path() / ("pcv_fuzz_mlpackage_" + std::to_string(::getpid()));
    std::filesystem::create_directories(d / "Data/com.apple.CoreML/weights");
    std::ofstream(d / "Manifest.json") << R"({"fileFormatVersion":"1.0.0","itemInfoEntries":{"A":{"author":"com.apple.CoreML","description":"CoreML Model Specification","name":"model.mlmodel","path":"com.apple.CoreML/model.mlmodel"},"B":{"author":"com.apple.CoreML","description":"CoreML Model Weights","name":"weights","path":"com.apple.CoreML/weights"}},"rootModelIdentifier":"A"})";
    return d.string();
  }();
  return dir;
}

void write(const std::string& path, const uint8_t* data, size_t n) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(n));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 4) return 0;
  uint32_t n = 0;
  std::memcpy(&n, data, 4);
  n = std::min<uint32_t>(n, static_cast<uint32_t>(size - 4));
  const std::string dir = bundle_dir();
  write(dir + "/Data/com.apple.CoreML/model.mlmodel", data + 4, n);
  write(dir + "/Data/com.apple.CoreML/weights/weight.bin", data + 4 + n, size - 4 - n);
  auto model = pcv::coreml::read_mlpackage(dir);
  if (model) pcv::fuzz::exercise_model(*model);
  return 0;
}
