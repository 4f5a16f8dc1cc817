// IR -> .mlmodel (NeuralNetwork / NeuralNetworkClassifier, rank-5 mapping: every blob is
// (C, H, W) per batch item). An NHWC value (N, H, W, C) is the blob (C, H, W); a 2-D value
// (N, K) is the blob (K, 1, 1), which every layer treats as channels.
//
// Op map (one IR node -> layers):
//   conv2d           convolution (weights OHWI -> OIHW), + activation for a fused one
//   fully_connected  innerProduct (weights (out, in) unchanged)
//   batch_norm       batchnorm
//   relu / leaky_relu / sigmoid   activation
//   relu6            activation ReLU -> unary THRESHOLD(scale -1, alpha -6) -> linear(-1, 0):
//                    min(relu(x), 6) with spec-1 layers (`clip` would need version 4)
//   hard_swish       activation sigmoidHard(1/6, 0.5) -> multiply with x
//   add / mul        add / multiply (equal shapes); a scalar constant -> alpha; a per-channel
//                    constant -> bias / scale layer
//   concat           concat (channel axis only)
//   max/average_pool pooling (SAME -> same BOTTOM_RIGHT_HEAVY, explicit -> valid + amounts,
//                    average excludes padding like the IR)
//   mean (H, W)      pooling AVERAGE globalPooling
//   flatten/reshape  flatten CHANNEL_LAST (H, W, C order, as the IR) or nothing (2-D already)
//   pad (H, W)       padding constant
//   softmax          softmax (channel axis = the IR's last axis); beta != 1 -> multiply first
//   dropout, quantize, dequantize   no layer (the blob is reused)
#include <fmt/core.h>

#include <cmath>
#include <map>

#include "base/file.h"
#include "ir/passes/passes.h"
#include "formats/coreml/common.h"
#include "formats/coreml/coreml.h"
#include "formats/coreml/weights.h"

namespace pcv::coreml {

const char* weight_format_name(WeightFormat f) {
  switch (f) {
    case WeightFormat::kFloat32: return "fp32";
    case WeightFormat::kFloat16: return "fp16";
    case WeightFormat::kLinear8: return "linear8";
    case WeightFormat::kLookupTable: return "lut";
  }
  return "?";
}

namespace {

using namespace detail;
using ir::Activation;
using ir::OpType;

class NnWriter {
 public:
  NnWriter(const ir::Model& m, const MlModelOptions& o) : m_(m), g_(m.graph), o_(o), blob_(g_.values.size()) {}

  Status run(spec::Model* out) {
    if (g_.inputs.size() != 1) {
      return unsupported(fmt::format("Core ML writer: the graph has {} inputs; one is supported", g_.inputs.size()));
    }
    if (g_.outputs.empty()) return invalid_model("Core ML writer: the graph has no outputs");
    const ir::Value& x = g_.value(g_.inputs[0]);
    if (x.shape.size() != 4 && x.shape.size() != 2) {
      return unsupported(fmt::format("Core ML writer: input '{}' {} must be NHWC or (N, K)", x.name,
                                     ir::shape_to_string(x.shape)));
    }
    const bool image = m_.input_spec.is_image() && x.shape.size() == 4;
    if (image && (x.shape[1] != m_.input_spec.height || x.shape[2] != m_.input_spec.width ||
                  x.shape[3] != (m_.input_spec.color == ir::ColorOrder::kGray ? 1 : 3))) {
      return invalid_model(fmt::format("Core ML writer: input {} does not match the input spec {}x{} {}",
                                       ir::shape_to_string(x.shape), m_.input_spec.height, m_.input_spec.width,
                                       ir::color_order_name(m_.input_spec.color)));
    }
    input_name_ = o_.input_name.empty() ? x.name : o_.input_name;
    use_name(input_name_);
    blob_[static_cast<size_t>(g_.inputs[0])] = input_name_;
    if (image) PCV_RETURN_IF_ERROR(write_scaler());

    for (const ir::Node& n : g_.nodes) {
      Status s = write_node(n);
      if (!s.is_ok()) return s.with_context(fmt::format("Core ML writer: node '{}' ({})", n.name, ir::op_name(n.op)));
    }

    auto* d = out->mutable_description();
    describe_input(m_, image, input_name_, d);
    describe_metadata(m_, d);

    const ir::Value& y = g_.value(g_.outputs[0]);
    const int64_t classes = y.shape.empty() ? 0 : y.shape.back();
    const bool classifier = o_.classifier && g_.outputs.size() == 1 && y.shape.size() == 2 && has_labels(m_, classes);
    if (classifier) {
      auto* c = out->mutable_neuralnetworkclassifier();
      c->mutable_layers()->Swap(nn_.mutable_layers());
      c->mutable_preprocessing()->Swap(nn_.mutable_preprocessing());
      for (const auto& l : m_.input_spec.labels) c->mutable_stringclasslabels()->add_vector(l);
      c->set_labelprobabilitylayername(blob(g_.outputs[0]));
      auto* probs = d->add_output();
      probs->set_name("classLabel_probs");
      probs->set_shortdescription("probability of each class");
      probs->mutable_type()->mutable_dictionarytype()->mutable_stringkeytype();
      auto* label = d->add_output();
      label->set_name("classLabel");
      label->set_shortdescription("most likely class");
      label->mutable_type()->mutable_stringtype();
      d->set_predictedfeaturename("classLabel");
      d->set_predictedprobabilitiesname("classLabel_probs");
    } else {
      for (ir::ValueId o : g_.outputs) {
        const ir::Value& v = g_.value(o);
        if (blob(o) == input_name_) return unsupported("Core ML writer: a graph output is the input itself");
        auto* f = d->add_output();
        f->set_name(blob(o));
        auto* arr = f->mutable_type()->mutable_multiarraytype();
        arr->set_datatype(spec::ArrayFeatureType::FLOAT32);
        if (v.shape.size() == 4) {
          for (int64_t dim : {v.shape[3], v.shape[1], v.shape[2]}) arr->add_shape(dim);
        } else {
          for (size_t i = 1; i < v.shape.size(); ++i) arr->add_shape(v.shape[i]);
        }
      }
      out->mutable_neuralnetwork()->Swap(&nn_);
    }
    out->set_specificationversion(spec_version_);
    return Status::ok();
  }

 private:
  const std::string& blob(ir::ValueId v) const { return blob_[static_cast<size_t>(v)]; }
  const ir::Shape& shape(ir::ValueId v) const { return g_.value(v).shape; }

  std::string use_name(const std::string& base) {
    std::string n = base;
    for (int i = 1; used_.count(n); ++i) n = fmt::format("{}_{}", base, i);
    used_.insert({n, true});
    return n;
  }

  spec::NeuralNetworkLayer* add_layer(const std::string& name, std::vector<std::string> inputs,
                                      const std::string& output) {
    auto* l = nn_.add_layers();
    l->set_name(use_layer_name(name));
    for (auto& i : inputs) l->add_input(i);
    l->add_output(output);
    return l;
  }
  std::string use_layer_name(const std::string& base) {
    std::string n = base;
    for (int i = 1; layer_names_.count(n); ++i) n = fmt::format("{}_{}", base, i);
    layer_names_.insert({n, true});
    return n;
  }

  void weights(std::span<const float> data, int64_t out_channels, bool quantizable, spec::WeightParams* w) {
    spec_version_ = std::max(spec_version_, encode_weights(data, out_channels, o_.weights, o_.lookup_table_bits,
                                                           quantizable, w));
  }
  void weights(const ir::Value& v, spec::WeightParams* w) {
    weights({v.data.data<float>(), static_cast<size_t>(v.data.num_elements())}, 0, false, w);
  }

  Status write_scaler() {
    const ir::InputSpec& s = m_.input_spec;
    auto* p = nn_.add_preprocessing();
    p->set_featurename(input_name_);
    auto* sc = p->mutable_scaler();
    const int c = s.color == ir::ColorOrder::kGray ? 1 : 3;
    for (int i = 0; i < c; ++i) {
      if (!(s.std[static_cast<size_t>(i)] > 0.f) || !std::isfinite(s.mean[static_cast<size_t>(i)])) {
        return invalid_argument(fmt::format("Core ML writer: input spec std[{}] = {} must be > 0", i, s.std[static_cast<size_t>(i)]));
      }
    }
    const bool same_std = c == 1 || (s.std[0] == s.std[1] && s.std[1] == s.std[2]);
    const float scale = same_std ? 1.f / s.std[0] : 1.f;
    auto bias = [&](int i) { return same_std ? -s.mean[static_cast<size_t>(i)] / s.std[0] : -s.mean[static_cast<size_t>(i)]; };
    sc->set_channelscale(scale);
    if (c == 1) {
      sc->set_graybias(bias(0));
    } else if (s.color == ir::ColorOrder::kBGR) {
      sc->set_bluebias(bias(0));
      sc->set_greenbias(bias(1));
      sc->set_redbias(bias(2));
    } else {
      sc->set_redbias(bias(0));
      sc->set_greenbias(bias(1));
      sc->set_bluebias(bias(2));
    }
    if (!same_std) {
      // Per-channel 1/std as a scale layer after the scaler's mean subtraction.
      const std::string out = use_name(input_name_ + "__input_std");
      auto* l = add_layer(out, {input_name_}, out);
      auto* p2 = l->mutable_scale();
      p2->add_shapescale(3);
      const float inv[3] = {1.f / s.std[0], 1.f / s.std[1], 1.f / s.std[2]};
      weights(std::span<const float>(inv, 3), 0, false, p2->mutable_scale());
      blob_[static_cast<size_t>(g_.inputs[0])] = out;
    }
    return Status::ok();
  }

  // The blob the main layer of `n` writes: the output's name, or a temporary when a fused
  // activation follows.
  std::string main_output(const ir::Node& n, Activation act) {
    const std::string out = use_name(g_.value(n.outputs[0]).name);
    blob_[static_cast<size_t>(n.outputs[0])] = out;
    if (act == Activation::kNone) return out;
    pending_act_out_ = out;
    return use_name(out + "__preact");
  }

  void relu6(const std::string& name, const std::string& in, const std::string& out) {
    const std::string r = use_name(out + "__relu");
    add_layer(name + "__relu", {in}, r)->mutable_activation()->mutable_relu();
    const std::string neg = use_name(out + "__negclip");
    auto* u = add_layer(name + "__negclip", {r}, neg)->mutable_unary();
    u->set_type(spec::UnaryFunctionLayerParams::THRESHOLD);  // max(-x, -6) = -min(x, 6)
    u->set_alpha(-6.f);
    u->set_scale(-1.f);
    auto* lin = add_layer(name + "__neg", {neg}, out)->mutable_activation()->mutable_linear();
    lin->set_alpha(-1.f);
    lin->set_beta(0.f);
  }

  void activation(Activation act, const std::string& name, const std::string& in, const std::string& out) {
    if (act == Activation::kRelu) add_layer(name, {in}, out)->mutable_activation()->mutable_relu();
    if (act == Activation::kRelu6) relu6(name, in, out);
  }

  void finish_fused(const ir::Node& n, Activation act, const std::string& pre) {
    if (act != Activation::kNone) activation(act, n.name + "__act", pre, pending_act_out_);
  }

  bool is_const(ir::ValueId v) const { return v != ir::kNoValue && g_.value(v).is_constant(); }
  std::span<const float> floats(ir::ValueId v) const {
    const auto& t = g_.value(v).data;
    return {t.data<float>(), static_cast<size_t>(t.num_elements())};
  }

  Status write_node(const ir::Node& n) {
    for (ir::ValueId in : n.inputs) {
      if (in != ir::kNoValue && !is_const(in) && blob(in).empty()) {
        return invalid_model(fmt::format("input '{}' is not defined before use", g_.value(in).name));
      }
    }
    const ir::Shape& out_shape = shape(n.outputs[0]);
    switch (n.op) {
      case OpType::kConv2d: {
        const auto& a = n.attr<ir::Conv2dAttrs>();
        if (!is_const(n.inputs[1])) return unsupported("convolution filters must be constants");
        const ir::Shape& w = shape(n.inputs[1]);  // OHWI
        const std::string out = main_output(n, a.activation);
        auto* l = add_layer(n.name, {blob(n.inputs[0])}, out);
        auto* c = l->mutable_convolution();
        c->set_outputchannels(static_cast<uint64_t>(w[0]));
        c->set_kernelchannels(static_cast<uint64_t>(w[3]));
        c->set_ngroups(static_cast<uint64_t>(a.groups));
        c->add_kernelsize(static_cast<uint64_t>(w[1]));
        c->add_kernelsize(static_cast<uint64_t>(w[2]));
        c->add_stride(static_cast<uint64_t>(a.stride_h));
        c->add_stride(static_cast<uint64_t>(a.stride_w));
        c->add_dilationfactor(static_cast<uint64_t>(a.dilation_h));
        c->add_dilationfactor(static_cast<uint64_t>(a.dilation_w));
        if (a.padding == ir::Padding::kSame) c->mutable_same();
        else set_valid(a, c->mutable_valid());
        const auto oihw = ohwi_to_oihw(g_.value(n.inputs[1]).data.data<float>(), w[0], w[1], w[2], w[3]);
        weights(oihw, w[0], true, c->mutable_weights());
        if (n.inputs.size() > 2 && n.inputs[2] != ir::kNoValue) {
          if (!is_const(n.inputs[2])) return unsupported("convolution bias must be a constant");
          c->set_hasbias(true);
          weights(floats(n.inputs[2]), 0, false, c->mutable_bias());
        }
        finish_fused(n, a.activation, out);
        return Status::ok();
      }
      case OpType::kFullyConnected: {
        const auto& a = n.attr<ir::FullyConnectedAttrs>();
        if (!is_const(n.inputs[1])) return unsupported("fully-connected weights must be constants");
        const ir::Shape& w = shape(n.inputs[1]);
        const std::string out = main_output(n, a.activation);
        auto* ip = add_layer(n.name, {blob(n.inputs[0])}, out)->mutable_innerproduct();
        ip->set_inputchannels(static_cast<uint64_t>(w[1]));
        ip->set_outputchannels(static_cast<uint64_t>(w[0]));
        weights(floats(n.inputs[1]), w[0], true, ip->mutable_weights());
        if (n.inputs.size() > 2 && n.inputs[2] != ir::kNoValue) {
          if (!is_const(n.inputs[2])) return unsupported("fully-connected bias must be a constant");
          ip->set_hasbias(true);
          weights(floats(n.inputs[2]), 0, false, ip->mutable_bias());
        }
        finish_fused(n, a.activation, out);
        return Status::ok();
      }
      case OpType::kBatchNorm: {
        for (size_t i = 1; i < 5; ++i) {
          if (!is_const(n.inputs[i])) return unsupported("batch-norm parameters must be constants");
        }
        const std::string out = main_output(n, Activation::kNone);
        auto* bn = add_layer(n.name, {blob(n.inputs[0])}, out)->mutable_batchnorm();
        bn->set_channels(static_cast<uint64_t>(out_shape.back()));
        bn->set_epsilon(n.attr<ir::BatchNormAttrs>().epsilon);
        weights(g_.value(n.inputs[1]), bn->mutable_gamma());
        weights(g_.value(n.inputs[2]), bn->mutable_beta());
        weights(g_.value(n.inputs[3]), bn->mutable_mean());
        weights(g_.value(n.inputs[4]), bn->mutable_variance());
        return Status::ok();
      }
      case OpType::kRelu:
      case OpType::kRelu6: {
        const std::string out = main_output(n, Activation::kNone);
        activation(n.op == OpType::kRelu ? Activation::kRelu : Activation::kRelu6, n.name, blob(n.inputs[0]), out);
        return Status::ok();
      }
      case OpType::kLeakyRelu: {
        const std::string out = main_output(n, Activation::kNone);
        add_layer(n.name, {blob(n.inputs[0])}, out)->mutable_activation()->mutable_leakyrelu()->set_alpha(
            n.attr<ir::LeakyReluAttrs>().alpha);
        return Status::ok();
      }
      case OpType::kSigmoid: {
        const std::string out = main_output(n, Activation::kNone);
        add_layer(n.name, {blob(n.inputs[0])}, out)->mutable_activation()->mutable_sigmoid();
        return Status::ok();
      }
      case OpType::kHardSwish: {
        const std::string out = main_output(n, Activation::kNone);
        const std::string hs = use_name(out + "__hsigmoid");
        auto* h = add_layer(n.name + "__hsigmoid", {blob(n.inputs[0])}, hs)->mutable_activation()->mutable_sigmoidhard();
        h->set_alpha(1.f / 6.f);
        h->set_beta(0.5f);
        add_layer(n.name, {blob(n.inputs[0]), hs}, out)->mutable_multiply();
        return Status::ok();
      }
      case OpType::kAdd:
      case OpType::kMul: return write_eltwise(n);
      case OpType::kConcat: {
        const auto& a = n.attr<ir::ConcatAttrs>();
        const int64_t rank = static_cast<int64_t>(out_shape.size());
        if ((a.axis < 0 ? a.axis + rank : a.axis) != rank - 1) {
          return unsupported(fmt::format("concat on axis {} (Core ML's concat joins channels: the last axis)", a.axis));
        }
        std::vector<std::string> ins;
        for (ir::ValueId v : n.inputs) {
          if (is_const(v)) return unsupported("concat of a constant");
          ins.push_back(blob(v));
        }
        const std::string out = main_output(n, a.activation);
        add_layer(n.name, ins, out)->mutable_concat();
        finish_fused(n, a.activation, out);
        return Status::ok();
      }
      case OpType::kMaxPool:
      case OpType::kAveragePool: {
        const auto& a = n.attr<ir::Pool2dAttrs>();
        const std::string out = main_output(n, a.activation);
        auto* p = add_layer(n.name, {blob(n.inputs[0])}, out)->mutable_pooling();
        p->set_type(n.op == OpType::kMaxPool ? spec::PoolingLayerParams::MAX : spec::PoolingLayerParams::AVERAGE);
        p->add_kernelsize(static_cast<uint64_t>(a.kernel_h));
        p->add_kernelsize(static_cast<uint64_t>(a.kernel_w));
        p->add_stride(static_cast<uint64_t>(a.stride_h));
        p->add_stride(static_cast<uint64_t>(a.stride_w));
        if (a.padding == ir::Padding::kSame) p->mutable_same();
        else set_valid(a, p->mutable_valid());
        p->set_avgpoolexcludepadding(true);
        finish_fused(n, a.activation, out);
        return Status::ok();
      }
      case OpType::kMean: {
        const auto& a = n.attr<ir::MeanAttrs>();
        const ir::Shape& in = shape(n.inputs[0]);
        std::vector<int64_t> axes;
        for (int64_t ax : a.axes) axes.push_back(ax < 0 ? ax + static_cast<int64_t>(in.size()) : ax);
        std::sort(axes.begin(), axes.end());
        if (in.size() != 4 || axes != std::vector<int64_t>{1, 2}) {
          return unsupported("mean over axes other than (H, W) of an NHWC tensor");
        }
        const std::string out = main_output(n, Activation::kNone);
        auto* p = add_layer(n.name, {blob(n.inputs[0])}, out)->mutable_pooling();
        p->set_type(spec::PoolingLayerParams::AVERAGE);
        p->set_globalpooling(true);
        p->add_kernelsize(static_cast<uint64_t>(in[1]));
        p->add_kernelsize(static_cast<uint64_t>(in[2]));
        p->add_stride(1);
        p->add_stride(1);
        p->mutable_valid();
        return Status::ok();
      }
      case OpType::kFlatten:
      case OpType::kReshape: {
        const ir::Shape& in = shape(n.inputs[0]);
        const bool to_2d = out_shape.size() == 2 && out_shape[0] == in[0];
        const bool to_1x1 = in.size() == 2 && out_shape.size() == 4 && out_shape[1] == 1 && out_shape[2] == 1;
        if (!to_2d && !to_1x1) {
          return unsupported(fmt::format("reshape {} -> {} (Core ML rank-5 blobs: only flattening to (N, K) or "
                                         "(N, K) <-> (N, 1, 1, K))", ir::shape_to_string(in), ir::shape_to_string(out_shape)));
        }
        if (in.size() == 4 && !(in[1] == 1 && in[2] == 1)) {
          const std::string out = main_output(n, Activation::kNone);
          add_layer(n.name, {blob(n.inputs[0])}, out)->mutable_flatten()->set_mode(spec::FlattenLayerParams::CHANNEL_LAST);
        } else {
          alias(n);  // (K, 1, 1) either way
        }
        return Status::ok();
      }
      case OpType::kPad: {
        const auto& a = n.attr<ir::PadAttrs>();
        if (a.pads.size() != 8 || a.pads[0] || a.pads[1] || a.pads[6] || a.pads[7]) {
          return unsupported("pad of anything but the H and W axes of an NHWC tensor");
        }
        const std::string out = main_output(n, Activation::kNone);
        auto* p = add_layer(n.name, {blob(n.inputs[0])}, out)->mutable_padding();
        p->mutable_constant()->set_value(a.value);
        auto* h = p->mutable_paddingamounts()->add_borderamounts();
        h->set_startedgesize(static_cast<uint64_t>(a.pads[2]));
        h->set_endedgesize(static_cast<uint64_t>(a.pads[3]));
        auto* w = p->mutable_paddingamounts()->add_borderamounts();
        w->set_startedgesize(static_cast<uint64_t>(a.pads[4]));
        w->set_endedgesize(static_cast<uint64_t>(a.pads[5]));
        return Status::ok();
      }
      case OpType::kSoftmax: {
        const float beta = n.attr<ir::SoftmaxAttrs>().beta;
        std::string in = blob(n.inputs[0]);
        const std::string out = main_output(n, Activation::kNone);
        if (beta != 1.f) {
          const std::string scaled = use_name(out + "__beta");
          add_layer(n.name + "__beta", {in}, scaled)->mutable_multiply()->set_alpha(beta);
          in = scaled;
        }
        add_layer(n.name, {in}, out)->mutable_softmax();
        return Status::ok();
      }
      case OpType::kDropout:
      case OpType::kQuantize:
      case OpType::kDequantize: alias(n); return Status::ok();
    }
    return unsupported("op has no Core ML NeuralNetwork mapping");
  }

  void alias(const ir::Node& n) { blob_[static_cast<size_t>(n.outputs[0])] = blob(n.inputs[0]); }

  template <class A>
  void set_valid(const A& a, spec::ValidPadding* v) {
    if (a.padding != ir::Padding::kExplicit) return;
    auto* h = v->mutable_paddingamounts()->add_borderamounts();
    h->set_startedgesize(static_cast<uint64_t>(a.pad_top));
    h->set_endedgesize(static_cast<uint64_t>(a.pad_bottom));
    auto* w = v->mutable_paddingamounts()->add_borderamounts();
    w->set_startedgesize(static_cast<uint64_t>(a.pad_left));
    w->set_endedgesize(static_cast<uint64_t>(a.pad_right));
  }

  Status write_eltwise(const ir::Node& n) {
    const bool add = n.op == OpType::kAdd;
    const Activation act = n.attr<ir::EltwiseAttrs>().activation;
    ir::ValueId a = n.inputs[0], b = n.inputs[1];
    if (is_const(a)) std::swap(a, b);  // both ops commute
    if (is_const(a)) return unsupported("both operands are constants");
    const ir::Shape& out_shape = shape(n.outputs[0]);
    if (!is_const(b)) {
      if (shape(a) != shape(b)) {
        return unsupported(fmt::format("{} of {} and {} (Core ML's layer needs equal shapes)", add ? "add" : "mul",
                                       ir::shape_to_string(shape(a)), ir::shape_to_string(shape(b))));
      }
      const std::string out = main_output(n, act);
      auto* l = add_layer(n.name, {blob(a), blob(b)}, out);
      if (add) l->mutable_add();
      else l->mutable_multiply();
      finish_fused(n, act, out);
      return Status::ok();
    }
    if (out_shape != shape(a)) return unsupported("the constant operand broadcasts the other one to a larger shape");
    const auto c = floats(b);
    const int64_t channels = out_shape.back();
    const ir::Shape& cs = shape(b);
    bool per_channel = static_cast<int64_t>(c.size()) == channels && !cs.empty() && cs.back() == channels;
    if (c.size() != 1 && !per_channel) {
      return unsupported(fmt::format("constant operand {} (scalar or per-channel only)", ir::shape_to_string(cs)));
    }
    const std::string out = main_output(n, act);
    auto* l = add_layer(n.name, {blob(a)}, out);
    if (c.size() == 1) {
      if (add) l->mutable_add()->set_alpha(c[0]);
      else l->mutable_multiply()->set_alpha(c[0]);
    } else if (add) {
      auto* p = l->mutable_bias();
      p->add_shape(static_cast<uint64_t>(channels));
      weights(c, 0, false, p->mutable_bias());
    } else {
      auto* p = l->mutable_scale();
      p->add_shapescale(static_cast<uint64_t>(channels));
      weights(c, 0, false, p->mutable_scale());
    }
    finish_fused(n, act, out);
    return Status::ok();
  }

  const ir::Model& m_;
  const ir::Graph& g_;
  MlModelOptions o_;
  spec::NeuralNetwork nn_;
  std::vector<std::string> blob_;
  std::map<std::string, bool> used_, layer_names_;
  std::string input_name_, pending_act_out_;
  int spec_version_ = kSpecVersionBase;
};

}  // namespace

Expected<std::vector<uint8_t>> write_mlmodel(const ir::Model& model, const MlModelOptions& options) {
  if (options.weights == WeightFormat::kLookupTable && (options.lookup_table_bits < 1 || options.lookup_table_bits > 8)) {
    return invalid_argument(fmt::format("lookup_table_bits {} must be 1..8", options.lookup_table_bits));
  }
  PCV_RETURN_IF_ERROR(ir::verify(model.graph).with_context("Core ML writer"));
  PCV_ASSIGN_OR_RETURN(ir::Model m, detail::to_float_model(model));
  if (options.fold_batch_norm) {
    PCV_ASSIGN_OR_RETURN(int folded, ir::fold_batch_norm(m.graph));
    (void)folded;
  }
  spec::Model out;
  NnWriter w(m, options);
  PCV_RETURN_IF_ERROR(w.run(&out));
  return detail::serialize_model(out);
}

Status save_mlmodel(const ir::Model& model, const std::string& path, const MlModelOptions& options) {
  PCV_ASSIGN_OR_RETURN(auto bytes, write_mlmodel(model, options));
  return write_file_atomic(path, bytes);
}

}  // namespace pcv::coreml
