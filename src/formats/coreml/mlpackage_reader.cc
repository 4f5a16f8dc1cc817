// .mlpackage (ML Program) -> IR. The inverse of mlpackage_writer.cc.
//
// Each MIL variable maps to an IR value plus a layout: a rank-4 MIL tensor normally holds
// NCHW data whose IR value is NHWC (kNchw); after `transpose(perm = [0, 2, 3, 1])` the MIL
// tensor's layout equals the IR one (kSame), which `reshape` needs, and
// `transpose(perm = [0, 3, 1, 2])` turns it back. Leading `mul` / `add` by constants on the
// image input become the input spec's std / mean; `cast` ops are identities (the IR is f32).
// Compressed weights (iOS 16 constexpr_affine_dequantize / constexpr_lut_to_dense, parameters
// as attributes, or as inputs bound to values / consts the way iOS 18 files have them) are
// dequantized to f32 constants here, after checking every size against the others.
#include <fmt/core.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <optional>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "base/file.h"
#include "base/fp16.h"
#include "formats/coreml/blob_storage.h"
#include "formats/coreml/common.h"
#include "formats/coreml/coreml.h"
#include "formats/coreml/weights.h"

namespace pcv::coreml {
namespace {

using namespace detail;
namespace mil = ::CoreML::Specification::MILSpec;
using ir::OpType;

constexpr int64_t kMaxElems = int64_t{1} << 31;

// A compile-time constant: float tensor (any float dtype), ints (int32/int64/uint32/bool),
// raw bytes (int8/uint8), strings.
struct Const {
  mil::DataType type = mil::UNUSED_TYPE;
  std::vector<int64_t> shape;
  std::vector<float> f;
  std::vector<int64_t> i;
  std::vector<uint8_t> b;
  std::vector<std::string> s;
};

enum class Layout { kNchw, kSame };
struct Var {
  bool is_const = false;
  Const c;
  ir::ValueId id = ir::kNoValue;
  Layout layout = Layout::kSame;
};

class MilReader {
 public:
  MilReader(std::string name, std::string model_dir) : name_(std::move(name)), model_dir_(std::move(model_dir)) {}

  Expected<ir::Model> run(const spec::Model& m) {
    if (!m.has_mlprogram()) return unsupported(fmt::format("{}: not an ML Program", name_));
    const mil::Program& p = m.mlprogram();
    auto fit = p.functions().find("main");
    if (fit == p.functions().end()) return invalid_model(fmt::format("{}: the program has no 'main' function", name_));
    const mil::Function& fn = fit->second;
    auto bit = fn.block_specializations().find(fn.opset());
    if (bit == fn.block_specializations().end()) {
      return invalid_model(fmt::format("{}: no block for opset '{}'", name_, fn.opset()));
    }
    const mil::Block& block = bit->second;

    const auto& d = m.description();
    ir::Shape in_shape;
    PCV_RETURN_IF_ERROR(read_input_description(d, name_, &model_.input_spec, &in_shape));
    read_metadata(d, &model_.metadata);
    if (fn.inputs_size() != 1 || fn.inputs(0).name() != d.input(0).name()) {
      return invalid_model(fmt::format("{}: the function's inputs do not match the model description", name_));
    }
    input_var_ = fn.inputs(0).name();
    Var in;
    in.id = g().add_input(input_var_, ir::DType::kF32, in_shape);
    in.layout = in_shape.size() == 4 ? Layout::kNchw : Layout::kSame;
    names_.insert(input_var_);
    vars_[input_var_] = in;
    if (model_.input_spec.is_image()) scale_.assign(static_cast<size_t>(model_.input_spec.channels), 1.f), bias_ = std::vector<float>(scale_.size(), 0.f);
    preprocessing_ = model_.input_spec.is_image();

    std::string probabilities;
    for (const auto& op : block.operations()) {
      std::string oname = op_name(op);
      Status s = read_op(op, &probabilities);
      if (!s.is_ok()) return s.with_context(fmt::format("{}: op '{}' ({})", name_, oname, op.type()));
    }
    if (model_.input_spec.is_image()) {
      for (size_t c = 0; c < 3; ++c) {
        const size_t k = scale_.size() == 1 ? 0 : c;
        if (!(scale_[k] != 0.f && std::isfinite(scale_[k]))) return invalid_model(fmt::format("{}: input scale {}", name_, scale_[k]));
        model_.input_spec.std[c] = 1.f / scale_[k];
        model_.input_spec.mean[c] = -bias_[k] / scale_[k];
      }
    }
    if (!probabilities.empty()) {
      PCV_ASSIGN_OR_RETURN(const Var* v, tensor(probabilities));
      g().mark_output(v->id);
    } else {
      for (const auto& o : block.outputs()) {
        PCV_ASSIGN_OR_RETURN(const Var* v, tensor(o));
        g().mark_output(v->id);
      }
    }
    if (g().outputs.empty()) return invalid_model(fmt::format("{}: no outputs", name_));
    PCV_RETURN_IF_ERROR(ir::verify(g()).with_context(name_));
    return std::move(model_);
  }

 private:
  ir::Graph& g() { return model_.graph; }

  static std::string op_name(const mil::Operation& op) {
    auto it = op.attributes().find("name");
    if (it != op.attributes().end() && it->second.immediatevalue().tensor().strings().values_size() == 1) {
      return it->second.immediatevalue().tensor().strings().values(0);
    }
    return op.outputs_size() ? op.outputs(0).name() : "?";
  }

  std::string unique(const std::string& base) {
    std::string n = base;
    for (int i = 1; names_.count(n); ++i) n = fmt::format("{}_{}", base, i);
    names_.insert(n);
    return n;
  }

  // ---- values ----

  Expected<const std::vector<uint8_t>*> weight_file(const std::string& file_name) {
    const std::string prefix = "@model_path/weights/";
    if (file_name.rfind(prefix, 0) != 0 || file_name.find("..") != std::string::npos ||
        file_name.find('/', prefix.size()) != std::string::npos) {
      return invalid_model(fmt::format("blob file '{}' is not in the package's weights folder", file_name));
    }
    auto it = files_.find(file_name);
    if (it != files_.end()) return &it->second;
    const std::string path = model_dir_ + "/weights/" + file_name.substr(prefix.size());
    PCV_ASSIGN_OR_RETURN(auto bytes, read_file(path, uint64_t{1} << 33));
    PCV_RETURN_IF_ERROR(check_blob_header(bytes, path));
    return &(files_[file_name] = std::move(bytes));
  }

  Expected<Const> read_value(const mil::Value& v) {
    Const c;
    if (v.type().has_listtype()) {
      // classify's classes: a list of scalar strings / ints.
      for (const auto& item : v.immediatevalue().list().values()) {
        PCV_ASSIGN_OR_RETURN(Const e, read_value(item));
        for (auto& s : e.s) c.s.push_back(std::move(s));
        for (int64_t i : e.i) c.s.push_back(std::to_string(i));
      }
      c.type = mil::STRING;
      c.shape = {static_cast<int64_t>(c.s.size())};
      return c;
    }
    if (!v.type().has_tensortype()) return unsupported("a constant that is not a tensor or list");
    const auto& tt = v.type().tensortype();
    c.type = tt.datatype();
    int64_t n = 1;
    if (tt.rank() < 0 || tt.rank() > 8 || tt.dimensions_size() != tt.rank()) return invalid_model("constant rank");
    for (const auto& dim : tt.dimensions()) {
      if (!dim.has_constant()) return invalid_model("constant with an unknown dimension");
      const uint64_t s = dim.constant().size();
      if (s > static_cast<uint64_t>(kMaxElems) || (s && n > kMaxElems / static_cast<int64_t>(s))) return invalid_model("constant too large");
      n *= static_cast<int64_t>(s);
      c.shape.push_back(static_cast<int64_t>(s));
    }
    auto count_error = [&](int64_t got) {
      return invalid_model(fmt::format("constant has {} values, its type {} needs {}", got, ir::shape_to_string(c.shape), n));
    };
    if (v.has_blobfilevalue()) {
      PCV_ASSIGN_OR_RETURN(const std::vector<uint8_t>* file, weight_file(v.blobfilevalue().filename()));
      PCV_ASSIGN_OR_RETURN(BlobView b, read_blob(*file, v.blobfilevalue().offset(), v.blobfilevalue().filename()));
      const size_t es = blob_type_size(b.type);
      if (b.data.size() != static_cast<size_t>(n) * es) return count_error(static_cast<int64_t>(b.data.size() / es));
      if ((b.type == BlobType::kUInt8 && c.type == mil::UINT8) || (b.type == BlobType::kInt8 && c.type == mil::INT8)) {
        c.b.assign(b.data.begin(), b.data.end());
        return c;
      }
      c.f.resize(static_cast<size_t>(n));
      if (b.type == BlobType::kFloat16 && c.type == mil::FLOAT16) {
        for (int64_t i = 0; i < n; ++i) c.f[static_cast<size_t>(i)] = f32_from_fp16(static_cast<uint16_t>(b.data[2 * i] | (b.data[2 * i + 1] << 8)));
      } else if (b.type == BlobType::kFloat32 && c.type == mil::FLOAT32) {
        std::memcpy(c.f.data(), b.data.data(), b.data.size());
      } else {
        return unsupported(fmt::format("blob of data type {} for a tensor of type {}", static_cast<int>(b.type), static_cast<int>(c.type)));
      }
      return c;
    }
    const auto& t = v.immediatevalue().tensor();
    switch (c.type) {
      case mil::FLOAT32:
        if (t.floats().values_size() != n) return count_error(t.floats().values_size());
        c.f.assign(t.floats().values().begin(), t.floats().values().end());
        break;
      case mil::FLOAT16: {
        const std::string& b = t.bytes().values();
        if (static_cast<int64_t>(b.size()) != 2 * n) return count_error(static_cast<int64_t>(b.size() / 2));
        for (int64_t i = 0; i < n; ++i) {
          c.f.push_back(f32_from_fp16(static_cast<uint16_t>(static_cast<uint8_t>(b[static_cast<size_t>(2 * i)]) |
                                                            (static_cast<uint8_t>(b[static_cast<size_t>(2 * i + 1)]) << 8))));
        }
        break;
      }
      case mil::INT32:
        if (t.ints().values_size() != n) return count_error(t.ints().values_size());
        c.i.assign(t.ints().values().begin(), t.ints().values().end());
        break;
      case mil::INT64:
        if (t.longints().values_size() != n) return count_error(t.longints().values_size());
        c.i.assign(t.longints().values().begin(), t.longints().values().end());
        break;
      case mil::INT8:
      case mil::UINT8: {
        const std::string& b = t.bytes().values();
        if (static_cast<int64_t>(b.size()) != n) return count_error(static_cast<int64_t>(b.size()));
        c.b.assign(b.begin(), b.end());
        break;
      }
      case mil::UINT32:
        // Little-endian bytes (coremltools), or ints (older writers).
        if (t.has_ints()) {
          if (t.ints().values_size() != n) return count_error(t.ints().values_size());
          for (int32_t x : t.ints().values()) c.i.push_back(static_cast<uint32_t>(x));
        } else {
          const std::string& b = t.bytes().values();
          if (static_cast<int64_t>(b.size()) != 4 * n) return count_error(static_cast<int64_t>(b.size() / 4));
          for (int64_t k = 0; k < n; ++k) {
            uint32_t x = 0;
            for (int j = 3; j >= 0; --j) x = (x << 8) | static_cast<uint8_t>(b[static_cast<size_t>(4 * k + j)]);
            c.i.push_back(x);
          }
        }
        break;
      case mil::BOOL:
        if (t.bools().values_size() != n) return count_error(t.bools().values_size());
        for (bool b : t.bools().values()) c.i.push_back(b);
        break;
      case mil::STRING:
        if (t.strings().values_size() != n) return count_error(t.strings().values_size());
        c.s.assign(t.strings().values().begin(), t.strings().values().end());
        break;
      default: return unsupported(fmt::format("constant of data type {}", static_cast<int>(c.type)));
    }
    return c;
  }

  Expected<const Var*> lookup(const std::string& name) {
    auto it = vars_.find(name);
    if (it == vars_.end()) return invalid_model(fmt::format("'{}' is not defined before use", name));
    return &it->second;
  }
  Expected<const Var*> tensor(const std::string& name) {
    PCV_ASSIGN_OR_RETURN(const Var* v, lookup(name));
    if (v->is_const) return unsupported(fmt::format("'{}' is a constant where pocketcv needs a computed tensor", name));
    return v;
  }

  // The single binding of `param` ("" / nullptr when absent).
  static const mil::Argument::Binding* binding(const mil::Operation& op, const std::string& param) {
    auto it = op.inputs().find(param);
    if (it == op.inputs().end() || it->second.arguments_size() == 0) return nullptr;
    return &it->second.arguments(0);
  }
  Expected<std::optional<Const>> const_arg(const mil::Operation& op, const std::string& param) {
    const auto* b = binding(op, param);
    if (!b) return std::optional<Const>();
    if (b->has_value()) {
      PCV_ASSIGN_OR_RETURN(Const c, read_value(b->value()));
      return std::optional<Const>(std::move(c));
    }
    PCV_ASSIGN_OR_RETURN(const Var* v, lookup(b->name()));
    if (!v->is_const) return unsupported(fmt::format("parameter '{}' must be a constant", param));
    return std::optional<Const>(v->c);
  }
  Expected<Const> need_const(const mil::Operation& op, const std::string& param) {
    PCV_ASSIGN_OR_RETURN(auto c, const_arg(op, param));
    if (!c) return invalid_model(fmt::format("missing parameter '{}'", param));
    return std::move(*c);
  }
  Expected<std::vector<int64_t>> ints(const mil::Operation& op, const std::string& param, std::vector<int64_t> dflt,
                                      size_t count) {
    PCV_ASSIGN_OR_RETURN(auto c, const_arg(op, param));
    std::vector<int64_t> v = c ? c->i : dflt;
    if (v.size() != count) return invalid_model(fmt::format("parameter '{}' needs {} integers", param, count));
    for (int64_t x : v) {
      if (x < -(int64_t{1} << 20) || x > (int64_t{1} << 20)) return invalid_model(fmt::format("parameter '{}' out of range", param));
    }
    return v;
  }
  Expected<float> scalar(const mil::Operation& op, const std::string& param, float dflt) {
    PCV_ASSIGN_OR_RETURN(auto c, const_arg(op, param));
    if (!c) return dflt;
    if (c->f.size() != 1) return invalid_model(fmt::format("parameter '{}' must be one float", param));
    return c->f[0];
  }
  Expected<const Var*> x_arg(const mil::Operation& op, const std::string& param = "x") {
    const auto* b = binding(op, param);
    if (!b || b->name().empty()) return invalid_model(fmt::format("missing input '{}'", param));
    return tensor(b->name());
  }

  ir::ValueId constant(const std::string& name, ir::Shape shape, const std::vector<float>& v) {
    return g().add_constant(unique(name), ir::Tensor::from_vector(std::move(shape), v));
  }
  Status define(const mil::Operation& op, Var v, size_t output = 0) {
    if (static_cast<size_t>(op.outputs_size()) <= output) return invalid_model("missing output");
    const std::string& n = op.outputs(static_cast<int>(output)).name();
    if (vars_.count(n)) return invalid_model(fmt::format("'{}' is defined twice", n));
    vars_[n] = std::move(v);
    return Status::ok();
  }
  Expected<Var> node(const mil::Operation& op, OpType type, std::vector<ir::ValueId> in, ir::Attrs a, Layout layout,
                     const std::string& suffix = "") {
    if (op.outputs_size() < 1) return invalid_model("no outputs");
    Var v;
    v.id = g().add_node(type, unique(op.outputs(0).name() + suffix), std::move(in), std::move(a));
    v.layout = layout;
    PCV_RETURN_IF_ERROR(ir::infer_shapes(g()));
    return v;
  }
  Status nchw(const Var* v) {
    if (g().value(v->id).shape.size() == 4 && v->layout != Layout::kNchw) return unsupported("an NCHW op on an NHWC-ordered tensor");
    return Status::ok();
  }
  const ir::Shape& shape(const Var* v) { return g().value(v->id).shape; }
  // MIL axis of a rank-4 NCHW tensor -> IR NHWC axis.
  static int64_t ir_axis(int64_t a, size_t rank) {
    if (a < 0) a += static_cast<int64_t>(rank);
    if (rank != 4) return a;
    return a == 0 ? 0 : a == 1 ? 3 : a - 1;
  }

  template <class A>
  Status pads(const mil::Operation& op, A* a) {
    PCV_ASSIGN_OR_RETURN(auto type, const_arg(op, "pad_type"));
    const std::string t = type && type->s.size() == 1 ? type->s[0] : "valid";
    if (t == "same") {
      a->padding = ir::Padding::kSame;
    } else if (t == "valid") {
      a->padding = ir::Padding::kValid;
    } else if (t == "custom") {
      PCV_ASSIGN_OR_RETURN(auto p, ints(op, "pad", {0, 0, 0, 0}, 4));
      for (int64_t x : p) {
        if (x < 0) return invalid_model("negative padding");
      }
      a->padding = ir::Padding::kExplicit;
      a->pad_top = static_cast<int>(p[0]), a->pad_bottom = static_cast<int>(p[1]);
      a->pad_left = static_cast<int>(p[2]), a->pad_right = static_cast<int>(p[3]);
    } else {
      return unsupported(fmt::format("pad_type '{}'", t));
    }
    return Status::ok();
  }

  // Leading mul/add by constants on the image input: folded into scale_ / bias_.
  Expected<bool> preprocessing(const mil::Operation& op, const std::string& type) {
    if (!preprocessing_) return false;
    const auto* xb = binding(op, "x");
    if (type == "cast" && xb && xb->name() == input_var_) {
      PCV_RETURN_IF_ERROR(define(op, vars_[input_var_]));
      input_var_ = op.outputs(0).name();
      preprocessing_ = false;
      return true;
    }
    if ((type != "mul" && type != "add") || !xb || xb->name() != input_var_) return (preprocessing_ = false);
    PCV_ASSIGN_OR_RETURN(auto y, const_arg(op, "y"));
    if (!y || (y->f.size() != 1 && y->f.size() != scale_.size())) return (preprocessing_ = false);
    for (size_t c = 0; c < scale_.size(); ++c) {
      const float k = y->f.size() == 1 ? y->f[0] : y->f[c];
      if (type == "mul") scale_[c] *= k, bias_[c] *= k;
      else bias_[c] += k;
    }
    PCV_RETURN_IF_ERROR(define(op, vars_[input_var_]));
    input_var_ = op.outputs(0).name();
    return true;
  }

  // A constexpr op's parameter: an attribute (iOS 16 / 17 files), else an input.
  Expected<Const> constexpr_param(const mil::Operation& op, const std::string& param) {
    auto it = op.attributes().find(param);
    if (it != op.attributes().end()) {
      auto c = read_value(it->second);
      if (!c) return c.status().with_context(fmt::format("parameter '{}'", param));
      return std::move(*c);
    }
    return need_const(op, param);
  }

  // The op's declared output type must be a float tensor of `shape`; returns its dtype.
  static Expected<mil::DataType> constexpr_output(const mil::Operation& op, const std::vector<int64_t>& shape,
                                                  mil::DataType value_type) {
    if (op.outputs_size() != 1) return invalid_model("needs one output");
    const auto& t = op.outputs(0).type();
    if (!t.has_tensortype()) return invalid_model("output is not a tensor");
    const auto& tt = t.tensortype();
    bool same = tt.dimensions_size() == static_cast<int>(shape.size());
    for (int d = 0; same && d < tt.dimensions_size(); ++d) {
      same = tt.dimensions(d).has_constant() && tt.dimensions(d).constant().size() == static_cast<uint64_t>(shape[static_cast<size_t>(d)]);
    }
    if (!same) return invalid_model(fmt::format("declared output shape differs from the data's {}", ir::shape_to_string(shape)));
    if (tt.datatype() != value_type) {
      return invalid_model(fmt::format("declared output data type {} differs from the values' {}", static_cast<int>(tt.datatype()),
                                       static_cast<int>(value_type)));
    }
    return tt.datatype();
  }
  static bool is_float_type(mil::DataType t) { return t == mil::FLOAT16 || t == mil::FLOAT32; }

  // w = scale * (quantized_data - zero_point), scale / zero_point scalars or vectors along `axis`.
  Expected<Const> read_affine_dequantize(const mil::Operation& op) {
    PCV_ASSIGN_OR_RETURN(Const q, constexpr_param(op, "quantized_data"));
    PCV_ASSIGN_OR_RETURN(Const zp, constexpr_param(op, "zero_point"));
    PCV_ASSIGN_OR_RETURN(Const sc, constexpr_param(op, "scale"));
    PCV_ASSIGN_OR_RETURN(Const ax, constexpr_param(op, "axis"));
    if (q.type != mil::INT8 && q.type != mil::UINT8) return invalid_model("quantized_data must be int8 or uint8");
    if (q.shape.empty()) return invalid_model("quantized_data must have rank >= 1");
    if (!is_float_type(sc.type)) return invalid_model("scale must be fp16 or fp32");
    if (zp.type != q.type && zp.type != mil::FLOAT32) return invalid_model("zero_point must have quantized_data's type or fp32");
    if (ax.type != mil::INT32 || ax.i.size() != 1 || !ax.shape.empty()) return invalid_model("axis must be an int32 scalar");
    const auto rank = static_cast<int64_t>(q.shape.size());
    int64_t axis = ax.i[0];
    if (axis < -rank || axis >= rank) return invalid_model(fmt::format("axis {} outside rank {}", axis, rank));
    if (axis < 0) axis += rank;
    const int64_t axis_size = q.shape[static_cast<size_t>(axis)];
    const auto n = static_cast<int64_t>(q.b.size());
    const size_t zp_count = zp.type == mil::FLOAT32 ? zp.f.size() : zp.b.size();
    for (const auto& [what, c, count] : {std::tuple<const char*, const Const*, size_t>{"scale", &sc, sc.f.size()},
                                         std::tuple<const char*, const Const*, size_t>{"zero_point", &zp, zp_count}}) {
      const bool scalar = c->shape.empty() && count == 1;
      const bool vector = c->shape.size() == 1 && static_cast<int64_t>(count) == axis_size;
      if (!scalar && !vector) {
        return invalid_model(fmt::format("{} {} must be a scalar or a vector of {} (quantized_data {} along axis {})", what,
                                         ir::shape_to_string(c->shape), axis_size, ir::shape_to_string(q.shape), axis));
      }
    }
    for (float s : sc.f) {
      if (!std::isfinite(s)) return invalid_model("scale is not finite");
    }
    // Elements per step along the axis, and steps: index -> channel = (i / inner) % axis_size.
    int64_t inner = 1;
    for (int64_t d = axis + 1; d < rank; ++d) inner *= q.shape[static_cast<size_t>(d)];
    Const out;
    out.shape = q.shape;
    out.type = sc.type;
    out.f.resize(static_cast<size_t>(n));
    auto qval = [&](const std::vector<uint8_t>& b, size_t i) {
      return q.type == mil::INT8 ? static_cast<float>(static_cast<int8_t>(b[i])) : static_cast<float>(b[i]);
    };
    for (int64_t i = 0; i < n; ++i) {
      const auto c = static_cast<size_t>(axis_size > 0 ? (i / inner) % axis_size : 0);
      const float s = sc.f[sc.f.size() == 1 ? 0 : c];
      const size_t zc = zp_count == 1 ? 0 : c;
      const float z = zp.type == mil::FLOAT32 ? zp.f[zc] : qval(zp.b, zc);
      out.f[static_cast<size_t>(i)] = s * (qval(q.b, static_cast<size_t>(i)) - z);
    }
    PCV_RETURN_IF_ERROR(constexpr_output(op, out.shape, out.type).status());
    return out;
  }

  // w = lut[index], indices packed LSB first (weights.h), `shape` uint32.
  Expected<Const> read_lut_to_dense(const mil::Operation& op) {
    PCV_ASSIGN_OR_RETURN(Const idx, constexpr_param(op, "indices"));
    PCV_ASSIGN_OR_RETURN(Const lut, constexpr_param(op, "lut"));
    PCV_ASSIGN_OR_RETURN(Const shp, constexpr_param(op, "shape"));
    if (idx.type != mil::UINT8 || idx.shape.size() != 1) return invalid_model("indices must be a uint8 vector");
    if (!is_float_type(lut.type) || lut.shape.size() != 1) {
      return unsupported("a lookup table that is not an fp16 / fp32 vector (per-channel or integer tables)");
    }
    const size_t entries = lut.f.size();
    int bits = 0;
    while (bits <= 8 && (size_t{1} << bits) < entries) ++bits;
    if (bits < 1 || bits > 8 || (size_t{1} << bits) != entries) {
      return invalid_model(fmt::format("lookup table has {} entries; it needs 2^bits with bits 1..8", entries));
    }
    if ((shp.type != mil::UINT32 && shp.type != mil::INT32) || shp.shape.size() != 1 || shp.i.empty() || shp.i.size() > 8) {
      return invalid_model("shape must be a uint32 vector of rank 1..8");
    }
    int64_t n = 1;
    for (int64_t d : shp.i) {
      if (d < 1 || d > kMaxElems || n > kMaxElems / d) return invalid_model(fmt::format("shape {} is empty or too large", ir::shape_to_string(shp.i)));
      n *= d;
    }
    const uint64_t need = (static_cast<uint64_t>(n) * static_cast<uint64_t>(bits) + 7) / 8;
    if (idx.b.size() != need) {
      return invalid_model(fmt::format("{} bytes of {}-bit indices; shape {} needs {}", idx.b.size(), bits,
                                       ir::shape_to_string(shp.i), need));
    }
    Const out;
    out.shape = shp.i;
    out.type = lut.type;
    out.f.resize(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) out.f[static_cast<size_t>(i)] = lut.f[unpack_bits_lsb_first(idx.b, i, bits)];
    PCV_RETURN_IF_ERROR(constexpr_output(op, out.shape, out.type).status());
    return out;
  }

  Status read_op(const mil::Operation& op, std::string* probabilities) {
    const std::string& type = op.type();
    if (type == "const") {
      auto it = op.attributes().find("val");
      if (it == op.attributes().end()) return invalid_model("const without 'val'");
      Var v;
      v.is_const = true;
      PCV_ASSIGN_OR_RETURN(v.c, read_value(it->second));
      return define(op, std::move(v));
    }
    if (type == "constexpr_affine_dequantize" || type == "constexpr_lut_to_dense") {
      Var v;
      v.is_const = true;
      if (type == "constexpr_affine_dequantize") {
        PCV_ASSIGN_OR_RETURN(v.c, read_affine_dequantize(op));
      } else {
        PCV_ASSIGN_OR_RETURN(v.c, read_lut_to_dense(op));
      }
      return define(op, std::move(v));
    }
    PCV_ASSIGN_OR_RETURN(bool folded, preprocessing(op, type));
    if (folded) return Status::ok();
    if (type == "cast") {
      PCV_ASSIGN_OR_RETURN(const Var* x, x_arg(op));
      return define(op, *x);
    }
    if (type == "conv") {
      PCV_ASSIGN_OR_RETURN(const Var* x, x_arg(op));
      PCV_RETURN_IF_ERROR(nchw(x));
      if (shape(x).size() != 4) return unsupported("conv of a tensor that is not rank 4");
      PCV_ASSIGN_OR_RETURN(Const w, need_const(op, "weight"));
      if (w.shape.size() != 4 || w.f.empty()) return invalid_model("conv weight must be a rank-4 float constant");
      PCV_ASSIGN_OR_RETURN(auto groups, ints(op, "groups", {1}, 1));
      PCV_ASSIGN_OR_RETURN(auto st, ints(op, "strides", {1, 1}, 2));
      PCV_ASSIGN_OR_RETURN(auto dl, ints(op, "dilations", {1, 1}, 2));
      ir::Conv2dAttrs a;
      a.groups = static_cast<int>(groups[0]);
      a.stride_h = static_cast<int>(st[0]), a.stride_w = static_cast<int>(st[1]);
      a.dilation_h = static_cast<int>(dl[0]), a.dilation_w = static_cast<int>(dl[1]);
      PCV_RETURN_IF_ERROR(pads(op, &a));
      const auto& s = w.shape;  // O, I/g, kh, kw
      std::vector<ir::ValueId> in{x->id, constant(op_name(op) + "/weights", {s[0], s[2], s[3], s[1]},
                                                  oihw_to_ohwi(w.f.data(), s[0], s[1], s[2], s[3]))};
      PCV_ASSIGN_OR_RETURN(auto b, const_arg(op, "bias"));
      if (b) {
        if (static_cast<int64_t>(b->f.size()) != s[0]) return invalid_model("conv bias size differs from the output channels");
        in.push_back(constant(op_name(op) + "/bias", {s[0]}, b->f));
      }
      PCV_ASSIGN_OR_RETURN(Var y, node(op, OpType::kConv2d, in, a, Layout::kNchw));
      return define(op, y);
    }
    if (type == "linear") {
      PCV_ASSIGN_OR_RETURN(const Var* x, x_arg(op));
      PCV_ASSIGN_OR_RETURN(Const w, need_const(op, "weight"));
      if (w.shape.size() != 2 || w.f.empty()) return invalid_model("linear weight must be a rank-2 float constant");
      std::vector<ir::ValueId> in{x->id, constant(op_name(op) + "/weights", {w.shape[0], w.shape[1]}, w.f)};
      PCV_ASSIGN_OR_RETURN(auto b, const_arg(op, "bias"));
      if (b) {
        if (static_cast<int64_t>(b->f.size()) != w.shape[0]) return invalid_model("linear bias size differs from the output size");
        in.push_back(constant(op_name(op) + "/bias", {w.shape[0]}, b->f));
      }
      PCV_ASSIGN_OR_RETURN(Var y, node(op, OpType::kFullyConnected, in, ir::FullyConnectedAttrs{}, Layout::kSame));
      return define(op, y);
    }
    if (type == "batch_norm") {
      PCV_ASSIGN_OR_RETURN(const Var* x, x_arg(op));
      PCV_RETURN_IF_ERROR(nchw(x));
      std::vector<ir::ValueId> in{x->id};
      for (const char* p : {"gamma", "beta", "mean", "variance"}) {
        PCV_ASSIGN_OR_RETURN(Const c, need_const(op, p));
        in.push_back(constant(op_name(op) + "/" + p, {static_cast<int64_t>(c.f.size())}, c.f));
      }
      ir::BatchNormAttrs a;
      PCV_ASSIGN_OR_RETURN(a.epsilon, scalar(op, "epsilon", 1e-5f));
      PCV_ASSIGN_OR_RETURN(Var y, node(op, OpType::kBatchNorm, in, a, x->layout));
      return define(op, y);
    }
    if (type == "relu" || type == "relu6" || type == "sigmoid" || type == "leaky_relu") {
      PCV_ASSIGN_OR_RETURN(const Var* x, x_arg(op));
      ir::Attrs a = ir::NoAttrs{};
      OpType t = type == "relu" ? OpType::kRelu : type == "relu6" ? OpType::kRelu6 : OpType::kSigmoid;
      if (type == "leaky_relu") {
        ir::LeakyReluAttrs la;
        PCV_ASSIGN_OR_RETURN(la.alpha, scalar(op, "alpha", 0.01f));
        a = la, t = OpType::kLeakyRelu;
      }
      PCV_ASSIGN_OR_RETURN(Var y, node(op, t, {x->id}, a, x->layout));
      return define(op, y);
    }
    if (type == "sigmoid_hard") {
      PCV_ASSIGN_OR_RETURN(const Var* x, x_arg(op));
      PCV_ASSIGN_OR_RETURN(float alpha, scalar(op, "alpha", 0.2f));
      PCV_ASSIGN_OR_RETURN(float beta, scalar(op, "beta", 0.5f));
      if (std::abs(alpha - 1.f / 6.f) > 1e-3f || beta != 0.5f) return unsupported("sigmoid_hard outside the hard-swish pattern");
      pending_hsig_[op.outputs_size() ? op.outputs(0).name() : ""] = binding(op, "x")->name();
      (void)x;
      Var marker;
      marker.is_const = true;  // consumed only by the following mul
      return define(op, marker);
    }
    if (type == "add" || type == "mul") return read_eltwise(op, type);
    if (type == "concat") {
      auto it = op.inputs().find("values");
      if (it == op.inputs().end() || it->second.arguments_size() < 1 || it->second.arguments_size() > 64) {
        return invalid_model("concat needs 1..64 values");
      }
      std::vector<ir::ValueId> in;
      Layout layout = Layout::kSame;
      for (const auto& b : it->second.arguments()) {
        PCV_ASSIGN_OR_RETURN(const Var* v, tensor(b.name()));
        if (shape(v).size() == 4) {
          PCV_RETURN_IF_ERROR(nchw(v));
          layout = Layout::kNchw;
        }
        in.push_back(v->id);
      }
      PCV_ASSIGN_OR_RETURN(auto axis, ints(op, "axis", {}, 1));
      ir::ConcatAttrs a;
      a.axis = static_cast<int>(ir_axis(axis[0], g().value(in[0]).shape.size()));
      PCV_ASSIGN_OR_RETURN(auto inter, const_arg(op, "interleave"));
      if (inter && !inter->i.empty() && inter->i[0]) return unsupported("interleaved concat");
      PCV_ASSIGN_OR_RETURN(Var y, node(op, OpType::kConcat, in, a, layout));
      return define(op, y);
    }
    if (type == "max_pool" || type == "avg_pool") {
      PCV_ASSIGN_OR_RETURN(const Var* x, x_arg(op));
      PCV_RETURN_IF_ERROR(nchw(x));
      PCV_ASSIGN_OR_RETURN(auto k, ints(op, "kernel_sizes", {}, 2));
      PCV_ASSIGN_OR_RETURN(auto st, ints(op, "strides", {1, 1}, 2));
      ir::Pool2dAttrs a;
      a.kernel_h = static_cast<int>(k[0]), a.kernel_w = static_cast<int>(k[1]);
      a.stride_h = static_cast<int>(st[0]), a.stride_w = static_cast<int>(st[1]);
      PCV_RETURN_IF_ERROR(pads(op, &a));
      PCV_ASSIGN_OR_RETURN(auto ceil, const_arg(op, "ceil_mode"));
      if (ceil && !ceil->i.empty() && ceil->i[0]) return unsupported("ceil_mode pooling");
      if (type == "avg_pool" && a.padding != ir::Padding::kValid) {
        PCV_ASSIGN_OR_RETURN(auto ex, const_arg(op, "exclude_padding_from_average"));
        if (!ex || ex->i.empty() || !ex->i[0]) return unsupported("average pooling that counts padding");
      }
      PCV_ASSIGN_OR_RETURN(Var y, node(op, type == "max_pool" ? OpType::kMaxPool : OpType::kAveragePool, {x->id}, a, Layout::kNchw));
      return define(op, y);
    }
    if (type == "reduce_mean") {
      PCV_ASSIGN_OR_RETURN(const Var* x, x_arg(op));
      PCV_RETURN_IF_ERROR(nchw(x));
      PCV_ASSIGN_OR_RETURN(auto axes, const_arg(op, "axes"));
      if (!axes || axes->i.empty() || axes->i.size() > 4) return unsupported("reduce_mean without axes");
      ir::MeanAttrs a;
      a.axes.clear();
      for (int64_t ax : axes->i) a.axes.push_back(ir_axis(ax, shape(x).size()));
      PCV_ASSIGN_OR_RETURN(auto keep, const_arg(op, "keep_dims"));
      a.keep_dims = keep && !keep->i.empty() && keep->i[0];
      PCV_ASSIGN_OR_RETURN(Var y, node(op, OpType::kMean, {x->id}, a, a.keep_dims ? x->layout : Layout::kSame));
      return define(op, y);
    }
    if (type == "transpose") {
      PCV_ASSIGN_OR_RETURN(const Var* x, x_arg(op));
      PCV_ASSIGN_OR_RETURN(auto perm, ints(op, "perm", {}, shape(x).size()));
      Var y = *x;
      if (perm == std::vector<int64_t>{0, 2, 3, 1} && x->layout == Layout::kNchw) {
        y.layout = Layout::kSame;
      } else if (perm == std::vector<int64_t>{0, 3, 1, 2} && x->layout == Layout::kSame && shape(x).size() == 4) {
        y.layout = Layout::kNchw;
      } else {
        return unsupported("transpose other than NCHW <-> NHWC");
      }
      return define(op, y);
    }
    if (type == "reshape") {
      PCV_ASSIGN_OR_RETURN(const Var* x, x_arg(op));
      PCV_ASSIGN_OR_RETURN(Const s, need_const(op, "shape"));
      const ir::Shape& xs = shape(x);
      if (x->layout == Layout::kNchw && !(xs[1] == 1 && xs[2] == 1) && xs[3] != 1) {
        return unsupported("reshape of NCHW data (pocketcv reads reshapes of NHWC-ordered tensors)");
      }
      if (s.i.empty() || s.i.size() > 6) return invalid_model("reshape shape");
      ir::ReshapeAttrs a;
      a.shape = s.i;
      PCV_ASSIGN_OR_RETURN(Var y, node(op, OpType::kReshape, {x->id}, a, Layout::kSame));
      return define(op, y);
    }
    if (type == "pad") {
      PCV_ASSIGN_OR_RETURN(const Var* x, x_arg(op));
      PCV_RETURN_IF_ERROR(nchw(x));
      PCV_ASSIGN_OR_RETURN(auto mode, const_arg(op, "mode"));
      if (mode && (mode->s.size() != 1 || mode->s[0] != "constant")) return unsupported("pad mode other than constant");
      PCV_ASSIGN_OR_RETURN(Const p, need_const(op, "pad"));
      const size_t rank = shape(x).size();
      if (p.i.size() % 2 || p.i.size() > 2 * rank) return invalid_model("pad needs (before, after) pairs for the last axes");
      std::vector<int64_t> full(2 * rank, 0);
      std::copy(p.i.begin(), p.i.end(), full.end() - static_cast<std::ptrdiff_t>(p.i.size()));
      ir::PadAttrs a;
      a.pads = rank == 4 ? std::vector<int64_t>{full[0], full[1], full[4], full[5], full[6], full[7], full[2], full[3]} : full;
      PCV_ASSIGN_OR_RETURN(a.value, scalar(op, "constant_val", 0.f));
      PCV_ASSIGN_OR_RETURN(Var y, node(op, OpType::kPad, {x->id}, a, x->layout));
      return define(op, y);
    }
    if (type == "softmax") {
      PCV_ASSIGN_OR_RETURN(const Var* x, x_arg(op));
      PCV_ASSIGN_OR_RETURN(auto axis, ints(op, "axis", {-1}, 1));
      const size_t rank = shape(x).size();
      const int64_t ax = x->layout == Layout::kNchw ? ir_axis(axis[0], rank) : (axis[0] < 0 ? axis[0] + static_cast<int64_t>(rank) : axis[0]);
      if (ax != static_cast<int64_t>(rank) - 1) return unsupported("softmax over an axis other than the channels");
      PCV_ASSIGN_OR_RETURN(Var y, node(op, OpType::kSoftmax, {x->id}, ir::SoftmaxAttrs{}, x->layout));
      return define(op, y);
    }
    if (type == "classify") {
      const auto* pb = binding(op, "probabilities");
      if (!pb) return invalid_model("classify without probabilities");
      PCV_ASSIGN_OR_RETURN(const Var* p, tensor(pb->name()));
      PCV_ASSIGN_OR_RETURN(Const classes, need_const(op, "classes"));
      const ir::Shape& ps = shape(p);
      if (classes.s.empty() || ps.empty() || static_cast<int64_t>(classes.s.size()) != ps.back()) {
        return invalid_model(fmt::format("classify: {} classes for probabilities {}", classes.s.size(), ir::shape_to_string(ps)));
      }
      model_.input_spec.labels = classes.s;
      *probabilities = pb->name();
      return Status::ok();
    }
    return unsupported(fmt::format("MIL op type '{}'", type));
  }

  Status read_eltwise(const mil::Operation& op, const std::string& type) {
    const auto* xb = binding(op, "x");
    const auto* yb = binding(op, "y");
    if (!xb || !yb) return invalid_model("needs x and y");
    // Hard swish: mul(x, sigmoid_hard(x)).
    if (type == "mul" && !xb->name().empty() && !yb->name().empty()) {
      for (auto [a, b] : {std::pair{xb, yb}, std::pair{yb, xb}}) {
        auto it = pending_hsig_.find(b->name());
        if (it != pending_hsig_.end() && it->second == a->name()) {
          PCV_ASSIGN_OR_RETURN(const Var* x, tensor(a->name()));
          PCV_ASSIGN_OR_RETURN(Var y, node(op, OpType::kHardSwish, {x->id}, ir::NoAttrs{}, x->layout));
          return define(op, y);
        }
      }
    }
    std::vector<ir::ValueId> in;
    const Var* var_operand = nullptr;
    for (const auto* b : {xb, yb}) {
      if (!b->name().empty()) {
        PCV_ASSIGN_OR_RETURN(const Var* v, lookup(b->name()));
        if (!v->is_const) {
          var_operand = v;
          continue;
        }
      }
    }
    if (!var_operand) return unsupported("both operands are constants");
    const size_t rank = shape(var_operand).size();
    for (const auto* b : {xb, yb}) {
      const Var* v = nullptr;
      if (!b->name().empty()) {
        PCV_ASSIGN_OR_RETURN(v, lookup(b->name()));
      }
      if (v && !v->is_const) {
        if (shape(v).size() == 4) PCV_RETURN_IF_ERROR(nchw(v));
        in.push_back(v->id);
        continue;
      }
      PCV_ASSIGN_OR_RETURN(Const c, v ? Expected<Const>(v->c) : read_value(b->value()));
      if (c.f.empty()) return invalid_model("operand is not a float constant");
      ir::Shape cs;
      std::vector<float> data = c.f;
      if (c.f.size() == 1) {
        cs = {1};
      } else if (rank == 4 && c.shape.size() == 4 && c.shape[0] == 1 && c.shape[2] == 1 && c.shape[3] == 1) {
        cs = {c.shape[1]};
      } else if (rank == 4 && c.shape.size() == 4) {
        const auto& s = c.shape;  // NCHW -> NHWC
        cs = {s[0], s[2], s[3], s[1]};
        for (int64_t a = 0; a < s[0]; ++a)
          for (int64_t ch = 0; ch < s[1]; ++ch)
            for (int64_t y = 0; y < s[2]; ++y)
              for (int64_t x = 0; x < s[3]; ++x) data[static_cast<size_t>(((a * s[2] + y) * s[3] + x) * s[1] + ch)] = c.f[static_cast<size_t>(((a * s[1] + ch) * s[2] + y) * s[3] + x)];
      } else if (rank != 4) {
        cs = c.shape;
      } else {
        return unsupported(fmt::format("constant operand of shape {}", ir::shape_to_string(c.shape)));
      }
      in.push_back(constant(op_name(op) + "/" + (b == xb ? "x" : "y"), cs, data));
    }
    PCV_ASSIGN_OR_RETURN(Var y, node(op, type == "add" ? OpType::kAdd : OpType::kMul, in, ir::EltwiseAttrs{},
                                     var_operand->layout));
    return define(op, y);
  }

  std::string name_, model_dir_;
  ir::Model model_;
  std::map<std::string, Var> vars_;
  std::map<std::string, std::vector<uint8_t>> files_;
  std::map<std::string, std::string> pending_hsig_;  // sigmoid_hard output -> its input
  std::set<std::string> names_;
  std::string input_var_;
  bool preprocessing_ = false;
  std::vector<float> scale_, bias_;
};

// The root model's path from Manifest.json (the default layout when absent).
Expected<std::string> root_model_path(const std::string& dir) {
  const std::string manifest = dir + "/Manifest.json";
  const std::string fallback = dir + "/Data/com.apple.CoreML/model.mlmodel";
  if (!file_exists(manifest)) return fallback;
  PCV_ASSIGN_OR_RETURN(std::string text, read_text_file(manifest));
  const auto j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return invalid_model(fmt::format("{}: not valid JSON", manifest));
  auto root = j.find("rootModelIdentifier");
  auto items = j.find("itemInfoEntries");
  if (root == j.end() || !root->is_string() || items == j.end() || !items->is_object()) {
    return invalid_model(fmt::format("{}: no rootModelIdentifier / itemInfoEntries", manifest));
  }
  auto item = items->find(root->get<std::string>());
  if (item == items->end() || !item->is_object() || !item->contains("path") || !(*item)["path"].is_string()) {
    return invalid_model(fmt::format("{}: the root model entry has no path", manifest));
  }
  const std::string path = (*item)["path"].get<std::string>();
  if (path.empty() || path[0] == '/' || path.find("..") != std::string::npos) {
    return invalid_model(fmt::format("{}: model path '{}' leaves the package", manifest, path));
  }
  return dir + "/Data/" + path;
}

}  // namespace

Expected<ir::Model> read_mlpackage(const std::string& dir) {
  if (!is_directory(dir)) return io_error(fmt::format("{}: not a directory (an .mlpackage is a folder)", dir));
  PCV_ASSIGN_OR_RETURN(std::string path, root_model_path(dir));
  PCV_ASSIGN_OR_RETURN(auto bytes, read_file(path, kMaxModelBytes));
  spec::Model m;
  PCV_RETURN_IF_ERROR(detail::parse_model(bytes, path, &m));
  if (!m.has_mlprogram()) return read_mlmodel(bytes, path);  // a NeuralNetwork in a package
  MilReader r(dir, std::filesystem::path(path).parent_path().string());
  return r.run(m);
}

}  // namespace pcv::coreml
