// .mlmodel (NeuralNetwork / NeuralNetworkClassifier) -> IR. The inverse of mlmodel_writer.cc,
// plus what other converters commonly write for the same ops. A blob (C, H, W) becomes an NHWC
// value; a blob whose H = W = 1 after a flatten / inner product / global pooling is kept as
// (N, K) and reshaped to (N, 1, 1, K) only when a spatial layer consumes it.
//
// Multi-layer patterns folded back into one IR op:
//   ReLU -> unary THRESHOLD(scale -1, alpha -6) -> linear(-1, 0)   relu6
//   sigmoidHard(1/6, 0.5) -> multiply with its own input           hard_swish
//   scaler(channelScale 1) -> scale "<input>__input_std"            per-channel std
#include <fmt/core.h>

#include <cmath>
#include <map>
#include <set>

#include "base/file.h"
#include "formats/coreml/common.h"
#include "formats/coreml/coreml.h"
#include "formats/coreml/weights.h"

namespace pcv::coreml {
namespace {

using namespace detail;
using ir::OpType;

constexpr uint64_t kMaxDim = 1 << 16;
constexpr int64_t kMaxWeights = int64_t{1} << 31;

class NnReader {
 public:
  explicit NnReader(std::string name) : name_(std::move(name)) {}

  Expected<ir::Model> run(const spec::Model& m) {
    const google::protobuf::RepeatedPtrField<spec::NeuralNetworkLayer>* layers = nullptr;
    const google::protobuf::RepeatedPtrField<spec::NeuralNetworkPreprocessing>* pre = nullptr;
    std::string prob_blob;
    if (m.has_neuralnetworkclassifier()) {
      const auto& c = m.neuralnetworkclassifier();
      layers = &c.layers();
      pre = &c.preprocessing();
      if (c.has_stringclasslabels()) {
        for (const auto& l : c.stringclasslabels().vector()) model_.input_spec.labels.push_back(l);
      } else if (c.has_int64classlabels()) {
        for (int64_t l : c.int64classlabels().vector()) model_.input_spec.labels.push_back(std::to_string(l));
      } else {
        return invalid_model(fmt::format("{}: classifier without class labels", name_));
      }
      prob_blob = c.labelprobabilitylayername();
    } else if (m.has_neuralnetwork()) {
      layers = &m.neuralnetwork().layers();
      pre = &m.neuralnetwork().preprocessing();
    } else if (m.has_mlprogram()) {
      return unsupported(fmt::format("{}: an ML Program; read it as a .mlpackage (read_mlpackage)", name_));
    } else {
      return unsupported(fmt::format("{}: Core ML model type is not a neural network (pocketcv reads "
                                     "NeuralNetwork, NeuralNetworkClassifier and ML Program models)", name_));
    }
    if (layers->empty()) return invalid_model(fmt::format("{}: the network has no layers", name_));

    const auto& d = m.description();
    ir::Shape in_shape;
    PCV_RETURN_IF_ERROR(read_input_description(d, name_, &model_.input_spec, &in_shape));
    read_metadata(d, &model_.metadata);
    const std::string& in_name = d.input(0).name();
    if (in_name.empty()) return invalid_model(fmt::format("{}: the input has no name", name_));
    ir::ValueId x = g().add_input(in_name, ir::DType::kF32, in_shape);
    names_.insert(in_name);
    blobs_[in_name] = x;

    // Preprocessing -> mean / std.
    size_t first = 0;
    if (model_.input_spec.is_image()) {
      for (const auto& p : *pre) {
        if (!p.featurename().empty() && p.featurename() != in_name) continue;
        if (p.has_meanimage()) return unsupported(fmt::format("{}: mean-image preprocessing", name_));
        if (!p.has_scaler()) continue;
        PCV_RETURN_IF_ERROR(read_scaler(p.scaler(), *layers, in_name, &first));
      }
    }

    for (size_t i = first; i < static_cast<size_t>(layers->size());) {
      const auto& l = (*layers)[static_cast<int>(i)];
      Expected<size_t> used = read_layer(*layers, i);
      if (!used) return used.status().with_context(fmt::format("{}: layer '{}'", name_, l.name()));
      i += *used;
    }

    // Outputs.
    std::vector<std::string> outs;
    if (m.has_neuralnetworkclassifier()) {
      if (prob_blob.empty()) prob_blob = layers->rbegin()->output_size() ? layers->rbegin()->output(0) : "";
      outs.push_back(prob_blob);
    } else {
      for (const auto& o : d.output()) outs.push_back(o.name());
    }
    if (outs.empty()) return invalid_model(fmt::format("{}: no outputs", name_));
    for (const auto& o : outs) {
      auto it = blobs_.find(o);
      if (it == blobs_.end()) return invalid_model(fmt::format("{}: output '{}' is not produced by any layer", name_, o));
      g().mark_output(it->second);
    }
    if (!model_.input_spec.labels.empty()) {
      const ir::Shape& ps = g().value(g().outputs[0]).shape;
      if (ps.empty() || ps.back() != static_cast<int64_t>(model_.input_spec.labels.size())) {
        return invalid_model(fmt::format("{}: {} class labels for a probability output of shape {}", name_,
                                         model_.input_spec.labels.size(), ir::shape_to_string(ps)));
      }
    }
    PCV_RETURN_IF_ERROR(ir::verify(g()).with_context(name_));
    return std::move(model_);
  }

 private:
  ir::Graph& g() { return model_.graph; }

  std::string unique(const std::string& base) {
    std::string n = base;
    for (int i = 1; names_.count(n); ++i) n = fmt::format("{}_{}", base, i);
    names_.insert(n);
    return n;
  }

  Expected<ir::ValueId> get(const std::string& blob) {
    auto it = blobs_.find(blob);
    if (it == blobs_.end()) return invalid_model(fmt::format("input blob '{}' is not defined before use", blob));
    return it->second;
  }

  ir::ValueId constant(const std::string& name, ir::Shape shape, const std::vector<float>& v) {
    return g().add_constant(unique(name), ir::Tensor::from_vector(std::move(shape), v));
  }

  // Adds a node whose output is `out_name` (made unique), infers shapes.
  Expected<ir::ValueId> node(OpType op, const std::string& out_name, std::vector<ir::ValueId> in, ir::Attrs a) {
    const std::string n = unique(out_name);
    ir::ValueId y = g().add_node(op, n, std::move(in), std::move(a));
    PCV_RETURN_IF_ERROR(ir::infer_shapes(g()));
    return y;
  }
  Status bind(const spec::NeuralNetworkLayer& l, Expected<ir::ValueId> y) {
    if (!y) return y.status();
    if (blobs_.count(l.output(0))) return invalid_model(fmt::format("blob '{}' is produced twice", l.output(0)));
    blobs_[l.output(0)] = *y;
    return Status::ok();
  }

  const ir::Shape& shape(ir::ValueId v) { return g().value(v).shape; }

  // (N, K) -> (N, 1, 1, K) for a spatial consumer.
  Expected<ir::ValueId> spatial(ir::ValueId v) {
    const ir::Shape s = shape(v);
    if (s.size() == 4) return v;
    if (s.size() != 2) return unsupported(fmt::format("a {} tensor as a (C, H, W) blob", ir::shape_to_string(s)));
    ir::ReshapeAttrs r;
    r.shape = {s[0], 1, 1, s[1]};
    return node(OpType::kReshape, g().value(v).name + "/nhwc", {v}, r);
  }
  // (N, 1, 1, K) -> (N, K) for an inner product.
  Expected<ir::ValueId> vector(ir::ValueId v) {
    const ir::Shape s = shape(v);
    if (s.size() == 2) return v;
    if (s.size() == 4 && s[1] == 1 && s[2] == 1) return node(OpType::kFlatten, g().value(v).name + "/flat", {v}, ir::NoAttrs{});
    return unsupported(fmt::format("inner product of a {} blob (Core ML flattens it channel-first; pocketcv "
                                   "needs H = W = 1 or a flatten layer)", ir::shape_to_string(s)));
  }

  Status read_scaler(const spec::NeuralNetworkImageScaler& sc,
                     const google::protobuf::RepeatedPtrField<spec::NeuralNetworkLayer>& layers,
                     const std::string& in_name, size_t* first) {
    float s = sc.channelscale();
    if (s == 0.f) s = 1.f;  // unset (proto3 default): no scaling
    ir::InputSpec& is = model_.input_spec;
    float bias[3] = {0, 0, 0};
    if (is.color == ir::ColorOrder::kGray) {
      bias[0] = sc.graybias();
    } else if (is.color == ir::ColorOrder::kBGR) {
      bias[0] = sc.bluebias(), bias[1] = sc.greenbias(), bias[2] = sc.redbias();
    } else {
      bias[0] = sc.redbias(), bias[1] = sc.greenbias(), bias[2] = sc.bluebias();
    }
    float k[3] = {1, 1, 1};
    // Our per-channel std: a scale layer right after the input, its only consumer.
    const auto& l0 = layers[0];
    if (l0.has_scale() && l0.input_size() == 1 && l0.input(0) == in_name && l0.output_size() == 1 &&
        l0.name() == in_name + "__input_std" && !l0.scale().hasbias() && l0.scale().shapescale_size() == 1 &&
        static_cast<int>(l0.scale().shapescale(0)) == is.channels) {
      PCV_ASSIGN_OR_RETURN(auto ks, decode_weights(l0.scale().scale(), is.channels, 0, "input std scale"));
      for (int c = 0; c < is.channels; ++c) k[c] = ks[static_cast<size_t>(c)];
      blobs_[l0.output(0)] = blobs_[in_name];
      *first = 1;
    }
    for (int c = 0; c < 3; ++c) {
      const int src = is.channels == 1 ? 0 : c;
      const float sk = s * k[src];
      if (!(std::isfinite(sk) && sk != 0.f)) return invalid_model(fmt::format("{}: image scale {} is not usable", name_, sk));
      is.std[static_cast<size_t>(c)] = 1.f / sk;
      is.mean[static_cast<size_t>(c)] = -bias[src] / s;
    }
    return Status::ok();
  }

  static Expected<std::array<int64_t, 2>> pair(const google::protobuf::RepeatedField<uint64_t>& f, int64_t dflt,
                                                const char* what) {
    if (f.empty()) return std::array<int64_t, 2>{dflt, dflt};
    if (f.size() != 2 || f[0] < 1 || f[1] < 1 || f[0] > kMaxDim || f[1] > kMaxDim) {
      return invalid_model(fmt::format("{} must be two values in 1..{}", what, kMaxDim));
    }
    return std::array<int64_t, 2>{static_cast<int64_t>(f[0]), static_cast<int64_t>(f[1])};
  }

  // Padding of a conv / pool layer -> IR padding fields.
  template <class A>
  Status padding(const spec::ValidPadding* valid, const spec::SamePadding* same, const ir::Shape& in, int64_t kh,
                 int64_t kw, int64_t sh, int64_t sw, int64_t dh, int64_t dw, A* a) {
    if (same) {
      if (same->asymmetrymode() == spec::SamePadding::BOTTOM_RIGHT_HEAVY) {
        a->padding = ir::Padding::kSame;
        return Status::ok();
      }
      // TOP_LEFT_HEAVY: the extra row/column goes first.
      auto total = [](int64_t n, int64_t k, int64_t s, int64_t d) {
        const int64_t out = (n + s - 1) / s;
        return std::max<int64_t>(0, (out - 1) * s + (k - 1) * d + 1 - n);
      };
      const int64_t th = total(in[1], kh, sh, dh), tw = total(in[2], kw, sw, dw);
      a->padding = ir::Padding::kExplicit;
      a->pad_bottom = static_cast<int>(th / 2), a->pad_top = static_cast<int>(th - th / 2);
      a->pad_right = static_cast<int>(tw / 2), a->pad_left = static_cast<int>(tw - tw / 2);
      return Status::ok();
    }
    a->padding = ir::Padding::kValid;
    if (valid && valid->has_paddingamounts() && valid->paddingamounts().borderamounts_size() > 0) {
      const auto& b = valid->paddingamounts().borderamounts();
      if (b.size() != 2) return invalid_model("paddingAmounts must have two entries (H, W)");
      for (const auto& e : b) {
        if (e.startedgesize() > kMaxDim || e.endedgesize() > kMaxDim) return invalid_model("padding amount out of range");
      }
      a->pad_top = static_cast<int>(b[0].startedgesize());
      a->pad_bottom = static_cast<int>(b[0].endedgesize());
      a->pad_left = static_cast<int>(b[1].startedgesize());
      a->pad_right = static_cast<int>(b[1].endedgesize());
      if (a->pad_top || a->pad_bottom || a->pad_left || a->pad_right) a->padding = ir::Padding::kExplicit;
    }
    return Status::ok();
  }

  Expected<std::vector<float>> weights(const spec::WeightParams& w, int64_t count, int64_t rows, const char* what) {
    if (count < 0 || count > kMaxWeights) return invalid_model(fmt::format("{}: {} values is out of range", what, count));
    return decode_weights(w, count, rows, what);
  }

  static bool is_linear(const spec::NeuralNetworkLayer& l, float alpha, float beta) {
    return l.has_activation() && l.activation().has_linear() && l.activation().linear().alpha() == alpha &&
           l.activation().linear().beta() == beta;
  }
  static bool chained(const spec::NeuralNetworkLayer& a, const spec::NeuralNetworkLayer& b) {
    return b.input_size() == 1 && a.output_size() == 1 && b.input(0) == a.output(0);
  }

  // Reads layers[i] (and the layers of a pattern starting there); returns how many it used.
  Expected<size_t> read_layer(const google::protobuf::RepeatedPtrField<spec::NeuralNetworkLayer>& layers, size_t i) {
    const auto& l = layers[static_cast<int>(i)];
    if (l.output_size() != 1) return invalid_model(fmt::format("{} outputs; one is supported", l.output_size()));
    if (l.input_size() < 1) return invalid_model("no inputs");
    std::vector<ir::ValueId> in;
    for (const auto& name : l.input()) {
      PCV_ASSIGN_OR_RETURN(ir::ValueId v, get(name));
      in.push_back(v);
    }
    const std::string& out = l.output(0);
    auto next = [&](size_t k) -> const spec::NeuralNetworkLayer* {
      return i + k < static_cast<size_t>(layers.size()) ? &layers[static_cast<int>(i + k)] : nullptr;
    };

    switch (l.layer_case()) {
      case spec::NeuralNetworkLayer::kConvolution: {
        const auto& c = l.convolution();
        if (c.isdeconvolution()) return unsupported("deconvolution");
        if (l.input_size() != 1) return unsupported("convolution with weights as a second input");
        PCV_ASSIGN_OR_RETURN(ir::ValueId x, spatial(in[0]));
        const int64_t in_c = shape(x)[3];
        const int64_t groups = c.ngroups() == 0 ? 1 : static_cast<int64_t>(std::min<uint64_t>(c.ngroups(), kMaxDim));
        PCV_ASSIGN_OR_RETURN(auto k, pair(c.kernelsize(), 3, "kernelSize"));
        PCV_ASSIGN_OR_RETURN(auto s, pair(c.stride(), 1, "stride"));
        PCV_ASSIGN_OR_RETURN(auto dl, pair(c.dilationfactor(), 1, "dilationFactor"));
        const uint64_t o = c.outputchannels(), kc = c.kernelchannels();
        if (o < 1 || o > kMaxDim || kc < 1 || kc > kMaxDim || static_cast<int64_t>(kc) * groups != in_c ||
            o % static_cast<uint64_t>(groups) != 0) {
          return invalid_model(fmt::format("outputChannels {}, kernelChannels {}, nGroups {} do not fit {} input channels",
                                           o, kc, groups, in_c));
        }
        const auto O = static_cast<int64_t>(o), KC = static_cast<int64_t>(kc);
        PCV_ASSIGN_OR_RETURN(auto w, weights(c.weights(), O * KC * k[0] * k[1], O, "convolution weights"));
        ir::Conv2dAttrs a;
        a.groups = static_cast<int>(groups);
        a.stride_h = static_cast<int>(s[0]), a.stride_w = static_cast<int>(s[1]);
        a.dilation_h = static_cast<int>(dl[0]), a.dilation_w = static_cast<int>(dl[1]);
        PCV_RETURN_IF_ERROR(padding(c.has_valid() ? &c.valid() : nullptr, c.has_same() ? &c.same() : nullptr, shape(x),
                                    k[0], k[1], s[0], s[1], dl[0], dl[1], &a));
        const auto ohwi = oihw_to_ohwi(w.data(), O, KC, k[0], k[1]);
        std::vector<ir::ValueId> ins{x, constant(l.name() + "/weights", {O, k[0], k[1], KC}, ohwi)};
        if (c.hasbias()) {
          PCV_ASSIGN_OR_RETURN(auto b, weights(c.bias(), O, 0, "convolution bias"));
          ins.push_back(constant(l.name() + "/bias", {O}, b));
        }
        PCV_RETURN_IF_ERROR(bind(l, node(OpType::kConv2d, out, ins, a)));
        return size_t{1};
      }
      case spec::NeuralNetworkLayer::kInnerProduct: {
        const auto& p = l.innerproduct();
        if (p.int8dynamicquantize()) return unsupported("innerProduct with int8DynamicQuantize");
        PCV_ASSIGN_OR_RETURN(ir::ValueId x, vector(in[0]));
        const uint64_t ci = p.inputchannels(), co = p.outputchannels();
        if (ci < 1 || co < 1 || ci > (uint64_t{1} << 24) || co > (uint64_t{1} << 24) ||
            static_cast<int64_t>(ci) != shape(x)[1]) {
          return invalid_model(fmt::format("inputChannels {} / outputChannels {} do not fit input {}", ci, co,
                                           ir::shape_to_string(shape(x))));
        }
        const auto CI = static_cast<int64_t>(ci), CO = static_cast<int64_t>(co);
        PCV_ASSIGN_OR_RETURN(auto w, weights(p.weights(), CI * CO, CO, "innerProduct weights"));
        std::vector<ir::ValueId> ins{x, constant(l.name() + "/weights", {CO, CI}, w)};
        if (p.hasbias()) {
          PCV_ASSIGN_OR_RETURN(auto b, weights(p.bias(), CO, 0, "innerProduct bias"));
          ins.push_back(constant(l.name() + "/bias", {CO}, b));
        }
        PCV_RETURN_IF_ERROR(bind(l, node(OpType::kFullyConnected, out, ins, ir::FullyConnectedAttrs{})));
        return size_t{1};
      }
      case spec::NeuralNetworkLayer::kBatchnorm: {
        const auto& b = l.batchnorm();
        if (b.computemeanvar()) return unsupported("batchnorm with computeMeanVar (instance/batch statistics)");
        const int64_t c = shape(in[0]).back();
        if (static_cast<int64_t>(b.channels()) != c) {
          return invalid_model(fmt::format("batchnorm channels {} but the input has {}", b.channels(), c));
        }
        std::vector<ir::ValueId> ins{in[0]};
        const spec::WeightParams* params[] = {&b.gamma(), &b.beta(), &b.mean(), &b.variance()};
        const char* names[] = {"gamma", "beta", "mean", "variance"};
        for (int j = 0; j < 4; ++j) {
          PCV_ASSIGN_OR_RETURN(auto v, weights(*params[j], c, 0, names[j]));
          ins.push_back(constant(l.name() + "/" + names[j], {c}, v));
        }
        ir::BatchNormAttrs a;
        a.epsilon = b.epsilon() == 0.f ? 1e-5f : b.epsilon();
        PCV_RETURN_IF_ERROR(bind(l, node(OpType::kBatchNorm, out, ins, a)));
        return size_t{1};
      }
      case spec::NeuralNetworkLayer::kActivation: return read_activation(l, in[0], next);
      case spec::NeuralNetworkLayer::kClip: {
        if (l.clip().minval() != 0.f || l.clip().maxval() != 6.f) {
          return unsupported(fmt::format("clip [{}, {}] (only [0, 6], ReLU6)", l.clip().minval(), l.clip().maxval()));
        }
        PCV_RETURN_IF_ERROR(bind(l, node(OpType::kRelu6, out, {in[0]}, ir::NoAttrs{})));
        return size_t{1};
      }
      case spec::NeuralNetworkLayer::kPooling: {
        const auto& p = l.pooling();
        if (p.type() == spec::PoolingLayerParams::L2) return unsupported("L2 pooling");
        PCV_ASSIGN_OR_RETURN(ir::ValueId x, spatial(in[0]));
        const ir::Shape xs = shape(x);
        if (p.globalpooling()) {
          if (p.type() == spec::PoolingLayerParams::AVERAGE) {
            ir::MeanAttrs a;
            a.axes = {1, 2};
            PCV_RETURN_IF_ERROR(bind(l, node(OpType::kMean, out, {x}, a)));
          } else {
            ir::Pool2dAttrs a;
            a.kernel_h = static_cast<int>(xs[1]), a.kernel_w = static_cast<int>(xs[2]);
            a.stride_h = a.stride_w = 1;
            a.padding = ir::Padding::kValid;
            PCV_RETURN_IF_ERROR(bind(l, node(OpType::kMaxPool, out, {x}, a)));
          }
          return size_t{1};
        }
        PCV_ASSIGN_OR_RETURN(auto k, pair(p.kernelsize(), 3, "kernelSize"));
        PCV_ASSIGN_OR_RETURN(auto s, pair(p.stride(), 1, "stride"));
        ir::Pool2dAttrs a;
        a.kernel_h = static_cast<int>(k[0]), a.kernel_w = static_cast<int>(k[1]);
        a.stride_h = static_cast<int>(s[0]), a.stride_w = static_cast<int>(s[1]);
        if (p.has_includelastpixel()) {
          for (uint64_t amount : p.includelastpixel().paddingamounts()) {
            if (amount) return unsupported("pooling with includeLastPixel padding");
          }
          // Without padding, ceil-mode output equals floor-mode when the windows tile exactly.
          if ((xs[1] - k[0]) % s[0] || (xs[2] - k[1]) % s[1]) return unsupported("pooling with includeLastPixel padding");
          a.padding = ir::Padding::kValid;
        } else {
          PCV_RETURN_IF_ERROR(padding(p.has_valid() ? &p.valid() : nullptr, p.has_same() ? &p.same() : nullptr, xs, k[0],
                                      k[1], s[0], s[1], 1, 1, &a));
        }
        const bool padded = a.padding != ir::Padding::kValid;
        if (p.type() == spec::PoolingLayerParams::AVERAGE && padded && !p.avgpoolexcludepadding()) {
          return unsupported("average pooling that counts padding (pocketcv averages over valid taps)");
        }
        PCV_RETURN_IF_ERROR(bind(l, node(p.type() == spec::PoolingLayerParams::MAX ? OpType::kMaxPool : OpType::kAveragePool,
                                         out, {x}, a)));
        return size_t{1};
      }
      case spec::NeuralNetworkLayer::kSoftmax:
        PCV_RETURN_IF_ERROR(bind(l, node(OpType::kSoftmax, out, {in[0]}, ir::SoftmaxAttrs{})));
        return size_t{1};
      case spec::NeuralNetworkLayer::kAdd:
      case spec::NeuralNetworkLayer::kMultiply: {
        const bool add = l.has_add();
        const OpType op = add ? OpType::kAdd : OpType::kMul;
        if (in.size() == 1) {
          const float alpha = add ? l.add().alpha() : l.multiply().alpha();
          ir::ValueId c = constant(l.name() + "/alpha", {1}, {alpha});
          PCV_RETURN_IF_ERROR(bind(l, node(op, out, {in[0], c}, ir::EltwiseAttrs{})));
          return size_t{1};
        }
        // Mixed (N, K) and NHWC operands: make both NHWC so broadcasting lines up channels.
        bool any4 = false;
        for (ir::ValueId v : in) any4 |= shape(v).size() == 4;
        ir::ValueId acc = kNone;
        for (size_t j = 0; j < in.size(); ++j) {
          ir::ValueId v = in[j];
          if (any4) {
            PCV_ASSIGN_OR_RETURN(v, spatial(v));
          }
          if (acc == kNone) {
            acc = v;
            continue;
          }
          const std::string name = j + 1 == in.size() ? out : fmt::format("{}/partial{}", out, j);
          PCV_ASSIGN_OR_RETURN(acc, node(op, name, {acc, v}, ir::EltwiseAttrs{}));
        }
        PCV_RETURN_IF_ERROR(bind(l, Expected<ir::ValueId>(acc)));
        return size_t{1};
      }
      case spec::NeuralNetworkLayer::kBias:
      case spec::NeuralNetworkLayer::kScale: {
        const int64_t c = shape(in[0]).back();
        auto per_channel = [&](const google::protobuf::RepeatedField<uint64_t>& sh, const spec::WeightParams& w,
                               const char* what) -> Expected<ir::ValueId> {
          if (sh.size() != 1 || (sh[0] != 1 && static_cast<int64_t>(sh[0]) != c)) {
            return unsupported(fmt::format("{} of shape other than [1] or [C]", what));
          }
          const auto n = static_cast<int64_t>(sh[0]);
          PCV_ASSIGN_OR_RETURN(auto v, weights(w, n, 0, what));
          return constant(l.name() + "/" + what, {n}, v);
        };
        if (l.has_bias()) {
          PCV_ASSIGN_OR_RETURN(ir::ValueId b, per_channel(l.bias().shape(), l.bias().bias(), "bias"));
          PCV_RETURN_IF_ERROR(bind(l, node(OpType::kAdd, out, {in[0], b}, ir::EltwiseAttrs{})));
          return size_t{1};
        }
        const auto& sp = l.scale();
        PCV_ASSIGN_OR_RETURN(ir::ValueId sv, per_channel(sp.shapescale(), sp.scale(), "scale"));
        if (!sp.hasbias()) {
          PCV_RETURN_IF_ERROR(bind(l, node(OpType::kMul, out, {in[0], sv}, ir::EltwiseAttrs{})));
          return size_t{1};
        }
        PCV_ASSIGN_OR_RETURN(ir::ValueId y, node(OpType::kMul, out + "/scaled", {in[0], sv}, ir::EltwiseAttrs{}));
        PCV_ASSIGN_OR_RETURN(ir::ValueId b, per_channel(sp.shapebias(), sp.bias(), "bias"));
        PCV_RETURN_IF_ERROR(bind(l, node(OpType::kAdd, out, {y, b}, ir::EltwiseAttrs{})));
        return size_t{1};
      }
      case spec::NeuralNetworkLayer::kFlatten: {
        const ir::Shape s = shape(in[0]);
        if (s.size() == 2) {
          PCV_RETURN_IF_ERROR(bind(l, Expected<ir::ValueId>(in[0])));
          return size_t{1};
        }
        const bool channel_last = l.flatten().mode() == spec::FlattenLayerParams::CHANNEL_LAST;
        if (!channel_last && !(s[1] == 1 && s[2] == 1) && s[3] != 1) {
          return unsupported("flatten CHANNEL_FIRST of a blob with H, W and C > 1");
        }
        PCV_RETURN_IF_ERROR(bind(l, node(OpType::kFlatten, out, {in[0]}, ir::NoAttrs{})));
        return size_t{1};
      }
      case spec::NeuralNetworkLayer::kReshape: {
        const auto& r = l.reshape();
        const ir::Shape s = shape(in[0]);
        const auto& t = r.targetshape();
        const bool to_vector = t.size() == 3 && t[1] == 1 && t[2] == 1;
        const bool first_ok = r.mode() == spec::ReshapeLayerParams::CHANNEL_LAST || s.size() == 2 ||
                              (s[1] == 1 && s[2] == 1) || s[3] == 1;
        if (!to_vector || !first_ok || t[0] != ir::num_elements(s) / s[0]) {
          return unsupported("reshape other than flattening to (K, 1, 1)");
        }
        if (s.size() == 2) {
          PCV_RETURN_IF_ERROR(bind(l, Expected<ir::ValueId>(in[0])));
        } else {
          PCV_RETURN_IF_ERROR(bind(l, node(OpType::kFlatten, out, {in[0]}, ir::NoAttrs{})));
        }
        return size_t{1};
      }
      case spec::NeuralNetworkLayer::kConcat: {
        if (l.concat().sequenceconcat()) return unsupported("sequence concat");
        bool any4 = false;
        for (ir::ValueId v : in) any4 |= shape(v).size() == 4;
        std::vector<ir::ValueId> ins;
        for (ir::ValueId v : in) {
          if (any4) {
            PCV_ASSIGN_OR_RETURN(v, spatial(v));
          }
          ins.push_back(v);
        }
        if (ins.size() > 64) return unsupported("concat of more than 64 inputs");
        ir::ConcatAttrs a;
        a.axis = -1;
        PCV_RETURN_IF_ERROR(bind(l, node(OpType::kConcat, out, ins, a)));
        return size_t{1};
      }
      case spec::NeuralNetworkLayer::kPadding: {
        const auto& p = l.padding();
        if (!p.has_constant()) return unsupported("reflection / replication padding");
        PCV_ASSIGN_OR_RETURN(ir::ValueId x, spatial(in[0]));
        const auto& b = p.paddingamounts().borderamounts();
        if (b.size() != 2) return invalid_model("paddingAmounts must have two entries (H, W)");
        for (const auto& e : b) {
          if (e.startedgesize() > kMaxDim || e.endedgesize() > kMaxDim) return invalid_model("padding amount out of range");
        }
        ir::PadAttrs a;
        a.pads = {0, 0, static_cast<int64_t>(b[0].startedgesize()), static_cast<int64_t>(b[0].endedgesize()),
                  static_cast<int64_t>(b[1].startedgesize()), static_cast<int64_t>(b[1].endedgesize()), 0, 0};
        a.value = p.constant().value();
        PCV_RETURN_IF_ERROR(bind(l, node(OpType::kPad, out, {x}, a)));
        return size_t{1};
      }
      case spec::NeuralNetworkLayer::kUnary:
        return unsupported(fmt::format("unary function {} outside the ReLU6 pattern", static_cast<int>(l.unary().type())));
      case spec::NeuralNetworkLayer::LAYER_NOT_SET: break;
    }
    return unsupported(fmt::format("layer type (NeuralNetworkLayer field {}) is not supported", static_cast<int>(l.layer_case())));
  }

  template <class Next>
  Expected<size_t> read_activation(const spec::NeuralNetworkLayer& l, ir::ValueId x, Next&& next) {
    const auto& a = l.activation();
    const std::string& out = l.output(0);
    switch (a.NonlinearityType_case()) {
      case spec::ActivationParams::kReLU: {
        const auto* u = next(1);
        const auto* lin = next(2);
        if (u && lin && chained(l, *u) && chained(*u, *lin) && u->has_unary() &&
            u->unary().type() == spec::UnaryFunctionLayerParams::THRESHOLD && u->unary().scale() == -1.f &&
            u->unary().shift() == 0.f && u->unary().alpha() == -6.f && is_linear(*lin, -1.f, 0.f)) {
          PCV_RETURN_IF_ERROR(bind(*lin, node(OpType::kRelu6, lin->output(0), {x}, ir::NoAttrs{})));
          return size_t{3};
        }
        PCV_RETURN_IF_ERROR(bind(l, node(OpType::kRelu, out, {x}, ir::NoAttrs{})));
        return size_t{1};
      }
      case spec::ActivationParams::kLeakyReLU: {
        ir::LeakyReluAttrs la;
        la.alpha = a.leakyrelu().alpha();
        PCV_RETURN_IF_ERROR(bind(l, node(OpType::kLeakyRelu, out, {x}, la)));
        return size_t{1};
      }
      case spec::ActivationParams::kSigmoid:
        PCV_RETURN_IF_ERROR(bind(l, node(OpType::kSigmoid, out, {x}, ir::NoAttrs{})));
        return size_t{1};
      case spec::ActivationParams::kSigmoidHard: {
        const auto* mul = next(1);
        const auto& h = a.sigmoidhard();
        if (mul && mul->has_multiply() && mul->input_size() == 2 && std::abs(h.alpha() - 1.f / 6.f) < 1e-6f &&
            h.beta() == 0.5f && l.input_size() == 1 &&
            ((mul->input(0) == l.input(0) && mul->input(1) == out) || (mul->input(1) == l.input(0) && mul->input(0) == out))) {
          PCV_RETURN_IF_ERROR(bind(*mul, node(OpType::kHardSwish, mul->output(0), {x}, ir::NoAttrs{})));
          return size_t{2};
        }
        return unsupported("sigmoidHard outside the hard-swish pattern");
      }
      case spec::ActivationParams::kLinear: {
        const float alpha = a.linear().alpha(), beta = a.linear().beta();
        ir::ValueId y = x;
        if (alpha != 1.f || beta == 0.f) {
          const std::string name = beta == 0.f ? out : out + "/scaled";
          PCV_ASSIGN_OR_RETURN(y, node(OpType::kMul, name, {y, constant(l.name() + "/alpha", {1}, {alpha})}, ir::EltwiseAttrs{}));
        }
        if (beta != 0.f) {
          PCV_ASSIGN_OR_RETURN(y, node(OpType::kAdd, out, {y, constant(l.name() + "/beta", {1}, {beta})}, ir::EltwiseAttrs{}));
        }
        PCV_RETURN_IF_ERROR(bind(l, Expected<ir::ValueId>(y)));
        return size_t{1};
      }
      default:
        return unsupported(fmt::format("activation type (ActivationParams field {})", static_cast<int>(a.NonlinearityType_case())));
    }
  }

  static constexpr ir::ValueId kNone = ir::kNoValue;
  std::string name_;
  ir::Model model_;
  std::map<std::string, ir::ValueId> blobs_;
  std::set<std::string> names_;
};

}  // namespace

Expected<ir::Model> read_mlmodel(std::span<const uint8_t> bytes, const std::string& name) {
  spec::Model m;
  PCV_RETURN_IF_ERROR(detail::parse_model(bytes, name, &m));
  NnReader r(name);
  return r.run(m);
}

Expected<ir::Model> load_mlmodel(const std::string& path) {
  if (is_directory(path)) return read_mlpackage(path);
  PCV_ASSIGN_OR_RETURN(auto bytes, read_file(path, kMaxModelBytes));
  return read_mlmodel(bytes, path);
}

}  // namespace pcv::coreml
