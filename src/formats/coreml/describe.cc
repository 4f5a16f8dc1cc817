// describe_coreml: the text behind `pocketcv inspect m.mlmodel | m.mlpackage`. It reads only
// the protobuf (and, for packages, the blob headers), so it also describes models pocketcv
// cannot convert.
#include <fmt/core.h>

#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>

#include "base/file.h"
#include "formats/coreml/common.h"
#include "formats/coreml/coreml.h"
#include "formats/coreml/weights.h"

namespace pcv::coreml {
namespace {

using namespace detail;
namespace mil = ::CoreML::Specification::MILSpec;

const char* os_of_version(int v) {
  switch (v) {
    case 1: return "iOS 11";
    case 2: return "iOS 11.2";
    case 3: return "iOS 12";
    case 4: return "iOS 13";
    case 5: return "iOS 14";
    case 6: return "iOS 15";
    case 7: return "iOS 16";
    case 8: return "iOS 17";
    case 9: return "iOS 18";
  }
  return "unknown OS";
}

std::string feature_type(const spec::FeatureType& t) {
  if (t.has_imagetype()) {
    const auto& i = t.imagetype();
    const char* cs = i.colorspace() == spec::ImageFeatureType::RGB         ? "RGB"
                     : i.colorspace() == spec::ImageFeatureType::BGR       ? "BGR"
                     : i.colorspace() == spec::ImageFeatureType::GRAYSCALE ? "GRAYSCALE"
                                                                           : "other";
    return fmt::format("image {}x{} {}", i.width(), i.height(), cs);
  }
  if (t.has_multiarraytype()) {
    std::string s = "multiarray (";
    for (int i = 0; i < t.multiarraytype().shape_size(); ++i) s += fmt::format("{}{}", i ? ", " : "", t.multiarraytype().shape(i));
    const auto dt = t.multiarraytype().datatype();
    return s + ") " + (dt == spec::ArrayFeatureType::FLOAT32 ? "float32" : dt == spec::ArrayFeatureType::FLOAT16 ? "float16" : dt == spec::ArrayFeatureType::DOUBLE ? "double" : "int");
  }
  if (t.has_stringtype()) return "string";
  if (t.has_dictionarytype()) return t.dictionarytype().has_stringkeytype() ? "dictionary string -> double" : "dictionary int64 -> double";
  if (t.has_int64type()) return "int64";
  if (t.has_doubletype()) return "double";
  return "other";
}

struct WeightTotals {
  std::map<std::string, std::pair<int64_t, int64_t>> by_storage;  // storage -> (values, bytes)
  void add(const spec::WeightParams& w) {
    const std::string s = weight_storage_name(w);
    if (s == "empty") return;
    int64_t n = w.floatvalue_size(), bytes = w.floatvalue_size() * 4;
    if (s == "fp16") n = static_cast<int64_t>(w.float16value().size() / 2), bytes = static_cast<int64_t>(w.float16value().size());
    if (!w.rawvalue().empty()) {
      const auto bits = static_cast<int64_t>(std::max<uint64_t>(1, w.quantization().numberofbits()));
      bytes = static_cast<int64_t>(w.rawvalue().size());
      n = bytes * 8 / bits;
    }
    by_storage[s].first += n;
    by_storage[s].second += bytes;
  }
  std::string text() const {
    std::string out;
    int64_t total = 0, bytes = 0;
    for (const auto& [k, v] : by_storage) {
      out += fmt::format("    {:8} {:>10} values {:>10} bytes\n", k, v.first, v.second);
      total += v.first, bytes += v.second;
    }
    return out + fmt::format("    total    {:>10} values {:>10} bytes\n", total, bytes);
  }
};

std::string list(const google::protobuf::RepeatedPtrField<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : ", ") + x;
  return s;
}

void describe_nn(const google::protobuf::RepeatedPtrField<spec::NeuralNetworkLayer>& layers,
                 const google::protobuf::RepeatedPtrField<spec::NeuralNetworkPreprocessing>& pre, std::string* out) {
  for (const auto& p : pre) {
    if (p.has_scaler()) {
      const auto& s = p.scaler();
      *out += fmt::format("  preprocessing ({}): scale {:g}, bias R {:g} G {:g} B {:g} gray {:g}\n", p.featurename(),
                          s.channelscale(), s.redbias(), s.greenbias(), s.bluebias(), s.graybias());
    } else if (p.has_meanimage()) {
      *out += fmt::format("  preprocessing ({}): mean image\n", p.featurename());
    }
  }
  WeightTotals totals;
  *out += fmt::format("  layers ({}):\n", layers.size());
  for (const auto& l : layers) {
    std::string what;
    if (l.has_convolution()) {
      const auto& c = l.convolution();
      what = fmt::format("convolution {} <- {}/{} groups, kernel {}x{}, stride {}x{}, {} padding, weights {}",
                         c.outputchannels(), c.kernelchannels() * std::max<uint64_t>(1, c.ngroups()), std::max<uint64_t>(1, c.ngroups()),
                         c.kernelsize_size() ? c.kernelsize(0) : 3, c.kernelsize_size() > 1 ? c.kernelsize(1) : 3,
                         c.stride_size() ? c.stride(0) : 1, c.stride_size() > 1 ? c.stride(1) : 1, c.has_same() ? "same" : "valid",
                         weight_storage_name(c.weights()));
      totals.add(c.weights());
      totals.add(c.bias());
    } else if (l.has_innerproduct()) {
      const auto& p = l.innerproduct();
      what = fmt::format("innerProduct {} -> {}, weights {}", p.inputchannels(), p.outputchannels(), weight_storage_name(p.weights()));
      totals.add(p.weights());
      totals.add(p.bias());
    } else if (l.has_batchnorm()) {
      what = fmt::format("batchnorm {} channels", l.batchnorm().channels());
      for (const auto* w : {&l.batchnorm().gamma(), &l.batchnorm().beta(), &l.batchnorm().mean(), &l.batchnorm().variance()}) totals.add(*w);
    } else if (l.has_activation()) {
      const auto& a = l.activation();
      what = a.has_relu() ? "activation ReLU" : a.has_leakyrelu() ? "activation leakyReLU" : a.has_sigmoid() ? "activation sigmoid"
             : a.has_linear() ? fmt::format("activation linear {:g}x + {:g}", a.linear().alpha(), a.linear().beta())
             : a.has_sigmoidhard() ? "activation sigmoidHard" : "activation (other)";
    } else if (l.has_pooling()) {
      const auto& p = l.pooling();
      what = fmt::format("pooling {}{}", p.type() == spec::PoolingLayerParams::MAX ? "max" : p.type() == spec::PoolingLayerParams::AVERAGE ? "average" : "L2",
                         p.globalpooling() ? " global" : fmt::format(" {}x{}", p.kernelsize_size() ? p.kernelsize(0) : 3, p.kernelsize_size() > 1 ? p.kernelsize(1) : 3));
    } else if (l.has_softmax()) {
      what = "softmax";
    } else if (l.has_flatten()) {
      what = l.flatten().mode() == spec::FlattenLayerParams::CHANNEL_LAST ? "flatten channel-last" : "flatten channel-first";
    } else if (l.has_add()) {
      what = "add";
    } else if (l.has_multiply()) {
      what = "multiply";
    } else if (l.has_concat()) {
      what = "concat";
    } else if (l.has_padding()) {
      what = "padding";
    } else if (l.has_unary()) {
      what = fmt::format("unary {}", static_cast<int>(l.unary().type()));
    } else if (l.has_scale()) {
      what = "scale";
      totals.add(l.scale().scale());
    } else if (l.has_bias()) {
      what = "bias";
      totals.add(l.bias().bias());
    } else if (l.has_reshape()) {
      what = "reshape";
    } else if (l.has_clip()) {
      what = fmt::format("clip [{:g}, {:g}]", l.clip().minval(), l.clip().maxval());
    } else {
      what = fmt::format("layer type {} (not read by pocketcv)", static_cast<int>(l.layer_case()));
    }
    *out += fmt::format("    {:32} {}   ({} -> {})\n", l.name(), what, list(l.input()), list(l.output()));
  }
  *out += "  weights:\n" + totals.text();
}

void describe_mil(const mil::Program& p, const std::string& weights_path, std::string* out) {
  for (const auto& [fname, fn] : p.functions()) {
    *out += fmt::format("  function {} (opset {}):\n", fname, fn.opset());
    for (const auto& in : fn.inputs()) {
      std::string dims;
      for (const auto& d : in.type().tensortype().dimensions()) dims += fmt::format("{}{}", dims.empty() ? "" : ", ", d.constant().size());
      *out += fmt::format("    input {} tensor ({})\n", in.name(), dims);
    }
    auto bit = fn.block_specializations().find(fn.opset());
    if (bit == fn.block_specializations().end()) continue;
    int64_t consts = 0, blob_consts = 0, const_values = 0;
    std::map<std::string, int> op_counts;
    std::string ops;
    for (const auto& op : bit->second.operations()) {
      if (op.type() == "const") {
        ++consts;
        auto vit = op.attributes().find("val");
        if (vit == op.attributes().end()) continue;
        const auto& val = vit->second;
        int64_t n = 1;
        for (const auto& d : val.type().tensortype().dimensions()) n *= static_cast<int64_t>(d.constant().size());
        const_values += n;
        blob_consts += val.has_blobfilevalue();
        continue;
      }
      ++op_counts[op.type()];
      if (op.type() == "classify") {
        auto cit = op.inputs().find("classes");
        if (cit != op.inputs().end() && cit->second.arguments_size() == 1) {
          std::string labels;
          const auto& items = cit->second.arguments(0).value().immediatevalue().list().values();
          for (int i = 0; i < items.size() && i < 20; ++i) {
            const auto& sv = items[i].immediatevalue().tensor().strings().values();
            labels += (labels.empty() ? "" : ", ") + (sv.empty() ? std::string("?") : sv[0]);
          }
          *out += fmt::format("    labels ({}): {}{}\n", items.size(), labels, items.size() > 20 ? ", ..." : "");
        }
      }
      std::string args;
      const std::map<std::string, mil::Argument> sorted(op.inputs().begin(), op.inputs().end());
      for (const auto& [k, a] : sorted) {
        for (const auto& b : a.arguments()) args += fmt::format("{}{}={}", args.empty() ? "" : ", ", k, b.has_value() ? "<value>" : b.name());
      }
      ops += fmt::format("    {:14} {:40} ({})\n", op.type(), op.outputs_size() ? op.outputs(0).name() : "", args);
    }
    *out += fmt::format("    ops ({}):\n{}", bit->second.operations_size() - consts, ops);
    *out += fmt::format("    outputs: {}\n", list(bit->second.outputs()));
    *out += fmt::format("  constants: {} ({} in {}), {} values\n", consts, blob_consts, weights_path, const_values);
    std::string counts;
    for (const auto& [t, c] : op_counts) counts += fmt::format("{}{} {}", counts.empty() ? "" : ", ", t, c);
    *out += fmt::format("  op counts: {}\n", counts);
  }
}

}  // namespace

bool is_coreml_path(const std::string& path) {
  const std::string ext = file_extension(path.size() > 1 && path.back() == '/' ? path.substr(0, path.size() - 1) : path);
  return ext == ".mlmodel" || ext == ".mlpackage";
}

Expected<std::string> describe_coreml(const std::string& path) {
  std::string model_path = path, weights_path;
  if (is_directory(path)) {
    model_path = path + "/Data/com.apple.CoreML/model.mlmodel";
    const std::string manifest = path + "/Manifest.json";
    if (file_exists(manifest)) {
      PCV_ASSIGN_OR_RETURN(std::string text, read_text_file(manifest));
      const auto j = nlohmann::json::parse(text, nullptr, false);
      if (!j.is_discarded() && j.contains("rootModelIdentifier") && j.contains("itemInfoEntries")) {
        const auto& items = j["itemInfoEntries"];
        const auto root = j["rootModelIdentifier"];
        if (root.is_string() && items.is_object() && items.contains(root.get<std::string>())) {
          const auto& item = items[root.get<std::string>()];
          if (item.is_object() && item.contains("path") && item["path"].is_string()) {
            const std::string p = item["path"].get<std::string>();
            if (p.find("..") == std::string::npos) model_path = path + "/Data/" + p;
          }
        }
      }
    }
    weights_path = std::filesystem::path(model_path).parent_path().string() + "/weights/weight.bin";
  }
  PCV_ASSIGN_OR_RETURN(auto bytes, read_file(model_path, kMaxModelBytes));
  spec::Model m;
  PCV_RETURN_IF_ERROR(parse_model(bytes, model_path, &m));
  std::string out = fmt::format("Core ML model: {}\n", path);
  const char* type = m.has_neuralnetworkclassifier() ? "NeuralNetworkClassifier"
                     : m.has_neuralnetwork()          ? "NeuralNetwork"
                     : m.has_mlprogram()              ? "ML Program"
                                                      : "other (not read by pocketcv)";
  out += fmt::format("  type: {}\n", type);
  out += fmt::format("  specification version: {} ({}+)\n", m.specificationversion(), os_of_version(m.specificationversion()));
  const auto& d = m.description();
  const auto& md = d.metadata();
  if (!md.shortdescription().empty()) out += fmt::format("  description: {}\n", md.shortdescription());
  if (!md.author().empty()) out += fmt::format("  author: {}\n", md.author());
  if (!md.versionstring().empty()) out += fmt::format("  version: {}\n", md.versionstring());
  if (!md.license().empty()) out += fmt::format("  license: {}\n", md.license());
  out += "  inputs:\n";
  for (const auto& f : d.input()) out += fmt::format("    {}: {}\n", f.name(), feature_type(f.type()));
  out += "  outputs:\n";
  for (const auto& f : d.output()) out += fmt::format("    {}: {}\n", f.name(), feature_type(f.type()));
  if (!d.predictedfeaturename().empty()) {
    out += fmt::format("  predicted feature: {}, probabilities: {}\n", d.predictedfeaturename(), d.predictedprobabilitiesname());
  }
  if (m.has_neuralnetworkclassifier()) {
    const auto& c = m.neuralnetworkclassifier();
    std::string labels;
    int shown = 0;
    for (const auto& l : c.stringclasslabels().vector()) {
      if (shown++ < 20) labels += (labels.empty() ? "" : ", ") + l;
    }
    if (c.int64classlabels().vector_size()) labels = fmt::format("{} integer labels", c.int64classlabels().vector_size());
    out += fmt::format("  labels ({}): {}{}\n", c.stringclasslabels().vector_size() + c.int64classlabels().vector_size(), labels,
                       shown > 20 ? ", ..." : "");
    describe_nn(c.layers(), c.preprocessing(), &out);
  } else if (m.has_neuralnetwork()) {
    describe_nn(m.neuralnetwork().layers(), m.neuralnetwork().preprocessing(), &out);
  } else if (m.has_mlprogram()) {
    describe_mil(m.mlprogram(), weights_path, &out);
    if (!weights_path.empty() && file_exists(weights_path)) {
      PCV_ASSIGN_OR_RETURN(auto w, read_file(weights_path, uint64_t{1} << 33));
      out += fmt::format("  weight file: {} bytes, {} blobs\n", w.size(),
                         w.size() >= 4 ? (w[0] | (w[1] << 8) | (w[2] << 16) | (static_cast<uint32_t>(w[3]) << 24)) : 0u);
    }
  }
  return out;
}

}  // namespace pcv::coreml
