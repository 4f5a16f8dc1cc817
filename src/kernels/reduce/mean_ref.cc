#include <cstddef>

#include "kernels/reduce/mean.h"

namespace pcv::kernels {

namespace {

// Splits the axes into kept and reduced lists, with row-major input strides.
struct AxisSplit {
  int kept_n = 0, red_n = 0;
  int kept_dim[kMaxReduceRank], red_dim[kMaxReduceRank];
  size_t kept_stride[kMaxReduceRank], red_stride[kMaxReduceRank];
  size_t out_count = 1, reduce_count = 1;
};

AxisSplit split_axes(const MeanParams& p) {
  AxisSplit s;
  size_t stride[kMaxReduceRank];
  size_t st = 1;
  for (int d = p.rank - 1; d >= 0; --d) {
    stride[d] = st;
    st *= static_cast<size_t>(p.in_dims[d]);
  }
  for (int d = 0; d < p.rank; ++d) {
    if (p.reduce_axis[d]) {
      s.red_dim[s.red_n] = p.in_dims[d];
      s.red_stride[s.red_n++] = stride[d];
      s.reduce_count *= static_cast<size_t>(p.in_dims[d]);
    } else {
      s.kept_dim[s.kept_n] = p.in_dims[d];
      s.kept_stride[s.kept_n++] = stride[d];
      s.out_count *= static_cast<size_t>(p.in_dims[d]);
    }
  }
  return s;
}

// Offset of the flat index i over (dims, strides), row-major.
size_t offset_of(size_t i, int n, const int* dims, const size_t* strides) {
  size_t off = 0;
  for (int k = n - 1; k >= 0; --k) {
    off += (i % static_cast<size_t>(dims[k])) * strides[k];
    i /= static_cast<size_t>(dims[k]);
  }
  return off;
}

}  // namespace

QuantMeanParams make_qs8_mean_params(float input_scale, int32_t input_zero_point,
                                     float output_scale, int32_t output_zero_point) {
  QuantMeanParams q;
  q.input_zero_point = input_zero_point;
  q.output_zero_point = output_zero_point;
  q.requant =
      quantize_multiplier(static_cast<double>(input_scale) / static_cast<double>(output_scale));
  q.scale_in_out = input_scale / output_scale;
  return q;
}

void f32_mean__ref(const MeanParams& p, const float* input, float* output) {
  const AxisSplit s = split_axes(p);
  for (size_t o = 0; o < s.out_count; ++o) {
    const float* base = input + offset_of(o, s.kept_n, s.kept_dim, s.kept_stride);
    float sum = 0.0f;
    for (size_t r = 0; r < s.reduce_count; ++r) {
      sum += base[offset_of(r, s.red_n, s.red_dim, s.red_stride)];
    }
    output[o] = sum / static_cast<float>(s.reduce_count);
  }
}

void qs8_mean__ref(const MeanParams& p, const QuantMeanParams& q, const int8_t* input,
                   int8_t* output) {
  const AxisSplit s = split_axes(p);
  const int32_t n = static_cast<int32_t>(s.reduce_count);
  for (size_t o = 0; o < s.out_count; ++o) {
    const int8_t* base = input + offset_of(o, s.kept_n, s.kept_dim, s.kept_stride);
    int32_t acc = 0;
    for (size_t r = 0; r < s.reduce_count; ++r) {
      acc = wrap_add(acc, base[offset_of(r, s.red_n, s.red_dim, s.red_stride)] - q.input_zero_point);
    }
    output[o] = qs8_mean_output(acc, n, q);
  }
}

int8_t qs8_mean_output(int32_t acc, int32_t n, const QuantMeanParams& q) {
  if (q.mode == RequantMode::kFp32) {
    const float scale = q.scale_in_out * (1.0f / static_cast<float>(n > 0 ? n : 1));
    return static_cast<int8_t>(requantize_fp32(acc, scale, q.output_zero_point, -128, 127));
  }
  acc = multiply_by_quantized_multiplier(acc, q.requant);
  if (n > 0) acc = acc > 0 ? (acc + n / 2) / n : (acc - n / 2) / n;
  return clamp_to_int8(acc + q.output_zero_point, -128, 127);
}

}  // namespace pcv::kernels
