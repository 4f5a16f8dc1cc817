#include "optimize/optimize.h"

#include <fmt/core.h>


#include <filesystem>
#include <random>

#include "data/idx.h"
#include "data/image_folder.h"
#include "formats/model_io.h"
#if defined(PCV_COREML_AVAILABLE)
#include "formats/coreml/coreml.h"
#endif

namespace pcv::optimize {

namespace fs = std::filesystem;

const char* quantize_mode_name(QuantizeMode m) {
  switch (m) {
    case QuantizeMode::kNone: return "none";
    case QuantizeMode::kFp16: return "fp16";
    case QuantizeMode::kDynamic: return "dynamic";
    case QuantizeMode::kInt8: return "int8";
  }
  return "?";
}

Expected<QuantizeMode> quantize_mode_from_name(const std::string& name) {
  if (name.empty() || name == "none") return QuantizeMode::kNone;
  if (name == "fp16" || name == "float16") return QuantizeMode::kFp16;
  if (name == "dynamic" || name == "dynamic-range") return QuantizeMode::kDynamic;
  if (name == "int8" || name == "full-int8") return QuantizeMode::kInt8;
  return invalid_argument(fmt::format("unknown quantization '{}' (fp16, dynamic, int8)", name));
}

Status save_optimized(const ir::Model& model, const std::string& path, QuantizeMode quantize, int palettize_bits) {
  PCV_ASSIGN_OR_RETURN(formats::Format format, formats::format_from_path(path));
#if defined(PCV_COREML_AVAILABLE)
  if (format == formats::Format::kMlmodel) {
    coreml::MlModelOptions o;
    if (palettize_bits > 0) {
      o.weights = coreml::WeightFormat::kLookupTable;
      o.lookup_table_bits = palettize_bits;
    } else if (quantize == QuantizeMode::kFp16) {
      o.weights = coreml::WeightFormat::kFloat16;
    } else if (quantize == QuantizeMode::kDynamic || quantize == QuantizeMode::kInt8) {
      o.weights = coreml::WeightFormat::kLinear8;
    }
    return coreml::save_mlmodel(model, path, o);
  }
  if (format == formats::Format::kMlpackage) {
    // Compressed weights decompress to fp16 (Core ML's usual compute precision for them).
    coreml::MlPackageOptions o;
    if (palettize_bits > 0) {
      o.weights = coreml::PackageWeightFormat::kLookupTable;
      o.lookup_table_bits = palettize_bits;
    } else if (quantize == QuantizeMode::kDynamic || quantize == QuantizeMode::kInt8) {
      o.weights = coreml::PackageWeightFormat::kAffineInt8;
    }
    o.fp16 = quantize == QuantizeMode::kFp16 || o.weights != coreml::PackageWeightFormat::kFloat;
    return coreml::save_mlpackage(model, path, o);
  }
#endif
  formats::SaveOptions so;
  so.fp32_weights = quantize != QuantizeMode::kFp16;
  return formats::save_model(model, path, format, so);
}

namespace {

bool is_28x28x1(const ir::Model& m) {
  auto geo = input_geometry(m);
  return geo && geo->height == 28 && geo->width == 28 && geo->channels == 1;
}

int model_classes(const ir::Model& m) {
  if (m.graph.outputs.empty()) return 0;
  const ir::Shape& s = m.graph.value(m.graph.outputs[0]).shape;
  return s.empty() ? 0 : static_cast<int>(s.back());
}

Expected<std::shared_ptr<const data::Dataset>> open_dataset(const std::string& path) {
  if (path.rfind("fashion-mnist", 0) == 0) {
    PCV_ASSIGN_OR_RETURN(auto ds, data::IdxDataset::fashion_mnist(path != "fashion-mnist:test"));
    return std::shared_ptr<const data::Dataset>(std::make_shared<data::IdxDataset>(std::move(ds)));
  }
  PCV_ASSIGN_OR_RETURN(auto ds, data::ImageFolderDataset::open(path));
  return std::shared_ptr<const data::Dataset>(std::make_shared<data::ImageFolderDataset>(std::move(ds)));
}

std::string temp_path(const std::string& ext) {
  std::random_device rd;
  return (fs::temp_directory_path() / fmt::format("pcv_optimize_{:08x}{}", rd(), ext)).string();
}

}  // namespace

Expected<Report> optimize_model(const ir::Model& model, const std::string& model_name, const std::string& output_path,
                                const OptimizeOptions& o, ir::Model* optimized) {
  auto say = [&](const std::string& s) {
    if (o.progress) o.progress(s);
  };
  Report report;
  report.model = model_name;
  report.output = output_path;
  if (o.palettize_bits < 0 || o.palettize_bits > 8) return invalid_argument("--palettize takes 1..8 bits");
  if (!(o.prune >= 0.f && o.prune < 1.f)) return invalid_argument(fmt::format("--prune {} must be in [0, 1)", o.prune));
  if (o.io != IoType::kFloat && o.quantize != QuantizeMode::kInt8) {
    return invalid_argument("--io int8 / uint8 needs --quantize int8");
  }
  ir::Model work = model;
  PCV_RETURN_IF_ERROR(ir::infer_shapes(work.graph));
  ir::Model reference = model;
  PCV_RETURN_IF_ERROR(prepare_for_inference(reference.graph));
  const int classes = model_classes(reference);

  // ---- pruning (on the trainable graph, before batch-norm folding) ----
  if (o.prune > 0.f) {
    std::unique_ptr<Finetuner> owned;
    Finetuner* ft = o.finetuner;
    if (!ft && !o.finetune_data.empty()) {
      PCV_ASSIGN_OR_RETURN(auto ds, open_dataset(o.finetune_data));
      PCV_ASSIGN_OR_RETURN(owned, make_finetuner(ds, work, o.finetune));
      ft = owned.get();
    }
    PCV_RETURN_IF_ERROR(dequantize_constants(work.graph).status());
    if (o.prune_structured) {
      StructuredPruneOptions so;
      so.fraction = o.prune;
      so.exclude = o.exclude;
      std::map<std::string, std::vector<int64_t>> kept;
      PCV_ASSIGN_OR_RETURN(int removed, prune_structured(work.graph, so, &kept));
      report.steps.push_back(fmt::format("structured pruning: {} channels removed from {} convs ({:.0f}% of each)",
                                         removed, kept.size(), o.prune * 100.0));
      if (kept.empty()) report.warnings.push_back("structured pruning found no prunable convolution");
      if (ft) {
        say(fmt::format("fine-tuning the pruned model: {}", ft->describe()));
        PCV_RETURN_IF_ERROR(ft->run(work, {}));
        report.steps.push_back("fine-tuned: " + ft->describe());
      }
    } else {
      PruneOptions po;
      po.sparsity = o.prune;
      po.exclude = o.exclude;
      po.scope = o.prune_scope;
      po.include_depthwise = o.prune_depthwise;
      SparsitySchedule sched;
      sched.kind = o.schedule;
      sched.end = 0;
      if (ft) say(fmt::format("pruning to {:.0f}% while fine-tuning: {}", o.prune * 100.0, ft->describe()));
      // Recalibration data: the fine-tuning images, else the calibration images.
      const std::string recal_source = !o.finetune_data.empty() ? o.finetune_data : o.calibration_data;
      SampleSet recal;
      if (o.prune_recalibrate && !recal_source.empty()) {
        PCV_ASSIGN_OR_RETURN(recal, load_samples(recal_source, work, o.recalibration_size));
      }
      PruneMasks masks;
      if (!recal.inputs.empty()) {
        // One-shot to the target, recalibrate, then fine-tune with the masks held, distilling
        // the features of the unpruned model.
        const ir::Model unpruned = work;
        PCV_ASSIGN_OR_RETURN(masks, prune_magnitude(work.graph, po));
        std::set<std::string> names;
        for (const auto& entry : masks) names.insert(entry.first);
        say(fmt::format("recalibrating {} pruned layers on {} images", names.size(), recal.size()));
        PCV_ASSIGN_OR_RETURN(int layers, recalibrate_channels(unpruned, work, names, recal.inputs));
        report.steps.push_back(fmt::format("channel recalibration of {} pruned layers on {} images ({})", layers,
                                           recal.size(), recal.source));
        if (ft) {
          ft->set_teacher(&unpruned);
          sched.kind = SparsitySchedule::Kind::kConstant;
          PCV_ASSIGN_OR_RETURN(masks, prune_magnitude_finetuned(work, po, sched, ft));
          ft->set_teacher(nullptr);
        }
      } else {
        PCV_ASSIGN_OR_RETURN(masks, prune_magnitude_finetuned(work, po, sched, ft));
      }
      report.sparsity = weight_sparsity(work.graph, masks);
      report.steps.push_back(fmt::format("magnitude pruning to {:.1f}% sparsity ({} weights, per {}{}){}",
                                         *report.sparsity * 100.0, masks.size(), prune_scope_name(po.scope),
                                         ft ? fmt::format(", {} schedule", sched.kind == SparsitySchedule::Kind::kPolynomial ? "polynomial" : "constant") : "",
                                         ft ? ", fine-tuned: " + ft->describe() : ", one-shot (no --finetune-data)"));
      if (!ft) report.warnings.push_back("pruning without fine-tuning loses accuracy: give --finetune-data");
      if (fs::path(output_path).extension() == ".pcv") {
        report.notes.push_back(".pcv stores the pruned tensors sparse (a bit per weight plus the nonzero ones)");
      } else {
        report.notes.push_back("magnitude pruning keeps the tensor sizes in this format: the saving shows in the gzip column");
      }
    }
  }
  PCV_RETURN_IF_ERROR(prepare_for_inference(work.graph));

  // ---- palettization ----
  if (o.palettize_bits > 0) {
    PalettizeOptions po;
    po.bits = o.palettize_bits;
    po.exclude = o.exclude;
    PCV_ASSIGN_OR_RETURN(PalettizationInfo info, palettize(work.graph, po));
    report.steps.push_back(fmt::format("palettization: {} weight tensors clustered to {} values ({} bits, k-means)",
                                       info.size(), 1 << o.palettize_bits, o.palettize_bits));
    const std::string ext = fs::path(output_path).extension().string();
    if (ext != ".mlmodel" && ext != ".mlpackage") {
      report.notes.push_back("palettized weights are stored as f32 values of the lookup table outside Core ML "
                             "(the saving shows in the gzip column)");
    }
  }

  // ---- samples ----
  SampleSet calib, eval;
  std::string eval_path = o.eval_data;
  if (eval_path.empty() && is_28x28x1(work)) eval_path = "fashion-mnist:test";
  if (!eval_path.empty()) {
    say(fmt::format("loading up to {} evaluation samples from {}", o.eval_size, eval_path));
    PCV_ASSIGN_OR_RETURN(eval, load_samples(eval_path, reference, o.eval_size));
  }

  // ---- quantization ----
  switch (o.quantize) {
    case QuantizeMode::kNone: break;
    case QuantizeMode::kFp16: {
      WeightPassOptions wo;
      wo.exclude = o.exclude;
      PCV_ASSIGN_OR_RETURN(int n, to_fp16_weights(work.graph, wo));
      report.steps.push_back(fmt::format("fp16 weights: {} tensors", n));
      break;
    }
    case QuantizeMode::kDynamic: {
      WeightPassOptions wo;
      wo.exclude = o.exclude;
      PCV_ASSIGN_OR_RETURN(int n, quantize_dynamic_range(work.graph, wo));
      report.steps.push_back(fmt::format("dynamic-range int8 weights (per channel, symmetric): {} tensors", n));
      break;
    }
    case QuantizeMode::kInt8: {
      std::string cpath = o.calibration_data;
      if (cpath.empty() && is_28x28x1(work)) cpath = "fashion-mnist:train";
      if (!cpath.empty()) {
        say(fmt::format("loading up to {} calibration samples from {}", o.calibration_size, cpath));
        PCV_ASSIGN_OR_RETURN(calib, load_samples(cpath, reference, o.calibration_size));
      } else if (!eval.inputs.empty()) {
        report.warnings.push_back("no --calibration data: calibrating on the evaluation data");
        calib = eval;
        if (calib.inputs.size() > o.calibration_size) {
          calib.inputs.resize(o.calibration_size);
          calib.labels.resize(o.calibration_size);
        }
      } else {
        report.warnings.push_back("no --calibration data: calibrating on random inputs (expect poor accuracy)");
        calib = random_samples(reference, std::min<size_t>(o.calibration_size, 64), 7);
      }
      for (std::string& w : calibration_warnings(calib, classes)) report.warnings.push_back(std::move(w));
      say(fmt::format("calibrating ({}) on {} samples", calibration_method_name(o.calibration.method), calib.size()));
      ir::Model f32 = work;
      PCV_ASSIGN_OR_RETURN(auto ranges, calibrate(f32, calib.inputs, o.calibration));
      Int8Options io;
      io.io = o.io;
      io.exclude = o.exclude;
      PCV_ASSIGN_OR_RETURN(int n, quantize_int8(work.graph, ranges, io));
      report.steps.push_back(fmt::format("full int8: {} ops in int8, {} calibration on {} images from {}, I/O {}", n,
                                         calibration_method_name(o.calibration.method), calib.size(), calib.source,
                                         io_type_name(o.io)));
      break;
    }
  }
  if (optimized) *optimized = work;

  // ---- write ----
  ir::Model shipped = work;
  if (!output_path.empty()) {
    say(fmt::format("writing {}", output_path));
    PCV_RETURN_IF_ERROR(save_optimized(work, output_path, o.quantize, o.palettize_bits));
    auto back = formats::load_model(output_path);
    if (back) {
      shipped = std::move(*back);
    } else {
      report.warnings.push_back(fmt::format("{} does not read back ({}): evaluated from memory", output_path,
                                            back.status().message()));
    }
  }
  if (!o.report) return report;

  // ---- evaluate ----
  if (eval.inputs.empty()) eval = calib;
  if (eval.inputs.empty()) eval = random_samples(reference, 32, 11);
  report.eval_source = eval.source;
  report.eval_samples = static_cast<int>(eval.size());
  say(fmt::format("evaluating on {} samples", eval.size()));
  VariantReport fv;
  fv.name = "float";
  VariantReport ov;
  ov.name = o.quantize != QuantizeMode::kNone ? quantize_mode_name(o.quantize)
            : o.palettize_bits ? fmt::format("palette{}", o.palettize_bits)
            : o.prune > 0.f ? "pruned" : "optimized";
  if (!output_path.empty()) {
    // The float original in the same format, for the size columns.
    const std::string ext = fs::path(output_path).extension().string();
    const std::string tmp = temp_path(ext);
    PCV_RETURN_IF_ERROR(save_optimized(model, tmp, QuantizeMode::kNone, 0));
    PCV_RETURN_IF_ERROR(measure_file(tmp, &fv.file_bytes, &fv.gzip_bytes));
    std::error_code ec;
    fs::remove_all(tmp, ec);
    ov.path = output_path;
    PCV_RETURN_IF_ERROR(measure_file(output_path, &ov.file_bytes, &ov.gzip_bytes));
  }
  PCV_ASSIGN_OR_RETURN(auto ref_out, run_samples(reference, eval));
  PCV_ASSIGN_OR_RETURN(auto opt_out, run_samples(shipped, eval));
  score_variant(ref_out, ref_out, eval, &fv);
  score_variant(opt_out, ref_out, eval, &ov);
  PCV_ASSIGN_OR_RETURN(fv.latency_ms, median_latency_ms(reference, eval, o.latency_runs));
  PCV_ASSIGN_OR_RETURN(ov.latency_ms, median_latency_ms(shipped, eval, o.latency_runs));
  if (ov.constant_class && !fv.constant_class) {
    const int c = *ov.constant_class;
    const std::string label = c >= 0 && static_cast<size_t>(c) < model.input_spec.labels.size()
                                  ? model.input_spec.labels[static_cast<size_t>(c)] : std::to_string(c);
    report.warnings.push_back(fmt::format("the {} model predicts the same class ('{}') for all {} samples, the float "
                                          "model does not: the optimization broke it (check calibration data and the "
                                          "per-layer view)", ov.name, label, ov.samples));
  }
  report.variants = {fv, ov};
  say("per-layer error view");
  PCV_ASSIGN_OR_RETURN(report.layers, layer_errors(reference, work, eval, o.layer_samples, &report.worst_layer));
  return report;
}

}  // namespace pcv::optimize
