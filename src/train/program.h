// Program: the trainable form of an IR graph (float32) at a fixed batch capacity.
//
// create() copies the graph, sets the batch, re-infers shapes and gives every value a buffer
// (activations for `batch` samples, constants copied). forward() runs the nodes in order and
// keeps every activation (what the backward reads); backward() walks the nodes in reverse
// and, per op, calls the backward half of its forward/backward pair (layers.h, and the GEMM
// kernels for conv2d / fully_connected). The gradient table (program.cc, backward_node) is
// one switch with one short case per op.
//
// Loss head: with ProgramOptions::loss_head (the default) a final softmax is not executed;
// output(0) is its input (the logits) and the trainer's fused softmax cross-entropy writes
// dL/d(logits) into output_grad(0).
//
// Gradients: only values that lead back to a trainable, non-frozen parameter get one
// (requires-grad propagation); frozen parameters cost no filter-gradient work. Activation
// gradients live in a small buffer pool and are recycled as soon as their producer's backward
// ran, so peak gradient memory is a few activations, not all of them. Parameter gradients are
// zeroed by every backward() (no accumulation across calls).
//
// Batch: forward(mode, n) runs on the first n <= batch samples of input() (the rest is
// ignored: train-mode batch norm uses exactly those n samples).
//
// Determinism: every reduction is over fixed slices in a fixed order (layers.h,
// conv_backward.h): for a seed, results are bitwise identical whatever the thread count.
// Thread safety: one thread drives a Program; the ThreadPool (may be nullptr) is borrowed.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "base/status.h"
#include "ir/graph.h"
#include "kernels/common/stream_fence.h"

namespace pcv {
class ThreadPool;
}

namespace pcv::train {

enum class Mode : uint8_t {
  kTrain,  // batch-norm batch statistics (and running-statistics update), dropout on
  kEval,   // batch-norm running statistics, dropout off
};

struct ProgramOptions {
  int batch = 32;           // capacity: samples per forward, 1..4096
  bool loss_head = true;    // drop a final softmax: output(0) = logits (see above)
  bool input_grad = false;  // also compute dL/d(input) (gradchecks)
  bool fast_kernels = true; // false: reference conv / fully_connected kernels (the oracle)
  bool profile = false;     // time every node's forward and backward (see Program::profile)
  // A 1x1 conv's backward computes the input gradient of the batch norm after it (same bits;
  // false: the batch norm writes it, the conv reads it; for tests and measurements).
  bool fuse_bn_backward = true;
  // A depthwise conv that reads a batch norm's output computes it from the batch norm's input,
  // and in its backward that batch norm's sums where it computes their gradient (train mode;
  // the sums at batches that are multiples of 8; same bits; false: the batch norm writes its
  // output, the conv reads it, the batch norm takes its sums in a pass of its own).
  bool fuse_bn_apply = true;
  // ... into a 1x1 conv only where the batch norm's output would have this many bytes or more
  // at the program's batch (smaller ones stay in cache between the two; 0: every one, tests).
  size_t fuse_bn_apply_1x1_min_bytes = kernels::kStreamOutputBytes;
  // A 1x1 conv whose output a batch norm reads takes that batch norm's statistics as it writes
  // the output, in train mode, where the output has this many bytes or more at the active batch
  // (smaller ones stay in cache for the batch norm's pass; 0: every one, tests); so does a
  // depthwise conv that computes its input from a batch norm's (fuse_bn_apply), with the same
  // size threshold, at batches that are multiples of 8. Same bits; false: the batch norm makes
  // its own pass.
  bool fuse_bn_stats = true;
  size_t fuse_bn_stats_min_bytes = kernels::kStreamOutputBytes;
};

// Time spent per node since create() or the last reset_profile() (ProgramOptions::profile).
struct NodeTime {
  std::string name;  // the node's output value
  std::string op;    // its op type
  double forward_s = 0;
  double backward_s = 0;  // includes the fused activation's gradient mask
  uint64_t calls = 0;     // train-mode forwards
};

struct Parameter {
  ir::ValueId value = ir::kNoValue;
  std::string name;
  float* data = nullptr;
  float* grad = nullptr;  // valid after backward() when not frozen
  size_t size = 0;        // elements
  bool frozen = false;
  bool decay = false;     // weight decay applies (rank >= 2: conv filters, dense weights)
};

class Program {
 public:
  // Errors: invalid_argument (batch), unsupported (an op or a non-f32 value: dequantize first,
  // see transfer.h), invalid_model (shape inference fails at the new batch).
  static Expected<std::unique_ptr<Program>> create(const ir::Model& model,
                                                   const ProgramOptions& options,
                                                   ThreadPool* pool);
  ~Program();
  Program(const Program&) = delete;
  Program& operator=(const Program&) = delete;

  int batch() const;
  // (batch, H, W, C) input buffer (graph input 0; the graph must have exactly one input).
  float* input();
  const ir::Shape& input_shape() const;  // with the capacity batch
  size_t input_elems_per_sample() const;

  // Runs the graph on the first n samples. `step` seeds dropout masks (with the model seed).
  void forward(Mode mode, int n, uint64_t step = 0);
  int num_outputs() const;
  const float* output(int i) const;
  size_t output_elems_per_sample(int i) const;
  // dL/d(output i) for the last forward's n samples: zeroed by this call; write then backward().
  float* output_grad(int i);
  void backward();
  // dL/d(input) after backward() (options.input_grad only, else nullptr).
  const float* input_grad() const;

  std::vector<Parameter>& parameters();
  // Freezes the parameters for which `frozen(name)` is true (and unfreezes the others).
  void set_frozen(const std::function<bool(const std::string&)>& frozen);
  // Eval-mode forwards cache packed weights: call this after changing parameter data
  // (optimizer steps, gradchecks) before the next Mode::kEval forward. Train-mode forwards
  // always repack.
  void weights_changed();
  // Swaps the thread pool (nullptr: caller's thread). Results do not depend on it.
  void set_thread_pool(ThreadPool* pool);
  uint64_t seed() const;
  void set_seed(uint64_t seed);  // dropout seed base

  // Copies the current weights and batch-norm running statistics into `model` (the model
  // this program was created from, or one with the same graph).
  Status export_weights(ir::Model* model) const;
  // Loads weights and running statistics from a model with the same constants.
  Status import_weights(const ir::Model& model);

  // Batch norms whose input gradient the backward of the conv before them computes
  // (ProgramOptions::fuse_bn_backward; 0 when it is off).
  int fused_bn_backwards() const;
  // Batch norms whose output the depthwise conv after them computes (ProgramOptions::fuse_bn_apply).
  int fused_bn_applies() const;
  // Batch norms whose statistics the conv before them took in the last forward
  // (ProgramOptions::fuse_bn_stats; train mode only: 0 after an eval-mode forward).
  int fused_bn_stats() const;

  // Per-node times, in node order (empty unless ProgramOptions::profile).
  std::vector<NodeTime> profile() const;
  void reset_profile();

  // The graph as executed (batch = capacity); value ids equal the source model's.
  const ir::Graph& graph() const;
  // The value behind output(i) (the logits with loss_head).
  ir::ValueId output_value(int i) const;

  struct Impl;

 private:
  explicit Program(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace pcv::train
