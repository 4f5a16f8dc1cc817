#include <cstddef>

#include "kernels/pad/pad.h"

namespace pcv::kernels {

namespace {

template <typename T>
void pad_ref(const PadParams& p, const T* input, T pad_value, T* output) {
  size_t out_total = 1;
  int out_dims[kMaxPadRank];
  for (int d = 0; d < p.rank; ++d) {
    out_dims[d] = p.pad_before[d] + p.in_dims[d] + p.pad_after[d];
    out_total *= static_cast<size_t>(out_dims[d]);
  }
  int idx[kMaxPadRank] = {};
  size_t in_i = 0;  // input elements are consumed in row-major order
  for (size_t o = 0; o < out_total; ++o) {
    bool inside = true;
    for (int d = 0; d < p.rank; ++d) {
      if (idx[d] < p.pad_before[d] || idx[d] >= p.pad_before[d] + p.in_dims[d]) inside = false;
    }
    output[o] = inside ? input[in_i++] : pad_value;
    for (int d = p.rank - 1; d >= 0; --d) {
      if (++idx[d] < out_dims[d]) break;
      idx[d] = 0;
    }
  }
}

}  // namespace

void f32_pad__ref(const PadParams& p, const float* input, float pad_value, float* output) {
  pad_ref(p, input, pad_value, output);
}

void qs8_pad__ref(const PadParams& p, const int8_t* input, int8_t pad_value, int8_t* output) {
  pad_ref(p, input, pad_value, output);
}

}  // namespace pcv::kernels
