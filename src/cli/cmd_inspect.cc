// pocketcv inspect: what a model file holds.
#include <nlohmann/json.hpp>

#include <filesystem>
#include <map>

#include "base/file.h"
#include "cli/command.h"
#include "formats/model_io.h"
#include "ir/graph.h"
#include "zoo/zoo.h"

namespace pcv::cli {
namespace {

int64_t path_bytes(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    int64_t n = 0;
    for (auto& e : std::filesystem::recursive_directory_iterator(path, ec)) {
      if (e.is_regular_file()) n += static_cast<int64_t>(e.file_size());
    }
    return n;
  }
  return static_cast<int64_t>(std::filesystem::file_size(path, ec));
}

nlohmann::json value_json(const ir::Value& v) {
  nlohmann::json j = {{"name", v.name}, {"dtype", ir::dtype_name(v.dtype)}, {"shape", v.shape}};
  if (!v.quant.empty()) {
    j["quantization"] = {{"scale", v.quant.scale}, {"zero_point", v.quant.zero_point}, {"axis", v.quant.axis}};
  }
  return j;
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
    const auto& s = model.input_spec;
    if (*json) {
      nlohmann::json j;
      j["file"] = *path;
      j["format"] = formats::format_name(*formats::format_from_path(*path));
      j["file_bytes"] = path_bytes(*path);
      j["name"] = model.metadata.name;
      j["description"] = model.metadata.description;
      for (auto i : g.inputs) j["inputs"].push_back(value_json(g.value(i)));
      for (auto o : g.outputs) j["outputs"].push_back(value_json(g.value(o)));
      j["parameters"] = g.parameter_count();
      j["parameter_bytes"] = g.parameter_bytes();
      j["macs"] = zoo::count_macs(g);
      j["ops"] = census;
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
    out("file       {} ({})\n", *path, human_bytes(path_bytes(*path)));
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
    std::string ops;
    for (auto& [op, n] : census) ops += fmt::format("{}{} x{}", ops.empty() ? "" : ", ", op, n);
    out("layers     {}: {}\n", g.nodes.size(), ops);
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
