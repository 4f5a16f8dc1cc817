// The pipeline: all six stages of the user's path, end to end, into one report.
//
//   train      Fashion-MNIST (simple_cnn), or a photo folder (mobilenet_v2; transfer from
//              init_model when given) via train::train; then evaluation of the best model
//              (accuracy, per-class metrics, confusion matrix) on the held-out set
//   convert    model.tflite, model.mlmodel, model.mlpackage; each read back and compared
//              with the source (predict::compare_models)
//   optimize   fp16, int8 (calibrated on the training data) and 50%-pruned .tflite variants
//              (optimize::optimize_model; "not available in this build" without it)
//   variants   every file above: size, accuracy on the held-out set and median latency in
//              pocketcv's runtime (1 thread, batch 1)
//   integrate  the C API (include/pocketcv/pocketcv.h) on a camera-format NV21 frame that
//              needs a 90° rotation, checked against the predictor on the upright picture
//   predict    sample pictures with top-3 and the prediction trace
//
// Writes OUT/report.json (everything measured) and OUT/report.html (one self-contained page:
// CSS, chart.js and the pictures inline; works offline) plus the model files. A stage that
// fails is recorded in the report with its message; later stages that need its output are
// skipped ("skipped: needs ..."), the others still run.
#pragma once

#include <functional>
#include <string>

#include <nlohmann/json.hpp>

#include "base/status.h"

namespace pcv::report {

struct PipelineOptions {
  std::string data_dir;    // photo folder DIR/<class>/*.jpg; empty: Fashion-MNIST
  std::string fashion_mnist_dir = "/usr/share/datasets/fashion-mnist";
  std::string init_model;  // photos: pretrained model to transfer from (any readable format)
  std::string out_dir = "pipeline";
  int epochs = 0;          // 0: 3 (1 with quick)
  bool quick = false;      // a few hundred images, 1 epoch, small evaluation sets (tests)
  int threads = 2;
  int samples = 0;         // sample predictions shown; 0: 8 (6 with quick)
  uint64_t seed = 1;
  std::function<void(const std::string&)> progress;  // one line per step (stderr in the CLI)
};

struct PipelineResult {
  nlohmann::json report;  // what report.json holds
  std::string html_path, json_path;
  int failed_stages = 0;
};

// Errors: only when OUT cannot be created or the report cannot be written; stage failures are
// part of the result.
Expected<PipelineResult> run_pipeline(const PipelineOptions& options);

}  // namespace pcv::report
