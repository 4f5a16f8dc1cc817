// Core ML WeightParams <-> float arrays: fp32 (floatValue), fp16 (float16Value), and the two
// weight quantizations of NeuralNetwork.proto (rawValue + linear or lookup-table params); the
// quantizers shared with the ML Program writer (constexpr_affine_dequantize / _lut_to_dense).
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

// LSB-first bit packing (MIL constexpr_lut_to_dense `indices`): code i occupies stream bits
// [i * bits, (i + 1) * bits), stream bit k is bit (k % 8) of byte k / 8, and a code's low bits
// come first, so a code split across two bytes has its low bits in the high bits of the first
// byte. ceil(codes * bits / 8) bytes; the unused high bits of the last byte are 0.
std::vector<uint8_t> pack_bits_lsb_first(std::span<const uint8_t> codes, int bits);
// `packed` must hold at least ceil((index + 1) * bits / 8) bytes (callers check the size).
uint8_t unpack_bits_lsb_first(std::span<const uint8_t> packed, int64_t index, int bits);

// Symmetric 8-bit per-row quantization: row r of `data` (`rows` equal rows, row-major) is
// q * scale[r] with q in [-127, 127] and scale[r] = max|row| / 127 (1 for an all-zero row).
// With `fp16_scale` the scales are first rounded to fp16 (as stored) and q is computed from the
// rounded scale. Rows that do not divide `data` fall back to one row.
struct AffineInt8 {
  std::vector<int8_t> q;
  std::vector<float> scale;  // one per row
};
AffineInt8 quantize_affine_int8(std::span<const float> data, int64_t rows, bool fp16_scale);

// A 2^bits-entry lookup table for `data` and each value's index (bits 1..8). When `data` has at
// most 2^bits distinct values (an already palettized tensor) the table holds exactly those;
// else 1-D k-means (Lloyd from the uniform grid over [min, max] and from centers spread with
// density p^(1/3) of the values' histogram, the lower squared error kept). With `fp16_table` the entries are rounded to fp16 before the
// indices are assigned. Unused entries are 0.
struct Palette {
  std::vector<float> table;    // 2^bits entries
  std::vector<uint8_t> codes;  // one per value
};
Palette palettize_table(std::span<const float> data, int bits, bool fp16_table);

}  // namespace pcv::coreml::detail
