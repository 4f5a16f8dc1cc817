// ONNX: read models exported from PyTorch (and other ONNX producers) into the IR, and write
// IR models as ONNX for ONNX Runtime.
//
// Reading (opsets 6-21 of the default domain, ai.onnx; 6 for the ops whose semantics are unchanged):
//   - Layout. ONNX image graphs are NCHW; the IR is NHWC. The reader does not insert
//     transposes: it tracks, per ONNX value, whether it is an NCHW tensor stored as NHWC
//     ("nchw-as-nhwc") and converts each op for it (conv weights OIHW -> OHWI, concat / softmax
//     / mean / pad axes remapped, broadcast constants permuted). Every rank-4 graph input is
//     taken as NCHW and becomes an NHWC IR input (N, H, W, C); rank-4 graph outputs come out
//     NHWC. A Flatten/Reshape of an NCHW activation to (N, C*H*W) is exact only in CHW order:
//     the reader keeps the IR's HWC order and permutes the columns of the Gemm/MatMul weights
//     that consume it; any other consumer is reported unsupported.
//   - Constants fold: initializers, Constant nodes, and shape arithmetic (Shape, Gather,
//     Unsqueeze, Squeeze, Concat, Cast, Slice, Add/Sub/Mul/Div on constants) - the
//     Shape->Gather->Unsqueeze->Concat->Reshape chain torch.onnx emits for `x.view(x.size(0), -1)`.
//     Batch norm after a convolution or Gemm is folded into its weights.
//   - Ops: Conv (2-D), Gemm, MatMul (constant B), BatchNormalization, Relu, Clip ([0, 6] ->
//     relu6, [0, inf) -> relu), HardSwish, HardSigmoid (x * HardSigmoid(x) -> hard_swish,
//     otherwise expanded), Sigmoid, LeakyRelu, Add, Sub, Mul, Div, MaxPool, AveragePool,
//     GlobalAveragePool, GlobalMaxPool, ReduceMean, Flatten, Reshape, Squeeze, Unsqueeze,
//     Transpose (only a layout change: NCHW<->NHWC), Concat, Pad (constant), Softmax,
//     Dropout, Identity, QuantizeLinear / DequantizeLinear (QDQ, see below).
//   - QDQ int8. Weights stored as DequantizeLinear(int8 constant) fold into constants. Around
//     activations, DequantizeLinear -> op -> QuantizeLinear becomes an int8 IR op when the IR
//     has an int8 kernel for it and the quantization fits it (symmetric int8 weights, int32
//     bias with scale = input scale * weight scale); uint8 activations become int8 with the
//     zero point shifted by -128 (the same real values). Anything else is dequantized to
//     float: ReadInfo::notes says which nodes.
//   - Errors: unsupported naming each op that cannot be converted (op type, node name and
//     index), invalid_model for malformed files: protobuf parsed with size and depth limits,
//     every initializer's byte size checked against its dims, external data refused.
//   - Input spec: pocketcv's own files carry it in metadata_props ("pocketcv.*" keys, written
//     by write_onnx); for other files the input size comes from the input shape and the
//     normalization is unknown (mean 0, std 1: callers must supply it).
//   - A symbolic batch dimension ("N", "batch_size") is read as 1; any other symbolic
//     dimension is unsupported (pocketcv models have a fixed input size).
//
// Writing (opset 13, IR version 7): the ONNX graph is NCHW, the convention of PyTorch and of
// ONNX image models: the input is (N, C, H, W) float (the IR input transposed), weights are
// transposed to OIHW, fused activations become Relu / Clip nodes, hard_swish becomes
// x * HardSigmoid(x) (HardSwish needs opset 14). Where an NHWC element order matters (a
// flatten or reshape of an activation with spatial size > 1) one Transpose to NHWC is
// written before it. int8 IR graphs are written as QDQ: int8 tensors between
// QuantizeLinear/DequantizeLinear pairs, int8 weights and int32 biases as initializers behind
// DequantizeLinear. The input spec, labels and metadata go into metadata_props.
//
// Thread safety: all functions are reentrant.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "base/status.h"
#include "ir/graph.h"

namespace pcv::onnx {

// What the reader did that a user may want to know (QDQ ops kept in float, ...).
struct ReadInfo {
  int64_t opset = 0;
  std::string producer;           // "pytorch 2.1.0"
  std::vector<std::string> notes; // one line each
};

// Limits for untrusted files.
inline constexpr uint64_t kMaxOnnxBytes = uint64_t{2} << 30;  // protobuf's own 2 GiB limit
inline constexpr int kMaxProtoDepth = 64;

Expected<ir::Model> read_onnx(std::span<const uint8_t> bytes, const std::string& name,
                              ReadInfo* info = nullptr);
Expected<ir::Model> load_onnx(const std::string& path, ReadInfo* info = nullptr);

Expected<std::vector<uint8_t>> write_onnx(const ir::Model& model);
// Atomic write (base/file.h).
Status save_onnx(const ir::Model& model, const std::string& path);

}  // namespace pcv::onnx
