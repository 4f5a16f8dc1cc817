// Graph passes: rewrites of an ir::Graph that keep what it computes (up to float rounding).
//
// Each pass edits the graph in place and leaves it valid (values defined before use, shapes
// inferred). Passes never write through a constant's storage (tensors may be shared with other
// graphs): a changed constant is a new value. Removed nodes leave their old values behind,
// unreferenced; prune_unused drops them and renumbers ids. Graph outputs keep their value ids
// and names through every pass (a rewrite moves the producer onto the output value).
// Errors: internal_error when the graph was invalid to begin with (run ir::verify first).
#pragma once

#include "base/status.h"
#include "ir/graph.h"

namespace pcv::ir {

// Folds batch_norm into the conv2d / fully_connected before it:
//
//   x ─► conv2d(w, b) ─► t ─► batch_norm(gamma, beta, mean, var, eps) ─► y
//   =>
//   x ─► conv2d(w', b') ─► y      s[c] = gamma[c] / sqrt(var[c] + eps)
//                                 w'[c, ...] = w[c, ...] * s[c]
//                                 b'[c] = (b[c] - mean[c]) * s[c] + beta[c]   (b = 0 if absent)
//
// Only when t has no other consumer, is not a graph output, the producer has no fused
// activation, and weights, bias and all four BN parameters are f32 constants. Any other
// batch_norm stays. Returns the number of folds.
Expected<int> fold_batch_norm(Graph& graph);

// Fuses relu / relu6 into the op that produces its input (TFLite's fused_activation_function):
//
//   x ─► conv2d(activation=none) ─► t ─► relu6 ─► y
//   =>
//   x ─► conv2d(activation=relu6) ─► y
//
// Producers: conv2d, fully_connected, add, mul, concat, max_pool, average_pool. Only when t
// has no other consumer, is not a graph output, the producer's activation is none, and (for
// quantized values) t and y have the same dtype and quantization. Returns the number of fusions.
Expected<int> fuse_activations(Graph& graph);

// Removes ops that compute the identity at inference: dropout, and reshape whose output shape
// equals its input shape.
//
//   x ─► conv2d ─► t ─► dropout ─► y ─► dense        x ─► conv2d ─► t ─► dense
//                                                 =>
// Consumers of y read t instead. When y is a graph output, the producer of t moves onto y
// instead (so the output keeps its name); if t is a graph input or constant, the op stays.
// Returns the number of removed nodes.
Expected<int> remove_identity(Graph& graph);

// Drops nodes whose outputs nobody uses (transitively; graph outputs are used), then values no
// node or graph input/output refers to (dead constants, orphaned outputs), and renumbers value
// ids densely in their old order. Graph inputs always stay.
//
//   values [x, w_old, t_old, w, y] (w_old, t_old unreferenced)  =>  [x, w, y]
//
// Returns the number of values removed.
Expected<int> prune_unused(Graph& graph);

// Replaces every use of value `from` (node inputs, graph outputs) by `to`.
void replace_uses(Graph& graph, ValueId from, ValueId to);
// Number of node inputs that read `v` (a node reading it twice counts twice), plus one per
// graph output entry equal to `v`.
int count_uses(const Graph& graph, ValueId v);
bool is_graph_output(const Graph& graph, ValueId v);

}  // namespace pcv::ir
