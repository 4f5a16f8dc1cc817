// Writes seed corpora for the fuzz targets: small zoo models in every format, float and fp16,
// a pruned .pcv (sparse constants), and ML Programs with int8 and palettized weights.
//   fuzz_make_seeds OUT_DIR   -> OUT_DIR/{pcv,tflite,mlmodel,mlpackage,onnx}/*
#include <cstring>
#include <filesystem>
#include <fstream>

#include "base/file.h"
#include "formats/model_io.h"
#include "ir/pcv_format.h"
#include "zoo/zoo.h"
#if PCV_TFLITE_AVAILABLE
#include "formats/tflite/tflite.h"
#endif
#if PCV_COREML_AVAILABLE
#include "formats/coreml/coreml.h"
#endif

namespace fs = std::filesystem;

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: fuzz_make_seeds OUT_DIR\n");
    return 2;
  }
  const fs::path out = argv[1];
  for (const char* d : {"pcv", "tflite", "mlmodel", "mlpackage", "onnx", "image"}) fs::create_directories(out / d);
  int n = 0;
  for (const char* arch : {"simple_cnn", "mobilenet_v2"}) {
    pcv::zoo::ZooOptions o;
    o.arch = arch;
    o.size = std::string(arch) == "simple_cnn" ? 16 : 32;
    o.width = 0.35f;
    o.labels = {"cat", "dog"};
    auto m = pcv::zoo::create_model(o);
    if (!m) return 1;
    const std::string base = std::string(arch);
    (void)pcv::ir::save_pcv(*m, (out / "pcv" / (base + ".pcv")).string());
    {
      // Half of every weight zeroed, as pruning leaves them: .pcv stores those tensors sparse.
      pcv::ir::Model pruned = *m;
      for (auto& v : pruned.graph.values) {
        if (!v.is_constant() || v.shape.size() < 2 || v.dtype != pcv::ir::DType::kF32) continue;
        v.data = v.data.clone();
        float* w = v.data.data<float>();
        for (int64_t i = 0; i < v.data.num_elements(); i += 2) w[i] = 0.f;
      }
      (void)pcv::ir::save_pcv(pruned, (out / "pcv" / (base + "_pruned.pcv")).string());
    }
    (void)pcv::formats::save_model(*m, (out / "tflite" / (base + ".tflite")).string());
    (void)pcv::formats::save_model(*m, (out / "mlmodel" / (base + ".mlmodel")).string());
    (void)pcv::formats::save_model(*m, (out / "onnx" / (base + ".onnx")).string());
#if PCV_COREML_AVAILABLE
    // ML Programs with float, int8 (constexpr_affine_dequantize) and 4- and 3-bit palettized
    // (constexpr_lut_to_dense) weights; the threshold at 0 so that these small models compress.
    struct Variant {
      const char* name;
      pcv::coreml::PackageWeightFormat weights;
      int bits;
    };
    for (const Variant& v : {Variant{"", pcv::coreml::PackageWeightFormat::kFloat, 0},
                             Variant{"_int8", pcv::coreml::PackageWeightFormat::kAffineInt8, 0},
                             Variant{"_lut4", pcv::coreml::PackageWeightFormat::kLookupTable, 4},
                             Variant{"_lut3", pcv::coreml::PackageWeightFormat::kLookupTable, 3}}) {
      pcv::coreml::MlPackageOptions po;
      po.weights = v.weights;
      if (v.bits > 0) po.lookup_table_bits = v.bits;
      po.weight_threshold = 0;
      const fs::path pkg = out / (base + v.name + ".mlpackage");
      if (!pcv::coreml::save_mlpackage(*m, pkg.string(), po).is_ok()) continue;
      auto proto = pcv::read_file((pkg / "Data/com.apple.CoreML/model.mlmodel").string());
      auto weights = pcv::read_file((pkg / "Data/com.apple.CoreML/weights/weight.bin").string());
      if (proto && weights) {
        std::vector<uint8_t> seed(4);
        const auto len = static_cast<uint32_t>(proto->size());
        std::memcpy(seed.data(), &len, 4);
        seed.insert(seed.end(), proto->begin(), proto->end());
        seed.insert(seed.end(), weights->begin(), weights->end());
        (void)pcv::write_file_atomic((out / "mlpackage" / (base + v.name + ".seed")).string(), seed);
      }
      fs::remove_all(pkg);
    }
#endif
    ++n;
  }
  std::printf("wrote seeds for %d models under %s\n", n, out.c_str());
  return 0;
}
