// The interpreter: prepare once, run many times.
//
// Session::create is `prepare`: it verifies the graph, checks every op's dtypes and shapes,
// picks a kernel per node (reference or fast, float or int8), packs weights, and plans one
// activation arena in which values whose lifetimes don't overlap share memory. run() then
// executes the plan "blindly": no allocation, no validation, no error paths beyond what the
// kernels cannot fail on.
//
// Thread safety: a Session is used by one thread at a time. Many sessions may share one
// Model (they copy what they need at create time; weights are shared read-only).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "base/status.h"
#include "ir/graph.h"

namespace pcv::runtime {

struct SessionOptions {
  int threads = 1;                 // 1..64; <= 0 means one per core
  bool fast_kernels = true;        // false: reference kernels only (the oracle)
  bool profile = false;            // time every node (see Session::profile)
  // Rewrite the graph before planning: remove identities (dropout), fold batch norm into the
  // conv / dense before it, fuse relu/relu6 into their producers (ir/passes). Off when
  // keep_all_values is set, so every original value stays observable.
  bool optimize_graph = true;
  // Keep every intermediate value alive after run() (no buffer reuse), for per-layer
  // comparisons; costs memory.
  bool keep_all_values = false;
  // Run pairs of nodes as one kernel, bit-identical, without writing the tensor between them
  // (fast kernels and optimize_graph only, not with keep_all_values): a 1x1 conv and the
  // depthwise conv that reads its large output; a Winograd conv and the 2x2 max pool after it.
  // false runs them one after the other.
  bool fuse_kernels = true;
  // Refuse models whose weights + activation arena + packed weights exceed this
  // (out_of_memory): weights are checked before anything is copied or packed, the arena before
  // it is allocated.
  int64_t max_memory_bytes = int64_t{8} << 30;
  // Override the batch dimension of every graph input (shapes re-inferred); 0 keeps it.
  int batch = 0;
};

struct NodeProfile {
  std::string name;
  std::string op;       // "conv2d"
  std::string kernel;   // "f32_conv2d__ref", "f32_conv2d_fast"...
  ir::Shape output_shape;
  double total_ms = 0;  // summed over profiled runs
  int64_t macs = 0;
};

struct Profile {
  std::vector<NodeProfile> nodes;
  int runs = 0;
};

class Session {
 public:
  static Expected<std::unique_ptr<Session>> create(const ir::Model& model,
                                                   const SessionOptions& options = {});
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  int num_inputs() const;
  int num_outputs() const;
  // Views into the arena: write inputs before run(), read outputs after. dtype, shape and
  // quantization are the graph's.
  ir::Tensor& input(int index);
  const ir::Tensor& output(int index) const;
  const ir::Value& input_info(int index) const;
  const ir::Value& output_info(int index) const;

  Status run();
  // Copies `inputs` (dtype and shape must match: invalid_argument otherwise), runs, and
  // returns owning copies of the outputs.
  Expected<std::vector<ir::Tensor>> run(const std::vector<ir::Tensor>& inputs);

  // With keep_all_values: a view of any value after run() (constants included); empty
  // Tensor for values pruned from the plan.
  ir::Tensor value(ir::ValueId id) const;
  const ir::Graph& graph() const;

  const Profile& profile() const;
  void reset_profile();
  int64_t arena_bytes() const;          // activation arena (planned), kernel scratch included
  int64_t scratch_bytes() const;        // the arena's kernel scratch (im2col tiles, Winograd blocks)
  int64_t packed_weight_bytes() const;  // weights repacked for fast kernels
  int threads() const;

  struct Impl;

 private:
  explicit Session(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Convenience: one-shot run of a model (reference kernels unless options say otherwise).
Expected<std::vector<ir::Tensor>> run_model(const ir::Model& model,
                                            const std::vector<ir::Tensor>& inputs,
                                            const SessionOptions& options = {});

}  // namespace pcv::runtime
