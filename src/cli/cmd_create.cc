// pocketcv create: a zoo model with seeded random weights.
#include "cli/command.h"
#include "formats/model_io.h"
#include "zoo/zoo.h"

namespace pcv::cli {
namespace {

Runner setup(CLI::App& sub) {
  auto o = std::make_shared<zoo::ZooOptions>();
  auto out_path = std::make_shared<std::string>();
  auto labels = std::make_shared<std::vector<std::string>>();
  sub.add_option("--arch", o->arch, "Architecture: simple_cnn | mobilenet_v2")->capture_default_str();
  sub.add_option("--width", o->width, "MobileNetV2 width multiplier (e.g. 0.35, 0.5, 1.0)")->capture_default_str();
  sub.add_option("--size", o->size, "Input height = width in pixels")->capture_default_str();
  sub.add_option("--channels", o->channels, "Input channels: 3 (RGB) or 1 (gray)")->capture_default_str();
  sub.add_option("--classes", o->classes, "Number of classes")->capture_default_str();
  sub.add_option("--labels", *labels, "Class names, comma separated")->delimiter(',');
  sub.add_option("--seed", o->seed, "Random seed for the initial weights")->capture_default_str();
  sub.add_option("-o,--output", *out_path, "Output model (.pcv, .tflite, .mlmodel, .mlpackage, .onnx)")->required();
  return [o, out_path, labels]() -> Status {
    if (!labels->empty()) {
      o->labels = *labels;
      if (o->classes == 2 && labels->size() != 2) o->classes = static_cast<int>(labels->size());
    }
    PCV_ASSIGN_OR_RETURN(auto model, zoo::create_model(*o));
    PCV_RETURN_IF_ERROR(formats::save_model(model, *out_path));
    const auto& g = model.graph;
    out("created {} ({} input {}x{}x{}, {} classes): {} parameters, {:.3f} GFLOP -> {}\n", model.metadata.name,
        o->arch, o->size, o->size, o->channels, o->classes, human_count(g.parameter_count()),
        2.0 * static_cast<double>(zoo::count_macs(g)) / 1e9, *out_path);
    return Status::ok();
  };
}

}  // namespace
PCV_REGISTER_COMMAND(create, "Create a zoo model (simple_cnn, mobilenet_v2) with seeded random weights", 10, setup);
}  // namespace pcv::cli
