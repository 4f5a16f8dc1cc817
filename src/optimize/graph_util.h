// Small graph-building helpers shared by the optimize passes (internal).
#pragma once

#include <string>

#include "ir/graph.h"

namespace pcv::optimize::detail {

// `base` if no value has that name, else base#2, base#3...
std::string unique_name(const ir::Graph& g, const std::string& base);
// Appends a non-constant value (the output of a node the caller adds).
ir::ValueId add_value(ir::Graph& g, const std::string& name, ir::DType dtype, const ir::Shape& shape,
                      ir::QuantParams quant = {});
// Appends a constant with a unique name derived from `base`.
ir::ValueId add_constant(ir::Graph& g, const std::string& base, ir::Tensor data, ir::QuantParams quant = {});
// A one-input, one-output node without attributes (quantize, dequantize).
ir::Node unary_node(ir::OpType op, const std::string& name, ir::ValueId in, ir::ValueId out);

// f32 view of a constant (must be f32).
inline const float* f32_data(const ir::Value& v) { return v.data.data<float>(); }

}  // namespace pcv::optimize::detail
