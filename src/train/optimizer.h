// Optimizers: SGD (momentum, Nesterov, L2 weight decay), Adam (L2 weight decay), AdamW
// (decoupled weight decay). Updates follow PyTorch's formulas so runs can be compared:
//   SGD:   g' = g + wd * w;  v = mu * v + g';  w -= lr * (nesterov ? g' + mu * v : v)
//          (mu = 0: w -= lr * g', no state)
//   Adam:  g' = g + wd * w;  m = b1 m + (1 - b1) g';  v = b2 v + (1 - b2) g'^2;
//          w -= lr * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)
//   AdamW: as Adam with g' = g, then also w -= lr * wd * w (before the Adam update).
// Weight decay touches only parameters with decay = true (filters and dense weights; not
// biases or batch-norm scales). Frozen parameters are skipped (their state is kept).
// State (per parameter: velocity, or m and v; plus the step count) is saved and restored by
// save_state/load_state for checkpoints: a resumed run continues bit for bit.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "base/status.h"
#include "train/program.h"

namespace pcv::train {

enum class OptimizerKind : uint8_t { kSgd, kAdam, kAdamW };
const char* optimizer_name(OptimizerKind k);  // "sgd", "adam", "adamw"
Expected<OptimizerKind> optimizer_from_name(const std::string& name);

struct OptimizerOptions {
  OptimizerKind kind = OptimizerKind::kSgd;
  float momentum = 0.9f;
  bool nesterov = false;
  float weight_decay = 0.0f;
  float beta1 = 0.9f, beta2 = 0.999f, epsilon = 1e-8f;
};

class Optimizer {
 public:
  // One state slot per parameter of `params` (matched by index and name later).
  Optimizer(const OptimizerOptions& options, const std::vector<Parameter>& params);

  // Applies one update with learning rate `lr` to every non-frozen parameter.
  void step(std::vector<Parameter>& params, float lr);
  int64_t steps() const { return t_; }
  const OptimizerOptions& options() const { return opt_; }

  std::vector<uint8_t> save_state() const;
  // Errors: invalid_argument when the state does not match (kind, names, sizes).
  Status load_state(std::span<const uint8_t> bytes);

 private:
  OptimizerOptions opt_;
  int64_t t_ = 0;
  std::vector<std::string> names_;
  std::vector<std::vector<float>> m_, v_;  // SGD uses m_ as the velocity
};

// Learning-rate schedules over optimizer steps, with linear warmup from ~0 to base_lr over
// warmup_steps, then:
//   kConstant: base_lr
//   kCosine:   min_lr + (base_lr - min_lr) * (1 + cos(pi * s / S)) / 2, s counted after the
//              warmup, S = total_steps - warmup_steps
//   kStep:     base_lr * gamma^floor(step / step_size)
enum class ScheduleKind : uint8_t { kConstant, kCosine, kStep };
Expected<ScheduleKind> schedule_from_name(const std::string& name);  // constant|cosine|step
const char* schedule_name(ScheduleKind k);

struct Schedule {
  ScheduleKind kind = ScheduleKind::kCosine;
  float base_lr = 0.01f;
  float min_lr = 0.0f;
  int64_t warmup_steps = 0;
  int64_t total_steps = 1;
  int64_t step_size = 1;  // kStep
  float gamma = 0.1f;     // kStep

  float lr_at(int64_t step) const;
};

}  // namespace pcv::train
