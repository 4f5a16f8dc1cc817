// pocketcv optimize: quantize (fp16, dynamic int8, full int8 with calibration), prune
// (magnitude with fine-tuning, or structured), palettize; writes OUT and prints the size /
// accuracy report (table, or JSON with --json).
#include <sstream>

#include "base/file.h"
#include "cli/command.h"
#include "formats/model_io.h"
#include "optimize/optimize.h"

namespace pcv::cli {
namespace {

std::set<std::string> split_list(const std::string& s) {
  std::set<std::string> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) {
    if (!item.empty()) out.insert(item);
  }
  return out;
}

Runner setup(CLI::App& sub) {
  struct Args {
    std::string in, out, quantize, io = "float", calibration, method = "minmax", finetune_data, schedule = "polynomial";
    std::string exclude, eval_data, prune_scope = "channel";
    size_t calibration_size = 200, eval_size = 1000;
    float prune = 0.f, percentile = 99.99f;
    bool structured = false, json = false, prune_depthwise = false, no_recalibrate = false;
    int finetune_epochs = 2, palettize = 0, finetune_batch = 32;
    float finetune_lr = 0.005f;
  };
  auto a = std::make_shared<Args>();
  sub.add_option("input", a->in, "Model to optimize (.pcv, .tflite, .mlmodel, .mlpackage, .onnx)")->required();
  sub.add_option("-o,--output", a->out, "Output; the extension picks the format (.pcv, .tflite, .mlmodel, .mlpackage)")
      ->required();
  sub.add_option("--quantize", a->quantize, "fp16 | dynamic | int8");
  sub.add_option("--io", a->io, "Model input/output type with --quantize int8: float | int8 | uint8 (default float)");
  sub.add_option("--calibration", a->calibration,
                 "Calibration images: DIR/<class>/*.jpg, or fashion-mnist[:train] (default: Fashion-MNIST for 28x28x1 "
                 "models, else --eval-data)");
  sub.add_option("--calibration-size", a->calibration_size, "Calibration images to use (default 200)");
  sub.add_option("--calibration-method", a->method, "minmax | percentile | entropy (default minmax)");
  sub.add_option("--percentile", a->percentile, "Percentile for --calibration-method percentile (default 99.99)");
  sub.add_option("--prune", a->prune, "Target sparsity in [0, 1) (with --prune-structured: fraction of channels)");
  sub.add_flag("--prune-structured", a->structured, "Remove whole channels (a smaller dense model)");
  sub.add_option("--prune-scope", a->prune_scope,
                 "Where the magnitude threshold applies: channel (each output channel loses the same share; the "
                 "default), layer (each weight tensor), global (one threshold over all)");
  sub.add_flag("--prune-depthwise", a->prune_depthwise, "Prune depthwise filters too (kept by default)");
  sub.add_flag("--no-recalibrate", a->no_recalibrate,
               "Do not recalibrate the pruned layers' channel statistics (on --finetune-data or --calibration); "
               "prune gradually during fine-tuning instead (--schedule)");
  sub.add_option("--finetune-data", a->finetune_data, "Fine-tune while pruning on DIR/<class>/*.jpg or fashion-mnist");
  sub.add_option("--finetune-epochs", a->finetune_epochs, "Fine-tuning epochs (default 2)");
  sub.add_option("--finetune-batch", a->finetune_batch, "Fine-tuning batch size (default 32)");
  sub.add_option("--finetune-lr", a->finetune_lr, "Fine-tuning learning rate (default 0.005)");
  sub.add_option("--schedule", a->schedule, "Sparsity schedule while fine-tuning: polynomial | constant");
  sub.add_option("--palettize", a->palettize, "Cluster each weight tensor to 2^BITS values (1..8)");
  sub.add_option("--exclude", a->exclude, "Comma-separated layer (node) names to leave in float");
  sub.add_option("--eval-data", a->eval_data,
                 "Labelled data for accuracy: DIR/<class>/*.jpg or fashion-mnist (default: Fashion-MNIST test for "
                 "28x28x1 models)");
  sub.add_option("--eval-size", a->eval_size, "Evaluation images to use (default 1000)");
  sub.add_flag("--json", a->json, "Print the report as JSON");
  return [a]() -> Status {
    optimize::OptimizeOptions o;
    PCV_ASSIGN_OR_RETURN(o.quantize, optimize::quantize_mode_from_name(a->quantize));
    PCV_ASSIGN_OR_RETURN(o.io, optimize::io_type_from_name(a->io));
    PCV_ASSIGN_OR_RETURN(o.calibration.method, optimize::calibration_method_from_name(a->method));
    PCV_ASSIGN_OR_RETURN(o.schedule, optimize::schedule_kind_from_name(a->schedule));
    PCV_ASSIGN_OR_RETURN(auto format, formats::format_from_path(a->out));
    (void)format;
    PCV_RETURN_IF_ERROR(check_output_dir(a->out));  // before minutes of calibration or fine-tuning
    o.calibration.percentile = a->percentile;
    o.calibration_data = a->calibration;
    o.calibration_size = a->calibration_size;
    o.prune = a->prune;
    o.prune_structured = a->structured;
    PCV_ASSIGN_OR_RETURN(o.prune_scope, optimize::prune_scope_from_name(a->prune_scope));
    o.prune_depthwise = a->prune_depthwise;
    o.prune_recalibrate = !a->no_recalibrate;
    o.finetune_data = a->finetune_data;
    o.finetune.epochs = a->finetune_epochs;
    o.finetune.batch_size = a->finetune_batch;
    o.finetune.learning_rate = a->finetune_lr;
    o.palettize_bits = a->palettize;
    o.exclude = split_list(a->exclude);
    o.eval_data = a->eval_data;
    o.eval_size = a->eval_size;
    if (o.quantize == optimize::QuantizeMode::kNone && o.prune == 0.f && o.palettize_bits == 0) {
      return invalid_argument("nothing to do: give --quantize, --prune or --palettize");
    }
    if (a->structured && o.prune == 0.f) return invalid_argument("--prune-structured needs --prune FRACTION");
    o.progress = [](const std::string& s) { err("{}\n", s); };
    PCV_ASSIGN_OR_RETURN(auto model, formats::load_model(a->in));
    PCV_ASSIGN_OR_RETURN(auto report, optimize::optimize_model(model, a->in, a->out, o));
    if (a->json) {
      out("{}\n", optimize::report_json(report));
    } else {
      out("{}", optimize::report_table(report));
    }
    return Status::ok();
  };
}

}  // namespace
PCV_REGISTER_COMMAND(optimize, "Quantize, prune or palettize a model, with a size/accuracy report", 50, setup);
}  // namespace pcv::cli
