// Compression passes: rewrites of an ir::Graph that make a model smaller at a bounded cost in
// accuracy. Each pass edits the graph in place, leaves it valid (values defined before use,
// shapes inferred, dead values pruned) and never writes through a constant's storage (tensors
// may be shared with other graphs: a changed constant is a new tensor). Graph inputs and
// outputs keep their value names through every pass.
//
// Which weights: the "weights" of a pass are input 1 of conv2d and fully_connected nodes when
// it is an f32 constant; `exclude` names nodes (e.g. "logits", "conv1") to leave alone.
//
// Errors: invalid_argument (options out of range), unsupported (quantize_int8: an op with no
// int8 form that is not excluded is reported by name only if it cannot run as a float island).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "base/status.h"
#include "ir/graph.h"
#include "optimize/calibration.h"
#include "optimize/finetune.h"

namespace pcv::optimize {

// Folds what inference does not need before any quantization: dequantize nodes of constant
// inputs become f32 constants, dropout and identity reshapes go, batch norm folds into the
// conv / dense before it, relu / relu6 fuse into their producers (ir/passes), dead values go.
//
//   x ─► conv2d(w) ─► batch_norm ─► relu6 ─► dropout ─► y   =>   x ─► conv2d(w', b', relu6) ─► y
Status prepare_for_inference(ir::Graph& graph);

// Replaces `dequantize(constant)` nodes by f32 constants holding the dequantized values (the
// inverse of to_fp16_weights / quantize_dynamic_range), so passes can be chained.
//
//   w_f16 ─► dequantize ─► w' ─► conv2d     =>     w'(f32 constant) ─► conv2d
Expected<int> dequantize_constants(ir::Graph& graph);

struct WeightPassOptions {
  std::set<std::string> exclude;  // node names left in f32
  int64_t min_elements = 0;       // smaller weight tensors stay f32
};

// fp16 weights: each f32 weight becomes an f16 constant read through a dequantize node (what
// TFLite's float16 quantization writes; our runtime folds the dequantize at prepare, so
// compute stays f32 and outputs differ from the f32 model only by the weights' fp16 rounding,
// |w' - w| <= 2^-11 |w| in the normal range).
//
//   x ─► conv2d(w: f32 (O,H,W,I)) ─► y
//   =>
//   w_fp16: f16 (O,H,W,I) ─► dequantize ─► w/dequantized: f32 ─┐
//   x ───────────────────────────────────────────────────────► conv2d ─► y
//
// Biases stay f32 (they are O values: negligible size). Returns the number of weights converted.
Expected<int> to_fp16_weights(ir::Graph& graph, const WeightPassOptions& options = {});

// Dynamic-range (weight-only) int8: each f32 weight becomes an i8 constant, symmetric per
// output channel (axis 0: scale[c] = max|w[c, ...]| / 127, zero point 0), read through a
// dequantize node; activations and biases stay f32. Per element |w' - w| <= scale[c] / 2.
//
//   x ─► fully_connected(w: f32 (O, K), b: f32) ─► y
//   =>
//   w_int8: i8 (O, K) scale[O] ─► dequantize ─► w/dequantized: f32 ─┐
//   x ────────────────────────────────────────────────────────────► fully_connected(b) ─► y
//
// Returns the number of weights converted.
Expected<int> quantize_dynamic_range(ir::Graph& graph, const WeightPassOptions& options = {});

// Model input / output types of a fully quantized model.
enum class IoType : uint8_t { kFloat, kInt8, kUInt8 };
const char* io_type_name(IoType t);  // "float", "int8", "uint8"
Expected<IoType> io_type_from_name(const std::string& name);

struct Int8Options {
  IoType io = IoType::kFloat;
  std::set<std::string> exclude;  // nodes kept in f32 (a dequantize before, a quantize after)
};

// Full integer quantization (TFLite's int8 scheme) from calibrated activation ranges
// (`ranges`, keyed by value name, from calibrate()):
//   - activations: int8, per-tensor, asymmetric: scale = (max - min) / 255 with the range
//     widened to contain 0 (so 0 and zero padding are exact), zero point in [-128, 127];
//   - weights (conv2d / fully_connected input 1): int8, per output channel (axis 0),
//     symmetric: scale[c] = max|w[c, ...]| / 127, zero point 0;
//   - biases: int32, scale[c] = input_scale * weight_scale[c], zero point 0;
//   - TFLite's constraints: softmax and sigmoid outputs scale 1/256, zero point -128;
//     max/average pool, reshape, flatten, pad and concat share one quantization across their
//     inputs and output (one range: the union);
//   - I/O: kFloat keeps f32 model I/O (a quantize after each input, a dequantize before each
//     output); kInt8 / kUInt8 make the inputs and outputs themselves int8 / uint8 (uint8 = the
//     int8 scale with zero point + 128, converted by quantize nodes at the ends).
// Ops without an int8 kernel (batch_norm that did not fold, ...) and excluded nodes stay f32
// islands with dequantize / quantize at their edges.
//
//   x: f32 ─► conv2d(w, b, relu) ─► t ─► max_pool ─► u ─► fully_connected(w2, b2) ─► softmax ─► y
//   =>
//   x: f32 ─► quantize ─► x/quantized: i8 (s0, z0)
//          ─► conv2d(w: i8 per-channel s_w, b: i32 scale s0*s_w, relu) ─► t: i8 (s1, z1)
//          ─► max_pool ─► u: i8 (s1, z1) ─► fully_connected(i8, i32) ─► i8 (s2, z2)
//          ─► softmax ─► y/int8: i8 (1/256, -128) ─► dequantize ─► y: f32
//
// Values missing from `ranges` are an invalid_argument error naming them (calibrate the same
// prepared graph). Returns the number of nodes that run in int8.
Expected<int> quantize_int8(ir::Graph& graph, const std::map<std::string, Range>& ranges,
                            const Int8Options& options = {});

// Magnitude pruning: zeroes the `sparsity` fraction of smallest-|w| weights, either over all
// eligible weights together (global, the default: small layers lose less) or within each
// tensor. Exactly round(sparsity * n) weights are zeroed (n = the eligible weights of the
// scope; ties broken by position), so the result hits the target sparsity exactly.
//
//   conv2d(w = [0.9, -0.1, 0.05, -0.7])   sparsity 0.5   =>   conv2d(w = [0.9, 0, 0, -0.7])
// Where the magnitude threshold is taken:
//   kChannel  per output channel (each filter row, or dense-weight row, loses the same share):
//             the default, because it does not see scale. Folding batch norm multiplies each
//             output channel by its own gamma / sigma, so in a folded model a layer- or model-wide
//             threshold removes whole channels with small scales however much they matter;
//   kLayer    per weight tensor (TF-MOT's default, on unfolded weights);
//   kGlobal   one threshold over every pruned tensor.
enum class PruneScope : uint8_t { kChannel, kLayer, kGlobal };
const char* prune_scope_name(PruneScope scope);
Expected<PruneScope> prune_scope_from_name(const std::string& name);

struct PruneOptions {
  float sparsity = 0.5f;  // [0, 1)
  PruneScope scope = PruneScope::kChannel;
  bool include_depthwise = false;  // depthwise filters are 9 weights per channel: kept by default
  std::set<std::string> exclude;
  int64_t min_elements = 0;
};
// Per weight value (by name): 1 = kept, 0 = pruned, one entry per element.
using PruneMasks = std::map<std::string, std::vector<uint8_t>>;
// Computes masks for `sparsity` and applies them. Returns the masks.
Expected<PruneMasks> prune_magnitude(ir::Graph& graph, const PruneOptions& options);
// Zeroes the masked-out weights (new tensors).
Status apply_masks(ir::Graph& graph, const PruneMasks& masks);
// Fraction of zeros over the weights named in `masks` (or over all eligible weights when empty).
double weight_sparsity(const ir::Graph& graph, const PruneMasks& masks = {});

// Channel recalibration after pruning. Pruning removes products whose sum had a mean and a
// spread: each output channel's distribution shifts and shrinks, the activations turn it into
// a different signal, and layer after layer it compounds (a folded network has no batch norm
// left to re-normalize; one-shot 50% pruning of MobileNetV2 leaves a constant classifier).
// For every conv / fully_connected whose weight is in `weights`, in graph order, the pass
// measures each output channel's mean m and standard deviation s before the activation over
// `samples`, in `original` and in `pruned` (with the layers before already recalibrated), and
// maps the pruned channel's onto the original's:
//   W'[c] = a W[c],  b'[c] = a (b[c] - m_pruned[c]) + m_original[c],  a = s_original / s_pruned
// (zeros stay zeros: the sparsity is unchanged). A bias-less node gets one. Returns how many
// nodes were recalibrated. `pruned` must have the nodes of `original` (same order).
Expected<int> recalibrate_channels(const ir::Model& original, ir::Model& pruned, const std::set<std::string>& weights,
                                   const std::vector<ir::Tensor>& samples);

// Polynomial-decay sparsity schedule (TF-MOT's PolynomialDecay): from `initial` at step
// `begin` to `final` at step `end`, s(t) = final + (initial - final) * (1 - (t - begin) /
// (end - begin))^power, updated every `frequency` steps; kConstant holds `final` from `begin`.
struct SparsitySchedule {
  enum class Kind : uint8_t { kPolynomial, kConstant } kind = Kind::kPolynomial;
  float initial = 0.0f;
  float final = 0.5f;
  int64_t begin = 0;
  int64_t end = 100;
  int power = 3;
  int64_t frequency = 10;

  float sparsity_at(int64_t step) const;
  // True when masks should be recomputed after `step`.
  bool update_at(int64_t step) const;
};
Expected<SparsitySchedule::Kind> schedule_kind_from_name(const std::string& name);

// Magnitude pruning during fine-tuning: `finetuner` trains `model` (the raw, trainable graph)
// while the masks follow `schedule` (begin / end / frequency are filled from the finetuner's
// step count when schedule.end <= 0: prune over the first 70% of the steps, every ~5%, then
// recover at the final sparsity); masked weights are zeroed after every optimizer step. A
// final prune at options.sparsity makes the result exact. Without a finetuner: one-shot
// prune_magnitude.
Expected<PruneMasks> prune_magnitude_finetuned(ir::Model& model, const PruneOptions& options,
                                               SparsitySchedule schedule, Finetuner* finetuner);

// Structured pruning: removes the `fraction` of output channels with the smallest L1 norm
// from every conv2d (groups == 1) whose output reaches only channel-wise ops (activations,
// pools, batch norm, pad, depthwise conv) and then conv2d / fully_connected consumers
// (directly, or through flatten / a spatial mean). The matching slices go from the channel-wise
// ops' parameters and the consumers' input channels: the model gets physically smaller and
// stays dense. Channels that reach an add (MobileNetV2's residuals), a concat or a graph
// output are never pruned; in MobileNetV2 that leaves the expand convs (and their depthwise
// partners), the hidden layers of each block.
//
//   x ─► conv2d(w1 (8,3,3,C)) ─► relu ─► conv2d(w2 (16,3,3,8))
//   =>  (fraction 0.5: channels {1, 4, 6, 7} have the smallest sum |w1[c, ...]|)
//   x ─► conv2d(w1 (4,3,3,C)) ─► relu ─► conv2d(w2 (16,3,3,4))
//
// When a batch_norm reads the conv directly, a channel's norm is scaled by |gamma| / sqrt(var +
// eps) (its weight after folding). Returns the
// number of channels removed; `removed` (optional) gets, per pruned conv, the kept channels.
struct StructuredPruneOptions {
  float fraction = 0.5f;  // [0, 1)
  int round_to = 1;       // keep a multiple of this many channels (at least one)
  std::set<std::string> exclude;
};
Expected<int> prune_structured(ir::Graph& graph, const StructuredPruneOptions& options,
                               std::map<std::string, std::vector<int64_t>>* kept = nullptr);

// Palettization (weight clustering): each weight tensor becomes 2^bits distinct values, the
// centroids of a 1-D k-means (Lloyd from quantile initialization, to convergence). The IR
// keeps an f32 constant whose values are exactly the centroids (runs unchanged everywhere);
// `PalettizationInfo` records the table per weight for the exporters and the report. The
// Core ML writer's lookup-table weights (MlModelOptions::weights = kLookupTable) store them as
// n-bit indices + the table.
//
//   conv2d(w = [0.11, 0.52, 0.49, -0.3, 0.1, ...])   bits = 2
//   =>  conv2d(w = [0.105, 0.505, 0.505, -0.3, 0.105, ...])   lut = {-0.3, 0.105, 0.505, 0.8}
struct PalettizeOptions {
  int bits = 4;  // 1..8
  std::set<std::string> exclude;
  int64_t min_elements = 0;
  int max_iterations = 100;
};
struct PaletteEntry {
  int bits = 0;
  std::vector<float> lut;  // sorted centroids, size <= 2^bits
};
using PalettizationInfo = std::map<std::string, PaletteEntry>;  // by weight value name
Expected<PalettizationInfo> palettize(ir::Graph& graph, const PalettizeOptions& options);
// 1-D k-means into at most k centroids; `assignment` (optional) gets each value's centroid.
std::vector<float> kmeans_1d(const float* values, size_t n, int k, int max_iterations,
                             std::vector<uint16_t>* assignment = nullptr);

// The weight inputs (conv2d / fully_connected input 1) that are f32 constants, with the node
// that reads them; shared by the passes.
struct WeightUse {
  int node = -1;
  ir::ValueId weight = ir::kNoValue;
  bool depthwise = false;
};
std::vector<WeightUse> find_weights(const ir::Graph& graph, const std::set<std::string>& exclude,
                                    int64_t min_elements = 0);

}  // namespace pcv::optimize
