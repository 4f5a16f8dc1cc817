// pocketcv convert: any readable format in, any writable format out (through the IR).
#include "cli/command.h"
#include "formats/model_io.h"

namespace pcv::cli {
namespace {

Runner setup(CLI::App& sub) {
  auto in = std::make_shared<std::string>();
  auto to = std::make_shared<std::string>();
  auto out_path = std::make_shared<std::string>();
  auto fp16 = std::make_shared<bool>(false);
  auto fp32 = std::make_shared<bool>(false);
  sub.add_option("input", *in, "Source model (.pcv, .tflite, .mlmodel, .mlpackage, .onnx)")->required();
  sub.add_option("--to", *to, "Target format: tflite | coreml | mlpackage | onnx | pcv (default: from -o)");
  sub.add_option("-o,--output", *out_path, "Output path")->required();
  sub.add_flag("--fp16", *fp16, ".mlmodel: store weights as float16");
  sub.add_flag("--fp32", *fp32, ".mlpackage: keep float32 weights (default float16)");
  return [=]() -> Status {
    formats::Format format;
    if (!to->empty()) {
      PCV_ASSIGN_OR_RETURN(format, formats::format_from_name(*to));
    } else {
      PCV_ASSIGN_OR_RETURN(format, formats::format_from_path(*out_path));
    }
    PCV_ASSIGN_OR_RETURN(auto model, formats::load_model(*in));
    formats::SaveOptions o;
    o.fp16_weights = *fp16;
    o.fp32_weights = *fp32;
    PCV_RETURN_IF_ERROR(formats::save_model(model, *out_path, format, o));
    out("converted {} -> {} ({})\n", *in, *out_path, formats::format_name(format));
    return Status::ok();
  };
}

}  // namespace
PCV_REGISTER_COMMAND(convert, "Convert a model between .pcv, .tflite, .mlmodel, .mlpackage and .onnx", 40, setup);
}  // namespace pcv::cli
