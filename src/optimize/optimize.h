// The optimize stage end to end (what `pocketcv optimize` runs): prune (optionally with
// fine-tuning) -> prepare for inference (fold batch norm, fuse activations) -> palettize ->
// quantize (fp16 | dynamic | int8 with calibration) -> write OUT (format from the extension)
// -> report (sizes, accuracy, agreement, latency, per-layer error, warnings).
//
// Output formats: .tflite (int8 and fp16 / int8 weights behind DEQUANTIZE as TFLite writes
// them), .pcv (the IR as is), .mlmodel (weights fp16 / linear 8-bit / lookup table by the
// step: Core ML stores activations in float, so int8 becomes 8-bit weights), .mlpackage
// (palettize: constexpr_lut_to_dense weights, dynamic / int8: constexpr_affine_dequantize int8
// weights, both decompressing to fp16 (iOS 16, opset CoreML6); fp16: fp16 weights; else fp32). The optimized variant is evaluated from the file
// read back (what a user ships) when the format can be read, else from memory.
#pragma once

#include <cstdint>
#include <functional>
#include <set>
#include <string>

#include "base/status.h"
#include "ir/graph.h"
#include "optimize/calibration.h"
#include "optimize/finetune.h"
#include "optimize/passes.h"
#include "optimize/report.h"

namespace pcv::optimize {

enum class QuantizeMode : uint8_t { kNone, kFp16, kDynamic, kInt8 };
const char* quantize_mode_name(QuantizeMode m);  // "none", "fp16", "dynamic", "int8"
Expected<QuantizeMode> quantize_mode_from_name(const std::string& name);

struct OptimizeOptions {
  QuantizeMode quantize = QuantizeMode::kNone;
  IoType io = IoType::kFloat;
  // Calibration (int8): an image folder or "fashion-mnist[:train]"; empty: the eval data, or
  // Fashion-MNIST train for 28x28x1 models, or random inputs (with a warning).
  std::string calibration_data;
  size_t calibration_size = 200;
  CalibrationOptions calibration;
  // Pruning: sparsity (or channel fraction with `structured`) in [0, 1); 0 = off.
  float prune = 0.f;
  bool prune_structured = false;
  PruneScope prune_scope = PruneScope::kChannel;
  // Channel recalibration (recalibrate_channels) on up to recalibration_size images of the
  // fine-tuning data, else of the calibration data; then fine-tuning holds the masks.
  bool prune_recalibrate = true;
  size_t recalibration_size = 32;
  bool prune_depthwise = false;       // depthwise filters (9 weights per channel) are kept by default
  std::string finetune_data;  // image folder / fashion-mnist[:train]; empty: no fine-tuning
  FinetuneOptions finetune;
  SparsitySchedule::Kind schedule = SparsitySchedule::Kind::kPolynomial;
  Finetuner* finetuner = nullptr;  // overrides finetune_data (tests)
  int palettize_bits = 0;          // 0 = off, else 1..8
  std::set<std::string> exclude;   // node names every step leaves alone
  // Evaluation: an image folder or "fashion-mnist[:train]"; empty: Fashion-MNIST test for
  // 28x28x1 models, else the calibration samples, else random inputs (no accuracy).
  std::string eval_data;
  size_t eval_size = 1000;
  int latency_runs = 15;
  size_t layer_samples = 8;
  bool report = true;  // false: only transform and write
  std::function<void(const std::string&)> progress;  // progress lines (stderr in the CLI)
};

// Optimizes `model`, writes `output_path` (empty: not written; evaluated from memory) and
// returns the report; *optimized (optional) gets the optimized IR.
Expected<Report> optimize_model(const ir::Model& model, const std::string& model_name,
                                const std::string& output_path, const OptimizeOptions& options,
                                ir::Model* optimized = nullptr);

// Writes `model` to `path` in the format of its extension, honoring the step (fp16 / 8-bit /
// lookup-table weights for Core ML).
Status save_optimized(const ir::Model& model, const std::string& path, QuantizeMode quantize, int palettize_bits);

}  // namespace pcv::optimize
