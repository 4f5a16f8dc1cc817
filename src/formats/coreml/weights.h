// Core ML WeightParams <-> float arrays: fp32 (floatValue), fp16 (float16Value), and the two
// weight quantizations of NeuralNetwork.proto (rawValue + linear or lookup-table params).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "base/status.h"
#include "formats/coreml/Model.pb.h"
#include "formats/coreml/coreml.h"

namespace pcv::coreml::detail {

// Fills `w` with `data` (row-major, Core ML layout, `out_channels` leading rows) in `format`.
// Quantized formats apply only when `quantizable` (conv / inner-product weights); other
// parameters become fp16 under kFloat16 and fp32 otherwise. Returns the specification version
// the encoding needs (1, 2 or 3).
int encode_weights(std::span<const float> data, int64_t out_channels, WeightFormat format,
                   int lut_bits, bool quantizable, ::CoreML::Specification::WeightParams* w);

// Decodes `w`, which must hold exactly `count` values (`out_channels` rows for per-channel
// linear quantization). Errors (invalid_model) name `what`.
Expected<std::vector<float>> decode_weights(const ::CoreML::Specification::WeightParams& w,
                                            int64_t count, int64_t out_channels,
                                            const std::string& what);

// How `w` is stored, for describe: "fp32", "fp16", "linear8", "lut4", "empty".
std::string weight_storage_name(const ::CoreML::Specification::WeightParams& w);

// MSB-first bit packing of n-bit codes (Core ML's rawValue layout for n < 8).
std::string pack_bits(std::span<const uint8_t> codes, int bits);
uint8_t unpack_bits(const std::string& packed, int64_t index, int bits);

}  // namespace pcv::coreml::detail
