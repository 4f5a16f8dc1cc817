// pcv_capi_make_model OUT.pcv [arch] [size] [classes] [width]: writes a seeded zoo model
// (default mobilenet_v2 0.35, 64x64, 5 classes labelled cat dog bird fish frog).
#include <cstdio>
#include <cstdlib>
#include <string>

#include "ir/pcv_format.h"
#include "zoo/zoo.h"

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s OUT.pcv [arch] [size] [classes] [width]\n", argv[0]);
    return 2;
  }
  pcv::zoo::ZooOptions o;
  o.arch = argc > 2 ? argv[2] : "mobilenet_v2";
  o.size = argc > 3 ? std::atoi(argv[3]) : 64;
  o.classes = argc > 4 ? std::atoi(argv[4]) : 5;
  o.width = argc > 5 ? static_cast<float>(std::atof(argv[5])) : 0.35f;
  o.seed = 7;
  if (o.classes == 5) o.labels = {"cat", "dog", "bird", "fish", "frog"};
  auto model = pcv::zoo::create_model(o);
  if (!model) {
    std::fprintf(stderr, "%s\n", model.status().to_string().c_str());
    return 1;
  }
  pcv::Status s = pcv::ir::save_pcv(*model, argv[1]);
  if (!s.is_ok()) {
    std::fprintf(stderr, "%s\n", s.to_string().c_str());
    return 1;
  }
  return 0;
}
