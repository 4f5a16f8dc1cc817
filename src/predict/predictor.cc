#include "predict/predictor.h"

#include <fmt/core.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <numeric>

#include "base/fp16.h"
#include "vision/decode.h"
#include "vision/frame.h"

namespace pcv::predict {
namespace {

using Clock = std::chrono::steady_clock;
double ms_since(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

vision::ColorOrder to_vision(ir::ColorOrder c) {
  switch (c) {
    case ir::ColorOrder::kBGR: return vision::ColorOrder::kBGR;
    case ir::ColorOrder::kGray: return vision::ColorOrder::kGray;
    default: return vision::ColorOrder::kRGB;
  }
}

bool is_pass_through(ir::OpType op) {
  return op == ir::OpType::kReshape || op == ir::OpType::kFlatten || op == ir::OpType::kDropout ||
         op == ir::OpType::kQuantize || op == ir::OpType::kDequantize;
}

}  // namespace

Expected<vision::Preprocess> preprocess_for(const ir::Model& model, vision::ResizeMode mode) {
  const ir::Graph& g = model.graph;
  PCV_ENSURE(!g.inputs.empty(), StatusCode::kInvalidModel, "the model has no inputs");
  const ir::Value& in = g.value(g.inputs[0]);
  PCV_ENSURE(in.shape.size() == 4 && (in.shape[3] == 1 || in.shape[3] == 3) && in.shape[1] > 0 &&
                 in.shape[2] > 0,
             StatusCode::kUnsupported,
             "input '{}' {} is not an image tensor (N, H, W, 1 or 3): predict needs an image "
             "classifier",
             in.name, ir::shape_to_string(in.shape));
  const ir::InputSpec& spec = model.input_spec;
  vision::Preprocess p;
  p.out_h = static_cast<int>(in.shape[1]);
  p.out_w = static_cast<int>(in.shape[2]);
  p.mode = mode;
  p.crop_fraction = spec.crop_fraction > 0.f && spec.crop_fraction <= 1.f ? spec.crop_fraction : 1.f;
  const bool gray = in.shape[3] == 1;
  p.color = gray ? vision::ColorOrder::kGray
                 : (spec.color == ir::ColorOrder::kGray ? vision::ColorOrder::kRGB : to_vision(spec.color));
  for (int c = 0; c < 3; ++c) {
    p.mean[c] = spec.mean[static_cast<size_t>(c)];
    const float s = spec.std[static_cast<size_t>(c)];
    p.std[c] = (s != 0.f && std::isfinite(s)) ? s : 1.f;
  }
  PCV_RETURN_IF_ERROR(vision::validate(p));
  return p;
}

int class_output_index(const ir::Graph& graph, const std::vector<std::string>& labels) {
  if (graph.outputs.size() <= 1 || labels.empty()) return 0;
  for (size_t i = 0; i < graph.outputs.size(); ++i) {
    const ir::Value& v = graph.value(graph.outputs[i]);
    if (!v.shape.empty() && v.shape.back() == static_cast<int64_t>(labels.size()) &&
        v.dtype != ir::DType::kI32 && v.dtype != ir::DType::kI64) {
      return static_cast<int>(i);
    }
  }
  return 0;
}

bool ends_in_softmax(const ir::Graph& graph, int output_index) {
  if (output_index < 0 || output_index >= static_cast<int>(graph.outputs.size())) return false;
  ir::ValueId v = graph.outputs[static_cast<size_t>(output_index)];
  for (int hops = 0; hops < 16; ++hops) {
    const int n = graph.producer(v);
    if (n < 0) return false;
    const ir::Node& node = graph.nodes[static_cast<size_t>(n)];
    if (node.op == ir::OpType::kSoftmax) return true;
    if (!is_pass_through(node.op) || node.inputs.empty()) return false;
    v = node.inputs[0];
  }
  return false;
}

std::vector<float> to_float(const ir::Tensor& t, const ir::QuantParams& quant) {
  const auto n = static_cast<size_t>(t.empty() ? 0 : t.num_elements());
  std::vector<float> out(n);
  if (n == 0) return out;
  // Per-channel parameters index `axis`: element i's channel is (i / inner) % dim.
  size_t inner = 1, dim = 1;
  if (quant.per_channel()) {
    const auto& s = t.shape();
    const auto axis = static_cast<size_t>(std::clamp(quant.axis, 0, static_cast<int>(s.size()) - 1));
    dim = static_cast<size_t>(s[axis]);
    for (size_t a = axis + 1; a < s.size(); ++a) inner *= static_cast<size_t>(s[a]);
  }
  auto scale_of = [&](size_t i) -> std::pair<float, int32_t> {
    if (quant.empty()) return {1.f, 0};
    const size_t c = quant.per_channel() ? (i / inner) % dim : 0;
    const size_t cs = std::min(c, quant.scale.size() - 1);
    const int32_t zp = quant.zero_point.empty() ? 0 : quant.zero_point[std::min(c, quant.zero_point.size() - 1)];
    return {quant.scale[cs], zp};
  };
  switch (t.dtype()) {
    case ir::DType::kF32: std::copy_n(t.data<float>(), n, out.begin()); break;
    case ir::DType::kF16:
      for (size_t i = 0; i < n; ++i) out[i] = f32_from_fp16(t.data<uint16_t>()[i]);
      break;
    case ir::DType::kI8:
      for (size_t i = 0; i < n; ++i) {
        auto [s, zp] = scale_of(i);
        out[i] = s * static_cast<float>(t.data<int8_t>()[i] - zp);
      }
      break;
    case ir::DType::kU8:
      for (size_t i = 0; i < n; ++i) {
        auto [s, zp] = scale_of(i);
        out[i] = s * static_cast<float>(static_cast<int32_t>(t.data<uint8_t>()[i]) - zp);
      }
      break;
    case ir::DType::kI32:
      for (size_t i = 0; i < n; ++i) {
        auto [s, zp] = scale_of(i);
        out[i] = s * static_cast<float>(t.data<int32_t>()[i] - zp);
      }
      break;
    case ir::DType::kI64:
      for (size_t i = 0; i < n; ++i) out[i] = static_cast<float>(t.data<int64_t>()[i]);
      break;
  }
  return out;
}

std::vector<float> probabilities(const ir::Tensor& out, const ir::QuantParams& quant,
                                 bool is_softmax) {
  std::vector<float> all = to_float(out, quant);
  const size_t classes = out.shape().empty() ? all.size() : static_cast<size_t>(out.shape().back());
  all.resize(std::min(all.size(), classes));  // batch element 0
  if (all.empty()) return all;
  bool distribution = true;
  double sum = 0;
  for (float v : all) {
    if (!(v >= 0.f && v <= 1.f)) distribution = false;
    sum += v;
  }
  if (is_softmax || (distribution && std::abs(sum - 1.0) <= 1e-3)) return all;
  const float mx = *std::max_element(all.begin(), all.end());
  double total = 0;
  for (float& v : all) {
    v = std::exp(v - mx);
    total += v;
  }
  for (float& v : all) v = static_cast<float>(v / total);
  return all;
}

std::vector<int> top_k(std::span<const float> values, int k) {
  std::vector<int> order(values.size());
  std::iota(order.begin(), order.end(), 0);
  const size_t kk = std::min(values.size(), static_cast<size_t>(std::max(k, 0)));
  std::partial_sort(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(kk), order.end(),
                    [&](int a, int b) {
                      const float va = values[static_cast<size_t>(a)];
                      const float vb = values[static_cast<size_t>(b)];
                      return va != vb ? va > vb : a < b;
                    });
  order.resize(kk);
  return order;
}

Status image_to_input(const vision::ImageView& image, const vision::Preprocess& pre,
                      ir::Tensor& input, const ir::QuantParams& quant, const std::string& name) {
  PCV_ENSURE(!image.empty() && (image.channels == 1 || image.channels == 3 || image.channels == 4),
             StatusCode::kInvalidArgument, "{}: empty image or unsupported channel count {}", name,
             image.channels);
  const size_t elems = static_cast<size_t>(input.num_elements());
  vision::OutputTarget target;
  switch (input.dtype()) {
    case ir::DType::kF32: target = vision::OutputTarget::float32(input.data<float>(), elems); break;
    case ir::DType::kI8:
    case ir::DType::kU8: {
      PCV_ENSURE(quant.scale.size() == 1, StatusCode::kUnsupported,
                 "input '{}' is quantized without per-tensor parameters", name);
      const float s = quant.scale[0];
      const int32_t zp = quant.zero_point.empty() ? 0 : quant.zero_point[0];
      target = input.dtype() == ir::DType::kI8
                   ? vision::OutputTarget::int8(input.data<int8_t>(), elems, s, zp)
                   : vision::OutputTarget::uint8(input.data<uint8_t>(), elems, s, zp);
      break;
    }
    default:
      return unsupported(fmt::format("input '{}' is {}: only f32, i8 and u8 inputs are fed from "
                                     "pictures", name, ir::dtype_name(input.dtype())));
  }
  return vision::image_to_tensor(image, pre, target);
}

Predictor::~Predictor() = default;

Expected<std::unique_ptr<Predictor>> Predictor::create(ir::Model model,
                                                       const PredictorOptions& options) {
  std::unique_ptr<Predictor> p(new Predictor());
  p->options_ = options;
  PCV_ASSIGN_OR_RETURN(p->pre_, preprocess_for(model, options.resize));
  runtime::SessionOptions so;
  so.threads = options.threads;
  so.fast_kernels = options.fast_kernels;
  so.profile = options.profile;
  so.batch = 1;
  if (options.max_memory_bytes > 0) so.max_memory_bytes = options.max_memory_bytes;
  p->model_ = std::move(model);
  PCV_ASSIGN_OR_RETURN(p->session_, runtime::Session::create(p->model_, so));
  const ir::DType in_dtype = p->session_->input_info(0).dtype;
  PCV_ENSURE(in_dtype == ir::DType::kF32 || in_dtype == ir::DType::kI8 || in_dtype == ir::DType::kU8,
             StatusCode::kUnsupported, "input '{}' is {}: predict feeds f32, i8 or u8 inputs",
             p->session_->input_info(0).name, ir::dtype_name(in_dtype));
  for (int i = 0; i < options.warmup_runs; ++i) PCV_RETURN_IF_ERROR(p->session_->run());
  if (options.profile) p->session_->reset_profile();
  p->class_output_ = class_output_index(p->session_->graph(), p->model_.input_spec.labels);
  p->output_is_softmax_ = ends_in_softmax(p->session_->graph(), p->class_output_);
  return p;
}

std::string Predictor::label(int index) const {
  const auto& labels = model_.input_spec.labels;
  if (index >= 0 && static_cast<size_t>(index) < labels.size() && !labels[static_cast<size_t>(index)].empty()) {
    return labels[static_cast<size_t>(index)];
  }
  return fmt::format("class{}", index);
}

Status Predictor::set_input(const vision::ImageView& image) {
  const ir::Value& info = session_->input_info(0);
  return image_to_input(image, pre_, session_->input(0), info.quant, info.name);
}

Expected<Prediction> Predictor::predict_file(const std::string& path, int k) {
  const auto t0 = Clock::now();
  PCV_ASSIGN_OR_RETURN(vision::Image img, vision::read_image(path, vision::decode_options_for(pre_)));
  const double decode_ms = ms_since(t0);
  PCV_ASSIGN_OR_RETURN(Prediction p, predict_image(img, k));
  p.trace.decode_ms = decode_ms;
  p.trace.total_ms += decode_ms;
  return p;
}

Expected<Prediction> Predictor::predict_image(const vision::ImageView& image, int k) {
  Prediction p;
  PredictionTrace& tr = p.trace;
  tr.source_height = image.height;
  tr.source_width = image.width;
  const ir::Value& info = session_->input_info(0);
  tr.input_height = static_cast<int>(info.shape[1]);
  tr.input_width = static_cast<int>(info.shape[2]);
  tr.input_channels = static_cast<int>(info.shape[3]);
  tr.input_dtype = ir::dtype_name(info.dtype);

  auto t0 = Clock::now();
  PCV_RETURN_IF_ERROR(set_input(image));
  tr.preprocess_ms = ms_since(t0);

  if (options_.profile) session_->reset_profile();
  t0 = Clock::now();
  PCV_RETURN_IF_ERROR(session_->run());
  tr.inference_ms = ms_since(t0);
  if (options_.profile) {
    const runtime::Profile& prof = session_->profile();
    const double runs = std::max(1, prof.runs);
    for (const auto& n : prof.nodes) {
      tr.layers.push_back({n.name, n.op, n.kernel, n.output_shape, std::max(0.0, n.total_ms / runs)});
    }
  }
  return finish(std::move(p), k);
}

Expected<Prediction> Predictor::finish(Prediction p, int k) {
  const auto t0 = Clock::now();
  const ir::Tensor& out = session_->output(class_output_);
  const ir::Value& info = session_->output_info(class_output_);
  p.probabilities = probabilities(out, info.quant, output_is_softmax_);
  PCV_ENSURE(!p.probabilities.empty(), StatusCode::kUnsupported, "output '{}' is empty", info.name);
  for (int i : top_k(p.probabilities, k)) {
    p.top.push_back({i, label(i), p.probabilities[static_cast<size_t>(i)]});
  }
  p.trace.postprocess_ms = ms_since(t0);
  p.trace.total_ms = p.trace.preprocess_ms + p.trace.inference_ms + p.trace.postprocess_ms;
  return p;
}

}  // namespace pcv::predict
