#include "capi/model_memory.h"

#include <fmt/core.h>

#include <algorithm>

#include "ir/pcv_format.h"

#if PCV_TFLITE_AVAILABLE
#include "formats/tflite/tflite.h"
#endif
#if PCV_COREML_AVAILABLE
#include "formats/coreml/coreml.h"
#endif

namespace pcv::capi {
namespace {

bool has_identifier(std::span<const uint8_t> b, const char (&id)[5]) {
  return b.size() >= 8 && std::equal(id, id + 4, b.begin() + 4);
}

}  // namespace

Expected<ir::Model> load_model_from_memory(std::span<const uint8_t> bytes, const std::string& name) {
  if (bytes.size() < 8) {
    return invalid_model(fmt::format("{}: {} bytes is too short to be a model", name, bytes.size()));
  }
  if (has_identifier(bytes, "PCV1")) return ir::read_pcv(bytes, name);
  if (has_identifier(bytes, "TFL3")) {
#if PCV_TFLITE_AVAILABLE
    return tflite::read_tflite(bytes, name);
#else
    return unsupported(name + ": a TFLite model, and this pocketcv was built without tflite support");
#endif
  }
#if PCV_COREML_AVAILABLE
  auto coreml = coreml::read_mlmodel(bytes, name);
  if (coreml) return coreml;
  return invalid_model(fmt::format(
      "{}: not a .pcv or .tflite model (no PCV1/TFL3 identifier) and not a Core ML model ({})", name,
      coreml.status().message()));
#else
  return invalid_model(name + ": not a .pcv or .tflite model (no PCV1/TFL3 identifier at offset 4)");
#endif
}

}  // namespace pcv::capi
