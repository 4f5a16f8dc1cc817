// Reading and writing models in every format pocketcv knows, chosen by the path's extension
// (or, for reading, the file's content when the extension says nothing).
//   .pcv        native (ir/pcv_format.h)
//   .tflite     TensorFlow Lite / LiteRT (formats/tflite)
//   .mlmodel    Core ML NeuralNetwork(Classifier) (formats/coreml)
//   .mlpackage  Core ML ML Program bundle (formats/coreml)
//   .onnx       ONNX (formats/onnx)
// A format this build was configured without gives an unsupported error saying so.
#pragma once

#include <cstdint>
#include <string>

#include "base/status.h"
#include "ir/graph.h"

namespace pcv::formats {

enum class Format { kPcv, kTflite, kMlmodel, kMlpackage, kOnnx };

const char* format_name(Format f);  // "pcv", "tflite", "mlmodel", "mlpackage", "onnx"
// From a --to value ("tflite", "coreml" = mlmodel, "mlpackage", "onnx", "pcv").
Expected<Format> format_from_name(const std::string& name);
// From a path's extension; invalid_argument naming the path when unknown.
Expected<Format> format_from_path(const std::string& path);

struct LoadOptions {
  // Refuse a model whose bytes on disk (the file, or all files of a .mlpackage bundle) exceed
  // this, before reading any of it (out_of_memory naming the path); 0: no limit.
  uint64_t max_bytes = 0;
};

// Errors name the path: io_error (missing, unreadable), invalid_model (empty, malformed,
// truncated), unsupported (an op or feature pocketcv lacks, a format this build left out).
Expected<ir::Model> load_model(const std::string& path, const LoadOptions& options = {});

struct SaveOptions {
  bool fp16_weights = false;  // Core ML: fp16 weights (.mlpackage defaults to fp16 regardless)
  bool fp32_weights = false;  // .mlpackage: keep fp32 weights
};
Status save_model(const ir::Model& model, const std::string& path, Format format,
                  const SaveOptions& options = {});
Status save_model(const ir::Model& model, const std::string& path, const SaveOptions& options = {});

// Human-readable description of a model file in its own terms (ops with versions for
// .tflite, layers and spec version for Core ML); falls back to the IR dump.
Expected<std::string> describe_file(const std::string& path);

}  // namespace pcv::formats
