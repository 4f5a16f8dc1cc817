// Fine-tuning as a callback: pruning (and any pass that wants to recover accuracy) hands the
// model to a Finetuner, which trains it and calls `after_step` after every optimizer update
// with the live weights, so the pass can keep its masks applied and follow its sparsity
// schedule. The optimize module does not own a training loop: make_finetuner() adapts the
// trainer (pcv_train) when this build has it, and tests can pass their own.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "base/status.h"
#include "data/dataset.h"
#include "ir/graph.h"

namespace pcv::optimize {

// A trainable constant as the trainer holds it (valid during the callback only).
struct WeightRef {
  std::string name;  // the IR value name
  float* data = nullptr;
  size_t size = 0;  // elements
};
// Called after optimizer step `step` (0-based) of `total_steps`. It may write the weights
// (e.g. zero masked entries); the trainer picks the change up before the next forward.
using StepHook = std::function<void(int64_t step, int64_t total_steps, std::vector<WeightRef>& weights)>;

class Finetuner {
 public:
  virtual ~Finetuner() = default;
  // Optimizer steps run() will take (for schedules).
  virtual int64_t total_steps() const = 0;
  // Trains `model` in place (its f32 trainable constants), calling `after_step` after every
  // update. Errors: the trainer's (unsupported ops, data that fails to load).
  virtual Status run(ir::Model& model, const StepHook& after_step) = 0;
  // Short description for reports: "2 epochs x 7 steps, sgd lr 0.005, batch 32".
  virtual std::string describe() const = 0;
  // The model whose features distillation follows (FinetuneOptions::distill_weight); unset:
  // the model as run() gets it. Must outlive run().
  virtual void set_teacher(const ir::Model* teacher) { (void)teacher; }
};

struct FinetuneOptions {
  int epochs = 2;
  int batch_size = 32;
  float learning_rate = 0.005f;  // SGD with momentum 0.9, cosine decay to 0
  uint64_t seed = 1;
  bool augment = false;
  int threads = 2;
  size_t max_samples = 0;  // 0: all of the dataset
  // Feature distillation: with a weight > 0 the teacher (set_teacher, else the model as it
  // enters fine-tuning) runs beside the model,
  // and the loss adds  weight * |f - f_teacher|^2 / |f_teacher|^2  over the batch, f the input of
  // the last fully_connected (the classifier's features). It keeps what a pruned backbone
  // computes close to the original when the fine-tuning set is too small to relearn it.
  float distill_weight = 1.0f;
};

// Whether this build has the trainer (pcv_train) that make_finetuner uses.
bool finetune_available();
// A Finetuner over `dataset` (preprocessed like the model's input spec) using pcv_train's
// Program, Optimizer and loss. Errors: unsupported when the build has no trainer.
Expected<std::unique_ptr<Finetuner>> make_finetuner(std::shared_ptr<const data::Dataset> dataset,
                                                    const ir::Model& model, const FinetuneOptions& options);

}  // namespace pcv::optimize
