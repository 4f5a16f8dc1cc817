// The size / accuracy report of an optimize run: per variant (the float original and the
// optimized model) file size raw and gzipped, accuracy on labelled data, top-1 agreement and
// output difference against the float model, latency in our runtime; a per-layer error view
// (float vs optimized, values matched by name) naming the layer that hurts most; warnings.
// Rendered as a terminal table or JSON.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "base/status.h"
#include "ir/graph.h"
#include "optimize/samples.h"

namespace pcv::optimize {

struct VariantReport {
  std::string name;  // "float", "int8"...
  std::string path;  // the file measured ("" when only in memory)
  int64_t file_bytes = 0;
  int64_t gzip_bytes = 0;
  std::optional<double> accuracy;  // top-1 on labelled samples, 0..1
  double top1_agreement = 1.0;     // fraction of samples with the float model's top-1
  double max_abs_diff = 0.0;       // output 0 vs the float model's (dequantized), over samples
  double mean_abs_diff = 0.0;
  double latency_ms = 0.0;  // median, our runtime, 1 thread, batch 1
  int samples = 0;
  std::optional<int> constant_class;  // every sample predicted as this class
};

// One value of the optimized graph against the same-named float value, over the samples:
// SNR = 10 log10(sum x^2 / sum (x - y)^2) (dB; 200 when equal), cosine similarity, the SNR
// drop from the node's worst input, and the noise the layer adds: NSR(out) - NSR(worst input)
// with NSR = 10^(-SNR/10) (linear). The layer that hurts most adds the most noise.
struct LayerError {
  std::string name;
  std::string op;
  double snr_db = 0.0;
  double cosine = 1.0;
  double snr_drop_db = 0.0;
  double noise_added = 0.0;
};

struct Report {
  std::string model;  // input path or name
  std::string output;
  std::vector<std::string> steps;  // "int8 (minmax calibration, 100 images, I/O float)", ...
  std::vector<VariantReport> variants;  // [0] = float
  std::string eval_source;
  int eval_samples = 0;
  std::vector<LayerError> layers;
  std::string worst_layer;  // the layer with the largest SNR drop
  std::vector<std::string> warnings;
  std::vector<std::string> notes;
  std::optional<double> sparsity;  // of the prunable weights, when pruned
};

// Size of a file, or of every file under a directory (.mlpackage), and of the same bytes
// gzip-compressed (zlib, level 9; a directory's files concatenated in path order).
Status measure_file(const std::string& path, int64_t* bytes, int64_t* gzip_bytes);
int64_t gzip_size(const void* data, size_t size);

// Runs `model` over `samples` (inputs quantized when the model's input is int8 / uint8; output
// 0 dequantized): per-sample output 0 as f32.
Expected<std::vector<std::vector<float>>> run_samples(const ir::Model& model, const SampleSet& samples,
                                                      bool fast_kernels = true);
// Fills accuracy / agreement / differences / constant_class of `v` from outputs vs the float
// model's outputs `ref` and the samples' labels.
void score_variant(const std::vector<std::vector<float>>& outputs, const std::vector<std::vector<float>>& ref,
                   const SampleSet& samples, VariantReport* v);
// Median latency of `runs` runs (after one warm-up) of sample 0 in our runtime.
Expected<double> median_latency_ms(const ir::Model& model, const SampleSet& samples, int runs);
// Per-layer errors of `optimized` against `reference` (both run with keep_all_values on up to
// `max_samples` samples); sets *worst to the name of the largest SNR drop.
Expected<std::vector<LayerError>> layer_errors(const ir::Model& reference, const ir::Model& optimized,
                                               const SampleSet& samples, size_t max_samples, std::string* worst);

std::string report_table(const Report& r);
std::string report_json(const Report& r);

}  // namespace pcv::optimize
