#include "formats/coreml/coreml.h"
#include "fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto model = pcv::coreml::read_mlmodel({data, size}, "fuzz.mlmodel");
  if (model) pcv::fuzz::exercise_model(*model);
  return 0;
}
