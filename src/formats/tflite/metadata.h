// TFLite metadata (schema M001, buffer "TFLITE_METADATA") <-> pocketcv's InputSpec and
// ModelMetadata. Internal to pcv_tflite.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "base/status.h"
#include "ir/graph.h"

namespace pcv::tflite {

inline constexpr const char* kMetadataBufferName = "TFLITE_METADATA";
inline constexpr const char* kMinParserVersion = "1.0.0";

// The metadata flatbuffer for a model with `num_inputs` / `num_outputs` subgraph I/O.
// Input 0 gets ImageProperties + NormalizationOptions when the spec is an image; output 0 gets
// the labels file (TENSOR_AXIS_LABELS) when `labels_file` is not empty.
std::vector<uint8_t> build_metadata(const ir::Model& model, int num_inputs, int num_outputs,
                                    const std::string& labels_file);

// What a metadata buffer says (fields absent in the file stay empty).
struct ParsedMetadata {
  ir::ModelMetadata info;
  bool has_color = false;
  ir::ColorOrder color = ir::ColorOrder::kRGB;
  std::vector<float> mean, std;
  std::string labels_file;  // output 0's TENSOR_AXIS_LABELS file
  std::string min_parser_version;
};
Expected<ParsedMetadata> parse_metadata(std::span<const uint8_t> bytes);

}  // namespace pcv::tflite
