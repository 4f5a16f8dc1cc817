// Affine quantization parameters: real = scale * (q - zero_point).
// Per-tensor: one scale and zero point. Per-channel: one per index of `axis` (weights: axis 0
// of OHWI / (out, in), the output channel). Empty `scale` means not quantized.
#pragma once

#include <cstdint>
#include <vector>

namespace pcv::ir {

struct QuantParams {
  std::vector<float> scale;
  std::vector<int32_t> zero_point;
  int axis = 0;  // only meaningful when scale.size() > 1

  bool empty() const { return scale.empty(); }
  bool per_channel() const { return scale.size() > 1; }
  bool operator==(const QuantParams&) const = default;

  static QuantParams per_tensor(float s, int32_t zp) { return {{s}, {zp}, 0}; }
};

}  // namespace pcv::ir
