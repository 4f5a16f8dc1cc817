#include "formats/coreml/common.h"

#include <fmt/core.h>
#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>

#include <algorithm>
#include <climits>
#include <cmath>

#include "base/fp16.h"
#include "formats/coreml/coreml.h"
#include "ir/passes/passes.h"

namespace pcv::coreml::detail {

namespace {

Expected<float> dequantize_one(const ir::Value& v, int64_t index, int64_t inner, int64_t channels) {
  const ir::QuantParams& q = v.quant;
  int64_t c = 0;
  if (q.per_channel()) c = (index / inner) % channels;
  const float s = q.scale[static_cast<size_t>(c)];
  const int32_t zp = q.zero_point.empty() ? 0 : q.zero_point[static_cast<size_t>(c) < q.zero_point.size() ? c : 0];
  int64_t raw = 0;
  switch (v.dtype) {
    case ir::DType::kI8: raw = v.data.data<int8_t>()[index]; break;
    case ir::DType::kU8: raw = v.data.data<uint8_t>()[index]; break;
    case ir::DType::kI32: raw = v.data.data<int32_t>()[index]; break;
    case ir::DType::kI64: raw = v.data.data<int64_t>()[index]; break;
    default: return internal_error("dequantize_one: unexpected dtype");
  }
  return s * static_cast<float>(raw - zp);
}

}  // namespace

Expected<ir::Model> to_float_model(const ir::Model& in) {
  ir::Model m = in;
  for (size_t vi = 0; vi < m.graph.values.size(); ++vi) {
    ir::Value& v = m.graph.values[vi];
    if (!v.is_constant()) {
      v.dtype = ir::DType::kF32;
      v.quant = {};
      continue;
    }
    if (v.dtype == ir::DType::kF32) {
      v.quant = {};
      continue;
    }
    ir::Tensor t(ir::DType::kF32, v.shape);
    float* dst = t.data<float>();
    const int64_t n = t.num_elements();
    if (v.dtype == ir::DType::kF16) {
      for (int64_t i = 0; i < n; ++i) dst[i] = f32_from_fp16(v.data.data<uint16_t>()[i]);
    } else if (v.quant.empty()) {
      for (int64_t i = 0; i < n; ++i) {
        switch (v.dtype) {
          case ir::DType::kI8: dst[i] = v.data.data<int8_t>()[i]; break;
          case ir::DType::kU8: dst[i] = v.data.data<uint8_t>()[i]; break;
          case ir::DType::kI32: dst[i] = static_cast<float>(v.data.data<int32_t>()[i]); break;
          case ir::DType::kI64: dst[i] = static_cast<float>(v.data.data<int64_t>()[i]); break;
          default: break;
        }
      }
    } else {
      const ir::QuantParams& q = v.quant;
      int64_t inner = 1, channels = 1;
      if (q.per_channel()) {
        if (q.axis < 0 || q.axis >= static_cast<int>(v.shape.size()) ||
            v.shape[static_cast<size_t>(q.axis)] != static_cast<int64_t>(q.scale.size())) {
          return invalid_model(fmt::format("constant '{}': {} per-channel scales do not match axis {} of {}", v.name,
                                           q.scale.size(), q.axis, ir::shape_to_string(v.shape)));
        }
        channels = v.shape[static_cast<size_t>(q.axis)];
        for (size_t d = static_cast<size_t>(q.axis) + 1; d < v.shape.size(); ++d) inner *= v.shape[d];
      }
      for (int64_t i = 0; i < n; ++i) {
        PCV_ASSIGN_OR_RETURN(dst[i], dequantize_one(v, i, inner, channels));
      }
    }
    v.data = std::move(t);
    v.dtype = ir::DType::kF32;
    v.quant = {};
  }
  int folded = 0;
  for (size_t i = 0; i < m.graph.nodes.size();) {
    const ir::Node& n = m.graph.nodes[i];
    const auto& outs = m.graph.outputs;
    const bool is_output = !n.outputs.empty() && std::find(outs.begin(), outs.end(), n.outputs[0]) != outs.end();
    if (n.op != ir::OpType::kDequantize || n.inputs.size() != 1 || n.outputs.size() != 1 || is_output ||
        !m.graph.value(n.inputs[0]).is_constant()) {
      ++i;
      continue;
    }
    ir::Value& out = m.graph.value(n.outputs[0]);
    out.data = m.graph.value(n.inputs[0]).data;
    out.dtype = ir::DType::kF32;
    out.quant = {};
    m.graph.nodes.erase(m.graph.nodes.begin() + static_cast<std::ptrdiff_t>(i));
    ++folded;
  }
  if (folded) PCV_RETURN_IF_ERROR(ir::prune_unused(m.graph).status());
  // A quantized input takes raw pixels: real = scale * (q - zero_point), q = pixel (uint8) or
  // pixel - 128 (int8), i.e. mean = zero_point (+128), std = 1 / scale.
  if (in.graph.inputs.size() == 1) {
    const ir::Value& x = in.graph.value(in.graph.inputs[0]);
    if (ir::is_quantized_dtype(x.dtype) && x.quant.scale.size() == 1 && x.quant.scale[0] > 0 &&
        m.input_spec.is_image()) {
      const float zp = static_cast<float>(x.quant.zero_point.empty() ? 0 : x.quant.zero_point[0]) +
                       (x.dtype == ir::DType::kI8 ? 128.f : 0.f);
      m.input_spec.mean = {zp, zp, zp};
      const float sd = 1.f / x.quant.scale[0];
      m.input_spec.std = {sd, sd, sd};
    }
  }
  return m;
}

std::vector<float> ohwi_to_oihw(const float* src, int64_t o, int64_t h, int64_t w, int64_t i) {
  std::vector<float> dst(static_cast<size_t>(o * h * w * i));
  for (int64_t a = 0; a < o; ++a)
    for (int64_t y = 0; y < h; ++y)
      for (int64_t x = 0; x < w; ++x)
        for (int64_t c = 0; c < i; ++c) dst[static_cast<size_t>(((a * i + c) * h + y) * w + x)] = src[((a * h + y) * w + x) * i + c];
  return dst;
}

std::vector<float> oihw_to_ohwi(const float* src, int64_t o, int64_t i, int64_t h, int64_t w) {
  std::vector<float> dst(static_cast<size_t>(o * h * w * i));
  for (int64_t a = 0; a < o; ++a)
    for (int64_t c = 0; c < i; ++c)
      for (int64_t y = 0; y < h; ++y)
        for (int64_t x = 0; x < w; ++x) dst[static_cast<size_t>(((a * h + y) * w + x) * i + c)] = src[((a * i + c) * h + y) * w + x];
  return dst;
}

Status parse_model(std::span<const uint8_t> bytes, const std::string& name, spec::Model* out) {
  if (bytes.size() > kMaxModelBytes || bytes.size() > static_cast<size_t>(INT_MAX)) {
    return invalid_model(fmt::format("{}: {} bytes is larger than the 2 GiB a Core ML protobuf can hold", name,
                                     bytes.size()));
  }
  if (bytes.empty()) return invalid_model(fmt::format("{}: empty file", name));
  google::protobuf::io::ArrayInputStream ais(bytes.data(), static_cast<int>(bytes.size()));
  google::protobuf::io::CodedInputStream cis(&ais);
  cis.SetTotalBytesLimit(static_cast<int>(bytes.size()));
  cis.SetRecursionLimit(kMaxProtoRecursion);
  if (!out->ParseFromCodedStream(&cis) || !cis.ConsumedEntireMessage()) {
    return invalid_model(fmt::format("{}: not a Core ML model (protobuf parse failed: truncated or corrupt)", name));
  }
  return Status::ok();
}

Expected<std::vector<uint8_t>> serialize_model(const spec::Model& m) {
  const size_t size = m.ByteSizeLong();
  if (size > static_cast<size_t>(INT_MAX)) {
    return unsupported(fmt::format("the Core ML model would be {} bytes; protobuf is limited to 2 GiB", size));
  }
  std::vector<uint8_t> out(size);
  google::protobuf::io::ArrayOutputStream aos(out.data(), static_cast<int>(size));
  google::protobuf::io::CodedOutputStream cos(&aos);
  cos.SetSerializationDeterministic(true);
  m.SerializeWithCachedSizes(&cos);
  if (cos.HadError()) return internal_error("protobuf serialization failed");
  return out;
}

std::string mil_identifier(const std::string& name) {
  std::string s;
  s.reserve(name.size() + 1);
  for (char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
    s.push_back(ok ? c : '_');
  }
  if (s.empty() || (s[0] >= '0' && s[0] <= '9')) s.insert(s.begin(), '_');
  return s;
}

void describe_input(const ir::Model& m, bool image, const std::string& input_name, spec::ModelDescription* d) {
  const ir::Value& x = m.graph.value(m.graph.inputs[0]);
  auto* f = d->add_input();
  f->set_name(input_name);
  auto* t = f->mutable_type();
  if (image) {
    f->set_shortdescription(fmt::format("{}x{} {} image", m.input_spec.width, m.input_spec.height,
                                        ir::color_order_name(m.input_spec.color)));
    auto* img = t->mutable_imagetype();
    img->set_width(m.input_spec.width);
    img->set_height(m.input_spec.height);
    img->set_colorspace(m.input_spec.color == ir::ColorOrder::kGray  ? spec::ImageFeatureType::GRAYSCALE
                        : m.input_spec.color == ir::ColorOrder::kBGR ? spec::ImageFeatureType::BGR
                                                                     : spec::ImageFeatureType::RGB);
  } else {
    auto* arr = t->mutable_multiarraytype();
    arr->set_datatype(spec::ArrayFeatureType::FLOAT32);
    if (x.shape.size() == 4) {
      arr->add_shape(x.shape[3]);
      arr->add_shape(x.shape[1]);
      arr->add_shape(x.shape[2]);
    } else {
      for (size_t i = 1; i < x.shape.size(); ++i) arr->add_shape(x.shape[i]);
    }
  }
}

void describe_metadata(const ir::Model& m, spec::ModelDescription* d) {
  auto* md = d->mutable_metadata();
  md->set_shortdescription(m.metadata.description);
  md->set_versionstring(m.metadata.version);
  md->set_author(m.metadata.author);
  md->set_license(m.metadata.license);
  if (!m.metadata.name.empty()) (*md->mutable_userdefined())["pocketcv.name"] = m.metadata.name;
  (*md->mutable_userdefined())["com.github.apple.coremltools.source"] = "pocketcv";
}

void read_metadata(const spec::ModelDescription& d, ir::ModelMetadata* md) {
  const auto& m = d.metadata();
  md->description = m.shortdescription();
  md->version = m.versionstring();
  md->author = m.author();
  md->license = m.license();
  auto it = m.userdefined().find("pocketcv.name");
  if (it != m.userdefined().end()) md->name = it->second;
}

Status read_input_description(const spec::ModelDescription& d, const std::string& name, ir::InputSpec* s,
                              ir::Shape* nhwc) {
  if (d.input_size() != 1) {
    return unsupported(fmt::format("{}: {} inputs; pocketcv reads models with one input", name, d.input_size()));
  }
  const auto& t = d.input(0).type();
  constexpr int64_t kMaxDim = 1 << 16;
  if (t.has_imagetype()) {
    const auto& img = t.imagetype();
    if (img.width() < 1 || img.height() < 1 || img.width() > kMaxDim || img.height() > kMaxDim) {
      return invalid_model(fmt::format("{}: image input size {}x{} out of range", name, img.width(), img.height()));
    }
    s->width = static_cast<int>(img.width());
    s->height = static_cast<int>(img.height());
    switch (img.colorspace()) {
      case spec::ImageFeatureType::GRAYSCALE: s->color = ir::ColorOrder::kGray; s->channels = 1; break;
      case spec::ImageFeatureType::RGB: s->color = ir::ColorOrder::kRGB; s->channels = 3; break;
      case spec::ImageFeatureType::BGR: s->color = ir::ColorOrder::kBGR; s->channels = 3; break;
      default:
        return unsupported(fmt::format("{}: image color space {} (pocketcv reads RGB, BGR, GRAYSCALE)", name,
                                       static_cast<int>(img.colorspace())));
    }
    *nhwc = {1, s->height, s->width, s->channels};
    return Status::ok();
  }
  if (t.has_multiarraytype()) {
    const auto& arr = t.multiarraytype();
    for (int64_t dim : arr.shape()) {
      if (dim < 1 || dim > kMaxDim * 16) return invalid_model(fmt::format("{}: input dimension {} out of range", name, dim));
    }
    s->height = s->width = 0;
    if (arr.shape_size() == 3) {
      *nhwc = {1, arr.shape(1), arr.shape(2), arr.shape(0)};
      s->channels = static_cast<int>(arr.shape(0));
    } else if (arr.shape_size() == 1) {
      *nhwc = {1, arr.shape(0)};
      s->channels = static_cast<int>(arr.shape(0));
    } else if (arr.shape_size() == 4 && arr.shape(0) == 1) {
      *nhwc = {1, arr.shape(2), arr.shape(3), arr.shape(1)};
      s->channels = static_cast<int>(arr.shape(1));
    } else {
      return unsupported(fmt::format("{}: multiarray input of rank {} (pocketcv reads (C,H,W), (1,C,H,W) or (K))",
                                     name, arr.shape_size()));
    }
    return Status::ok();
  }
  return unsupported(fmt::format("{}: input '{}' is neither an image nor a multiarray", name, d.input(0).name()));
}

}  // namespace pcv::coreml::detail
