#include "formats/coreml/coreml_test_util.h"

#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <limits>
#include <random>

#include "support/paths.h"
#include "support/random.h"
#include "zoo/zoo.h"

namespace pcv::coreml::testing {

ir::Model simple_cnn_32() {
  zoo::ZooOptions o;
  o.arch = "simple_cnn";
  o.size = 32;
  o.labels = {"cat", "dog"};
  auto m = zoo::create_model(o);
  EXPECT_TRUE(m.has_value()) << m.status().to_string();
  return std::move(m).value();
}

ir::Model mobilenet_v2_64() {
  zoo::ZooOptions o;
  o.arch = "mobilenet_v2";
  o.size = 64;
  o.width = 0.35f;
  o.labels = {"cat", "dog"};
  auto m = zoo::create_model(o);
  EXPECT_TRUE(m.has_value()) << m.status().to_string();
  return std::move(m).value();
}

std::string decode_raw(const std::vector<uint8_t>& bytes) {
  const std::string dir = pcv::testing::make_temp_dir("coreml_decode");
  const std::string in = dir + "/model.bin", out = dir + "/decoded.txt";
  {
    std::ofstream f(in, std::ios::binary);
    f.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  }
  const std::string cmd = std::string(PCV_PROTOC_PATH) + " --decode_raw < '" + in + "' > '" + out + "' 2>&1";
  const int rc = std::system(cmd.c_str());
  std::ifstream f(out);
  std::string text((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  EXPECT_EQ(rc, 0) << "protoc --decode_raw failed: " << text.substr(0, 500);
  return rc == 0 ? text : "";
}

std::vector<int> top_level_fields(const std::string& decoded) {
  std::vector<int> fields;
  int depth = 0;
  size_t pos = 0;
  while (pos < decoded.size()) {
    size_t end = decoded.find('\n', pos);
    if (end == std::string::npos) end = decoded.size();
    std::string line = decoded.substr(pos, end - pos);
    pos = end + 1;
    const size_t first = line.find_first_not_of(' ');
    if (first == std::string::npos) continue;
    line = line.substr(first);
    if (line[0] == '}') {
      --depth;
      continue;
    }
    if (depth == 0) {
      const size_t stop = line.find_first_of(": {");
      fields.push_back(std::atoi(line.substr(0, stop).c_str()));
    }
    if (line.back() == '{') ++depth;
  }
  return fields;
}

ir::Tensor random_input(const ir::Model& m, uint64_t seed) {
  return ::pcv::testing::uniform_input(m.graph, seed);
}

const ir::Value* find_constant(const ir::Graph& g, const std::string& name) {
  const ir::ValueId id = g.find_value(name);
  if (id == ir::kNoValue || !g.value(id).is_constant()) return nullptr;
  return &g.value(id);
}

double max_rel_diff(const ir::Tensor& a, const ir::Tensor& b) {
  if (a.num_elements() != b.num_elements()) return std::numeric_limits<double>::infinity();
  double m = 0;
  for (int64_t i = 0; i < a.num_elements(); ++i) {
    const double x = a.data<float>()[i], y = b.data<float>()[i];
    m = std::max(m, std::abs(x - y) / std::max(1.0, std::abs(y)));
  }
  return m;
}

#ifdef PCV_HAVE_VISION
ir::Tensor photo_input(const vision::Image& img, const ir::InputSpec& spec, int size) {
  ir::Tensor t(ir::DType::kF32, {1, size, size, 3});
  for (int y = 0; y < size; ++y)
    for (int x = 0; x < size; ++x)
      for (int c = 0; c < 3; ++c) {
        const float v = img.pixel(y * img.height() / size, x * img.width() / size)[c];
        t.data<float>()[(y * size + x) * 3 + c] = (v - spec.mean[c]) / spec.std[c];
      }
  return t;
}
#endif

}  // namespace pcv::coreml::testing
