#include "vision/decode.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  pcv::vision::DecodeOptions o;
  o.max_side = 4096;
  (void)pcv::vision::decode_image({data, size}, "fuzz.img", o);
  o.min_height = o.min_width = 32;  // the DCT-scaled path
  (void)pcv::vision::decode_image({data, size}, "fuzz.img", o);
  return 0;
}
