// TensorFlow Lite (.tflite): write an ir::Model as a TFLite flatbuffer and read one back.
//
// Writing (write_tflite) works on a copy of the model: fold_batch_norm, fuse_activations,
// remove_identity and prune_unused run first, then every IR op maps to TFLite builtins
// (op_map.h lists them). The file follows what the official converter writes and what LiteRT
// checks: identifier "TFL3", schema version 3, buffers[0] empty, each constant in its own
// 16-byte-aligned buffer, OperatorCode with both deprecated_builtin_code (min(code, 127)) and
// builtin_code, op versions as the converter assigns them for the dtypes used, a
// "serving_default" SignatureDef, and TFLite metadata (buffer "TFLITE_METADATA", schema M001:
// name, description, version, author, license, input image properties + normalization, output
// labels as the associated file "labels.txt" packed in a zip appended to the flatbuffer).
//
// Layout mapping: IR conv2d filters are OHWI like TFLite's CONV_2D; depthwise (groups == in_c,
// filter (out_c, kh, kw, 1)) becomes DEPTHWISE_CONV_2D with filter (1, kh, kw, out_c) and
// depth_multiplier = out_c / in_c (per-channel quantization axis 0 -> 3); other grouped convs
// are CONV_2D with filter (out_c, kh, kw, in_c / groups) (version 6).
// Quantized models: int8 activations, int8 symmetric weights (per-channel or per-tensor), int32
// biases whose scale is written as input_scale * weight_scale[c], int8 softmax output scale
// 1/256 with zero point -128 (checked). fp16 weights: f16 constants behind dequantize nodes are
// written as FLOAT16 tensors feeding DEQUANTIZE (TfliteWriteOptions::float16_weights does that
// conversion for every float conv / dense weight).
//
// Reading (read_tflite) treats the bytes as untrusted: flatbuffers Verifier, then every tensor,
// buffer and opcode index, shape, dtype and buffer byte size is checked; errors name the
// operator (index and builtin name) or tensor. Only subgraph 0 is read. What comes back:
//   - float32 models: one IR op per TFLite op (RESHAPE / SQUEEZE -> reshape to the static
//     output shape; FULLY_CONNECTED on a rank > 2 input gets a reshape to (N, K) first;
//     DEPTHWISE_CONV_2D -> conv2d with groups = in_c; LOGISTIC -> sigmoid).
//   - fp16 weights (FLOAT16 constants behind DEQUANTIZE): kept as f16 constants + dequantize
//     nodes, so write(read(m)) keeps the fp16 file size; the runtime dequantizes them.
//   - dynamic-range int8 weights (int8 constants feeding a float op directly): dequantized to
//     f32 constants at read time (the IR has no hybrid ops); the file's size saving is lost.
//   - int8 models (per-tensor and per-channel): as they are.
//   - uint8 models: converted to the int8 IR exactly (q - 128, zero points - 128, same scales;
//     constant weights too, so uint8 weight zero points become nonzero int8 zero points). The
//     model's I/O keeps its uint8 meaning: a uint8 graph input feeds a quantize node (u8 -> i8
//     requantization, exact) and each uint8 graph output is produced by a quantize node
//     (i8 -> u8). NOTE: TFLite's uint8 and int8 AVERAGE_POOL / MEAN round exact halves
//     differently for negative sums, so those can differ by one step from LiteRT's uint8
//     kernels (never for odd window sizes such as MobileNet's 7x7).
// Input spec: from the metadata (image size from the input tensor, color space, mean/std,
// labels from the associated TENSOR_AXIS_LABELS file of output 0). Without metadata: size from
// an NHWC input; for a quantized (u8/i8) input, mean = zero_point and std = 1 / scale, i.e. raw
// pixels quantize to themselves (the usual contract of quantized image models); for a float
// input mean 0 and std 1 (unknown: the file does not say).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "base/status.h"
#include "ir/graph.h"

namespace pcv::tflite {

struct TfliteWriteOptions {
  size_t struct_size = sizeof(TfliteWriteOptions);
  // Store float conv2d / fully_connected weights as FLOAT16 constants behind DEQUANTIZE.
  bool float16_weights = false;
  // TFLITE_METADATA buffer and the appended labels zip (when the model has labels).
  bool metadata = true;
  std::string signature_key = "serving_default";
  std::string labels_file_name = "labels.txt";
};

// Errors: unsupported (an op or dtype with no TFLite mapping, named with its node),
// invalid_argument (the model fails ir::verify, or quantization that TFLite can't run such as
// an int8 softmax output not at scale 1/256, zero point -128).
Expected<std::vector<uint8_t>> write_tflite(const ir::Model& model,
                                            const TfliteWriteOptions& options = {});
// write_tflite + atomic file write.
Status save_tflite(const ir::Model& model, const std::string& path,
                   const TfliteWriteOptions& options = {});

// `name` (usually the path) prefixes error messages. Errors: invalid_model (malformed file,
// bad index or size), unsupported (an op, dtype or feature not handled: "operator 12
// (RESIZE_BILINEAR): unsupported").
Expected<ir::Model> read_tflite(std::span<const uint8_t> bytes, const std::string& name);
Expected<ir::Model> load_tflite(const std::string& path);
// True when the bytes carry the TFL3 file identifier.
bool looks_like_tflite(std::span<const uint8_t> bytes);

// Human-readable dump for `pocketcv inspect`: operator codes with versions, tensors (dtype,
// shape, quantization, buffer), operators, signatures, metadata and the appended zip's files.
// Never fails: a malformed file gives a description of the problem.
std::string describe_tflite(std::span<const uint8_t> bytes);

// Files packed in the zip appended to a .tflite (name -> contents); empty when there is none.
Expected<std::vector<std::pair<std::string, std::string>>> read_associated_files(
    std::span<const uint8_t> bytes);

}  // namespace pcv::tflite
