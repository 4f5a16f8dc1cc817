// The trainer: epochs over a dataset with a stratified train/validation split, training
// augmentation, validation with the model's own evaluation preprocessing, metrics per epoch,
// a checkpoint per epoch (resumable), the best-validation model, and the training trace.
//
// Data: an image folder (DIR/<class>/*.jpg|png) or, when data_dir is empty, Fashion-MNIST
// (IDX, /usr/share/datasets/fashion-mnist): the 60k training images are split into train/val,
// and the best model is finally evaluated on the 10k test images (TrainResult::test_accuracy).
//
// Model: a zoo architecture (simple_cnn | mobilenet_v2, with width and size), or with
// init_model a pretrained model of any readable format: dequantized, its head replaced by a
// dense layer for the dataset's classes (transfer.h); its input spec (size, mean/std) is kept.
// freeze_backbone trains only the head. Then the backbone's features are computed once per
// image (eval preprocessing, no augmentation: the cache is only valid for fixed inputs) and
// the head trains on the cached features, which costs microseconds per image instead of a
// backbone forward. fine_tune_epochs > 0 then unfreezes everything and continues at
// fine_tune_lr on images, with augmentation.
//
// Outputs (paths from output_path "DIR/name.ext"):
//   output_path              the best-validation model (any format save_model writes)
//   DIR/name.ckpt            checkpoint after every epoch (atomic): model + optimizer state +
//                            epoch + phase + global step + history; resume_path continues it
//   DIR/name.trace.csv/.json the training trace, rewritten after every epoch
// Determinism: the sample order and augmentation of epoch e come from (seed, e), dropout from
// (seed, step), every reduction is order-fixed: a seed gives identical weights for 1 or 2
// threads, and an interrupted run resumed from its checkpoint ends with the same weights as an
// uninterrupted one.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "base/status.h"
#include "ir/graph.h"

namespace pcv::train {

struct TrainOptions {
  std::string data_dir;  // empty: Fashion-MNIST
  std::string fashion_mnist_dir = "/usr/share/datasets/fashion-mnist";
  std::string arch = "simple_cnn";
  float width = 1.0f;
  int size = 0;  // 0: 28 for Fashion-MNIST, 224 for photo folders (or the init model's)
  int epochs = 10;
  int batch = 32;
  float lr = 0.0f;  // 0: 0.01 for SGD, 0.001 for Adam/AdamW
  std::string optimizer = "sgd";
  float momentum = 0.9f;
  bool nesterov = false;
  float weight_decay = 5e-4f;
  std::string schedule = "cosine";
  float warmup_epochs = 0.0f;
  float label_smoothing = 0.0f;
  double val_split = 0.2;
  uint64_t seed = 1;
  std::string init_model;
  bool freeze_backbone = false;
  int fine_tune_epochs = 0;
  float fine_tune_lr = 0.0f;  // 0: lr / 10
  std::string resume_path;
  // The model -o gets: the best validation accuracy so far (ties keep the earlier epoch), or,
  // with keep_last, every epoch's (the last one's at the end: with a validation set too small
  // to rank epochs, e.g. after fine-tuning).
  bool keep_last = false;
  int threads = 2;
  // Time the first steps with `threads` and with 1 thread and keep the faster (results are
  // identical either way); false: always use `threads`.
  bool autotune_threads = true;
  int64_t limit = 0;  // use only this many images (seeded choice), 0: all
  bool augment = true;
  std::string output_path = "model.pcv";
  // Fashion-MNIST: evaluate the best model on only the first N test images (0: all 10k).
  int64_t test_limit = 0;
  // Stop after this many epochs of this run (tests of resume); 0: no stop.
  int stop_after_epochs = 0;
};

// Checks ranges (epochs >= 1, batch 1..4096, lr > 0 when given, size, val_split in (0, 1),
// threads 1..64, ...). Errors: invalid_argument naming the option.
Status validate(const TrainOptions& options);

struct EpochMetrics {
  int epoch = 0;        // 1-based, over all phases
  std::string phase;    // "train", "head" (frozen backbone), "fine-tune"
  double loss = 0, accuracy = 0;
  double val_loss = 0, val_accuracy = 0;
  double lr = 0;        // at the end of the epoch
  double images_per_sec = 0;
  double seconds = 0;
};

struct TrainResult {
  std::vector<EpochMetrics> epochs;
  int best_epoch = 0;
  double best_val_accuracy = 0;
  double test_accuracy = -1;  // Fashion-MNIST test set (best model), else -1
  int64_t train_samples = 0, val_samples = 0, test_samples = 0;
  std::vector<std::string> class_names;
  std::string model_path, checkpoint_path, trace_csv_path, trace_json_path;
  double seconds = 0;
  double feature_cache_seconds = 0;
  ir::Model final_model;  // weights after the last epoch (not necessarily the best)
};

// Progress callbacks (all optional), called from the training thread.
struct TrainCallbacks {
  std::function<void(const std::string&)> message;
  // batch progress inside an epoch: (epoch, phase, samples done, samples total, running loss,
  // running accuracy, seconds since the epoch started)
  std::function<void(int, const std::string&, int64_t, int64_t, double, double, double)> batch;
  std::function<void(const EpochMetrics&)> epoch;
};

Expected<TrainResult> train(const TrainOptions& options, const TrainCallbacks& callbacks = {});

// Paths derived from the output model path.
std::string checkpoint_path_for(const std::string& model_path);
std::string trace_path_for(const std::string& model_path, const std::string& ext);  // "csv"

}  // namespace pcv::train
