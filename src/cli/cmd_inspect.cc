// pocketcv inspect: what a model file holds.
#include <nlohmann/json.hpp>

#include <algorithm>
#include <map>
#include <optional>

#include "base/file.h"
#include "cli/command.h"
#include "formats/model_io.h"
#include "ir/graph.h"
#include "zoo/zoo.h"
#if PCV_TFLITE_AVAILABLE
#include "formats/tflite/op_map.h"
#include "formats/tflite/tflite_schema_generated.h"
#endif
#if PCV_COREML_AVAILABLE
#include "formats/coreml/common.h"
#include "formats/coreml/coreml.h"
#endif
#if PCV_ONNX_AVAILABLE
#include <google/protobuf/io/coded_stream.h>

#include "formats/onnx/common.h"
#include "formats/onnx/onnx.h"
#endif

namespace pcv::cli {
namespace {

nlohmann::json value_json(const ir::Value& v) {
  nlohmann::json j = {{"name", v.name}, {"dtype", ir::dtype_name(v.dtype)}, {"shape", v.shape}};
  if (!v.quant.empty()) {
    j["quantization"] = {{"scale", v.quant.scale}, {"zero_point", v.quant.zero_point}, {"axis", v.quant.axis}};
  }
  return j;
}

// The operators of a model file in its own format's terms: TFLite builtins, Core ML
// NeuralNetwork layers or ML Program ops (without `const`), ONNX op types; for .pcv the IR's
// ops. `transposes` counts the operators that only reorder data (TRANSPOSE, transpose,
// Transpose; the IR has none); unset when the file has operators this build cannot name or
// cannot be read as its extension says.
struct FileOps {
  std::map<std::string, int> counts;
  std::optional<int> transposes;
};

Expected<FileOps> file_ops(const std::string& path, formats::Format format, const ir::Graph& g) {
  FileOps f;
  switch (format) {
    case formats::Format::kPcv:
      for (const auto& n : g.nodes) f.counts[ir::op_name(n.op)]++;
      f.transposes = 0;
      return f;
    case formats::Format::kTflite: {
#if PCV_TFLITE_AVAILABLE
      PCV_ASSIGN_OR_RETURN(auto bytes, read_file(path));
      flatbuffers::Verifier v(bytes.data(), bytes.size(), 128, 10'000'000);
      if (!tflite::fb::VerifyModelBuffer(v)) return invalid_model(path + ": flatbuffer verification failed");
      const auto* m = tflite::fb::GetModel(bytes.data());
      const auto* codes = m->operator_codes();
      const auto* sgs = m->subgraphs();
      for (flatbuffers::uoffset_t si = 0; sgs && si < sgs->size(); ++si) {
        const auto* ops = sgs->Get(si)->operators();
        for (flatbuffers::uoffset_t i = 0; ops && i < ops->size(); ++i) {
          const uint32_t k = ops->Get(i)->opcode_index();
          if (!codes || k >= codes->size()) return invalid_model(path + ": opcode index out of range");
          const auto* c = codes->Get(k);
          const int32_t code = std::max<int32_t>(c->deprecated_builtin_code(), static_cast<int32_t>(c->builtin_code()));
          f.counts[tflite::builtin_name(code)]++;
        }
      }
      f.transposes = f.counts.count("TRANSPOSE") ? f.counts["TRANSPOSE"] : 0;
#endif
      return f;
    }
    case formats::Format::kMlmodel:
    case formats::Format::kMlpackage: {
#if PCV_COREML_AVAILABLE
      namespace spec = ::CoreML::Specification;
      // A package's model: where every .mlpackage writer (ours, coremltools) puts it.
      const std::string file =
          format == formats::Format::kMlpackage ? path + "/Data/com.apple.CoreML/model.mlmodel" : path;
      PCV_ASSIGN_OR_RETURN(auto bytes, read_file(file, coreml::kMaxModelBytes));
      spec::Model m;
      PCV_RETURN_IF_ERROR(coreml::detail::parse_model(bytes, file, &m));
      bool all_known = true;
      auto layers = [&](const google::protobuf::RepeatedPtrField<spec::NeuralNetworkLayer>& ls) {
        using L = spec::NeuralNetworkLayer;
        for (const auto& l : ls) {
          const char* name = nullptr;
          switch (l.layer_case()) {
            case L::kConvolution: name = "convolution"; break;
            case L::kPooling: name = "pooling"; break;
            case L::kActivation: name = "activation"; break;
            case L::kInnerProduct: name = "innerProduct"; break;
            case L::kBatchnorm: name = "batchnorm"; break;
            case L::kSoftmax: name = "softmax"; break;
            case L::kPadding: name = "padding"; break;
            case L::kUnary: name = "unary"; break;
            case L::kAdd: name = "add"; break;
            case L::kMultiply: name = "multiply"; break;
            case L::kScale: name = "scale"; break;
            case L::kBias: name = "bias"; break;
            case L::kReshape: name = "reshape"; break;
            case L::kFlatten: name = "flatten"; break;
            case L::kConcat: name = "concat"; break;
            case L::kClip: name = "clip"; break;
            case L::LAYER_NOT_SET: break;
          }
          all_known = all_known && name != nullptr;  // not in our schema subset (permute, ...)
          f.counts[name ? name : "(other)"]++;
        }
      };
      if (m.has_neuralnetwork()) layers(m.neuralnetwork().layers());
      if (m.has_neuralnetworkclassifier()) layers(m.neuralnetworkclassifier().layers());
      if (m.has_mlprogram()) {
        for (const auto& [name, fn] : m.mlprogram().functions()) {
          auto it = fn.block_specializations().find(fn.opset());
          if (it == fn.block_specializations().end()) continue;
          for (const auto& op : it->second.operations()) {
            if (op.type() != "const") f.counts[op.type()]++;
          }
        }
        f.transposes = f.counts.count("transpose") ? f.counts["transpose"] : 0;
      } else if (all_known) {
        f.transposes = 0;
      }
#endif
      return f;
    }
    case formats::Format::kOnnx: {
#if PCV_ONNX_AVAILABLE
      PCV_ASSIGN_OR_RETURN(auto bytes, read_file(path, onnx::kMaxOnnxBytes));
      onnx::detail::pb::ModelProto m;
      google::protobuf::io::CodedInputStream in(bytes.data(), static_cast<int>(bytes.size()));
      in.SetRecursionLimit(onnx::kMaxProtoDepth);
      if (!m.ParseFromCodedStream(&in)) return invalid_model(path + ": not an ONNX model");
      for (const auto& n : m.graph().node()) f.counts[n.op_type()]++;
      f.transposes = f.counts.count("Transpose") ? f.counts["Transpose"] : 0;
#endif
      return f;
    }
  }
  return f;
}

std::string counts_text(const std::map<std::string, int>& counts) {
  std::string s;
  for (const auto& [op, n] : counts) s += fmt::format("{}{} x{}", s.empty() ? "" : ", ", op, n);
  return s;
}

Runner setup(CLI::App& sub) {
  auto path = std::make_shared<std::string>();
  auto json = std::make_shared<bool>(false);
  auto layers = std::make_shared<bool>(false);
  auto native = std::make_shared<bool>(false);
  sub.add_option("model", *path, "Model file (.pcv, .tflite, .mlmodel, .mlpackage, .onnx)")->required();
  sub.add_flag("--json", *json, "Print JSON");
  sub.add_flag("--layers", *layers, "List every layer");
  sub.add_flag("--native", *native, "Describe the file in its own format's terms (ops, versions, layers)");
  return [=]() -> Status {
    PCV_ASSIGN_OR_RETURN(auto model, formats::load_model(*path));
    const ir::Graph& g = model.graph;
    std::map<std::string, int> census;
    for (auto& n : g.nodes) census[ir::op_name(n.op)]++;
    // The file's own operators when its extension names the format (load_model also reads
    // files by content); informational, so a file they cannot be counted in just lacks them.
    const auto format = formats::format_from_path(*path);
    FileOps fops;
    if (format) {
      if (auto f = file_ops(*path, *format, g)) fops = std::move(*f);
    }
    const auto& s = model.input_spec;
    if (*json) {
      nlohmann::json j;
      j["file"] = *path;
      j["format"] = format ? nlohmann::json(formats::format_name(*format)) : nlohmann::json(nullptr);
      j["file_bytes"] = bytes_on_disk(*path);
      j["name"] = model.metadata.name;
      j["description"] = model.metadata.description;
      for (auto i : g.inputs) j["inputs"].push_back(value_json(g.value(i)));
      for (auto o : g.outputs) j["outputs"].push_back(value_json(g.value(o)));
      j["parameters"] = g.parameter_count();
      j["parameter_bytes"] = g.parameter_bytes();
      j["macs"] = zoo::count_macs(g);
      j["ops"] = census;
      j["file_ops"] = fops.counts;
      j["transposes"] = fops.transposes ? nlohmann::json(*fops.transposes) : nlohmann::json(nullptr);
      j["input_spec"] = {{"height", s.height}, {"width", s.width}, {"channels", s.channels},
                         {"color", ir::color_order_name(s.color)}, {"mean", s.mean}, {"std", s.std},
                         {"labels", s.labels}};
      if (*layers) {
        for (auto& n : g.nodes) {
          j["layers"].push_back({{"name", n.name}, {"op", ir::op_name(n.op)},
                                 {"output", value_json(g.value(n.outputs[0]))},
                                 {"attributes", ir::attrs_to_string(n.attrs)}});
        }
      }
      out("{}\n", j.dump(2));
      return Status::ok();
    }
    if (*native) {
      PCV_ASSIGN_OR_RETURN(auto text, formats::describe_file(*path));
      out("{}", text);
      return Status::ok();
    }
    out("model      {}\n", model.metadata.name.empty() ? "(unnamed)" : model.metadata.name);
    if (!model.metadata.description.empty()) out("           {}\n", model.metadata.description);
    out("file       {} ({})\n", *path, human_bytes(bytes_on_disk(*path)));
    for (auto i : g.inputs) {
      const auto& v = g.value(i);
      out("input      {}: {} {}\n", v.name, ir::dtype_name(v.dtype), ir::shape_to_string(v.shape));
    }
    for (auto o : g.outputs) {
      const auto& v = g.value(o);
      out("output     {}: {} {}\n", v.name, ir::dtype_name(v.dtype), ir::shape_to_string(v.shape));
    }
    if (s.is_image()) {
      out("preprocess {}x{} {}, (pixel - [{:g} {:g} {:g}]) / [{:g} {:g} {:g}]\n", s.height, s.width,
          ir::color_order_name(s.color), s.mean[0], s.mean[1], s.mean[2], s.std[0], s.std[1], s.std[2]);
    }
    if (!s.labels.empty()) {
      std::string l;
      for (size_t i = 0; i < s.labels.size() && i < 8; ++i) l += (i ? ", " : "") + s.labels[i];
      if (s.labels.size() > 8) l += fmt::format(", ... ({} in all)", s.labels.size());
      out("labels     {}\n", l);
    }
    out("parameters {} ({})\n", human_count(g.parameter_count()), human_bytes(g.parameter_bytes()));
    out("compute    {:.3f} GFLOP per image\n", 2.0 * static_cast<double>(zoo::count_macs(g)) / 1e9);
    out("layers     {}: {}\n", g.nodes.size(), counts_text(census));
    if (format && *format != formats::Format::kPcv && !fops.counts.empty()) {
      int total = 0;
      for (const auto& [op, n] : fops.counts) total += n;
      out("file ops   {} ({}): {}\n", total, formats::format_name(*format), counts_text(fops.counts));
    }
    out("transposes {}\n", fops.transposes ? std::to_string(*fops.transposes) : "unknown");
    if (*layers) {
      out("\n{:<4} {:<32} {:<16} {:<22} {}\n", "#", "name", "op", "output", "params");
      for (size_t i = 0; i < g.nodes.size(); ++i) {
        const auto& n = g.nodes[i];
        int64_t params = 0;
        for (auto in : n.inputs) {
          if (in != ir::kNoValue && g.value(in).is_constant()) params += g.value(in).data.num_elements();
        }
        const auto& v = g.value(n.outputs[0]);
        out("{:<4} {:<32} {:<16} {:<22} {}\n", i, n.name, ir::op_name(n.op),
            fmt::format("{}{}", ir::dtype_name(v.dtype), ir::shape_to_string(v.shape)), params);
      }
    }
    return Status::ok();
  };
}

}  // namespace
PCV_REGISTER_COMMAND(inspect, "Show a model's inputs, outputs, layers, parameters and metadata", 80, setup);
}  // namespace pcv::cli
