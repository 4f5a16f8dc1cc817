// Evaluation of any model (float or quantized, any format load_model reads) on a labelled
// dataset through the inference runtime (runtime::Session, batch > 1): accuracy, mean loss
// (when the model outputs probabilities or logits), per-class precision/recall, and the
// confusion matrix. Samples are preprocessed with the model's own input spec
// (preprocess_for_model), exactly as prediction does.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "base/status.h"
#include "data/dataset.h"
#include "ir/graph.h"
#include "vision/preprocess.h"

namespace pcv::train {

// The model's preprocessing: InputSpec (mean/std, color order, crop fraction) with the size
// and channels of input 0 (NHWC); center crop, as prediction uses.
Expected<vision::Preprocess> preprocess_for_model(const ir::Model& model);

struct EvalOptions {
  int batch = 32;
  int threads = 2;
  size_t limit = 0;  // 0: all samples
};

struct ClassMetrics {
  std::string name;
  int64_t support = 0;  // true samples of the class
  int64_t predicted = 0;
  double precision = 0, recall = 0, f1 = 0;
};

struct EvalReport {
  int64_t samples = 0;
  int64_t correct = 0;
  double accuracy = 0;
  double loss = 0;  // mean cross-entropy of the class probabilities
  std::vector<ClassMetrics> classes;
  std::vector<std::vector<int64_t>> confusion;  // [true][predicted]
  double seconds = 0;
  double images_per_sec = 0;
};

// The model's classes must match the dataset's (by count; names are reported from the
// dataset). `indices` empty: all samples.
Expected<EvalReport> evaluate_model(const ir::Model& model, std::shared_ptr<const data::Dataset> dataset,
                                    std::vector<size_t> indices, const EvalOptions& options);

}  // namespace pcv::train
