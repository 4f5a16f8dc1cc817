// Samples for calibration and evaluation: model inputs (f32, batch 1, preprocessed as the
// model's input spec says) with their labels, from an image folder, Fashion-MNIST, or random
// data; and the guards that say when a calibration set is too small or one-sided.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "base/status.h"
#include "data/dataset.h"
#include "ir/graph.h"
#include "vision/preprocess.h"

namespace pcv::optimize {

struct SampleSet {
  std::vector<ir::Tensor> inputs;  // each (1, H, W, C) f32, matching graph input 0
  std::vector<int> labels;         // dataset labels (empty for random data)
  std::vector<std::string> class_names;
  int dataset_classes = 0;  // classes the source has (labels may cover fewer)
  std::string source;       // "photos/ (cat, dog)", "fashion-mnist test", "random"

  size_t size() const { return inputs.size(); }
  bool labelled() const { return !labels.empty(); }
};

// The evaluation preprocessing of a model: its input spec (size, color, mean/std, crop) with
// the size taken from graph input 0 when the spec has none. Errors: non-NHWC input.
Expected<vision::Preprocess> preprocess_for(const ir::Model& model);

// Up to `max_samples` samples of `dataset` (all when 0), picked class by class in turn
// (stratified: every class is represented as soon as max_samples >= classes), in a fixed order.
Expected<SampleSet> load_samples(const data::Dataset& dataset, const ir::Model& model, size_t max_samples,
                                 const std::string& source_name);
// `path`: an image folder (DIR/<class>/*.jpg) or "fashion-mnist" / "fashion-mnist:train" (the
// installed IDX files; test split by default).
Expected<SampleSet> load_samples(const std::string& path, const ir::Model& model, size_t max_samples);
// Uniform random inputs over the input spec's value range (pixels 0..255 normalized), no labels.
SampleSet random_samples(const ir::Model& model, size_t n, uint64_t seed);

// Warnings about a calibration set (empty when fine): fewer than `min_samples` images, or
// classes of the dataset (or of the model's `model_classes` outputs) that no sample shows.
inline constexpr size_t kMinCalibrationSamples = 50;
std::vector<std::string> calibration_warnings(const SampleSet& samples, int model_classes,
                                              size_t min_samples = kMinCalibrationSamples);

// Image size of graph input 0 (N, H, W, C) of a model.
struct InputGeometry {
  int height = 0, width = 0, channels = 0;
};
Expected<InputGeometry> input_geometry(const ir::Model& model);

}  // namespace pcv::optimize
