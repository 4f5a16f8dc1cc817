#include "fuzz_util.h"
#include "ir/pcv_format.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto model = pcv::ir::read_pcv({data, size}, "fuzz.pcv");
  if (model) pcv::fuzz::exercise_model(*model);
  return 0;
}
