// One attribute struct per op (named fields, defaults), and a field visitor that gives every
// struct its text dump, serialization (.pcv) and equality without per-op code.
#pragma once

#include <cstdint>
#include <string>
#include <variant>
#include <vector>

namespace pcv::ir {

// Activation fused into the op that produces a value (TFLite's fused_activation_function).
enum class Activation : uint8_t { kNone = 0, kRelu, kRelu6 };
// SAME: out = ceil(in / stride), the total padding split with the extra on the bottom/right
// (TFLite/TensorFlow rule). VALID: no padding. EXPLICIT: pad_* fields.
enum class Padding : uint8_t { kSame = 0, kValid, kExplicit };

const char* activation_name(Activation a);
const char* padding_name(Padding p);

struct NoAttrs {
  template <class V> void visit(V&&) {}
};

struct Conv2dAttrs {
  int stride_h = 1, stride_w = 1;
  int dilation_h = 1, dilation_w = 1;
  Padding padding = Padding::kSame;
  int pad_top = 0, pad_bottom = 0, pad_left = 0, pad_right = 0;  // kExplicit only
  int groups = 1;
  Activation activation = Activation::kNone;
  template <class V> void visit(V&& v) {
    v("stride_h", stride_h); v("stride_w", stride_w);
    v("dilation_h", dilation_h); v("dilation_w", dilation_w);
    v("padding", padding);
    v("pad_top", pad_top); v("pad_bottom", pad_bottom);
    v("pad_left", pad_left); v("pad_right", pad_right);
    v("groups", groups); v("activation", activation);
  }
};

struct FullyConnectedAttrs {
  Activation activation = Activation::kNone;
  template <class V> void visit(V&& v) { v("activation", activation); }
};

struct BatchNormAttrs {
  float epsilon = 1e-3f;
  float momentum = 0.99f;  // training: running = momentum * running + (1 - momentum) * batch
  template <class V> void visit(V&& v) { v("epsilon", epsilon); v("momentum", momentum); }
};

struct LeakyReluAttrs {
  float alpha = 0.2f;
  template <class V> void visit(V&& v) { v("alpha", alpha); }
};

struct EltwiseAttrs {
  Activation activation = Activation::kNone;
  template <class V> void visit(V&& v) { v("activation", activation); }
};

struct ConcatAttrs {
  int axis = -1;
  Activation activation = Activation::kNone;
  template <class V> void visit(V&& v) { v("axis", axis); v("activation", activation); }
};

struct Pool2dAttrs {
  int kernel_h = 2, kernel_w = 2;
  int stride_h = 2, stride_w = 2;
  Padding padding = Padding::kValid;
  int pad_top = 0, pad_bottom = 0, pad_left = 0, pad_right = 0;
  Activation activation = Activation::kNone;
  template <class V> void visit(V&& v) {
    v("kernel_h", kernel_h); v("kernel_w", kernel_w);
    v("stride_h", stride_h); v("stride_w", stride_w);
    v("padding", padding);
    v("pad_top", pad_top); v("pad_bottom", pad_bottom);
    v("pad_left", pad_left); v("pad_right", pad_right);
    v("activation", activation);
  }
};

struct MeanAttrs {
  std::vector<int64_t> axes{1, 2};
  bool keep_dims = false;
  template <class V> void visit(V&& v) { v("axes", axes); v("keep_dims", keep_dims); }
};

struct ReshapeAttrs {
  std::vector<int64_t> shape;  // one entry may be -1 (inferred); the batch is usually -1
  template <class V> void visit(V&& v) { v("shape", shape); }
};

struct PadAttrs {
  std::vector<int64_t> pads;  // (before, after) per dim: 2 * rank entries
  float value = 0.0f;
  template <class V> void visit(V&& v) { v("pads", pads); v("value", value); }
};

struct SoftmaxAttrs {
  float beta = 1.0f;
  template <class V> void visit(V&& v) { v("beta", beta); }
};

struct DropoutAttrs {
  float rate = 0.5f;
  template <class V> void visit(V&& v) { v("rate", rate); }
};

using Attrs = std::variant<NoAttrs, Conv2dAttrs, FullyConnectedAttrs, BatchNormAttrs,
                           LeakyReluAttrs, EltwiseAttrs, ConcatAttrs, Pool2dAttrs, MeanAttrs,
                           ReshapeAttrs, PadAttrs, SoftmaxAttrs, DropoutAttrs>;

// A serialized attribute: integers (also bools and enums by index), floats, int lists,
// and enum names as strings.
using AttrValue = std::variant<int64_t, double, std::string, std::vector<int64_t>>;
struct AttrField {
  std::string name;
  AttrValue value;
  bool operator==(const AttrField&) const = default;
};

// Fields of `attrs` in declaration order; enums as their names ("relu6", "same").
std::vector<AttrField> attrs_to_fields(const Attrs& attrs);
// Sets the named fields of `attrs` (which holds the op's struct). Unknown names or wrong
// kinds return false with `error` set; missing fields keep their defaults.
bool attrs_from_fields(const std::vector<AttrField>& fields, Attrs* attrs, std::string* error);
bool attrs_equal(const Attrs& a, const Attrs& b);
// "stride_h=2 stride_w=2 padding=same activation=relu6" (defaults included).
std::string attrs_to_string(const Attrs& attrs);

}  // namespace pcv::ir
