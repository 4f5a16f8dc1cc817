// The IR: a Model is a Graph (values + nodes in topological order) with the input spec and
// metadata that travel with it into every format.
//
// Values are referred to by index (ValueId). A value is either a graph input, a constant
// (it has data), or the output of exactly one node. Nodes are kept in execution order; the
// verifier checks that every input is defined before use.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "base/status.h"
#include "ir/op.h"
#include "ir/quant.h"
#include "ir/tensor.h"

namespace pcv::ir {

using ValueId = int32_t;
inline constexpr ValueId kNoValue = -1;

struct Value {
  std::string name;
  DType dtype = DType::kF32;
  Shape shape;
  QuantParams quant;
  Tensor data;             // non-empty for constants (weights, biases)
  bool trainable = false;  // a constant the trainer updates (weights, biases, BN gamma/beta)

  bool is_constant() const { return !data.empty(); }
};

struct Node {
  OpType op = OpType::kRelu;
  std::string name;
  std::vector<ValueId> inputs;  // kNoValue for an absent optional input
  std::vector<ValueId> outputs;
  Attrs attrs;

  template <class A> A& attr() { return std::get<A>(attrs); }
  template <class A> const A& attr() const { return std::get<A>(attrs); }
};

class Graph {
 public:
  std::vector<Value> values;
  std::vector<Node> nodes;
  std::vector<ValueId> inputs;
  std::vector<ValueId> outputs;

  // Builders. Names must be unique; add_* return the new value's id.
  ValueId add_input(std::string name, DType dtype, Shape shape, QuantParams quant = {});
  ValueId add_constant(std::string name, Tensor data, QuantParams quant = {},
                       bool trainable = false);
  // Adds a node with one output value (dtype f32 unless given; shape left for infer_shapes).
  ValueId add_node(OpType op, std::string name, std::vector<ValueId> inputs, Attrs attrs,
                   DType out_dtype = DType::kF32);
  ValueId add_node(OpType op, std::string name, std::vector<ValueId> inputs) {
    return add_node(op, std::move(name), std::move(inputs), default_attrs(op));
  }
  void mark_output(ValueId v) { outputs.push_back(v); }

  Value& value(ValueId id) { return values[static_cast<size_t>(id)]; }
  const Value& value(ValueId id) const { return values[static_cast<size_t>(id)]; }
  // Id of the value with this name, or kNoValue.
  ValueId find_value(const std::string& name) const;
  // Index of the node producing `v`, or -1 (inputs, constants).
  int producer(ValueId v) const;
  // Number of parameters (elements of constants) and their bytes.
  int64_t parameter_count() const;
  int64_t parameter_bytes() const;
};

enum class ColorOrder : uint8_t { kRGB = 0, kBGR, kGray };
const char* color_order_name(ColorOrder c);

// How a photo becomes the model input: resize to (height, width) after a center crop of
// `crop_fraction` of the shorter side (1.0: crop only to the aspect ratio), channels in
// `color` order, then value = (pixel - mean[c]) / std[c] with pixels in 0..255.
// Equivalently scale = 1/std, bias = -mean/std (Core ML's ImageScaler form).
struct InputSpec {
  int height = 0;
  int width = 0;
  int channels = 3;
  ColorOrder color = ColorOrder::kRGB;
  std::array<float, 3> mean{0.f, 0.f, 0.f};
  std::array<float, 3> std{1.f, 1.f, 1.f};
  float crop_fraction = 1.0f;
  std::vector<std::string> labels;  // class names, index = output index

  bool is_image() const { return height > 0 && width > 0; }
  bool operator==(const InputSpec&) const = default;
};

struct ModelMetadata {
  std::string name;
  std::string description;
  std::string version;
  std::string author;
  std::string license;
  bool operator==(const ModelMetadata&) const = default;
};

struct Model {
  Graph graph;
  InputSpec input_spec;
  ModelMetadata metadata;
};

// Fills every non-input, non-constant value's shape (and checks shapes fit): run after
// building or editing a graph. Errors name the node.
Status infer_shapes(Graph& graph);
// Structural checks for graphs from untrusted files: ids in range, each value defined once
// and before use, input counts, attribute kinds, constant byte sizes, quant params sizes,
// shapes consistent with infer_shapes. Errors name the node or value.
Status verify(const Graph& graph);
// Readable text dump: inputs, outputs, one line per node with shapes and attributes.
std::string to_text(const Model& model);

// Resolved 2-D padding for conv/pool: output size and explicit pads.
struct Padding2d {
  int out_h = 0, out_w = 0;
  int pad_top = 0, pad_bottom = 0, pad_left = 0, pad_right = 0;
};
// Errors when the window doesn't fit (output size < 1).
Expected<Padding2d> resolve_padding(Padding mode, int in_h, int in_w, int kernel_h, int kernel_w,
                                    int stride_h, int stride_w, int dilation_h, int dilation_w,
                                    int pad_top, int pad_bottom, int pad_left, int pad_right);

}  // namespace pcv::ir
