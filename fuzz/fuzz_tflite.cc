#include "formats/tflite/tflite.h"
#include "fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::span<const uint8_t> bytes(data, size);
  auto model = pcv::tflite::read_tflite(bytes, "fuzz.tflite");
  if (model) {
    (void)pcv::tflite::describe_tflite(bytes);
    pcv::fuzz::exercise_model(*model);
  }
  return 0;
}
