#include "ir/op.h"

#include <array>
#include <type_traits>

namespace pcv::ir {
namespace {

struct OpInfo {
  const char* name;
  int attrs_index;
  int min_inputs;
  int max_inputs;
};

template <class T>
constexpr int attrs_index() {
  Attrs a = T{};
  return static_cast<int>(a.index());
}

const std::array<OpInfo, kNumOps>& op_table() {
  static const std::array<OpInfo, kNumOps> table = {{
#define PCV_OP(Enum, name, AttrsT, min_in, max_in) {#name, attrs_index<AttrsT>(), min_in, max_in},
#include "ir/ops.def"
#undef PCV_OP
  }};
  return table;
}

}  // namespace

const char* op_name(OpType op) { return op_table()[static_cast<size_t>(op)].name; }

std::optional<OpType> op_from_name(std::string_view name) {
  for (int i = 0; i < kNumOps; ++i) {
    if (name == op_table()[static_cast<size_t>(i)].name) return static_cast<OpType>(i);
  }
  return std::nullopt;
}

Attrs default_attrs(OpType op) {
  switch (op) {
#define PCV_OP(Enum, name, AttrsT, min_in, max_in) \
  case OpType::k##Enum: return AttrsT{};
#include "ir/ops.def"
#undef PCV_OP
  }
  return NoAttrs{};
}

bool attrs_match_op(OpType op, const Attrs& attrs) {
  return static_cast<int>(attrs.index()) == op_table()[static_cast<size_t>(op)].attrs_index;
}

int op_min_inputs(OpType op) { return op_table()[static_cast<size_t>(op)].min_inputs; }
int op_max_inputs(OpType op) { return op_table()[static_cast<size_t>(op)].max_inputs; }

}  // namespace pcv::ir
