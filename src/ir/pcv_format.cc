#include "ir/pcv_format.h"

#include <cstring>
#include <optional>

#include <fmt/core.h>

#include "base/aligned.h"
#include "base/file.h"
#include "ir/pcv_generated.h"

namespace pcv::ir {
namespace {

namespace fb = ::pcv::fb;
constexpr uint32_t kMaxCount = 1u << 24;  // values, nodes, buffers, attrs per node

flatbuffers::Offset<fb::Node> write_node(flatbuffers::FlatBufferBuilder& b, const Node& n) {
  std::vector<flatbuffers::Offset<fb::Attr>> attrs;
  for (const AttrField& f : attrs_to_fields(n.attrs)) {
    auto name = b.CreateString(f.name);
    flatbuffers::Offset<flatbuffers::String> s;
    flatbuffers::Offset<flatbuffers::Vector<int64_t>> ints;
    fb::AttrKind kind = fb::AttrKind::Int;
    int64_t i = 0;
    double d = 0;
    if (auto* pi = std::get_if<int64_t>(&f.value)) {
      i = *pi;
    } else if (auto* pd = std::get_if<double>(&f.value)) {
      kind = fb::AttrKind::Float;
      d = *pd;
    } else if (auto* ps = std::get_if<std::string>(&f.value)) {
      kind = fb::AttrKind::String;
      s = b.CreateString(*ps);
    } else {
      kind = fb::AttrKind::Ints;
      ints = b.CreateVector(std::get<std::vector<int64_t>>(f.value));
    }
    fb::AttrBuilder ab(b);
    ab.add_name(name);
    ab.add_kind(kind);
    ab.add_i(i);
    ab.add_f(d);
    if (!s.IsNull()) ab.add_s(s);
    if (!ints.IsNull()) ab.add_ints(ints);
    attrs.push_back(ab.Finish());
  }
  return fb::CreateNodeDirect(b, op_name(n.op), n.name.c_str(), &n.inputs, &n.outputs, &attrs);
}

// Copies bytes: the verifier checks a vector's 4-byte length prefix alignment, not its
// elements', so an int64 vector in a damaged file can sit at 4 mod 8 (a misaligned load is
// undefined behaviour). Flatbuffers are little-endian, as every host we build for.
template <class T>
std::vector<T> to_vec(const flatbuffers::Vector<T>* v) {
  std::vector<T> out(v ? v->size() : 0);
  if (!out.empty()) std::memcpy(out.data(), v->Data(), out.size() * sizeof(T));
  return out;
}
std::string to_str(const flatbuffers::String* s) { return s ? s->str() : std::string(); }

bool all_zero(const uint8_t* p, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    if (p[i]) return false;
  }
  return true;
}

// A constant's sparse form (see Buffer in pcv.fbs: nonzero elements in byte planes) when it
// takes at most kPcvSparseMaxShare of the dense bytes; nullopt otherwise. "Zero" is all-zero
// bytes (so -0.0f stays, bit exact).
struct SparseBytes {
  std::vector<uint8_t> mask;
  std::vector<uint8_t> values;
};
std::optional<SparseBytes> sparse_form(const Tensor& t) {
  const size_t esize = dtype_size(t.dtype());
  const size_t n = static_cast<size_t>(t.num_elements());
  const uint8_t* p = static_cast<const uint8_t*>(t.raw());
  if (n < 64 || p == nullptr) return std::nullopt;
  size_t nonzero = 0;
  for (size_t i = 0; i < n; ++i) nonzero += !all_zero(p + i * esize, esize);
  const size_t mask_bytes = (n + 7) / 8;
  if (static_cast<double>(mask_bytes + nonzero * esize) > kPcvSparseMaxShare * static_cast<double>(n * esize)) {
    return std::nullopt;
  }
  SparseBytes s;
  s.mask.assign(mask_bytes, 0);
  s.values.resize(nonzero * esize);
  size_t k = 0;  // nonzero elements so far
  for (size_t i = 0; i < n; ++i) {
    if (all_zero(p + i * esize, esize)) continue;
    s.mask[i / 8] |= static_cast<uint8_t>(1u << (i % 8));
    for (size_t b = 0; b < esize; ++b) s.values[b * nonzero + k] = p[i * esize + b];
    ++k;
  }
  return s;
}

// The dense tensor of a sparse buffer, or an error naming what does not fit.
Expected<Tensor> densify(DType dtype, const Shape& shape, const flatbuffers::Vector<uint8_t>& mask,
                         const flatbuffers::Vector<uint8_t>* data) {
  const size_t esize = dtype_size(dtype);
  const size_t n = static_cast<size_t>(num_elements(shape));
  if (mask.size() != (n + 7) / 8) {
    return invalid_model(fmt::format("sparse buffer: nonzero mask has {} bytes, {} elements need {}", mask.size(), n,
                                     (n + 7) / 8));
  }
  size_t nonzero = 0;
  for (uint32_t i = 0; i < mask.size(); ++i) nonzero += static_cast<size_t>(__builtin_popcount(mask.Get(i)));
  if (n % 8 != 0 && (mask.Get(mask.size() - 1) >> (n % 8)) != 0) {
    return invalid_model("sparse buffer: nonzero mask has bits set past the last element");
  }
  const size_t got = data ? data->size() : 0;
  if (got != nonzero * esize) {
    return invalid_model(fmt::format("sparse buffer: {} bytes of values, the mask's {} nonzero {} elements need {}",
                                     got, nonzero, dtype_name(dtype), nonzero * esize));
  }
  Tensor t(dtype, shape);  // zero-filled
  uint8_t* out = static_cast<uint8_t*>(t.raw());
  const uint8_t* in = data ? data->data() : nullptr;
  size_t k = 0;
  for (size_t i = 0; i < n; ++i) {
    if (mask.Get(static_cast<uint32_t>(i / 8)) & (1u << (i % 8))) {
      for (size_t b = 0; b < esize; ++b) out[i * esize + b] = in[b * nonzero + k];
      ++k;
    }
  }
  return t;
}

}  // namespace

Expected<std::vector<uint8_t>> write_pcv(const Model& model) {
  const Graph& g = model.graph;
  flatbuffers::FlatBufferBuilder b(1024 + static_cast<size_t>(g.parameter_bytes()));
  std::vector<flatbuffers::Offset<fb::Buffer>> buffers;
  buffers.push_back(fb::CreateBuffer(b, b.CreateVector(static_cast<const uint8_t*>(nullptr), 0)));
  std::vector<flatbuffers::Offset<fb::Value>> values;
  uint32_t format_version = 1;
  for (const Value& v : g.values) {
    uint32_t buffer = 0;
    if (v.is_constant()) {
      if (auto sparse = sparse_form(v.data)) {
        b.ForceVectorAlignment(sparse->values.size(), 1, 64);
        auto data = b.CreateVector(sparse->values);
        auto mask = b.CreateVector(sparse->mask);
        buffers.push_back(fb::CreateBuffer(b, data, mask));
        format_version = 2;
      } else {
        b.ForceVectorAlignment(v.data.size_bytes(), 1, 64);
        auto data = b.CreateVector(v.data.bytes().data(), v.data.size_bytes());
        buffers.push_back(fb::CreateBuffer(b, data));
      }
      buffer = static_cast<uint32_t>(buffers.size() - 1);
    }
    flatbuffers::Offset<fb::Quant> quant;
    if (!v.quant.empty()) {
      quant = fb::CreateQuantDirect(b, &v.quant.scale, &v.quant.zero_point, v.quant.axis);
    }
    values.push_back(fb::CreateValueDirect(b, v.name.c_str(), dtype_name(v.dtype), &v.shape,
                                           quant, buffer, v.trainable));
  }
  std::vector<flatbuffers::Offset<fb::Node>> nodes;
  for (const Node& n : g.nodes) nodes.push_back(write_node(b, n));

  const InputSpec& s = model.input_spec;
  std::vector<float> mean(s.mean.begin(), s.mean.end()), stdv(s.std.begin(), s.std.end());
  std::vector<flatbuffers::Offset<flatbuffers::String>> labels;
  for (auto& l : s.labels) labels.push_back(b.CreateString(l));
  auto spec = fb::CreateInputSpecDirect(b, s.height, s.width, s.channels, color_order_name(s.color),
                                        &mean, &stdv, s.crop_fraction, &labels);
  const ModelMetadata& m = model.metadata;
  auto meta = fb::CreateMetadataDirect(b, m.name.c_str(), m.description.c_str(), m.version.c_str(),
                                       m.author.c_str(), m.license.c_str());
  auto root = fb::CreateModelDirect(b, format_version, "pocketcv 0.1.0", &values, &nodes,
                                    &g.inputs, &g.outputs, &buffers, spec, meta);
  fb::FinishModelBuffer(b, root);
  return std::vector<uint8_t>(b.GetBufferPointer(), b.GetBufferPointer() + b.GetSize());
}

bool looks_like_pcv(std::span<const uint8_t> bytes) {
  return bytes.size() >= 8 && fb::ModelBufferHasIdentifier(bytes.data());
}

Expected<Model> read_pcv(std::span<const uint8_t> bytes_in, const std::string& name) {
  std::vector<uint8_t> aligned_copy;
  const std::span<const uint8_t> bytes = aligned_for_flatbuffers(bytes_in, &aligned_copy);
  auto fail = [&](const std::string& what) { return invalid_model(name + ": " + what); };
  if (bytes.size() < 8) return fail(fmt::format("truncated: {} bytes is too small for a .pcv file", bytes.size()));
  if (!looks_like_pcv(bytes)) return fail("not a .pcv file (missing the PCV1 identifier)");
  flatbuffers::Verifier verifier(bytes.data(), bytes.size(), /*max_depth=*/64,
                                 /*max_tables=*/kMaxCount);
  if (!fb::VerifyModelBuffer(verifier)) return fail("corrupt or truncated .pcv file (flatbuffers verification failed)");
  const fb::Model* fm = fb::GetModel(bytes.data());
  if (fm->format_version() > kPcvFormatVersion) {
    return unsupported(fmt::format("{}: format version {} is newer than this pocketcv reads ({})", name,
                                   fm->format_version(), kPcvFormatVersion));
  }
  Model model;
  Graph& g = model.graph;
  const auto* fbuffers = fm->buffers();
  const uint32_t nbuf = fbuffers ? fbuffers->size() : 0;
  if (fm->values()) {
    if (fm->values()->size() > kMaxCount) return fail("too many values");
    for (uint32_t i = 0; i < fm->values()->size(); ++i) {
      const fb::Value* fv = fm->values()->Get(i);
      Value v;
      v.name = to_str(fv->name());
      auto dt = dtype_from_name(to_str(fv->dtype()));
      if (!dt) return fail(fmt::format("value {} '{}': unknown dtype '{}'", i, v.name, to_str(fv->dtype())));
      v.dtype = *dt;
      v.shape = to_vec(fv->shape());
      if (!checked_num_elements(v.shape)) {
        return fail(fmt::format("value {} '{}': shape {} is negative or too large", i, v.name, shape_to_string(v.shape)));
      }
      if (fv->quant()) {
        v.quant.scale = to_vec(fv->quant()->scale());
        v.quant.zero_point = to_vec(fv->quant()->zero_point());
        v.quant.axis = fv->quant()->axis();
      }
      v.trainable = fv->trainable();
      if (fv->buffer() != 0) {
        if (fv->buffer() >= nbuf) return fail(fmt::format("value '{}': buffer index {} out of range ({} buffers)", v.name, fv->buffer(), nbuf));
        const fb::Buffer* fbuf = fbuffers->Get(fv->buffer());
        const auto* data = fbuf->data();
        if (fbuf->nonzero_mask()) {
          auto dense = densify(v.dtype, v.shape, *fbuf->nonzero_mask(), data);
          if (!dense) return fail(fmt::format("value '{}': {}", v.name, dense.status().message()));
          v.data = std::move(*dense);
        } else {
          const size_t expect = static_cast<size_t>(num_elements(v.shape)) * dtype_size(v.dtype);
          const size_t got = data ? data->size() : 0;
          if (got != expect) {
            return fail(fmt::format("value '{}': buffer has {} bytes, shape {} {} needs {}", v.name, got,
                                    dtype_name(v.dtype), shape_to_string(v.shape), expect));
          }
          v.data = Tensor::from_bytes(v.dtype, v.shape, {data ? data->data() : nullptr, got});
        }
      }
      g.values.push_back(std::move(v));
    }
  }
  if (fm->nodes()) {
    if (fm->nodes()->size() > kMaxCount) return fail("too many nodes");
    for (uint32_t i = 0; i < fm->nodes()->size(); ++i) {
      const fb::Node* fnode = fm->nodes()->Get(i);
      Node n;
      n.name = to_str(fnode->name());
      auto op = op_from_name(to_str(fnode->op()));
      if (!op) return unsupported(fmt::format("{}: node {} '{}': unknown op '{}'", name, i, n.name, to_str(fnode->op())));
      n.op = *op;
      n.inputs = to_vec(fnode->inputs());
      n.outputs = to_vec(fnode->outputs());
      n.attrs = default_attrs(n.op);
      std::vector<AttrField> fields;
      if (fnode->attrs()) {
        for (const fb::Attr* fa : *fnode->attrs()) {
          AttrField f;
          f.name = to_str(fa->name());
          switch (fa->kind()) {
            case fb::AttrKind::Int: f.value = fa->i(); break;
            case fb::AttrKind::Float: f.value = fa->f(); break;
            case fb::AttrKind::String: f.value = to_str(fa->s()); break;
            case fb::AttrKind::Ints: f.value = to_vec(fa->ints()); break;
            default: return fail(fmt::format("node '{}': attribute '{}' of unknown kind", n.name, f.name));
          }
          fields.push_back(std::move(f));
        }
      }
      std::string err;
      if (!attrs_from_fields(fields, &n.attrs, &err)) return fail(fmt::format("node '{}': {}", n.name, err));
      g.nodes.push_back(std::move(n));
    }
  }
  g.inputs = to_vec(fm->inputs());
  g.outputs = to_vec(fm->outputs());
  if (const fb::InputSpec* fs = fm->input_spec()) {
    InputSpec& s = model.input_spec;
    s.height = fs->height();
    s.width = fs->width();
    s.channels = fs->channels();
    const std::string color = to_str(fs->color());
    if (color == "bgr") s.color = ColorOrder::kBGR;
    else if (color == "gray") s.color = ColorOrder::kGray;
    else if (color == "rgb" || color.empty()) s.color = ColorOrder::kRGB;
    else return fail("input spec: unknown color order '" + color + "'");
    auto mean = to_vec(fs->mean());
    auto stdv = to_vec(fs->std());
    if (mean.size() > 3 || stdv.size() > 3) return fail("input spec: mean/std have more than 3 channels");
    for (size_t c = 0; c < mean.size(); ++c) s.mean[c] = mean[c];
    for (size_t c = 0; c < stdv.size(); ++c) {
      if (!(stdv[c] > 0.f)) return fail("input spec: std must be positive");
      s.std[c] = stdv[c];
    }
    s.crop_fraction = fs->crop_fraction();
    if (!(s.crop_fraction > 0.f && s.crop_fraction <= 1.f)) return fail("input spec: crop_fraction must be in (0, 1]");
    if (s.height < 0 || s.width < 0 || s.height > 32768 || s.width > 32768 || s.channels < 0 || s.channels > 4) {
      return fail("input spec: size out of range");
    }
    if (fs->labels()) {
      for (const auto* l : *fs->labels()) s.labels.push_back(to_str(l));
    }
  }
  if (const fb::Metadata* fmeta = fm->metadata()) {
    model.metadata.name = to_str(fmeta->name());
    model.metadata.description = to_str(fmeta->description());
    model.metadata.version = to_str(fmeta->version());
    model.metadata.author = to_str(fmeta->author());
    model.metadata.license = to_str(fmeta->license());
  }
  Status s = verify(g);
  if (!s.is_ok()) return Status(s.code(), name + ": " + s.message());
  return model;
}

Status save_pcv(const Model& model, const std::string& path) {
  PCV_ASSIGN_OR_RETURN(auto bytes, write_pcv(model));
  return write_file_atomic(path, bytes);
}

Expected<Model> load_pcv(const std::string& path) {
  PCV_ASSIGN_OR_RETURN(auto bytes, read_file(path));
  return read_pcv(bytes, path);
}

std::string model_difference(const Model& a, const Model& b) {
  const Graph& x = a.graph;
  const Graph& y = b.graph;
  if (x.values.size() != y.values.size()) return fmt::format("value count {} vs {}", x.values.size(), y.values.size());
  for (size_t i = 0; i < x.values.size(); ++i) {
    const Value& u = x.values[i];
    const Value& v = y.values[i];
    if (u.name != v.name || u.dtype != v.dtype || u.shape != v.shape || !(u.quant == v.quant) ||
        u.trainable != v.trainable || u.is_constant() != v.is_constant() ||
        (u.is_constant() && !u.data.equals(v.data))) {
      return fmt::format("value {} ('{}' vs '{}') differs", i, u.name, v.name);
    }
  }
  if (x.nodes.size() != y.nodes.size()) return "node count differs";
  for (size_t i = 0; i < x.nodes.size(); ++i) {
    const Node& m = x.nodes[i];
    const Node& n = y.nodes[i];
    if (m.op != n.op || m.name != n.name || m.inputs != n.inputs || m.outputs != n.outputs ||
        !attrs_equal(m.attrs, n.attrs)) {
      return fmt::format("node {} ('{}') differs", i, m.name);
    }
  }
  if (x.inputs != y.inputs || x.outputs != y.outputs) return "graph inputs/outputs differ";
  if (!(a.input_spec == b.input_spec)) return "input spec differs";
  if (!(a.metadata == b.metadata)) return "metadata differs";
  return "";
}

}  // namespace pcv::ir
