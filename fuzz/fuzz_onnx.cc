#include "formats/onnx/onnx.h"
#include "fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto model = pcv::onnx::read_onnx({data, size}, "fuzz.onnx");
  if (model) pcv::fuzz::exercise_model(*model);
  return 0;
}
