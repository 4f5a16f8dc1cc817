// The IR <-> TFLite operator map: builtin codes, names, and the operator versions the official
// converter assigns (tensorflow/lite/tools/versioning/op_version.cc, GetBuiltinOperatorVersion).
//
//   IR op            TFLite builtin                      version (by dtype)
//   conv2d           CONV_2D / DEPTHWISE_CONV_2D         CONV_2D: f32 1, i8 3, grouped 6;
//                                                        DEPTHWISE: f32 1 (dilated 2), i8 3
//   fully_connected  FULLY_CONNECTED                     f32/u8 1, i8 4 (always with a bias)
//   batch_norm       MUL + ADD (per-channel constants)   f32 1
//   relu, relu6      RELU, RELU6                         f32 1, i8 2
//   leaky_relu       LEAKY_RELU                          1
//   hard_swish       HARD_SWISH                          1
//   sigmoid          LOGISTIC                            f32 1, i8 2
//   add, mul         ADD, MUL                            f32 1, i8 2 (MUL: 3 when s1*s2/so >= 1)
//   concat           CONCATENATION                       f32 1, i8 2
//   max/avg pool     MAX_POOL_2D, AVERAGE_POOL_2D        f32 1, i8 2
//   mean             MEAN (axes: int32 tensor)           f32 1, i8 2
//   reshape/flatten  RESHAPE (shape: int32 tensor)       1
//   pad              PAD (paddings: int32 (rank, 2))     f32 1, i8 2
//   softmax          SOFTMAX                             f32 1, i8 2
//   quantize         QUANTIZE                            1
//   dequantize       DEQUANTIZE                          u8 1, i8 2 (per-channel 5), f16 3
//   dropout          (removed)
#pragma once

#include <cstdint>
#include <string>

#include "ir/dtype.h"

namespace pcv::tflite {

// "CONV_2D"; "BUILTIN_<n>" for codes this build doesn't know.
std::string builtin_name(int32_t code);

// The TFLite TensorType value of an IR dtype, and back (nullopt-like -1 when unmapped).
int tensor_type_of(ir::DType t);
bool dtype_from_tensor_type(int type, ir::DType* out);
const char* tensor_type_name(int type);  // "FLOAT32", "INT8", ...

}  // namespace pcv::tflite
