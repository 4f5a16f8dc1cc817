// Predictor: photo -> "dog 0.92", for a model from any format, with a prediction trace.
//
//   decode     vision::read_image, JPEG DCT-scaled as far as the model's crop allows
//   preprocess resize + center crop + color order + mean/std (the model's InputSpec), written
//              straight into input 0 as f32, or quantized (i8/u8) with input 0's parameters
//   inference  runtime::Session::run (per-layer times when PredictorOptions::profile)
//   postprocess dequantize i8/u8 outputs, softmax unless the graph already ends in one (or the
//              values already are a distribution), top-k with the model's labels
//
// The output read is "the class output": output 0, or, when a model has several outputs, the
// first whose last axis has as many entries as the model has labels.
//
// Thread safety: a Predictor is used by one thread at a time (it owns one Session).
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "base/status.h"
#include "ir/graph.h"
#include "runtime/session.h"
#include "vision/image.h"
#include "vision/preprocess.h"

namespace pcv::predict {

struct PredictorOptions {
  int threads = 1;
  bool fast_kernels = true;
  // Time every layer (PredictionTrace::layers). Costs a timer call per node.
  bool profile = false;
  vision::ResizeMode resize = vision::ResizeMode::kCenterCrop;
  // Untimed runs at create (on a zero input), so traces show steady-state times rather than
  // first-touch costs (page faults in the arena, cold caches).
  int warmup_runs = 0;
  // Refuse models needing more (weights + activations + packed weights); see
  // runtime::SessionOptions::max_memory_bytes. 0: the session's default.
  int64_t max_memory_bytes = 0;
};

struct Classification {
  int index = 0;
  std::string label;  // the model's label, or "class<index>" when it has none
  float score = 0;    // probability in [0, 1]
};

struct LayerTrace {
  std::string name;
  std::string op;      // "conv2d"
  std::string kernel;  // "f32_conv2d__ref"
  ir::Shape output_shape;
  double ms = 0;
};

// Where the time of one prediction went, in milliseconds (wall clock). All >= 0.
struct PredictionTrace {
  int source_height = 0, source_width = 0;    // the picture as decoded (after DCT scaling)
  int input_height = 0, input_width = 0, input_channels = 0;
  std::string input_dtype;                    // "f32", "i8", "u8"
  double decode_ms = 0;      // file read + decode (0 for predict_image)
  double preprocess_ms = 0;  // resize / crop / color / normalize (or quantize) into input 0
  double inference_ms = 0;   // Session::run
  double postprocess_ms = 0; // dequantize + softmax + top-k
  double total_ms = 0;
  std::vector<LayerTrace> layers;  // with PredictorOptions::profile, in execution order
};

struct Prediction {
  std::vector<Classification> top;   // highest first; ties: lower index first
  std::vector<float> probabilities;  // every class
  PredictionTrace trace;
};

// The preprocessing a model declares: its InputSpec, with the size and channels taken from
// input 0's shape (NHWC) when the spec leaves them out or disagrees. Errors: unsupported when
// input 0 is not a rank-4 image tensor with 1 or 3 channels.
Expected<vision::Preprocess> preprocess_for(const ir::Model& model,
                                            vision::ResizeMode mode = vision::ResizeMode::kCenterCrop);

// Writes `image` into batch element 0 of `input` (NHWC) per `pre`: f32 values, or i8/u8
// quantized with `quant` (per-tensor). `name` is used in messages. Errors: unsupported for
// other dtypes or per-channel input quantization; those of vision::image_to_tensor.
Status image_to_input(const vision::ImageView& image, const vision::Preprocess& pre,
                      ir::Tensor& input, const ir::QuantParams& quant, const std::string& name);

// Index of the class output (see above).
int class_output_index(const ir::Graph& graph, const std::vector<std::string>& labels);

// True when graph output `index` is produced by a softmax, possibly behind shape-only or
// (de)quantization nodes (reshape, flatten, dropout, quantize, dequantize).
bool ends_in_softmax(const ir::Graph& graph, int output_index);

// Every element as float: f32 copied, i8/u8 dequantized (per-tensor or per-channel on the
// last axis... any axis given in `quant`), f16 converted, i32/i64 cast. Empty for an empty
// tensor.
std::vector<float> to_float(const ir::Tensor& t, const ir::QuantParams& quant);

// Batch element 0 of a class output as probabilities: dequantized, softmax applied unless
// `is_softmax` or the values already are a distribution (all in [0, 1], sum within 1e-3 of 1).
std::vector<float> probabilities(const ir::Tensor& out, const ir::QuantParams& quant,
                                 bool is_softmax);

// Indices of the k largest values, highest first, ties by lower index.
std::vector<int> top_k(std::span<const float> values, int k);

class Predictor {
 public:
  // Prepares a session for `model` (batch 1). Errors: those of preprocess_for and
  // Session::create.
  static Expected<std::unique_ptr<Predictor>> create(ir::Model model,
                                                     const PredictorOptions& options = {});
  ~Predictor();
  Predictor(const Predictor&) = delete;
  Predictor& operator=(const Predictor&) = delete;

  // Reads and decodes `path` (errors name the file: io_error when missing, invalid_argument
  // when not a readable JPEG/PNG), then predict_image.
  Expected<Prediction> predict_file(const std::string& path, int k = 5);
  // An upright 1-, 3- or 4-channel picture.
  Expected<Prediction> predict_image(const vision::ImageView& image, int k = 5);

  // Only the preprocess step: writes `image` into input 0 (for callers that run the session
  // themselves, e.g. compare).
  Status set_input(const vision::ImageView& image);

  const ir::Model& model() const { return model_; }
  const vision::Preprocess& preprocess() const { return pre_; }
  runtime::Session& session() { return *session_; }
  int class_output() const { return class_output_; }
  // Label of class `index` ("class<index>" when the model has none).
  std::string label(int index) const;

 private:
  Predictor() = default;
  Expected<Prediction> finish(Prediction p, int k);

  ir::Model model_;
  PredictorOptions options_;
  vision::Preprocess pre_;
  std::unique_ptr<runtime::Session> session_;
  int class_output_ = 0;
  bool output_is_softmax_ = false;
};

}  // namespace pcv::predict
