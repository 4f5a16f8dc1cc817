// Core ML: write and read `.mlmodel` (NeuralNetwork / NeuralNetworkClassifier) and `.mlpackage`
// (ML Program with weights in a blob storage file), from and to the pocketcv IR.
//
// The protobuf schema is our own subset of Apple's Core ML specification
// (src/formats/coreml/proto, same package and field numbers), so the bytes are Core ML's.
//
// What the files look like (what Vision's VNCoreMLRequest expects of an image classifier):
//   - input: an image (ImageFeatureType, RGB/BGR/GRAYSCALE, the input spec's width x height),
//     normalized inside the model: value = (pixel - mean[c]) / std[c] with pixels 0..255.
//       .mlmodel: NeuralNetworkImageScaler {channelScale = 1/std, <color>Bias = -mean/std}.
//         The scaler has one channelScale: when std differs per channel the scaler subtracts
//         the mean (channelScale 1, bias -mean[c]) and a `scale` layer named
//         "<input>__input_std" multiplies by 1/std[c] (the reader folds both back).
//       .mlpackage: `mul` and `add` ops at the start of "main" (scale 1/std[c], bias -mean/std).
//   - with labels: outputs `classLabel` (string) and `classLabel_probs` (dictionary
//     string -> double), predictedFeatureName / predictedProbabilitiesName set,
//     stringClassLabels (.mlmodel) / a `classify` op (.mlpackage).
//   - without labels: a plain NeuralNetwork / ML Program with multiarray outputs.
//   - a model whose input spec is not an image gets a multiarray input (C, H, W) / NCHW.
//
// Layout: the IR is NHWC; Core ML is channel-first. Convolution weights are transposed from
// OHWI to (out, in/groups, kh, kw) and back. A flatten of a (H, W, C) activation is written as
// Core ML `flatten` with mode CHANNEL_LAST (.mlmodel), or `transpose` to NHWC + `reshape`
// (.mlpackage), so it produces our H, W, C order and fully-connected weights stay unchanged.
//
// Quantized IR (int8/uint8 weights and activations, e.g. TFLite models) is written as float:
// weights are dequantized (real = scale * (q - zero_point), per channel where given) and then
// stored as fp32/fp16 (or re-quantized with Core ML's own weight compression, see WeightFormat
// and PackageWeightFormat); quantize/dequantize nodes become identities (a dequantize of a
// constant folds into it). A quantized graph input takes raw pixels, so its quantization
// becomes the image normalization: mean = zero_point (+128 for int8), std = 1/scale.
//
// Readers treat files as untrusted: protobuf parsing is bounded (size and recursion), every
// weight count is checked against the layer's shape, blob offsets/sizes against the file, and
// the resulting graph goes through ir::verify. Compressed ML Program weights
// (constexpr_affine_dequantize, constexpr_lut_to_dense) are dequantized to f32 on reading.
// Unsupported layers/ops are reported by name.
//
// All functions are reentrant (no shared state).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "base/status.h"
#include "ir/graph.h"

namespace pcv::coreml {

// How convolution / inner-product weights are stored in a .mlmodel. The other parameters
// (biases, batch norm, per-channel scale/bias layers) are fp16 under kFloat16 and fp32 otherwise
// (Core ML wants fp32/fp16 alike within a layer; quantized weights may sit beside a fp32 bias).
enum class WeightFormat : uint8_t {
  kFloat32 = 0,  // WeightParams.floatValue                       (specification version 1)
  kFloat16,      // WeightParams.float16Value                     (specification version 2)
  kLinear8,      // uint8 rawValue, per-output-channel scale/bias (specification version 3)
  kLookupTable,  // n-bit rawValue + a 2^n-entry table (k-means)  (specification version 3)
};
const char* weight_format_name(WeightFormat f);

struct MlModelOptions {
  WeightFormat weights = WeightFormat::kFloat32;
  int lookup_table_bits = 8;  // 1..8, for kLookupTable
  // Write a NeuralNetworkClassifier when the input spec has labels (one per output class).
  bool classifier = true;
  // Name of the image / multiarray input feature; "" keeps the IR's input name.
  std::string input_name;
  // Fold batch norms into the convolutions / inner products before them (ir::fold_batch_norm);
  // the others stay batchnorm layers.
  bool fold_batch_norm = true;
};

// How convolution / linear weights are stored in an .mlpackage. Every other constant (biases,
// batch norm, eltwise operands) is a `const` of the compute dtype, and so is a weight at or
// below MlPackageOptions::weight_threshold elements or that compression would not make smaller
// (a small tensor beside its table or scales).
enum class PackageWeightFormat : uint8_t {
  // `const` of the compute dtype (fp16 or fp32; MlPackageOptions::fp16).
  kFloat = 0,
  // constexpr_affine_dequantize: int8 quantized_data (the weight's shape), int8 zero_point 0,
  // scale per output channel (axis 0) in the compute dtype; symmetric, scale = max|w| / 127.
  kAffineInt8,
  // constexpr_lut_to_dense: one table per tensor in the compute dtype (k-means, or exactly the
  // values of an already palettized tensor), LSB-first packed uint8 indices, uint32 shape.
  kLookupTable,
};
const char* package_weight_format_name(PackageWeightFormat f);  // "float", "int8", "lut"

struct MlPackageOptions {
  bool fp16 = true;  // fp16 weights and compute (cast ops at the ends); false: fp32 throughout
  PackageWeightFormat weights = PackageWeightFormat::kFloat;
  // kLookupTable: 1..8 bits of palette. iOS 16's constexpr_lut_to_dense takes tables of
  // 2, 4, 16, 64 or 256 entries (1, 2, 4, 6, 8 bits): 3, 5 and 7 bits are stored with the next
  // size up (4, 6, 8-bit indices; the extra entries are 0 and unused).
  int lookup_table_bits = 4;
  // Weights of at most this many elements stay float (coremltools' weight_threshold, 2048 there
  // too): little size to gain, and small layers (first conv, early depthwise) are sensitive.
  int64_t weight_threshold = 2048;
  bool classifier = true;
  std::string input_name;
  bool fold_batch_norm = true;  // as MlModelOptions::fold_batch_norm
};

// Rules for Model.specificationVersion (the lowest the used features need):
//   1 (iOS 11): every layer pocketcv writes (ReLU6 as relu + unary threshold + linear, hard
//               swish as sigmoidHard + multiply; no `clip`, which needs 4).
//   2 (iOS 11.2): fp16 weights (float16Value).
//   3 (iOS 12): quantized weights (rawValue with linear or lookup-table quantization).
//   6 (iOS 15): ML Program (.mlpackage), opset "CoreML5".
//   7 (iOS 16): ML Program with constexpr_affine_dequantize / constexpr_lut_to_dense weights,
//               opset "CoreML6" (only when such weights are written; float packages stay 6).
// The function's opset name is also the key of its block in block_specializations.
inline constexpr int kSpecVersionBase = 1;
inline constexpr int kSpecVersionFp16 = 2;
inline constexpr int kSpecVersionQuantized = 3;
inline constexpr int kSpecVersionMlProgram = 6;
inline constexpr int kSpecVersionMlProgramCompressed = 7;
inline constexpr const char* kOpsetMlProgram = "CoreML5";
inline constexpr const char* kOpsetMlProgramCompressed = "CoreML6";

// Model.proto bytes of a .mlmodel. Errors: unsupported (an op or attribute Core ML's
// NeuralNetwork cannot express, named), invalid_argument (options).
Expected<std::vector<uint8_t>> write_mlmodel(const ir::Model& model, const MlModelOptions& options = {});
Status save_mlmodel(const ir::Model& model, const std::string& path, const MlModelOptions& options = {});

// Writes a .mlpackage directory atomically (write_dir_atomic): Manifest.json,
// Data/com.apple.CoreML/model.mlmodel (ML Program), Data/com.apple.CoreML/weights/weight.bin.
Status save_mlpackage(const ir::Model& model, const std::string& dir, const MlPackageOptions& options = {});

// Limits for untrusted files.
inline constexpr uint64_t kMaxModelBytes = uint64_t{1} << 31;  // protobuf's own limit is 2 GiB
inline constexpr int kMaxProtoRecursion = 64;

// `name` (usually the path) is used in error messages.
Expected<ir::Model> read_mlmodel(std::span<const uint8_t> bytes, const std::string& name);
Expected<ir::Model> load_mlmodel(const std::string& path);
Expected<ir::Model> read_mlpackage(const std::string& dir);

// Human-readable summary for `pocketcv inspect`: type, specification version, interface
// (inputs/outputs with types), preprocessing, labels, layers/ops with weight shapes and
// storage, parameter totals. Accepts a .mlmodel file or a .mlpackage directory.
Expected<std::string> describe_coreml(const std::string& path);

// True for a path that looks like a Core ML model (.mlmodel file or .mlpackage directory).
bool is_coreml_path(const std::string& path);

}  // namespace pcv::coreml
