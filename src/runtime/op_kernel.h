// One prepared node: the kernel chosen for it in prepare, with its parameters and packed
// weights, run blindly by Session::run.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "base/status.h"
#include "base/thread_pool.h"
#include "ir/graph.h"

namespace pcv::runtime {

struct RunContext {
  std::vector<ir::Tensor>* values;  // by value id: arena views or constants
  void* scratch;                    // scratch_bytes() of this node, 64-byte aligned
  ThreadPool* pool;
};

class OpKernel {
 public:
  virtual ~OpKernel() = default;
  virtual void run(const RunContext& ctx) const = 0;
  std::string name;         // kernel name for profiles: "f32_conv2d_fast (avx3 1x1 gemm)"
  size_t scratch_bytes = 0;
  int64_t packed_bytes = 0;
  int64_t macs = 0;
};

struct PrepareContext {
  const ir::Graph* graph;
  bool fast_kernels;
  int threads;
};

// Picks and prepares the kernel for `node`. Errors (unsupported dtype combination, bad
// quantization parameters) name the node.
Expected<std::unique_ptr<OpKernel>> make_op_kernel(const PrepareContext& ctx, const ir::Node& node);

// One kernel for a 1x1 f32 conv and the depthwise conv that reads its output
// (kernels/conv/pointwise_depthwise.h): bit-identical to the two kernels make_op_kernel makes,
// without writing the pointwise output (it reads `pointwise`'s input and writes `depthwise`'s
// output). Errors name the node that does not fit.
Expected<std::unique_ptr<OpKernel>> make_pointwise_depthwise_kernel(const PrepareContext& ctx, const ir::Node& pointwise,
                                                                    const ir::Node& depthwise);

// One kernel for an f32 conv and the 2x2 stride-2 max pool (no padding, no activation) that
// reads its output (f32_conv2d_fast_max_pool_2x2: Winograd convs pool each output tile as it
// is transformed, direct-rows convs each pair of rows): bit-identical, without writing the
// conv's output. Other convs are refused (they run apart).
Expected<std::unique_ptr<OpKernel>> make_conv_max_pool_kernel(const PrepareContext& ctx, const ir::Node& conv,
                                                              const ir::Node& pool);

// make_conv_max_pool_kernel when `consumer` is a max pool, else make_pointwise_depthwise_kernel.
Expected<std::unique_ptr<OpKernel>> make_fused_kernel(const PrepareContext& ctx, const ir::Node& producer,
                                                      const ir::Node& consumer);

}  // namespace pcv::runtime
