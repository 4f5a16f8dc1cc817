// OpType: the enum of IR ops, expanded from ops.def.
#pragma once

#include <optional>
#include <string_view>

#include "ir/attrs.h"

namespace pcv::ir {

enum class OpType : uint16_t {
#define PCV_OP(Enum, name, Attrs, min_in, max_in) k##Enum,
#include "ir/ops.def"
#undef PCV_OP
};

inline constexpr int kNumOps = 0
#define PCV_OP(Enum, name, Attrs, min_in, max_in) +1
#include "ir/ops.def"
#undef PCV_OP
    ;

const char* op_name(OpType op);                        // "conv2d"
std::optional<OpType> op_from_name(std::string_view name);
Attrs default_attrs(OpType op);                        // the op's attribute struct, defaulted
bool attrs_match_op(OpType op, const Attrs& attrs);    // holds the op's attribute struct
int op_min_inputs(OpType op);
int op_max_inputs(OpType op);

}  // namespace pcv::ir
