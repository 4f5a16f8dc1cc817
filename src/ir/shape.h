// Shapes: dims as int64, row-major. Activations are NHWC: (N, H, W, C).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace pcv::ir {

using Shape = std::vector<int64_t>;

// Limit on one tensor's elements (2^40): shapes above it are refused, which keeps every
// byte-count product below 2^63 for all dtypes.
inline constexpr int64_t kMaxElements = int64_t{1} << 40;

// Product of dims; nullopt when a dim is negative or the product exceeds kMaxElements.
std::optional<int64_t> checked_num_elements(const Shape& shape);
// Product of dims for shapes already verified.
int64_t num_elements(const Shape& shape);
std::string shape_to_string(const Shape& shape);  // "(1, 224, 224, 3)"

}  // namespace pcv::ir
