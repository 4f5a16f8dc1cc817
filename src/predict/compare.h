// compare: run two models on the same inputs and say where they differ.
//
// Inputs. With a photo folder, every picture goes through each model's own preprocessing
// (predictor.h, preprocess_for), so a float model and a quantized one each get their own input
// type from the same picture. Without photos: random pictures at the larger of the two input
// sizes (smooth shapes plus noise, seeded) through the same path, for image models; for other
// models, uniform values in [-1, 1] (quantized with the input's parameters for i8/u8 inputs).
//
// Layers. Both graphs are first brought to the same canonical form the runtime executes
// (remove identities, fold batch norm, fuse relu/relu6: ir/passes), then run with every value
// kept. Values correspond by name (the TFLite and Core ML writers keep IR names, and the
// readers restore them); when fewer than half of A's layers find a same-named value in B with
// as many elements, they correspond by op sequence instead: the longest common subsequence of
// (op, element count) over the compute nodes (quantize / dequantize / reshape / flatten skipped).
// i8 / u8 / f16 values are converted to float with their own parameters before comparing.
//
// Per matched layer, over all samples together (A is the reference):
//   snr_db = 10 log10(sum a^2 / sum (a - b)^2), capped at kMaxSnrDb (identical values)
//   cosine = sum ab / sqrt(sum a^2 sum b^2)   (1 when both are all zero)
// The first layer in A's execution order whose SNR falls below the threshold is named as the
// first divergence.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/status.h"
#include "ir/graph.h"

namespace pcv::predict {

inline constexpr double kMaxSnrDb = 200.0;

struct CompareOptions {
  std::string data_dir;        // photos (searched recursively); empty: random inputs
  int max_images = 32;         // photos used at most
  int random_count = 4;        // random inputs when there is no data_dir
  uint64_t seed = 1;
  double threshold_snr_db = 20.0;
  int threads = 1;
  bool fast_kernels = true;
};

struct LayerDiff {
  std::string name;              // A's node
  std::string value_a, value_b;  // the compared values
  std::string op;  // A's op
  ir::Shape shape; // A's shape
  std::string dtype_b;
  double max_abs = 0;
  double mean_abs = 0;
  double snr_db = kMaxSnrDb;
  double cosine = 1;
};

struct CompareResult {
  std::string inputs;          // "random" or "photos"
  int samples = 0;
  std::vector<std::string> skipped;  // photos that could not be read (their error messages)
  double top1_agreement = 0;   // fraction of samples with the same argmax of the class output
  double max_abs_diff = 0;     // class output (dequantized), over all samples
  double mean_abs_diff = 0;
  double output_snr_db = kMaxSnrDb;
  std::string match;           // "name" or "sequence"
  int compute_layers_a = 0, compute_layers_b = 0;
  std::vector<LayerDiff> layers;  // in A's execution order
  int first_divergence = -1;      // index into layers, -1 when none falls below the threshold
  double threshold_snr_db = 0;
};

// Pictures that do not decode are skipped (CompareResult::skipped). Errors: invalid_argument
// when the models' inputs cannot be fed the same data (different counts, or non-image inputs
// with different element counts), a missing / empty data_dir or one without a readable
// picture; the errors of Session::create.
Expected<CompareResult> compare_models(const ir::Model& a, const ir::Model& b,
                                       const CompareOptions& options = {});

}  // namespace pcv::predict
