// Contract for constant padding.
//
// Shapes: input in_dims (rank <= 5, dense row-major); output dims
// out_dims[d] = pad_before[d] + in_dims[d] + pad_after[d]. Pads are >= 0 (negative pads,
// i.e. cropping, are rejected in prepare). Output elements outside the copied block are
// pad_value. int8: TFLite pads with the output zero point (input and output share
// quantization), so callers pass pad_value = zero_point; the values are copied unchanged.
#pragma once

#include <cstdint>

namespace pcv::kernels {

constexpr int kMaxPadRank = 5;

struct PadParams {
  int rank = 0;
  int in_dims[kMaxPadRank] = {};
  int pad_before[kMaxPadRank] = {};
  int pad_after[kMaxPadRank] = {};
};

void f32_pad__ref(const PadParams& p, const float* input, float pad_value, float* output);
void qs8_pad__ref(const PadParams& p, const int8_t* input, int8_t pad_value, int8_t* output);

}  // namespace pcv::kernels
