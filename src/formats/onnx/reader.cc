// ONNX (NCHW, opsets 6-21) -> IR (NHWC). See onnx.h for the contract.
//
// One pass over the nodes in file order (ONNX requires topological order). Every ONNX tensor
// name maps to a Val: either a folded constant (ONNX dims and values), or an IR value with a
// layout tag. No transposes are inserted: ops are rewritten for the layout of their inputs.
//
//   ONNX                                   IR
//   x (1,3,32,32) ─► Conv(W OIHW) ─► y     x (1,32,32,3) ─► conv2d(W OHWI) ─► y (1,32,32,8)
//   y ─► Flatten ─► f (1, 8*32*32)         y ─► flatten ─► f (1, 32*32*8)   [flat_hwc]
//   f ─► Gemm(B (10, 8192), transB=1)      f ─► fully_connected(B columns permuted CHW->HWC)
#include <google/protobuf/io/coded_stream.h>
#include <fmt/core.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <memory>
#include <numeric>
#include <optional>
#include <set>
#include <unordered_map>

#include "base/file.h"
#include "formats/onnx/common.h"
#include "formats/onnx/onnx.h"
#include "ir/passes/passes.h"

namespace pcv::onnx {
namespace {

using namespace detail;
using ir::DType;
using ir::OpType;
using ir::Shape;
using ir::ValueId;

constexpr int64_t kMinOpset = 6;  // 6: legacy torch exports, for ops whose semantics did not change
constexpr int64_t kMaxOpset = 21;

enum class Layout : uint8_t {
  kPlain,  // IR shape == ONNX shape
  kNchw,   // ONNX (N, C, H, W), stored NHWC in the IR
};

// DequantizeLinear(integer constant): the integers and their quantization, kept so an int8
// op can use them as they are.
struct QConst {
  Const q;                   // integer values, ONNX dims
  std::vector<float> scale;  // one, or one per index of `axis`
  std::vector<int64_t> zero_point;
  int64_t axis = 1;
};

struct Val {
  std::string name;
  bool is_const = false;
  Const c;                      // folded value (floats for a dequantized constant)
  std::shared_ptr<QConst> qc;   // set when c came from DequantizeLinear of integers
  ValueId id = ir::kNoValue;    // IR value (not a constant)
  Layout layout = Layout::kPlain;
  // A (N, C*H*W) flatten of an NCHW activation, held in the IR's (N, H*W*C) order.
  bool flat_hwc = false;
  int64_t fc = 0, fh = 0, fw = 0;
  // DequantizeLinear of an int8 IR value `id`: float only when a float op needs it.
  bool deq = false;
  ValueId float_id = ir::kNoValue;
};

float attr_float_or(const pb::NodeProto& n, const char* name, float def) {
  for (const auto& a : n.attribute()) if (a.name() == name) return a.f();
  return def;
}
int64_t attr_int_or(const pb::NodeProto& n, const char* name, int64_t def) {
  for (const auto& a : n.attribute()) if (a.name() == name) return a.i();
  return def;
}
std::optional<std::vector<int64_t>> attr_ints(const pb::NodeProto& n, const char* name) {
  for (const auto& a : n.attribute()) {
    if (a.name() == name) return std::vector<int64_t>(a.ints().begin(), a.ints().end());
  }
  return std::nullopt;
}
std::string attr_string_or(const pb::NodeProto& n, const char* name, const std::string& def) {
  for (const auto& a : n.attribute()) if (a.name() == name) return a.s();
  return def;
}
const pb::AttributeProto* find_attr(const pb::NodeProto& n, const char* name) {
  for (const auto& a : n.attribute()) if (a.name() == name) return &a;
  return nullptr;
}

const std::set<std::string>& supported_ops() {
  static const std::set<std::string> ops = {
      "Conv", "Gemm", "MatMul", "BatchNormalization", "Relu", "Clip", "HardSwish", "HardSigmoid",
      "Sigmoid", "LeakyRelu", "Add", "Sub", "Mul", "Div", "MaxPool", "AveragePool", "GlobalAveragePool",
      "GlobalMaxPool", "ReduceMean", "Flatten", "Reshape", "Squeeze", "Unsqueeze", "Transpose", "Concat",
      "Pad", "Softmax", "Dropout", "Identity", "QuantizeLinear", "DequantizeLinear", "Constant",
      "Shape", "Gather", "Cast", "Slice", "ConstantOfShape"};
  return ops;
}

std::string why_unsupported(const std::string& op) {
  if (op == "ConvTranspose") return "ConvTranspose (transposed convolution) has no pocketcv IR op";
  if (op == "Resize" || op == "Upsample") return op + " (resizing) has no pocketcv IR op";
  return op + " is not supported";
}

int64_t norm_axis(int64_t a, size_t rank) { return a < 0 ? a + static_cast<int64_t>(rank) : a; }

class Reader {
 public:
  Reader(const pb::ModelProto& m, std::string file, ReadInfo* info)
      : mp_(m), gp_(m.graph()), file_(std::move(file)), info_(info) {}

  Expected<ir::Model> run() {
    PCV_RETURN_IF_ERROR(check_model());
    PCV_RETURN_IF_ERROR(read_initializers());
    PCV_RETURN_IF_ERROR(read_inputs());
    count_consumers();
    for (int i = 0; i < gp_.node_size(); ++i) {
      if (skip_.count(i)) continue;
      idx_ = i;
      PCV_RETURN_IF_ERROR(convert(gp_.node(i)));
    }
    idx_ = -1;
    PCV_RETURN_IF_ERROR(read_outputs());
    ir::Graph& g = model_.graph;
    PCV_RETURN_IF_ERROR(ir::infer_shapes(g).with_context(file_));
    PCV_RETURN_IF_ERROR(ir::verify(g).with_context(file_));
    PCV_ASSIGN_OR_RETURN(int folded, ir::fold_batch_norm(g));
    (void)folded;
    PCV_ASSIGN_OR_RETURN(int fused, ir::fuse_activations(g));
    (void)fused;
    PCV_ASSIGN_OR_RETURN(int pruned, ir::prune_unused(g));
    (void)pruned;
    read_metadata();
    return std::move(model_);
  }

 private:
  // ---- errors ---------------------------------------------------------------------------
  std::string where() const {
    if (idx_ < 0) return file_;
    const auto& n = gp_.node(idx_);
    return fmt::format("{}: node #{} '{}' ({})", file_, idx_, n.name(), n.op_type());
  }
  Status fail(const std::string& msg) const { return unsupported(fmt::format("{}: {}", where(), msg)); }
  Status bad(const std::string& msg) const { return invalid_model(fmt::format("{}: {}", where(), msg)); }
  void note(const std::string& msg) {
    if (info_) info_->notes.push_back(msg);
  }

  // ---- model checks ---------------------------------------------------------------------
  Status check_model() {
    for (const auto& os : mp_.opset_import()) {
      if (os.domain().empty() || os.domain() == "ai.onnx") opset_ = os.version();
    }
    if (info_) {
      info_->opset = opset_;
      info_->producer = mp_.producer_name() + (mp_.producer_version().empty() ? "" : " " + mp_.producer_version());
    }
    if (!mp_.has_graph()) return invalid_model(file_ + ": no graph");
    if (opset_ == 0 && mp_.opset_import_size() == 0) opset_ = kMinOpset;  // IR v2 files without opsets
    if (opset_ < kMinOpset || opset_ > kMaxOpset) {
      return unsupported(fmt::format("{}: ONNX opset {} (pocketcv reads opsets {}-{}; convert with "
                                     "onnx.version_converter)", file_, opset_, kMinOpset, kMaxOpset));
    }
    std::vector<std::string> bad_ops;
    for (int i = 0; i < gp_.node_size(); ++i) {
      const auto& n = gp_.node(i);
      const bool std_domain = n.domain().empty() || n.domain() == "ai.onnx";
      if (!std_domain || !supported_ops().count(n.op_type())) {
        const std::string op = std_domain ? n.op_type() : n.domain() + "." + n.op_type();
        bad_ops.push_back(fmt::format("{} (node #{} '{}')", why_unsupported(op), i, n.name()));
      }
      for (const auto& a : n.attribute()) {
        if (a.has_g() || a.graphs_size() > 0) bad_ops.push_back(fmt::format("{} (node #{}): subgraphs", n.op_type(), i));
      }
    }
    if (!bad_ops.empty()) {
      std::string s;
      for (const auto& b : bad_ops) s += "\n  " + b;
      return unsupported(fmt::format("{}: {} unsupported op(s):{}", file_, bad_ops.size(), s));
    }
    for (const auto& v : gp_.input()) used_.insert(v.name());
    for (const auto& t : gp_.initializer()) used_.insert(t.name());
    for (const auto& n : gp_.node()) for (const auto& o : n.output()) used_.insert(o);
    return Status::ok();
  }

  Status read_initializers() {
    if (gp_.sparse_initializer_size() > 0) return unsupported(file_ + ": sparse initializers");
    for (const auto& t : gp_.initializer()) {
      PCV_ASSIGN_OR_RETURN(Const c, const_from_proto(t, t.name()));
      Val v;
      v.name = t.name();
      v.is_const = true;
      v.c = std::move(c);
      vals_[t.name()] = std::move(v);
    }
    return Status::ok();
  }

  Status read_inputs() {
    ir::Graph& g = model_.graph;
    for (const auto& in : gp_.input()) {
      if (vals_.count(in.name())) continue;  // IR < 4 lists initializers as inputs too
      if (!in.type().has_tensor_type()) return unsupported(fmt::format("{}: input '{}' is not a tensor", file_, in.name()));
      const auto& tt = in.type().tensor_type();
      if (tt.elem_type() != pb::TensorProto::FLOAT) {
        return unsupported(fmt::format("{}: input '{}' has element type {} (pocketcv reads float inputs)", file_,
                                       in.name(), onnx_type_name(tt.elem_type())));
      }
      Shape s;
      for (int d = 0; d < tt.shape().dim_size(); ++d) {
        const auto& dim = tt.shape().dim(d);
        if (dim.has_dim_value() && dim.dim_value() > 0) {
          s.push_back(dim.dim_value());
        } else if (d == 0) {
          s.push_back(1);  // symbolic batch
        } else {
          return unsupported(fmt::format("{}: input '{}' dimension {} is symbolic ('{}'); pocketcv models have a "
                                         "fixed input size (fix it with onnxruntime's make_dynamic_shape_fixed)",
                                         file_, in.name(), d, dim.dim_param()));
        }
      }
      if (!ir::checked_num_elements(s)) return invalid_model(fmt::format("{}: input '{}' is too large", file_, in.name()));
      Val v;
      v.name = in.name();
      if (s.size() == 4) {
        v.layout = Layout::kNchw;
        v.id = g.add_input(in.name(), DType::kF32, nchw_shape_to_nhwc(s));
      } else {
        v.id = g.add_input(in.name(), DType::kF32, s);
      }
      vals_[in.name()] = std::move(v);
    }
    if (g.inputs.empty()) return unsupported(file_ + ": the graph has no (non-constant) input");
    return Status::ok();
  }

  void count_consumers() {
    for (int i = 0; i < gp_.node_size(); ++i) {
      for (const auto& in : gp_.node(i).input()) {
        if (!in.empty()) consumers_[in].push_back(i);
      }
    }
    for (const auto& o : gp_.output()) graph_outputs_.insert(o.name());
  }

  Status read_outputs() {
    ir::Graph& g = model_.graph;
    for (const auto& o : gp_.output()) {
      auto it = vals_.find(o.name());
      if (it == vals_.end()) return invalid_model(fmt::format("{}: graph output '{}' is never computed", file_, o.name()));
      Val& v = it->second;
      if (v.is_const) return unsupported(fmt::format("{}: graph output '{}' is a constant", file_, o.name()));
      if (v.flat_hwc && v.fh * v.fw > 1) {
        return unsupported(fmt::format("{}: graph output '{}' is a flattened NCHW activation: its CHW element "
                                       "order needs a transpose the IR does not have", file_, o.name()));
      }
      PCV_ASSIGN_OR_RETURN(ValueId id, float_of(v));
      if (std::find(g.inputs.begin(), g.inputs.end(), id) != g.inputs.end()) {
        return unsupported(fmt::format("{}: graph output '{}' is a graph input", file_, o.name()));
      }
      if (v.layout == Layout::kNchw) note(fmt::format("output '{}' is NHWC (the ONNX graph has it NCHW)", o.name()));
      g.mark_output(id);
    }
    return Status::ok();
  }

  void read_metadata() {
    ir::InputSpec& s = model_.input_spec;
    ir::ModelMetadata& md = model_.metadata;
    md.name = gp_.name();
    md.description = mp_.doc_string();
    if (mp_.model_version() != 0) md.version = std::to_string(mp_.model_version());
    const ir::Value& in = model_.graph.value(model_.graph.inputs[0]);
    if (in.shape.size() == 4 && (in.shape[3] == 1 || in.shape[3] == 3)) {
      s.height = static_cast<int>(in.shape[1]);
      s.width = static_cast<int>(in.shape[2]);
      s.channels = static_cast<int>(in.shape[3]);
      if (s.channels == 1) s.color = ir::ColorOrder::kGray;
    }
    auto floats = [](const std::string& text, std::array<float, 3>* out) {
      size_t pos = 0;
      for (int k = 0; k < 3 && pos <= text.size(); ++k) {
        const size_t end = text.find(',', pos);
        (*out)[static_cast<size_t>(k)] = std::strtof(text.substr(pos, end - pos).c_str(), nullptr);
        if (end == std::string::npos) break;
        pos = end + 1;
      }
    };
    for (const auto& p : mp_.metadata_props()) {
      const std::string& k = p.key();
      const std::string& v = p.value();
      if (k == kMetaColor) s.color = v == "bgr" ? ir::ColorOrder::kBGR : v == "gray" ? ir::ColorOrder::kGray : ir::ColorOrder::kRGB;
      else if (k == kMetaMean) floats(v, &s.mean);
      else if (k == kMetaStd) floats(v, &s.std);
      else if (k == kMetaCrop) s.crop_fraction = std::strtof(v.c_str(), nullptr);
      else if (k == "pocketcv.version") md.version = v;
      else if (k == kMetaAuthor) md.author = v;
      else if (k == kMetaLicense) md.license = v;
      else if (k == kMetaLabels) {
        size_t pos = 0;
        while (pos < v.size()) {
          size_t end = v.find('\n', pos);
          if (end == std::string::npos) end = v.size();
          s.labels.push_back(v.substr(pos, end - pos));
          pos = end + 1;
        }
      }
    }
    for (float& x : s.std) if (!(x > 0.f)) x = 1.f;
    if (!(s.crop_fraction > 0.f && s.crop_fraction <= 1.f)) s.crop_fraction = 1.f;
  }

  // ---- values ---------------------------------------------------------------------------
  std::string fresh(const std::string& base) {
    std::string name = base;
    for (int k = 1; used_.count(name); ++k) name = fmt::format("{}_{}", base, k);
    used_.insert(name);
    return name;
  }

  // An IR value name: the ONNX tensor's own name when the IR has not used it yet.
  std::string ir_name(const std::string& base) {
    std::string name = base;
    for (int k = 1; used_ir_.count(name) || (k > 1 && used_.count(name)); ++k) name = fmt::format("{}_{}", base, k);
    used_ir_.insert(name);
    used_.insert(name);
    return name;
  }

  // Input k of the current node; nullptr when absent (optional input left empty).
  Expected<Val*> input(const pb::NodeProto& n, int k) {
    if (k >= n.input_size() || n.input(k).empty()) return static_cast<Val*>(nullptr);
    auto it = vals_.find(n.input(k));
    if (it == vals_.end()) return bad(fmt::format("input '{}' is not defined before use", n.input(k)));
    return &it->second;
  }
  Expected<Val*> required(const pb::NodeProto& n, int k) {
    PCV_ASSIGN_OR_RETURN(Val* v, input(n, k));
    if (!v) return bad(fmt::format("missing input {}", k));
    return v;
  }
  Expected<const Const*> const_input(const pb::NodeProto& n, int k, const char* what) {
    PCV_ASSIGN_OR_RETURN(Val* v, input(n, k));
    if (!v) return static_cast<const Const*>(nullptr);
    if (!v->is_const) return fail(fmt::format("{} (input '{}') must be a constant", what, n.input(k)));
    return &v->c;
  }

  const Shape& ir_shape(const Val& v) const { return model_.graph.value(v.id).shape; }
  // The ONNX shape of a value.
  Shape onnx_shape(const Val& v) const {
    if (v.is_const) return v.c.dims;
    if (v.flat_hwc) return {ir_shape(v)[0], v.fc * v.fh * v.fw};
    return v.layout == Layout::kNchw ? nhwc_shape_to_nchw(ir_shape(v)) : ir_shape(v);
  }

  // The float IR value of an activation (materializes a pending DequantizeLinear).
  Expected<ValueId> float_of(Val& v) {
    if (v.is_const) return fail(fmt::format("'{}' is a constant where an activation is expected", v.name));
    if (!v.deq) return v.id;
    if (v.float_id == ir::kNoValue) {
      ir::Graph& g = model_.graph;
      v.float_id = g.add_node(OpType::kDequantize, ir_name(v.name), {v.id}, ir::NoAttrs{}, DType::kF32);
      PCV_RETURN_IF_ERROR(infer());
    }
    return v.float_id;
  }
  Expected<ValueId> activation(const pb::NodeProto& n, int k) {
    PCV_ASSIGN_OR_RETURN(Val* v, required(n, k));
    if (v->flat_hwc && v->fh * v->fw > 1) {
      return fail(fmt::format("'{}' is a flattened NCHW activation (CHW element order); only a Gemm/MatMul with "
                              "constant weights can consume it without a transpose", v->name));
    }
    return float_of(*v);
  }

  Status infer() { return ir::infer_shapes(model_.graph).with_context(where()); }

  // Adds an IR node whose output is the ONNX tensor `out`.
  Expected<ValueId> emit(OpType op, const std::string& out, std::vector<ValueId> ins, ir::Attrs attrs,
                         Layout layout, DType dt = DType::kF32, ir::QuantParams q = {}) {
    ir::Graph& g = model_.graph;
    const std::string name = ir_name(out);
    const ValueId y = g.add_node(op, name, std::move(ins), std::move(attrs), dt);
    g.value(y).quant = std::move(q);
    PCV_RETURN_IF_ERROR(infer());
    Val v;
    v.name = out;
    v.id = y;
    v.layout = layout;
    vals_[out] = v;
    return y;
  }
  // An intermediate IR node (not an ONNX tensor).
  Expected<ValueId> emit_tmp(OpType op, const std::string& base, std::vector<ValueId> ins, ir::Attrs attrs) {
    ir::Graph& g = model_.graph;
    const ValueId y = g.add_node(op, ir_name(fresh(base)), std::move(ins), std::move(attrs), DType::kF32);
    PCV_RETURN_IF_ERROR(infer());
    return y;
  }
  ValueId add_const(const std::string& base, const Shape& shape, const std::vector<float>& data) {
    return model_.graph.add_constant(ir_name(base), ir::Tensor::from_vector<float>(shape, data));
  }
  void set_const(const std::string& name, Const c) {
    Val v;
    v.name = name;
    v.is_const = true;
    v.c = std::move(c);
    vals_[name] = std::move(v);
  }
  void alias(const std::string& out, const Val& src) {
    Val v = src;
    v.name = out;
    vals_[out] = v;
  }

  // A constant that broadcasts (numpy rules, ONNX dims) against an activation of `layout`:
  // for NCHW it is padded to rank 4 and permuted to NHWC.
  std::pair<Shape, std::vector<float>> broadcast_const(const Const& c, Layout layout) const {
    if (layout != Layout::kNchw || c.dims.size() > 4) return {c.dims, c.is_float() ? c.f : as_floats(c)};
    Shape s4 = c.dims;
    while (s4.size() < 4) s4.insert(s4.begin(), 1);
    return {nchw_shape_to_nhwc(s4), nchw_to_nhwc(c.is_float() ? c.f : as_floats(c), s4)};
  }
  static std::vector<float> as_floats(const Const& c) {
    std::vector<float> f(static_cast<size_t>(c.numel()));
    for (int64_t k = 0; k < c.numel(); ++k) f[static_cast<size_t>(k)] = c.as_float(k);
    return f;
  }

  // ---- dispatch -------------------------------------------------------------------------
  Status convert(const pb::NodeProto& n) {
    const std::string& op = n.op_type();
    if (n.output_size() < 1) return bad("no outputs");
    // Constant folding: every input constant (Shape only needs a static shape).
    bool all_const = n.input_size() > 0 || op == "Constant";
    for (const auto& in : n.input()) {
      if (in.empty()) continue;
      auto it = vals_.find(in);
      if (it == vals_.end()) return bad(fmt::format("input '{}' is not defined before use", in));
      if (!it->second.is_const) all_const = false;
    }
    if (op == "Shape") return fold_shape(n);
    if (all_const && op != "QuantizeLinear") return fold(n);

    if (op == "Conv") return conv(n);
    if (op == "Gemm" || op == "MatMul") return dense(n);
    if (op == "BatchNormalization") return batch_norm(n);
    if (op == "Relu" || op == "Sigmoid" || op == "HardSwish" || op == "LeakyRelu" || op == "Clip") return unary(n);
    if (op == "HardSigmoid") return hard_sigmoid(n);
    if (op == "Add" || op == "Sub" || op == "Mul" || op == "Div") return binary(n);
    if (op == "MaxPool" || op == "AveragePool") return pool(n);
    if (op == "GlobalAveragePool" || op == "GlobalMaxPool") return global_pool(n);
    if (op == "ReduceMean") return reduce_mean(n);
    if (op == "Flatten" || op == "Reshape" || op == "Squeeze" || op == "Unsqueeze") return reshape(n);
    if (op == "Transpose") return transpose(n);
    if (op == "Concat") return concat(n);
    if (op == "Pad") return pad(n);
    if (op == "Softmax") return softmax(n);
    if (op == "Dropout" || op == "Identity") {
      PCV_ASSIGN_OR_RETURN(Val* x, required(n, 0));
      alias(n.output(0), *x);
      return Status::ok();
    }
    if (op == "QuantizeLinear") return quantize(n);
    if (op == "DequantizeLinear") return dequantize(n);
    return fail("needs constant inputs here (shape arithmetic on activations is not supported)");
  }

  // ---- constant folding -----------------------------------------------------------------
  Status fold_shape(const pb::NodeProto& n) {
    PCV_ASSIGN_OR_RETURN(Val* x, required(n, 0));
    const Shape s = onnx_shape(*x);
    const int64_t r = static_cast<int64_t>(s.size());
    int64_t start = attr_int_or(n, "start", 0), end = attr_int_or(n, "end", r);
    start = std::clamp(start < 0 ? start + r : start, int64_t{0}, r);
    end = std::clamp(end < 0 ? end + r : end, int64_t{0}, r);
    Const c;
    c.type = pb::TensorProto::INT64;
    for (int64_t d = start; d < end; ++d) c.i.push_back(s[static_cast<size_t>(d)]);
    c.dims = {static_cast<int64_t>(c.i.size())};
    set_const(n.output(0), std::move(c));
    return Status::ok();
  }

  Status fold(const pb::NodeProto& n) {
    const std::string& op = n.op_type();
    std::vector<const Const*> in;
    for (int k = 0; k < n.input_size(); ++k) {
      in.push_back(n.input(k).empty() ? nullptr : &vals_[n.input(k)].c);
    }
    auto arg = [&](size_t k) -> const Const* { return k < in.size() ? in[k] : nullptr; };
    auto ints_of = [](const Const* c) { std::vector<int64_t> v; for (int64_t k = 0; c && k < c->numel(); ++k) v.push_back(c->as_int(k)); return v; };
    Const out;
    if (op == "Constant") {
      if (const auto* a = find_attr(n, "value")) {
        PCV_ASSIGN_OR_RETURN(out, const_from_proto(a->t(), n.output(0)));
      } else if (const auto* a = find_attr(n, "value_float")) {
        out.f = {a->f()};
      } else if (const auto* a = find_attr(n, "value_floats")) {
        out.f.assign(a->floats().begin(), a->floats().end());
        out.dims = {static_cast<int64_t>(out.f.size())};
      } else if (const auto* a = find_attr(n, "value_int")) {
        out.type = pb::TensorProto::INT64;
        out.i = {a->i()};
      } else if (const auto* a = find_attr(n, "value_ints")) {
        out.type = pb::TensorProto::INT64;
        out.i.assign(a->ints().begin(), a->ints().end());
        out.dims = {static_cast<int64_t>(out.i.size())};
      } else {
        return fail("a Constant without a tensor/float/int value");
      }
    } else if (op == "Identity" || op == "Dropout") {
      out = *arg(0);
    } else if (op == "Cast") {
      out = *arg(0);
      const int64_t to = attr_int_or(n, "to", pb::TensorProto::FLOAT);
      if (is_float_type(static_cast<int32_t>(to)) != out.is_float()) {
        if (out.is_float()) { for (float v : out.f) out.i.push_back(static_cast<int64_t>(v)); out.f.clear(); }
        else { for (int64_t v : out.i) out.f.push_back(static_cast<float>(v)); out.i.clear(); }
      }
      out.type = static_cast<int32_t>(to);
    } else if (op == "Gather") {
      const Const& data = *arg(0);
      const Const& idx = *arg(1);
      const int64_t r = static_cast<int64_t>(data.dims.size());
      const int64_t axis = norm_axis(attr_int_or(n, "axis", 0), data.dims.size());
      if (axis < 0 || axis >= r) return bad("Gather axis out of range");
      int64_t outer = 1, inner = 1;
      for (int64_t d = 0; d < axis; ++d) outer *= data.dims[static_cast<size_t>(d)];
      for (int64_t d = axis + 1; d < r; ++d) inner *= data.dims[static_cast<size_t>(d)];
      const int64_t dim = data.dims[static_cast<size_t>(axis)];
      out.type = data.type;
      for (int64_t d = 0; d < axis; ++d) out.dims.push_back(data.dims[static_cast<size_t>(d)]);
      for (int64_t d : idx.dims) out.dims.push_back(d);
      for (int64_t d = axis + 1; d < r; ++d) out.dims.push_back(data.dims[static_cast<size_t>(d)]);
      for (int64_t o = 0; o < outer; ++o) {
        for (int64_t k = 0; k < idx.numel(); ++k) {
          int64_t j = idx.as_int(k);
          if (j < 0) j += dim;
          if (j < 0 || j >= dim) return bad("Gather index out of range");
          for (int64_t q = 0; q < inner; ++q) {
            const int64_t src = (o * dim + j) * inner + q;
            if (data.is_float()) out.f.push_back(data.f[static_cast<size_t>(src)]);
            else out.i.push_back(data.i[static_cast<size_t>(src)]);
          }
        }
      }
    } else if (op == "Unsqueeze" || op == "Squeeze" || op == "Flatten" || op == "Reshape") {
      out = *arg(0);
      PCV_ASSIGN_OR_RETURN(out.dims, reshaped_dims(n, out.dims));
    } else if (op == "Concat") {
      const int64_t r = static_cast<int64_t>(arg(0)->dims.size());
      const int64_t axis = norm_axis(attr_int_or(n, "axis", 0), arg(0)->dims.size());
      if (axis < 0 || axis >= r) return bad("Concat axis out of range");
      out.type = arg(0)->type;
      out.dims = arg(0)->dims;
      out.dims[static_cast<size_t>(axis)] = 0;
      int64_t outer = 1;
      for (int64_t d = 0; d < axis; ++d) outer *= out.dims[static_cast<size_t>(d)];
      for (const Const* c : in) {
        if (!c || c->dims.size() != out.dims.size() || c->is_float() != out.is_float()) return fail("Concat of mixed constants");
        out.dims[static_cast<size_t>(axis)] += c->dims[static_cast<size_t>(axis)];
      }
      for (int64_t o = 0; o < outer; ++o) {
        for (const Const* c : in) {
          const int64_t chunk = c->numel() / std::max<int64_t>(outer, 1);
          for (int64_t q = 0; q < chunk; ++q) {
            if (out.is_float()) out.f.push_back(c->f[static_cast<size_t>(o * chunk + q)]);
            else out.i.push_back(c->i[static_cast<size_t>(o * chunk + q)]);
          }
        }
      }
    } else if (op == "Add" || op == "Sub" || op == "Mul" || op == "Div") {
      const Const& a = *arg(0);
      const Const& b = *arg(1);
      PCV_ASSIGN_OR_RETURN(out.dims, broadcast_dims(a.dims, b.dims));
      out.type = a.is_float() || b.is_float() ? pb::TensorProto::FLOAT : a.type;
      const int64_t total = ir::num_elements(out.dims);
      for (int64_t k = 0; k < total; ++k) {
        const int64_t ia = broadcast_index(k, out.dims, a.dims), ib = broadcast_index(k, out.dims, b.dims);
        if (out.is_float()) {
          const float x = a.as_float(ia), y = b.as_float(ib);
          out.f.push_back(op == "Add" ? x + y : op == "Sub" ? x - y : op == "Mul" ? x * y : x / y);
        } else {
          const int64_t x = a.as_int(ia), y = b.as_int(ib);
          if (op == "Div" && y == 0) return bad("integer division by zero");
          out.i.push_back(op == "Add" ? x + y : op == "Sub" ? x - y : op == "Mul" ? x * y : x / y);
        }
      }
    } else if (op == "Slice") {
      const Const& data = *arg(0);
      if (data.dims.size() != 1) return fail("Slice of a constant of rank != 1");
      std::vector<int64_t> starts, ends, steps;
      if (opset_ >= 10) {
        starts = ints_of(arg(1));
        ends = ints_of(arg(2));
        steps = ints_of(arg(4));
      } else {
        starts = attr_ints(n, "starts").value_or(std::vector<int64_t>{});
        ends = attr_ints(n, "ends").value_or(std::vector<int64_t>{});
      }
      if (starts.size() != 1 || ends.size() != 1) return fail("Slice with several axes");
      const int64_t step = steps.empty() ? 1 : steps[0];
      if (step != 1) return fail("Slice with a step");
      const int64_t dim = data.dims[0];
      const int64_t s = std::clamp(starts[0] < 0 ? starts[0] + dim : starts[0], int64_t{0}, dim);
      const int64_t e = std::clamp(ends[0] < 0 ? ends[0] + dim : ends[0], int64_t{0}, dim);
      out.type = data.type;
      for (int64_t k = s; k < e; ++k) {
        if (data.is_float()) out.f.push_back(data.f[static_cast<size_t>(k)]);
        else out.i.push_back(data.i[static_cast<size_t>(k)]);
      }
      out.dims = {std::max<int64_t>(e - s, 0)};
    } else if (op == "ConstantOfShape") {
      const auto dims = ints_of(arg(0));
      out.dims.assign(dims.begin(), dims.end());
      if (!ir::checked_num_elements(out.dims)) return bad("ConstantOfShape: bad shape");
      Const value;
      value.f = {0.f};
      if (const auto* a = find_attr(n, "value")) {
        PCV_ASSIGN_OR_RETURN(value, const_from_proto(a->t(), "value"));
      }
      out.type = value.type;
      const auto total = static_cast<size_t>(ir::num_elements(out.dims));
      if (value.is_float()) out.f.assign(total, value.numel() ? value.f[0] : 0.f);
      else out.i.assign(total, value.numel() ? value.i[0] : 0);
    } else if (op == "Transpose") {
      const Const& data = *arg(0);
      const size_t r = data.dims.size();
      std::vector<int64_t> perm = attr_ints(n, "perm").value_or(std::vector<int64_t>{});
      if (perm.empty()) for (size_t d = 0; d < r; ++d) perm.push_back(static_cast<int64_t>(r - 1 - d));
      if (perm.size() != r) return bad("Transpose perm size");
      for (size_t d = 0; d < r; ++d) {
        if (perm[d] < 0 || perm[d] >= static_cast<int64_t>(r)) return bad("Transpose perm out of range");
        out.dims.push_back(data.dims[static_cast<size_t>(perm[d])]);
      }
      out.type = data.type;
      const int64_t total = data.numel();
      std::vector<int64_t> in_strides(r, 1);
      for (size_t d = r; d-- > 1;) in_strides[d - 1] = in_strides[d] * data.dims[d];
      std::vector<int64_t> idx(r, 0);
      for (int64_t k = 0; k < total; ++k) {
        int64_t src = 0, rem = k;
        for (size_t d = r; d-- > 0;) {
          idx[d] = rem % std::max<int64_t>(out.dims[d], 1);
          rem /= std::max<int64_t>(out.dims[d], 1);
        }
        for (size_t d = 0; d < r; ++d) src += idx[d] * in_strides[static_cast<size_t>(perm[d])];
        if (data.is_float()) out.f.push_back(data.f[static_cast<size_t>(src)]);
        else out.i.push_back(data.i[static_cast<size_t>(src)]);
      }
    } else if (op == "DequantizeLinear") {
      return dequantize_const(n);
    } else if (op == "Relu") {
      out = *arg(0);
      for (float& v : out.f) v = std::max(v, 0.f);
    } else {
      return fail("cannot fold this op on constants");
    }
    set_const(n.output(0), std::move(out));
    return Status::ok();
  }

  static Expected<Shape> broadcast_dims(const Shape& a, const Shape& b) {
    const size_t r = std::max(a.size(), b.size());
    Shape out(r);
    for (size_t i = 0; i < r; ++i) {
      const int64_t da = i < r - a.size() ? 1 : a[i - (r - a.size())];
      const int64_t db = i < r - b.size() ? 1 : b[i - (r - b.size())];
      if (da != db && da != 1 && db != 1) return invalid_model("constant shapes do not broadcast");
      out[i] = da == 1 ? db : da;
    }
    return out;
  }
  static int64_t broadcast_index(int64_t k, const Shape& out, const Shape& in) {
    int64_t idx = 0, stride = 1;
    for (size_t d = out.size(); d-- > 0;) {
      const int64_t coord = k % out[d];
      k /= out[d];
      const int64_t id = static_cast<int64_t>(d) - static_cast<int64_t>(out.size() - in.size());
      if (id >= 0) {
        const int64_t dim = in[static_cast<size_t>(id)];
        if (dim != 1) idx += coord * stride;
        stride *= dim;
      }
    }
    return idx;
  }

  // Output dims of Flatten / Reshape / Squeeze / Unsqueeze on an ONNX shape.
  Expected<Shape> reshaped_dims(const pb::NodeProto& n, const Shape& in) {
    const std::string& op = n.op_type();
    const int64_t r = static_cast<int64_t>(in.size());
    const int64_t total = ir::num_elements(in);
    if (op == "Flatten") {
      const int64_t axis = norm_axis(attr_int_or(n, "axis", 1), in.size());
      if (axis < 0 || axis > r) return bad("Flatten axis out of range");
      int64_t a = 1;
      for (int64_t d = 0; d < axis; ++d) a *= in[static_cast<size_t>(d)];
      return Shape{a, a == 0 ? 0 : total / a};
    }
    std::vector<int64_t> axes;
    if (op == "Squeeze" || op == "Unsqueeze") {
      if (opset_ >= 13) {
        PCV_ASSIGN_OR_RETURN(const Const* c, const_input(n, 1, "axes"));
        for (int64_t k = 0; c && k < c->numel(); ++k) axes.push_back(c->as_int(k));
      } else {
        axes = attr_ints(n, "axes").value_or(std::vector<int64_t>{});
      }
    }
    if (op == "Squeeze") {
      std::set<int64_t> drop;
      for (int64_t a : axes) drop.insert(norm_axis(a, in.size()));
      Shape out;
      for (int64_t d = 0; d < r; ++d) {
        const bool squeeze = axes.empty() ? in[static_cast<size_t>(d)] == 1 : drop.count(d) > 0;
        if (squeeze && in[static_cast<size_t>(d)] != 1) return bad("Squeeze of a dimension that is not 1");
        if (!squeeze) out.push_back(in[static_cast<size_t>(d)]);
      }
      return out;
    }
    if (op == "Unsqueeze") {
      const int64_t out_rank = r + static_cast<int64_t>(axes.size());
      std::set<int64_t> add;
      for (int64_t a : axes) add.insert(norm_axis(a, static_cast<size_t>(out_rank)));
      Shape out;
      size_t src = 0;
      for (int64_t d = 0; d < out_rank; ++d) {
        if (add.count(d)) out.push_back(1);
        else if (src < in.size()) out.push_back(in[src++]);
        else return bad("Unsqueeze axes out of range");
      }
      return out;
    }
    // Reshape
    std::vector<int64_t> to;
    if (opset_ >= 5) {
      PCV_ASSIGN_OR_RETURN(const Const* c, const_input(n, 1, "the target shape"));
      if (!c) return bad("Reshape without a shape");
      for (int64_t k = 0; k < c->numel(); ++k) to.push_back(c->as_int(k));
    } else {
      to = attr_ints(n, "shape").value_or(std::vector<int64_t>{});
    }
    const bool allow_zero = attr_int_or(n, "allowzero", 0) != 0;
    Shape out;
    int infer_at = -1;
    int64_t known = 1;
    for (size_t i = 0; i < to.size(); ++i) {
      int64_t d = to[i];
      if (d == 0 && !allow_zero) {
        if (i >= in.size()) return bad("Reshape copies a dimension the input does not have");
        d = in[i];
      }
      if (d == -1) {
        if (infer_at >= 0) return bad("Reshape with two -1");
        infer_at = static_cast<int>(i);
        out.push_back(1);
        continue;
      }
      if (d < 0) return bad("Reshape with a negative dimension");
      known *= d;
      out.push_back(d);
    }
    if (infer_at >= 0) {
      if (known == 0 || total % known != 0) return bad("Reshape cannot infer the -1 dimension");
      out[static_cast<size_t>(infer_at)] = total / known;
    }
    if (ir::num_elements(out) != total) {
      return bad(fmt::format("cannot reshape {} into {}", ir::shape_to_string(in), ir::shape_to_string(out)));
    }
    return out;
  }

  // ---- QDQ ------------------------------------------------------------------------------
  // Scale / zero point of a QuantizeLinear / DequantizeLinear; the zero point's element type
  // decides int8 / uint8 (absent: uint8, 0).
  struct QParams {
    std::vector<float> scale;
    std::vector<int64_t> zp;
    int32_t type = pb::TensorProto::UINT8;
    int64_t axis = 1;
  };
  Expected<QParams> qparams(const pb::NodeProto& n) {
    QParams p;
    PCV_ASSIGN_OR_RETURN(const Const* s, const_input(n, 1, "the scale"));
    if (!s || !s->is_float()) return bad("scale must be a float constant");
    PCV_ASSIGN_OR_RETURN(const Const* z, const_input(n, 2, "the zero point"));
    p.scale = s->f;
    if (z) {
      if (z->numel() != s->numel()) return bad("scale and zero point sizes differ");
      p.zp = z->i;
      p.type = z->type;
    } else {
      p.zp.assign(p.scale.size(), 0);
    }
    for (float v : p.scale) {
      if (!(v > 0.f) || !std::isfinite(v)) return bad("scale must be positive and finite");
    }
    p.axis = attr_int_or(n, "axis", 1);
    if (p.type != pb::TensorProto::INT8 && p.type != pb::TensorProto::UINT8 && p.type != pb::TensorProto::INT32) {
      return fail(fmt::format("{} quantization", onnx_type_name(p.type)));
    }
    return p;
  }
  // IR quantization of an activation (per-tensor int8; uint8 shifted by -128).
  static ir::QuantParams act_quant(const QParams& p) {
    const int32_t shift = p.type == pb::TensorProto::UINT8 ? -128 : 0;
    return ir::QuantParams::per_tensor(p.scale[0], static_cast<int32_t>(p.zp[0]) + shift);
  }

  Status dequantize_const(const pb::NodeProto& n) {
    PCV_ASSIGN_OR_RETURN(QParams p, qparams(n));
    const Const& q = vals_[n.input(0)].c;
    if (q.is_float()) return bad("DequantizeLinear of a float constant");
    auto qc = std::make_shared<QConst>();
    qc->q = q;
    qc->scale = p.scale;
    qc->zero_point = p.zp;
    qc->axis = norm_axis(p.axis, q.dims.size());
    Const f;
    f.dims = q.dims;
    f.f.resize(static_cast<size_t>(q.numel()));
    int64_t inner = 1, dim = 1;
    if (p.scale.size() > 1) {
      if (qc->axis < 0 || qc->axis >= static_cast<int64_t>(q.dims.size()) ||
          q.dims[static_cast<size_t>(qc->axis)] != static_cast<int64_t>(p.scale.size())) {
        return bad("per-axis scale size does not match the axis");
      }
      dim = q.dims[static_cast<size_t>(qc->axis)];
      for (size_t d = static_cast<size_t>(qc->axis) + 1; d < q.dims.size(); ++d) inner *= q.dims[d];
    }
    for (int64_t k = 0; k < q.numel(); ++k) {
      const size_t c = p.scale.size() > 1 ? static_cast<size_t>((k / inner) % dim) : 0;
      f.f[static_cast<size_t>(k)] = static_cast<float>(q.i[static_cast<size_t>(k)] - p.zp[c]) * p.scale[c];
    }
    set_const(n.output(0), std::move(f));
    vals_[n.output(0)].qc = std::move(qc);
    return Status::ok();
  }

  Status dequantize(const pb::NodeProto& n) {
    PCV_ASSIGN_OR_RETURN(Val* x, required(n, 0));
    if (x->deq || model_.graph.value(x->id).dtype != DType::kI8) return fail("DequantizeLinear of a float activation");
    Val v = *x;
    v.name = n.output(0);
    v.deq = true;
    v.float_id = ir::kNoValue;
    vals_[n.output(0)] = v;
    return Status::ok();
  }

  Status quantize(const pb::NodeProto& n) {
    PCV_ASSIGN_OR_RETURN(Val* x, required(n, 0));
    PCV_ASSIGN_OR_RETURN(QParams p, qparams(n));
    if (p.scale.size() != 1) return fail("per-axis quantization of an activation");
    if (p.type == pb::TensorProto::INT32) return fail("int32 quantization of an activation");
    if (x->is_const) return fail("QuantizeLinear of a constant outside DequantizeLinear");
    ir::Graph& g = model_.graph;
    const ValueId src = x->id;  // a DequantizeLinear'd input requantizes from its int8 value
    if (x->flat_hwc && x->fh * x->fw > 1) return fail("quantizing a flattened NCHW activation");
    if (!x->deq && g.value(src).dtype != DType::kF32) return fail("QuantizeLinear of a quantized value");
    PCV_ASSIGN_OR_RETURN(ValueId y, emit(OpType::kQuantize, n.output(0), {src}, ir::NoAttrs{}, x->layout, DType::kI8, act_quant(p)));
    (void)y;
    return Status::ok();
  }

  // When the float result `out` of the current node is only quantized (one consumer, a
  // QuantizeLinear, optionally after a Relu / Clip(0, 6) that is itself only quantized),
  // what the int8 op must produce.
  struct QOut {
    ir::QuantParams quant;
    ir::Activation act = ir::Activation::kNone;
    std::string name;        // the QuantizeLinear's output
    std::vector<int> nodes;  // nodes the int8 op absorbs
  };
  std::optional<QOut> quantized_output(const std::string& out, bool allow_act) {
    QOut q;
    std::string cur = out;
    for (int step = 0; step < 2; ++step) {
      if (graph_outputs_.count(cur)) return std::nullopt;
      auto it = consumers_.find(cur);
      if (it == consumers_.end() || it->second.size() != 1) return std::nullopt;
      const int ci = it->second[0];
      const auto& c = gp_.node(ci);
      if (c.op_type() == "QuantizeLinear") {
        auto p = qparams(c);
        if (!p || p->scale.size() != 1 || p->type == pb::TensorProto::INT32) return std::nullopt;
        q.quant = act_quant(*p);
        q.name = c.output(0);
        q.nodes.push_back(ci);
        return q;
      }
      if (!allow_act || step > 0) return std::nullopt;
      if (c.op_type() == "Relu") {
        q.act = ir::Activation::kRelu;
      } else if (c.op_type() == "Clip") {
        auto r = clip_range(c);
        if (!r || r->first != 0.f || r->second != 6.f) return std::nullopt;
        q.act = ir::Activation::kRelu6;
      } else {
        return std::nullopt;
      }
      q.nodes.push_back(ci);
      cur = c.output(0);
    }
    return std::nullopt;
  }
  // Registers the int8 result and skips the absorbed nodes.
  Status finish_quantized(const QOut& q, ValueId y, Layout layout) {
    for (int i : q.nodes) skip_.insert(i);
    Val v;
    v.name = q.name;
    v.id = y;
    v.layout = layout;
    vals_[q.name] = v;
    return Status::ok();
  }
  bool is_deq(const Val* v) const { return v && v->deq; }

  // Int8 weights for an IR conv / fully_connected: symmetric int8 with per-tensor or
  // per-output-channel (ONNX axis `out_axis`) scales.
  bool int8_weights(const Val* w, int64_t out_axis) const {
    if (!w || !w->qc || w->qc->q.type != pb::TensorProto::INT8) return false;
    for (int64_t z : w->qc->zero_point) if (z != 0) return false;
    return w->qc->scale.size() == 1 || w->qc->axis == out_axis;
  }
  // Int32 bias for int8 conv / dense: its own int32 values when their scale is
  // input_scale * weight_scale, else quantized from the float bias.
  std::optional<ValueId> int8_bias(const Val* b, float in_scale, const std::vector<float>& w_scale, int64_t out_c,
                                   const std::string& name) {
    ir::QuantParams q;
    std::vector<int32_t> data(static_cast<size_t>(out_c), 0);
    for (int64_t c = 0; c < out_c; ++c) {
      q.scale.push_back(in_scale * w_scale[w_scale.size() > 1 ? static_cast<size_t>(c) : 0]);
      q.zero_point.push_back(0);
    }
    if (b) {
      if (b->c.numel() != out_c) return std::nullopt;
      for (int64_t c = 0; c < out_c; ++c) {
        const size_t k = static_cast<size_t>(c);
        if (b->qc && b->qc->q.type == pb::TensorProto::INT32) {
          const float s = b->qc->scale[b->qc->scale.size() > 1 ? k : 0];
          if (std::fabs(s - q.scale[k]) > 1e-6f * q.scale[k] || b->qc->zero_point[b->qc->scale.size() > 1 ? k : 0] != 0) {
            return std::nullopt;
          }
          data[k] = static_cast<int32_t>(b->qc->q.i[k]);
        } else {
          const double v = std::nearbyint(static_cast<double>(b->c.as_float(c)) / q.scale[k]);
          if (std::fabs(v) > 2147483647.0) return std::nullopt;
          data[k] = static_cast<int32_t>(v);
        }
      }
    }
    q.axis = 0;
    return model_.graph.add_constant(ir_name(name), ir::Tensor::from_vector<int32_t>({out_c}, data), q);
  }

  // ---- ops ------------------------------------------------------------------------------
  // SAME_UPPER is the IR's SAME (extra padding at the end); SAME_LOWER and explicit pads become
  // explicit padding. `pads` is ONNX's [top, left, bottom, right].
  Status spatial_padding(const pb::NodeProto& n, int64_t in_h, int64_t in_w, int64_t kh, int64_t kw, int64_t sh,
                         int64_t sw, int64_t dh, int64_t dw, ir::Padding* mode, int* pt, int* pb_, int* pl, int* pr) {
    const std::string auto_pad = attr_string_or(n, "auto_pad", "NOTSET");
    *pt = *pb_ = *pl = *pr = 0;
    if (auto_pad == "VALID") {
      *mode = ir::Padding::kValid;
      return Status::ok();
    }
    if (auto_pad == "SAME_UPPER" || auto_pad == "SAME_LOWER") {
      if (auto_pad == "SAME_UPPER") {
        *mode = ir::Padding::kSame;
        return Status::ok();
      }
      auto total = [](int64_t in, int64_t k, int64_t s, int64_t d) {
        const int64_t out = (in + s - 1) / s;
        return std::max<int64_t>((out - 1) * s + (k - 1) * d + 1 - in, 0);
      };
      const int64_t th = total(in_h, kh, sh, dh), tw = total(in_w, kw, sw, dw);
      *mode = ir::Padding::kExplicit;
      *pb_ = static_cast<int>(th / 2);
      *pt = static_cast<int>(th - th / 2);
      *pr = static_cast<int>(tw / 2);
      *pl = static_cast<int>(tw - tw / 2);
      return Status::ok();
    }
    if (auto_pad != "NOTSET") return bad("unknown auto_pad " + auto_pad);
    const auto pads = attr_ints(n, "pads").value_or(std::vector<int64_t>{0, 0, 0, 0});
    if (pads.size() != 4) return fail("pads must have 4 entries (2-D only)");
    for (int64_t p : pads) if (p < 0 || p > 1 << 16) return bad("pads out of range");
    *pt = static_cast<int>(pads[0]);
    *pl = static_cast<int>(pads[1]);
    *pb_ = static_cast<int>(pads[2]);
    *pr = static_cast<int>(pads[3]);
    *mode = (*pt | *pl | *pb_ | *pr) == 0 ? ir::Padding::kValid : ir::Padding::kExplicit;
    return Status::ok();
  }

  static bool fits_int(int64_t v) { return v >= 1 && v <= (1 << 16); }

  Status conv(const pb::NodeProto& n) {
    PCV_ASSIGN_OR_RETURN(Val* x, required(n, 0));
    PCV_ASSIGN_OR_RETURN(Val* w, required(n, 1));
    PCV_ASSIGN_OR_RETURN(Val* b, input(n, 2));
    if (x->is_const || x->layout != Layout::kNchw) {
      return fail(fmt::format("input '{}' must be a rank-4 NCHW activation (Conv1d/Conv3d are not supported)", x->name));
    }
    if (!w->is_const || !w->c.is_float()) return fail("weights must be a constant");
    if (b && (!b->is_const || !b->c.is_float())) return fail("bias must be a constant");
    const Shape& ws = w->c.dims;  // (O, I/groups, kh, kw)
    if (ws.size() != 4) return fail("only 2-D convolution is supported");
    const Shape xs = onnx_shape(*x);
    const int64_t groups = attr_int_or(n, "group", 1);
    const auto strides = attr_ints(n, "strides").value_or(std::vector<int64_t>{1, 1});
    const auto dil = attr_ints(n, "dilations").value_or(std::vector<int64_t>{1, 1});
    if (strides.size() != 2 || dil.size() != 2) return bad("strides/dilations must have 2 entries");
    if (auto ks = attr_ints(n, "kernel_shape"); ks && (ks->size() != 2 || (*ks)[0] != ws[2] || (*ks)[1] != ws[3])) {
      return bad("kernel_shape does not match the weights");
    }
    if (!fits_int(groups) || !fits_int(strides[0]) || !fits_int(strides[1]) || !fits_int(dil[0]) || !fits_int(dil[1])) {
      return bad("group/strides/dilations out of range");
    }
    if (ws[1] * groups != xs[1]) return bad(fmt::format("weights {} do not fit {} input channels with group {}",
                                                        ir::shape_to_string(ws), xs[1], groups));
    ir::Conv2dAttrs a;
    a.stride_h = static_cast<int>(strides[0]);
    a.stride_w = static_cast<int>(strides[1]);
    a.dilation_h = static_cast<int>(dil[0]);
    a.dilation_w = static_cast<int>(dil[1]);
    a.groups = static_cast<int>(groups);
    PCV_RETURN_IF_ERROR(spatial_padding(n, xs[2], xs[3], ws[2], ws[3], strides[0], strides[1], dil[0], dil[1],
                                        &a.padding, &a.pad_top, &a.pad_bottom, &a.pad_left, &a.pad_right));
    ir::Graph& g = model_.graph;
    const Shape ohwi = nchw_shape_to_nhwc(ws);
    // int8: DequantizeLinear(int8 x) -> Conv(DQ(int8 W), b) -> [Relu] -> QuantizeLinear
    if (is_deq(x) && int8_weights(w, 0)) {
      if (auto q = quantized_output(n.output(0), true)) {
        const float sx = g.value(x->id).quant.scale[0];
        if (auto bias = int8_bias(b, sx, w->qc->scale, ws[0], n.output(0) + "/bias")) {
          std::vector<int8_t> wq(w->qc->q.i.begin(), w->qc->q.i.end());
          ir::QuantParams wqp;
          wqp.scale = w->qc->scale;
          wqp.zero_point.assign(wqp.scale.size(), 0);
          const ValueId wid = g.add_constant(ir_name(n.input(1)), ir::Tensor::from_vector<int8_t>(ohwi, nchw_to_nhwc(wq, ws)), wqp);
          a.activation = q->act;
          PCV_ASSIGN_OR_RETURN(ValueId y, emit(OpType::kConv2d, q->name, {x->id, wid, *bias}, a, Layout::kNchw, DType::kI8, q->quant));
          return finish_quantized(*q, y, Layout::kNchw);
        }
      }
      note(fmt::format("node '{}' (Conv): QDQ pattern not representable in int8, kept in float", n.name()));
    }
    PCV_ASSIGN_OR_RETURN(ValueId xi, float_of(*x));
    const ValueId wid = add_const(n.input(1), ohwi, nchw_to_nhwc(w->c.f, ws));
    std::vector<ValueId> ins{xi, wid};
    if (b) {
      if (b->c.numel() != ws[0]) return bad("bias size does not match the output channels");
      ins.push_back(add_const(n.input(2), {ws[0]}, b->c.f));
    }
    return emit(OpType::kConv2d, n.output(0), ins, a, Layout::kNchw).status();
  }

  // Gemm(A, B, C) and MatMul(A, B) with constant B -> fully_connected.
  Status dense(const pb::NodeProto& n) {
    const bool gemm = n.op_type() == "Gemm";
    PCV_ASSIGN_OR_RETURN(Val* x, required(n, 0));
    PCV_ASSIGN_OR_RETURN(Val* w, required(n, 1));
    PCV_ASSIGN_OR_RETURN(Val* b, gemm ? input(n, 2) : Expected<Val*>(static_cast<Val*>(nullptr)));
    if (!w->is_const || !w->c.is_float() || w->c.dims.size() != 2) return fail("B must be a 2-D constant");
    if (b && (!b->is_const || !b->c.is_float())) return fail("C must be a constant");
    if (x->is_const) return fail("A must be an activation");
    if (gemm && attr_int_or(n, "transA", 0) != 0) return fail("transA=1");
    const bool trans_b = gemm && attr_int_or(n, "transB", 0) != 0;
    const float alpha = gemm ? attr_float_or(n, "alpha", 1.f) : 1.f;
    const float beta = gemm ? attr_float_or(n, "beta", 1.f) : 1.f;
    const Shape xs = onnx_shape(*x);
    if (xs.size() != 2) return fail(fmt::format("A must be 2-D (batch, features), got {}", ir::shape_to_string(xs)));
    const int64_t k = xs[1];
    const int64_t out = trans_b ? w->c.dims[0] : w->c.dims[1];
    if ((trans_b ? w->c.dims[1] : w->c.dims[0]) != k) return bad("B does not match A's features");
    // IR weights (out, k); a flat_hwc input reads its features in HWC order.
    auto ir_col = [&](int64_t col) {
      if (!x->flat_hwc) return col;
      const int64_t c = col / (x->fh * x->fw), hw = col % (x->fh * x->fw);
      return hw * x->fc + c;
    };
    auto ir_weights = [&](auto get, auto zero) {
      std::vector<decltype(zero)> wt(static_cast<size_t>(out * k));
      for (int64_t o = 0; o < out; ++o)
        for (int64_t j = 0; j < k; ++j)
          wt[static_cast<size_t>(o * k + ir_col(j))] = get(trans_b ? o * k + j : j * out + o);
      return wt;
    };
    ir::Graph& g = model_.graph;
    if (is_deq(x) && alpha == 1.f && beta == 1.f && int8_weights(w, trans_b ? 0 : 1)) {
      if (auto q = quantized_output(n.output(0), true)) {
        const float sx = g.value(x->id).quant.scale[0];
        if (auto bias = int8_bias(b && b->c.numel() == out ? b : nullptr, sx, w->qc->scale, out, n.output(0) + "/bias");
            bias && (!b || b->c.numel() == out)) {
          const auto& qi = w->qc->q.i;
          auto wq = ir_weights([&](int64_t i) { return static_cast<int8_t>(qi[static_cast<size_t>(i)]); }, int8_t{});
          ir::QuantParams wqp;
          wqp.scale = w->qc->scale;
          wqp.zero_point.assign(wqp.scale.size(), 0);
          const ValueId wid = g.add_constant(ir_name(n.input(1)), ir::Tensor::from_vector<int8_t>({out, k}, wq), wqp);
          ir::FullyConnectedAttrs a;
          a.activation = q->act;
          PCV_ASSIGN_OR_RETURN(ValueId y, emit(OpType::kFullyConnected, q->name, {x->id, wid, *bias}, a, Layout::kPlain, DType::kI8, q->quant));
          return finish_quantized(*q, y, Layout::kPlain);
        }
      }
      note(fmt::format("node '{}' ({}): QDQ pattern not representable in int8, kept in float", n.name(), n.op_type()));
    }
    PCV_ASSIGN_OR_RETURN(ValueId xi, float_of(*x));
    const auto& wf = w->c.f;
    auto wt = ir_weights([&](int64_t i) { return alpha * wf[static_cast<size_t>(i)]; }, float{});
    std::vector<ValueId> ins{xi, add_const(n.input(1), {out, k}, wt)};
    if (b) {
      std::vector<float> bias(static_cast<size_t>(out));
      const int64_t bn = b->c.numel();
      if (bn != 1 && bn != out) return fail(fmt::format("C of shape {} (only a bias of size 1 or {})", ir::shape_to_string(b->c.dims), out));
      for (int64_t o = 0; o < out; ++o) bias[static_cast<size_t>(o)] = beta * b->c.f[static_cast<size_t>(bn == 1 ? 0 : o)];
      ins.push_back(add_const(n.input(2), {out}, bias));
    }
    return emit(OpType::kFullyConnected, n.output(0), ins, ir::FullyConnectedAttrs{}, Layout::kPlain).status();
  }

  Status batch_norm(const pb::NodeProto& n) {
    PCV_ASSIGN_OR_RETURN(ValueId xi, activation(n, 0));
    Val* x = &vals_[n.input(0)];
    if (n.output_size() > 1 && attr_int_or(n, "training_mode", 0) != 0) return fail("training_mode=1");
    const Shape xs = onnx_shape(*x);
    if (xs.size() != 4 && xs.size() != 2) return fail("BatchNormalization of a rank other than 2 or 4");
    std::vector<ValueId> ins{xi};
    const char* names[4] = {"scale", "B", "mean", "var"};
    for (int k = 1; k <= 4; ++k) {
      PCV_ASSIGN_OR_RETURN(const Const* c, const_input(n, k, names[k - 1]));
      if (!c || !c->is_float() || c->numel() != xs[1]) return fail(fmt::format("{} must be a constant of size {}", names[k - 1], xs[1]));
      ins.push_back(add_const(n.input(k), {xs[1]}, c->f));
    }
    ir::BatchNormAttrs a;
    a.epsilon = attr_float_or(n, "epsilon", 1e-5f);
    return emit(OpType::kBatchNorm, n.output(0), ins, a, x->layout).status();
  }

  // Clip bounds: inputs (opset >= 11) or attributes.
  std::optional<std::pair<float, float>> clip_range(const pb::NodeProto& n) {
    float lo = -INFINITY, hi = INFINITY;
    if (opset_ >= 11) {
      for (int k = 1; k <= 2; ++k) {
        if (k >= n.input_size() || n.input(k).empty()) continue;
        auto it = vals_.find(n.input(k));
        if (it == vals_.end() || !it->second.is_const || it->second.c.numel() != 1) return std::nullopt;
        (k == 1 ? lo : hi) = it->second.c.as_float(0);
      }
    } else {
      lo = attr_float_or(n, "min", -INFINITY);
      hi = attr_float_or(n, "max", INFINITY);
    }
    return std::make_pair(lo, hi);
  }

  Status unary(const pb::NodeProto& n) {
    const std::string& op = n.op_type();
    PCV_ASSIGN_OR_RETURN(Val* x, required(n, 0));
    OpType t = OpType::kRelu;
    ir::Attrs attrs = ir::NoAttrs{};
    if (op == "Sigmoid") t = OpType::kSigmoid;
    if (op == "HardSwish") t = OpType::kHardSwish;
    if (op == "LeakyRelu") {
      t = OpType::kLeakyRelu;
      attrs = ir::LeakyReluAttrs{attr_float_or(n, "alpha", 0.01f)};
    }
    if (op == "Clip") {
      auto r = clip_range(n);
      if (!r) return fail("Clip bounds must be scalar constants");
      if (r->first == 0.f && r->second == 6.f) t = OpType::kRelu6;
      else if (r->first == 0.f && std::isinf(r->second)) t = OpType::kRelu;
      else return fail(fmt::format("Clip({}, {}): only [0, 6] (relu6) and [0, inf) (relu) have IR ops", r->first, r->second));
    }
    if (x->flat_hwc) {  // elementwise: the element order does not matter
      PCV_ASSIGN_OR_RETURN(ValueId y, emit(t, n.output(0), {x->id}, attrs, Layout::kPlain));
      (void)y;
      Val& v = vals_[n.output(0)];
      v.flat_hwc = true; v.fc = x->fc; v.fh = x->fh; v.fw = x->fw;
      return Status::ok();
    }
    if (is_deq(x)) {
      if (auto q = quantized_output(n.output(0), false)) {
        PCV_ASSIGN_OR_RETURN(ValueId y, emit(t, q->name, {x->id}, attrs, x->layout, DType::kI8, q->quant));
        return finish_quantized(*q, y, x->layout);
      }
    }
    PCV_ASSIGN_OR_RETURN(ValueId xi, float_of(*x));
    return emit(t, n.output(0), {xi}, attrs, x->layout).status();
  }

  // HardSigmoid(x) = clamp(alpha * x + beta, 0, 1). x * HardSigmoid(x) with alpha 1/6 and
  // beta 1/2 is hard_swish (handled in binary()); otherwise relu6(6 alpha x + 6 beta) / 6.
  Status hard_sigmoid(const pb::NodeProto& n) {
    PCV_ASSIGN_OR_RETURN(ValueId xi, activation(n, 0));
    const Layout layout = vals_[n.input(0)].layout;
    const float alpha = attr_float_or(n, "alpha", 0.2f), beta = attr_float_or(n, "beta", 0.5f);
    hsig_[n.output(0)] = {n.input(0), std::fabs(alpha - 1.f / 6.f) < 1e-6f && beta == 0.5f};
    const std::string& o = n.output(0);
    PCV_ASSIGN_OR_RETURN(ValueId t1, emit_tmp(OpType::kMul, o + "/scale", {xi, add_const(o + "/6alpha", {1}, {6.f * alpha})}, ir::EltwiseAttrs{}));
    PCV_ASSIGN_OR_RETURN(ValueId t2, emit_tmp(OpType::kAdd, o + "/shift", {t1, add_const(o + "/6beta", {1}, {6.f * beta})}, ir::EltwiseAttrs{}));
    PCV_ASSIGN_OR_RETURN(ValueId t3, emit_tmp(OpType::kRelu6, o + "/relu6", {t2}, ir::NoAttrs{}));
    return emit(OpType::kMul, o, {t3, add_const(o + "/sixth", {1}, {1.f / 6.f})}, ir::EltwiseAttrs{}, layout).status();
  }

  Status binary(const pb::NodeProto& n) {
    const std::string& op = n.op_type();
    PCV_ASSIGN_OR_RETURN(Val* a, required(n, 0));
    PCV_ASSIGN_OR_RETURN(Val* b, required(n, 1));
    // x * HardSigmoid(x) -> hard_swish(x)
    if (op == "Mul") {
      for (int k = 0; k < 2; ++k) {
        auto it = hsig_.find(n.input(k));
        if (it != hsig_.end() && it->second.second && it->second.first == n.input(1 - k)) {
          PCV_ASSIGN_OR_RETURN(ValueId xi, activation(n, 1 - k));
          return emit(OpType::kHardSwish, n.output(0), {xi}, ir::NoAttrs{}, vals_[n.input(1 - k)].layout).status();
        }
      }
    }
    if (opset_ < 7 && attr_int_or(n, "broadcast", 0) != 0 && find_attr(n, "axis")) {
      return fail("legacy (opset < 7) broadcast with an axis");
    }
    const bool swap = a->is_const;  // keep the activation first (commutative ops)
    if (swap && (op == "Sub" || op == "Div")) return fail("a constant minus / divided by an activation");
    Val* x = swap ? b : a;
    Val* c = swap ? a : b;
    if (x->flat_hwc && x->fh * x->fw > 1) return fail("elementwise op on a flattened NCHW activation");
    const OpType t = op == "Add" || op == "Sub" ? OpType::kAdd : OpType::kMul;
    if (c->is_const) {
      // Sub(x, c) = Add(x, -c); Div(x, c) = Mul(x, 1/c).
      Const k = c->c;
      if (!k.is_float()) { k.f = as_floats(k); k.i.clear(); k.type = pb::TensorProto::FLOAT; }
      if (op == "Sub") for (float& v : k.f) v = -v;
      if (op == "Div") for (float& v : k.f) v = 1.f / v;
      const Shape xs = onnx_shape(*x);
      if (x->layout == Layout::kNchw && k.dims.size() > 4) return fail("constant of rank > 4");
      auto [shape, data] = broadcast_const(k, x->layout);
      PCV_ASSIGN_OR_RETURN(ValueId xi, float_of(*x));
      const ValueId ci = add_const(n.input(swap ? 0 : 1), shape, data);
      return emit(t, n.output(0), {xi, ci}, ir::EltwiseAttrs{}, x->layout).status();
    }
    if (op == "Sub" || op == "Div") return fail(fmt::format("{} of two activations", op));
    if (c->flat_hwc && c->fh * c->fw > 1) return fail("elementwise op on a flattened NCHW activation");
    const Shape xs = onnx_shape(*x), cs = onnx_shape(*c);
    if (x->layout != c->layout) {
      return fail(fmt::format("mixing an NCHW activation with a rank-{} activation needs a transpose", x->layout == Layout::kNchw ? cs.size() : xs.size()));
    }
    if (is_deq(x) && is_deq(c)) {
      if (auto q = quantized_output(n.output(0), true)) {
        ir::EltwiseAttrs ea;
        ea.activation = q->act;
        PCV_ASSIGN_OR_RETURN(ValueId y, emit(t, q->name, {x->id, c->id}, ea, x->layout, DType::kI8, q->quant));
        return finish_quantized(*q, y, x->layout);
      }
    }
    PCV_ASSIGN_OR_RETURN(ValueId xi, float_of(*x));
    PCV_ASSIGN_OR_RETURN(ValueId ci, float_of(*c));
    return emit(t, n.output(0), {xi, ci}, ir::EltwiseAttrs{}, x->layout).status();
  }

  Status pool(const pb::NodeProto& n) {
    const bool is_max = n.op_type() == "MaxPool";
    PCV_ASSIGN_OR_RETURN(Val* x, required(n, 0));
    if (n.output_size() > 1 && !n.output(1).empty()) return fail("MaxPool indices output");
    if (x->is_const || x->layout != Layout::kNchw) return fail("input must be a rank-4 NCHW activation (2-D pooling only)");
    const Shape xs = onnx_shape(*x);
    const auto ks = attr_ints(n, "kernel_shape").value_or(std::vector<int64_t>{});
    const auto strides = attr_ints(n, "strides").value_or(std::vector<int64_t>{1, 1});
    const auto dil = attr_ints(n, "dilations").value_or(std::vector<int64_t>{1, 1});
    if (ks.size() != 2 || strides.size() != 2) return bad("kernel_shape/strides must have 2 entries");
    if (dil.size() != 2 || dil[0] != 1 || dil[1] != 1) return fail("dilated pooling");
    if (attr_int_or(n, "storage_order", 0) != 0) return fail("storage_order=1");
    if (!fits_int(ks[0]) || !fits_int(ks[1]) || !fits_int(strides[0]) || !fits_int(strides[1])) return bad("kernel/strides out of range");
    ir::Pool2dAttrs a;
    a.kernel_h = static_cast<int>(ks[0]);
    a.kernel_w = static_cast<int>(ks[1]);
    a.stride_h = static_cast<int>(strides[0]);
    a.stride_w = static_cast<int>(strides[1]);
    PCV_RETURN_IF_ERROR(spatial_padding(n, xs[2], xs[3], ks[0], ks[1], strides[0], strides[1], 1, 1, &a.padding,
                                        &a.pad_top, &a.pad_bottom, &a.pad_left, &a.pad_right));
    if (attr_int_or(n, "ceil_mode", 0) != 0) {
      // Ceil mode only adds windows that start inside the padded input; when it changes
      // nothing (the usual even sizes) it is the floor rule.
      auto floor_p = ir::resolve_padding(a.padding, static_cast<int>(xs[2]), static_cast<int>(xs[3]), a.kernel_h, a.kernel_w,
                                         a.stride_h, a.stride_w, 1, 1, a.pad_top, a.pad_bottom, a.pad_left, a.pad_right);
      if (!floor_p) return bad(floor_p.status().message());
      auto ceil_out = [](int64_t in, int64_t p, int64_t k, int64_t s) { return (in + p - k + s - 1) / s + 1; };
      if (ceil_out(xs[2], a.pad_top + a.pad_bottom, ks[0], strides[0]) != floor_p->out_h ||
          ceil_out(xs[3], a.pad_left + a.pad_right, ks[1], strides[1]) != floor_p->out_w) {
        return fail("ceil_mode=1 that changes the output size");
      }
    }
    const bool has_pad = (a.pad_top | a.pad_bottom | a.pad_left | a.pad_right) != 0 || a.padding == ir::Padding::kSame;
    const OpType t = is_max ? OpType::kMaxPool : OpType::kAveragePool;
    if (!is_max && attr_int_or(n, "count_include_pad", 0) != 0 && has_pad) {
      // Padding counted in the average = zero-pad first, then a VALID average.
      PCV_ASSIGN_OR_RETURN(ValueId xi, float_of(*x));
      auto p = ir::resolve_padding(a.padding, static_cast<int>(xs[2]), static_cast<int>(xs[3]), a.kernel_h, a.kernel_w,
                                   a.stride_h, a.stride_w, 1, 1, a.pad_top, a.pad_bottom, a.pad_left, a.pad_right);
      if (!p) return bad(p.status().message());
      ir::PadAttrs pa;
      pa.pads = {0, 0, p->pad_top, p->pad_bottom, p->pad_left, p->pad_right, 0, 0};
      PCV_ASSIGN_OR_RETURN(ValueId padded, emit_tmp(OpType::kPad, n.output(0) + "/pad", {xi}, pa));
      a.padding = ir::Padding::kValid;
      a.pad_top = a.pad_bottom = a.pad_left = a.pad_right = 0;
      return emit(t, n.output(0), {padded}, a, Layout::kNchw).status();
    }
    if (is_deq(x)) {
      if (auto q = quantized_output(n.output(0), false); q && q->quant == model_.graph.value(x->id).quant) {
        PCV_ASSIGN_OR_RETURN(ValueId y, emit(t, q->name, {x->id}, a, Layout::kNchw, DType::kI8, q->quant));
        return finish_quantized(*q, y, Layout::kNchw);
      }
      if (is_max) {
        // max commutes with DequantizeLinear (scale > 0): pool the int8 values, stay dequantized.
        const ir::QuantParams q = model_.graph.value(x->id).quant;
        PCV_RETURN_IF_ERROR(emit(t, n.output(0), {x->id}, a, Layout::kNchw, DType::kI8, q).status());
        vals_[n.output(0)].deq = true;
        return Status::ok();
      }
    }
    PCV_ASSIGN_OR_RETURN(ValueId xi, float_of(*x));
    return emit(t, n.output(0), {xi}, a, Layout::kNchw).status();
  }

  Status global_pool(const pb::NodeProto& n) {
    PCV_ASSIGN_OR_RETURN(Val* x, required(n, 0));
    if (x->is_const || x->layout != Layout::kNchw) return fail("input must be a rank-4 NCHW activation");
    const Shape xs = onnx_shape(*x);
    if (n.op_type() == "GlobalMaxPool") {
      PCV_ASSIGN_OR_RETURN(ValueId xi, float_of(*x));
      ir::Pool2dAttrs a;
      a.kernel_h = static_cast<int>(xs[2]);
      a.kernel_w = static_cast<int>(xs[3]);
      a.stride_h = a.stride_w = 1;
      a.padding = ir::Padding::kValid;
      return emit(OpType::kMaxPool, n.output(0), {xi}, a, Layout::kNchw).status();
    }
    ir::MeanAttrs m;
    m.axes = {1, 2};
    m.keep_dims = true;
    if (is_deq(x)) {
      if (auto q = quantized_output(n.output(0), false)) {
        PCV_ASSIGN_OR_RETURN(ValueId y, emit(OpType::kMean, q->name, {x->id}, m, Layout::kNchw, DType::kI8, q->quant));
        return finish_quantized(*q, y, Layout::kNchw);
      }
    }
    PCV_ASSIGN_OR_RETURN(ValueId xi, float_of(*x));
    return emit(OpType::kMean, n.output(0), {xi}, m, Layout::kNchw).status();
  }

  Status reduce_mean(const pb::NodeProto& n) {
    PCV_ASSIGN_OR_RETURN(ValueId xi, activation(n, 0));
    const Val& x = vals_[n.input(0)];
    const Shape xs = onnx_shape(x);
    std::vector<int64_t> axes;
    if (opset_ >= 18) {
      PCV_ASSIGN_OR_RETURN(const Const* c, const_input(n, 1, "axes"));
      for (int64_t k = 0; c && k < c->numel(); ++k) axes.push_back(c->as_int(k));
    } else {
      axes = attr_ints(n, "axes").value_or(std::vector<int64_t>{});
    }
    if (axes.empty()) for (size_t d = 0; d < xs.size(); ++d) axes.push_back(static_cast<int64_t>(d));
    const bool keep = attr_int_or(n, "keepdims", 1) != 0;
    std::set<int64_t> onnx_axes;
    for (int64_t a : axes) {
      const int64_t r = norm_axis(a, xs.size());
      if (r < 0 || r >= static_cast<int64_t>(xs.size())) return bad("axis out of range");
      onnx_axes.insert(r);
    }
    ir::MeanAttrs m;
    m.keep_dims = keep;
    m.axes.clear();
    Layout out_layout = x.layout;
    if (x.layout == Layout::kNchw) {
      for (int64_t a : onnx_axes) m.axes.push_back(nchw_axis_to_nhwc(a));
      std::sort(m.axes.begin(), m.axes.end());
      if (!keep) {
        // The kept axes keep their order in both layouts only if C goes or both H and W go.
        if (!onnx_axes.count(1) && !(onnx_axes.count(2) && onnx_axes.count(3))) {
          return fail("ReduceMean without keepdims that keeps channels and one spatial axis");
        }
        out_layout = Layout::kPlain;
      }
    } else {
      m.axes.assign(onnx_axes.begin(), onnx_axes.end());
    }
    return emit(OpType::kMean, n.output(0), {xi}, m, out_layout).status();
  }

  // Flatten, Reshape, Squeeze, Unsqueeze of an activation.
  Status reshape(const pb::NodeProto& n) {
    PCV_ASSIGN_OR_RETURN(Val* x, required(n, 0));
    if (x->is_const) return fail("needs constant inputs");
    const Shape xs = onnx_shape(*x);
    PCV_ASSIGN_OR_RETURN(Shape to, reshaped_dims(n, xs));
    ir::Graph& g = model_.graph;
    const bool spatial = x->layout == Layout::kNchw && xs[2] * xs[3] > 1;
    if (x->flat_hwc && x->fh * x->fw > 1) {
      if (to == xs) { alias(n.output(0), *x); return Status::ok(); }
      return fail("reshaping a flattened NCHW activation");
    }
    // Emits the IR reshape; returns the ONNX name the result is registered under (the
    // QuantizeLinear's output when the reshape stays int8).
    auto emit_reshape = [&](const Shape& ir_to, Layout layout) -> Expected<std::string> {
      ir::ReshapeAttrs ra;
      ra.shape = ir_to;
      if (is_deq(x)) {
        if (auto q = quantized_output(n.output(0), false); q && q->quant == g.value(x->id).quant) {
          PCV_ASSIGN_OR_RETURN(ValueId y, emit(OpType::kReshape, q->name, {x->id}, ra, layout, DType::kI8, q->quant));
          PCV_RETURN_IF_ERROR(finish_quantized(*q, y, layout));
          return q->name;
        }
      }
      if (is_deq(x)) {
        // DequantizeLinear commutes with a reshape: reshape the int8 values, stay dequantized.
        const ir::QuantParams q = g.value(x->id).quant;
        PCV_RETURN_IF_ERROR(emit(OpType::kReshape, n.output(0), {x->id}, ra, layout, DType::kI8, q).status());
        vals_[n.output(0)].deq = true;
        return n.output(0);
      }
      PCV_ASSIGN_OR_RETURN(ValueId xi, float_of(*x));
      PCV_RETURN_IF_ERROR(emit(OpType::kReshape, n.output(0), {xi}, ra, layout).status());
      return n.output(0);
    };
    if (x->layout == Layout::kNchw) {
      if (to.size() == 2 && to[0] == xs[0]) {
        // (N, C, H, W) -> (N, C*H*W): the IR flattens in HWC order; consumers must know.
        PCV_ASSIGN_OR_RETURN(std::string out, emit_reshape(to, Layout::kPlain));
        if (spatial) {
          Val& v = vals_[out];
          v.flat_hwc = true;
          v.fc = xs[1];
          v.fh = xs[2];
          v.fw = xs[3];
        }
        return Status::ok();
      }
      if (!spatial && to.size() == 4 && to[2] * to[3] == 1) {
        // (N, C, 1, 1) holds its elements in the same order in both layouts.
        return emit_reshape(nchw_shape_to_nhwc(to), Layout::kNchw).status();
      }
      if (!spatial && to.size() != 4) return emit_reshape(to, Layout::kPlain).status();
      return fail(fmt::format("reshaping NCHW {} to {} needs a transpose", ir::shape_to_string(xs), ir::shape_to_string(to)));
    }
    // Plain input.
    if (to.size() == 4) {
      if (to[2] * to[3] != 1) return fail(fmt::format("reshape to NCHW {} needs a transpose", ir::shape_to_string(to)));
      return emit_reshape(nchw_shape_to_nhwc(to), Layout::kNchw).status();
    }
    return emit_reshape(to, Layout::kPlain).status();
  }

  Status transpose(const pb::NodeProto& n) {
    PCV_ASSIGN_OR_RETURN(Val* x, required(n, 0));
    const auto perm = attr_ints(n, "perm").value_or(std::vector<int64_t>{});
    const Shape xs = onnx_shape(*x);
    std::vector<int64_t> id(xs.size());
    std::iota(id.begin(), id.end(), 0);
    Val v = *x;
    v.name = n.output(0);
    if (perm == id) {
      vals_[n.output(0)] = v;
      return Status::ok();
    }
    // A layout change only: NCHW -> NHWC is the IR's storage as it is, and back.
    if (xs.size() == 4 && !x->flat_hwc) {
      if (x->layout == Layout::kNchw && perm == std::vector<int64_t>{0, 2, 3, 1}) {
        v.layout = Layout::kPlain;
        vals_[n.output(0)] = v;
        return Status::ok();
      }
      if (x->layout == Layout::kPlain && perm == std::vector<int64_t>{0, 3, 1, 2}) {
        v.layout = Layout::kNchw;
        vals_[n.output(0)] = v;
        return Status::ok();
      }
    }
    std::string p;
    for (int64_t a : perm) p += (p.empty() ? "" : ",") + std::to_string(a);
    return fail(fmt::format("Transpose perm=[{}] of {} moves data; the IR has no transpose", p, ir::shape_to_string(xs)));
  }

  Status concat(const pb::NodeProto& n) {
    Layout layout = Layout::kPlain;
    size_t rank = 0;
    bool all_deq = true;
    for (int k = 0; k < n.input_size(); ++k) {
      PCV_ASSIGN_OR_RETURN(Val* v, required(n, k));
      if (!v->is_const) {
        layout = v->layout;
        rank = onnx_shape(*v).size();
        if (v->flat_hwc && v->fh * v->fw > 1) return fail("concat of a flattened NCHW activation");
      }
      all_deq = all_deq && is_deq(v);
    }
    if (n.input_size() > 64) return fail("more than 64 inputs");
    int64_t axis = norm_axis(attr_int_or(n, "axis", 1), rank);
    if (axis < 0 || axis >= static_cast<int64_t>(rank)) return bad("axis out of range");
    if (layout == Layout::kNchw) axis = nchw_axis_to_nhwc(axis);
    ir::ConcatAttrs a;
    a.axis = static_cast<int>(axis);
    std::vector<ValueId> ins;
    if (all_deq) {
      if (auto q = quantized_output(n.output(0), false)) {
        for (int k = 0; k < n.input_size(); ++k) {
          if (vals_[n.input(k)].layout != layout) return fail("concat of activations in different layouts");
          ins.push_back(vals_[n.input(k)].id);
        }
        PCV_ASSIGN_OR_RETURN(ValueId y, emit(OpType::kConcat, q->name, ins, a, layout, DType::kI8, q->quant));
        return finish_quantized(*q, y, layout);
      }
    }
    for (int k = 0; k < n.input_size(); ++k) {
      Val& v = vals_[n.input(k)];
      if (v.is_const) {
        if (v.c.dims.size() != rank) return bad("concat inputs of different ranks");
        auto [shape, data] = broadcast_const(v.c, layout);
        ins.push_back(add_const(n.input(k), shape, data));
      } else {
        if (v.layout != layout) return fail("concat of activations in different layouts");
        PCV_ASSIGN_OR_RETURN(ValueId id, float_of(v));
        ins.push_back(id);
      }
    }
    return emit(OpType::kConcat, n.output(0), ins, a, layout).status();
  }

  Status pad(const pb::NodeProto& n) {
    PCV_ASSIGN_OR_RETURN(ValueId xi, activation(n, 0));
    const Val& x = vals_[n.input(0)];
    const Shape xs = onnx_shape(x);
    const size_t r = xs.size();
    if (attr_string_or(n, "mode", "constant") != "constant") return fail("only constant padding (reflect/edge are not supported)");
    std::vector<int64_t> pads;
    float value = 0.f;
    if (opset_ >= 11) {
      PCV_ASSIGN_OR_RETURN(const Const* p, const_input(n, 1, "pads"));
      if (!p) return bad("missing pads");
      for (int64_t k = 0; k < p->numel(); ++k) pads.push_back(p->as_int(k));
      PCV_ASSIGN_OR_RETURN(const Const* v, const_input(n, 2, "constant_value"));
      if (v && v->numel() > 0) value = v->as_float(0);
      PCV_ASSIGN_OR_RETURN(const Const* axes, const_input(n, 3, "axes"));
      if (axes) {
        std::vector<int64_t> full(2 * r, 0);
        const size_t na = static_cast<size_t>(axes->numel());
        if (pads.size() != 2 * na) return bad("pads do not match axes");
        for (size_t k = 0; k < na; ++k) {
          const int64_t ax = norm_axis(axes->as_int(static_cast<int64_t>(k)), r);
          if (ax < 0 || ax >= static_cast<int64_t>(r)) return bad("axis out of range");
          full[static_cast<size_t>(ax)] = pads[k];
          full[r + static_cast<size_t>(ax)] = pads[na + k];
        }
        pads = full;
      }
    } else {
      pads = attr_ints(n, "pads").value_or(std::vector<int64_t>{});
      value = attr_float_or(n, "value", 0.f);
    }
    if (pads.size() != 2 * r) return bad(fmt::format("pads needs {} entries", 2 * r));
    ir::PadAttrs a;
    a.value = value;
    a.pads.assign(2 * r, 0);
    for (size_t d = 0; d < r; ++d) {
      if (pads[d] < 0 || pads[r + d] < 0) return fail("negative pads (cropping)");
      const size_t id = x.layout == Layout::kNchw ? static_cast<size_t>(nchw_axis_to_nhwc(static_cast<int64_t>(d))) : d;
      a.pads[2 * id] = pads[d];
      a.pads[2 * id + 1] = pads[r + d];
    }
    return emit(OpType::kPad, n.output(0), {xi}, a, x.layout).status();
  }

  Status softmax(const pb::NodeProto& n) {
    PCV_ASSIGN_OR_RETURN(ValueId xi, activation(n, 0));
    const Val& x = vals_[n.input(0)];
    const Shape xs = onnx_shape(x);
    const int64_t axis = norm_axis(attr_int_or(n, "axis", opset_ >= 13 ? -1 : 1), xs.size());
    // IR softmax is over the last axis: ONNX's last axis (plain) or channels (NCHW).
    bool ok = false;
    if (x.layout == Layout::kNchw) {
      ok = axis == 1 && (opset_ >= 13 || xs[2] * xs[3] == 1);
    } else {
      ok = axis == static_cast<int64_t>(xs.size()) - 1;
    }
    if (!ok) return fail(fmt::format("softmax over axis {} of {} (the IR's softmax is over the last NHWC axis)", axis, ir::shape_to_string(xs)));
    return emit(OpType::kSoftmax, n.output(0), {xi}, ir::SoftmaxAttrs{}, x.layout).status();
  }

  const pb::ModelProto& mp_;
  const pb::GraphProto& gp_;
  std::string file_;
  ReadInfo* info_;
  int64_t opset_ = 0;
  int idx_ = -1;
  ir::Model model_;
  std::unordered_map<std::string, Val> vals_;
  std::unordered_map<std::string, std::vector<int>> consumers_;
  std::set<std::string> graph_outputs_;
  std::set<int> skip_;
  std::set<std::string> used_;     // every ONNX name plus our intermediates
  std::set<std::string> used_ir_;  // IR value names given out
  std::unordered_map<std::string, std::pair<std::string, bool>> hsig_;  // HardSigmoid out -> (x, is 1/6, 1/2)
};

}  // namespace

Expected<ir::Model> read_onnx(std::span<const uint8_t> bytes, const std::string& name, ReadInfo* info) {
  if (bytes.size() > kMaxOnnxBytes) {
    return unsupported(fmt::format("{}: {} bytes; ONNX files are limited to 2 GiB (larger ones use external data)", name, bytes.size()));
  }
  pb::ModelProto m;
  google::protobuf::io::CodedInputStream in(bytes.data(), static_cast<int>(bytes.size()));
  in.SetTotalBytesLimit(static_cast<int>(std::min<uint64_t>(bytes.size(), (uint64_t{1} << 31) - 1)));
  in.SetRecursionLimit(kMaxProtoDepth);
  if (!m.ParseFromCodedStream(&in) || !in.ConsumedEntireMessage()) {
    return invalid_model(fmt::format("{}: not a valid ONNX model (protobuf parse failed)", name));
  }
  if (!m.has_graph() || m.graph().node_size() == 0) return invalid_model(fmt::format("{}: not an ONNX model (no graph nodes)", name));
  ReadInfo local;
  return Reader(m, name, info ? info : &local).run();
}

Expected<ir::Model> load_onnx(const std::string& path, ReadInfo* info) {
  PCV_ASSIGN_OR_RETURN(auto bytes, read_file(path, kMaxOnnxBytes));
  return read_onnx(bytes, path, info);
}

}  // namespace pcv::onnx
