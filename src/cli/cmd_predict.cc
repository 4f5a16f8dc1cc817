// pocketcv predict MODEL IMAGE... [--top-k K] [--json] [--trace] [--threads N] [--max-memory SIZE]
//
// One block per image: "label score" lines, highest first (a "== IMAGE" header when there
// are several images). --trace adds where the time went: decode, preprocess, inference with
// every layer, postprocess. The first image that cannot be read stops the command (exit 1,
// the message names the file); blocks already printed stay.
#include <nlohmann/json.hpp>

#include <algorithm>

#include "cli/command.h"
#include "formats/model_io.h"
#include "predict/names.h"
#include "predict/predictor.h"

namespace pcv::cli {
namespace {

nlohmann::json trace_json(const predict::PredictionTrace& t) {
  nlohmann::json j = {{"source_size", {t.source_height, t.source_width}},
                      {"input_shape", {t.input_height, t.input_width, t.input_channels}},
                      {"input_dtype", t.input_dtype},
                      {"decode_ms", t.decode_ms},
                      {"preprocess_ms", t.preprocess_ms},
                      {"inference_ms", t.inference_ms},
                      {"postprocess_ms", t.postprocess_ms},
                      {"total_ms", t.total_ms},
                      {"layers", nlohmann::json::array()}};
  for (const auto& l : t.layers) {
    j["layers"].push_back({{"name", l.name}, {"op", l.op}, {"kernel", l.kernel},
                           {"output_shape", l.output_shape}, {"ms", l.ms}});
  }
  return j;
}

void print_trace(const predict::PredictionTrace& t) {
  out("\ntrace: decoded {}x{} -> input {}x{}x{} {}\n", t.source_width, t.source_height, t.input_width,
      t.input_height, t.input_channels, t.input_dtype);
  const double total = std::max(1e-9, t.total_ms);
  auto row = [&](const char* stage, double ms) {
    out("  {:<12} {:>9.3f} ms {:>6.1f}%\n", stage, ms, 100.0 * ms / total);
  };
  row("decode", t.decode_ms);
  row("preprocess", t.preprocess_ms);
  row("inference", t.inference_ms);
  row("postprocess", t.postprocess_ms);
  out("  {:<12} {:>9.3f} ms\n", "total", t.total_ms);
  if (t.layers.empty()) return;
  double layer_total = 0;
  for (const auto& l : t.layers) layer_total += l.ms;
  out("\n  {:>3}  {:<40} {:<16} {:<18} {:>9} {:>6}  {}\n", "#", "layer", "op", "output", "ms", "%", "kernel");
  for (size_t i = 0; i < t.layers.size(); ++i) {
    const auto& l = t.layers[i];
    const std::string name = predict::short_layer_name(l.name, 40);
    out("  {:>3}  {:<40} {:<16} {:<18} {:>9.3f} {:>5.1f}%  {}\n", i, name, l.op,
        ir::shape_to_string(l.output_shape), l.ms, 100.0 * l.ms / std::max(1e-9, layer_total), l.kernel);
  }
}

Runner setup(CLI::App& sub) {
  auto model_path = std::make_shared<std::string>();
  auto images = std::make_shared<std::vector<std::string>>();
  auto k = std::make_shared<int>(3);
  auto threads = std::make_shared<int>(1);
  auto json = std::make_shared<bool>(false);
  auto trace = std::make_shared<bool>(false);
  auto reference = std::make_shared<bool>(false);
  auto warmup = std::make_shared<int>(0);
  auto max_memory = std::make_shared<uint64_t>(0);
  sub.add_option("model", *model_path, "Model (.pcv, .tflite, .mlmodel, .mlpackage, .onnx)")->required();
  sub.add_option("images", *images, "JPEG or PNG pictures")->required();
  sub.add_option("--top-k,-k", *k, "Classes to show per image")->capture_default_str()->check(CLI::Range(1, 100000));
  sub.add_option("--threads", *threads, "Threads")->capture_default_str()->check(CLI::Range(1, 64));
  sub.add_flag("--json", *json, "Print JSON");
  sub.add_flag("--trace", *trace, "Show where the time went: decode, preprocess, each layer, postprocess");
  sub.add_option("--warmup", *warmup, "Untimed runs first (steady-state trace)")->capture_default_str()->check(CLI::Range(0, 1000));
  sub.add_flag("--reference", *reference, "Reference kernels only");
  add_max_memory_option(sub, *max_memory);
  return [=]() -> Status {
    PCV_ASSIGN_OR_RETURN(ir::Model model, formats::load_model(*model_path, {.max_bytes = *max_memory}));
    predict::PredictorOptions po;
    po.threads = *threads;
    if (*max_memory > 0) po.max_memory_bytes = static_cast<int64_t>(*max_memory);
    po.profile = *trace;
    po.fast_kernels = !*reference;
    po.warmup_runs = *warmup;
    auto created = predict::Predictor::create(std::move(model), po);
    if (!created) return created.status().with_context(*model_path);
    auto predictor = std::move(created).value();
    nlohmann::json j = {{"model", *model_path}, {"predictions", nlohmann::json::array()}};
    Status first_error;
    for (size_t i = 0; i < images->size(); ++i) {
      const std::string& path = (*images)[i];
      auto p = predictor->predict_file(path, *k);
      if (!p) {
        first_error = p.status();
        break;
      }
      if (*json) {
        nlohmann::json e = {{"image", path}, {"top", nlohmann::json::array()}};
        for (const auto& c : p->top) e["top"].push_back({{"label", c.label}, {"index", c.index}, {"score", c.score}});
        if (*trace) e["trace"] = trace_json(p->trace);
        j["predictions"].push_back(std::move(e));
        continue;
      }
      if (images->size() > 1) out("{}== {}\n", i ? "\n" : "", path);
      for (const auto& c : p->top) out("{} {:.4f}\n", c.label, c.score);
      if (*trace) print_trace(p->trace);
    }
    if (*json && (first_error.is_ok() || !j["predictions"].empty())) out("{}\n", j.dump(2));
    std::fflush(stdout);
    return first_error;
  };
}

}  // namespace
PCV_REGISTER_COMMAND(predict, "Classify images: 'dog 0.92' with the prediction trace", 60, setup);
}  // namespace pcv::cli
