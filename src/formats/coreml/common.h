// Internals shared by the Core ML writers and readers (not part of the public API).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "base/status.h"
#include "formats/coreml/Model.pb.h"
#include "ir/graph.h"

namespace pcv::coreml::detail {

namespace spec = ::CoreML::Specification;

// A float-only copy of `model` for the writers: quantized / fp16 constants dequantized to f32,
// every activation f32 without quant params, a quantized graph input's quantization folded into
// the input spec's mean/std (see coreml.h). A dequantize of a constant (int8 / fp16 weights
// behind a DEQUANTIZE, as the optimize stage and TFLite store them) is folded: its output
// becomes the f32 constant. Other quantize/dequantize nodes stay (writers treat them as
// identities).
Expected<ir::Model> to_float_model(const ir::Model& model);

// OHWI (out, kh, kw, in) <-> OIHW (out, in, kh, kw), float.
std::vector<float> ohwi_to_oihw(const float* src, int64_t o, int64_t h, int64_t w, int64_t i);
std::vector<float> oihw_to_ohwi(const float* src, int64_t o, int64_t i, int64_t h, int64_t w);

// Parses Model.proto bytes with bounded size and recursion. Errors: invalid_model.
Status parse_model(std::span<const uint8_t> bytes, const std::string& name, spec::Model* out);
// Serializes deterministically (map order fixed).
Expected<std::vector<uint8_t>> serialize_model(const spec::Model& m);

// A MIL identifier ([A-Za-z_][A-Za-z0-9_]*) made from an IR name (other characters become '_').
std::string mil_identifier(const std::string& name);

// True when the input spec has one label per class.
inline bool has_labels(const ir::Model& m, int64_t classes) {
  return !m.input_spec.labels.empty() && static_cast<int64_t>(m.input_spec.labels.size()) == classes;
}

// Adds a ModelDescription input for the image (or multiarray) and fills its metadata.
// `image`: an ImageFeatureType from the input spec; else a FLOAT32 multiarray (C, H, W) / (K).
void describe_input(const ir::Model& m, bool image, const std::string& input_name, spec::ModelDescription* d);
void describe_metadata(const ir::Model& m, spec::ModelDescription* d);
// Input spec (size, color, mean/std) and metadata back from a description's first input.
Status read_input_description(const spec::ModelDescription& d, const std::string& name,
                              ir::InputSpec* spec_out, ir::Shape* nhwc_shape);
void read_metadata(const spec::ModelDescription& d, ir::ModelMetadata* md);

}  // namespace pcv::coreml::detail
