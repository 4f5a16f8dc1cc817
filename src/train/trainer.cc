// The trainer (contract in trainer.h).
#include "train/trainer.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>

#include "base/file.h"
#include "base/thread_pool.h"
#include "data/idx.h"
#include "data/image_folder.h"
#include "data/loader.h"
#include "data/rng.h"
#include "data/split.h"
#include "formats/model_io.h"
#include "ir/pcv_format.h"
#include "train/evaluate.h"
#include "train/loss.h"
#include "train/optimizer.h"
#include "train/program.h"
#include "train/transfer.h"
#include "zoo/zoo.h"

namespace pcv::train {
namespace {

using Clock = std::chrono::steady_clock;
using json = nlohmann::json;

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

constexpr char kCheckpointMagic[8] = {'P', 'C', 'V', 'C', 'K', 'P', 'T', '1'};

struct Phase {
  std::string name;  // "train", "head", "fine-tune"
  int epochs = 0;
  float lr = 0;
  bool cached_features = false;
  bool frozen_backbone = false;
};

struct CheckpointState {
  int epochs_done = 0;  // over all phases
  int64_t global_step = 0;
  int best_epoch = 0;
  double best_val_accuracy = -1;
  std::vector<EpochMetrics> history;
  std::string phase;
  std::vector<uint8_t> optimizer_state;
  uint64_t seed = 0;
};

json metrics_to_json(const EpochMetrics& m) {
  return json{{"epoch", m.epoch}, {"phase", m.phase}, {"loss", m.loss}, {"accuracy", m.accuracy},
              {"val_loss", m.val_loss}, {"val_accuracy", m.val_accuracy}, {"lr", m.lr},
              {"images_per_sec", m.images_per_sec}, {"seconds", m.seconds}};
}

EpochMetrics metrics_from_json(const json& j) {
  EpochMetrics m;
  m.epoch = j.value("epoch", 0);
  m.phase = j.value("phase", "");
  m.loss = j.value("loss", 0.0);
  m.accuracy = j.value("accuracy", 0.0);
  m.val_loss = j.value("val_loss", 0.0);
  m.val_accuracy = j.value("val_accuracy", 0.0);
  m.lr = j.value("lr", 0.0);
  m.images_per_sec = j.value("images_per_sec", 0.0);
  m.seconds = j.value("seconds", 0.0);
  return m;
}

void put_u64(std::vector<uint8_t>& out, uint64_t v) {
  const size_t at = out.size();
  out.resize(at + 8);
  std::memcpy(out.data() + at, &v, 8);
}
void put_bytes(std::vector<uint8_t>& out, std::span<const uint8_t> b) {
  put_u64(out, b.size());
  if (b.empty()) return;
  const size_t at = out.size();
  out.resize(at + b.size());
  std::memcpy(out.data() + at, b.data(), b.size());
}

Status save_checkpoint(const std::string& path, const ir::Model& model, const CheckpointState& s) {
  json j;
  j["format"] = "pocketcv-checkpoint";
  j["version"] = 1;
  j["epochs_done"] = s.epochs_done;
  j["global_step"] = s.global_step;
  j["best_epoch"] = s.best_epoch;
  j["best_val_accuracy"] = s.best_val_accuracy;
  j["phase"] = s.phase;
  j["seed"] = s.seed;
  j["history"] = json::array();
  for (const EpochMetrics& m : s.history) j["history"].push_back(metrics_to_json(m));
  const std::string header = j.dump();
  PCV_ASSIGN_OR_RETURN(std::vector<uint8_t> model_bytes, ir::write_pcv(model));
  std::vector<uint8_t> out(kCheckpointMagic, kCheckpointMagic + 8);
  put_bytes(out, {reinterpret_cast<const uint8_t*>(header.data()), header.size()});
  put_bytes(out, model_bytes);
  put_bytes(out, s.optimizer_state);
  return write_file_atomic(path, out);
}

Status load_checkpoint(const std::string& path, ir::Model* model, CheckpointState* s) {
  PCV_ASSIGN_OR_RETURN(std::vector<uint8_t> bytes, read_file(path));
  size_t pos = 8;
  if (bytes.size() < 8 || std::memcmp(bytes.data(), kCheckpointMagic, 8) != 0) {
    return invalid_argument(fmt::format("{}: not a pocketcv checkpoint", path));
  }
  auto take = [&](std::span<const uint8_t>* out) -> bool {
    uint64_t n = 0;
    if (pos + 8 > bytes.size()) return false;
    std::memcpy(&n, bytes.data() + pos, 8);
    pos += 8;
    if (n > bytes.size() - pos) return false;
    *out = {bytes.data() + pos, static_cast<size_t>(n)};
    pos += static_cast<size_t>(n);
    return true;
  };
  std::span<const uint8_t> header, model_bytes, opt;
  if (!take(&header) || !take(&model_bytes) || !take(&opt)) {
    return invalid_argument(fmt::format("{}: truncated checkpoint", path));
  }
  json j = json::parse(header.begin(), header.end(), nullptr, false);
  if (j.is_discarded() || j.value("format", "") != "pocketcv-checkpoint") {
    return invalid_argument(fmt::format("{}: bad checkpoint header", path));
  }
  s->epochs_done = j.value("epochs_done", 0);
  s->global_step = j.value("global_step", int64_t{0});
  s->best_epoch = j.value("best_epoch", 0);
  s->best_val_accuracy = j.value("best_val_accuracy", -1.0);
  s->phase = j.value("phase", "");
  s->seed = j.value("seed", uint64_t{0});
  s->history.clear();
  for (const json& m : j.value("history", json::array())) s->history.push_back(metrics_from_json(m));
  s->optimizer_state.assign(opt.begin(), opt.end());
  PCV_ASSIGN_OR_RETURN(*model, ir::read_pcv(model_bytes, path));
  return Status::ok();
}

std::string csv_trace(const std::vector<EpochMetrics>& h) {
  std::string s = "epoch,phase,loss,accuracy,val_loss,val_accuracy,lr,images_per_sec,seconds\n";
  for (const EpochMetrics& m : h) {
    s += fmt::format("{},{},{:.6f},{:.6f},{:.6f},{:.6f},{:.6g},{:.2f},{:.3f}\n", m.epoch, m.phase, m.loss,
                     m.accuracy, m.val_loss, m.val_accuracy, m.lr, m.images_per_sec, m.seconds);
  }
  return s;
}

// Copies the constants of `from` whose names exist in `to` (same element count).
void copy_constants_by_name(const ir::Model& from, ir::Model* to) {
  for (const ir::Value& v : from.graph.values) {
    if (!v.is_constant()) continue;
    const ir::ValueId id = to->graph.find_value(v.name);
    if (id == ir::kNoValue) continue;
    ir::Value& dst = to->graph.value(id);
    if (dst.is_constant() && dst.data.num_elements() == v.data.num_elements()) dst.data = v.data.clone();
  }
}

// A model (features (N, C)) -> head: the head layers of `full` on a features input.
Expected<ir::Model> head_model(const ir::Model& full, int64_t channels) {
  ir::Model m;
  ir::Graph& g = m.graph;
  const ir::ValueId x = g.add_input("features", ir::DType::kF32, {1, channels});
  const ir::Graph& f = full.graph;
  const ir::ValueId wid = f.find_value("head/logits/weights");
  const ir::ValueId bid = f.find_value("head/logits/bias");
  PCV_ENSURE(wid != ir::kNoValue && bid != ir::kNoValue, StatusCode::kInternal, "head layers not found");
  const ir::ValueId w = g.add_constant("head/logits/weights", f.value(wid).data.clone(), {}, true);
  const ir::ValueId b = g.add_constant("head/logits/bias", f.value(bid).data.clone(), {}, true);
  const ir::ValueId y = g.add_node(ir::OpType::kFullyConnected, "head/logits", {x, w, b}, ir::FullyConnectedAttrs{});
  g.mark_output(g.add_node(ir::OpType::kSoftmax, "head/probabilities", {y}));
  PCV_RETURN_IF_ERROR(ir::infer_shapes(g));
  return m;
}

class Run {
 public:
  Run(const TrainOptions& o, const TrainCallbacks& cb) : o_(o), cb_(cb), pool_(o.threads) {}
  Expected<TrainResult> go();

 private:
  void message(const std::string& m) {
    if (cb_.message) cb_.message(m);
  }
  Status load_data();
  Status build_model();
  Status run_phase(const Phase& ph, int first_epoch, int phase_epoch_offset);
  Status run_cached_phase(const Phase& ph, int first_epoch, int phase_epoch_offset);
  Status end_epoch(EpochMetrics m, const Optimizer& opt, const std::string& phase);
  Status write_trace();
  OptimizerOptions optimizer_options() const;
  // Thread autotuning on the first steps of a run: steps 1-2 with the pool, 4-5 without
  // (0 and 3 warm up); the faster setting is kept. Safe because results do not depend on
  // the thread count. On an oversubscribed machine one thread can be several times faster.
  void tune_before_step(Program* p, int step);
  void tune_after_step(Program* p, int step, double seconds);
  bool tuned_ = false;
  bool use_pool_ = true;
  double tune_pool_s_ = 1e30, tune_single_s_ = 1e30;
  Schedule schedule_for(const Phase& ph, int64_t steps_per_epoch) const;

  TrainOptions o_;
  TrainCallbacks cb_;
  ThreadPool pool_;
  std::shared_ptr<const data::Dataset> dataset_, test_set_;
  std::vector<size_t> train_idx_, val_idx_;
  ir::Model model_;               // the current weights
  HeadReplacement transfer_;      // with init_model
  bool have_transfer_ = false;
  vision::Preprocess pre_;
  CheckpointState state_;
  bool resumed_ = false;
  std::vector<uint8_t> resume_optimizer_state_;
  std::string resume_phase_;
  TrainResult result_;
  int epochs_this_run_ = 0;
  bool stop_ = false;
};

void Run::tune_before_step(Program* p, int step) {
  if (tuned_ || o_.threads <= 1 || !o_.autotune_threads) return;
  p->set_thread_pool(step < 3 ? &pool_ : nullptr);
}

void Run::tune_after_step(Program* p, int step, double seconds) {
  if (tuned_ || o_.threads <= 1 || !o_.autotune_threads) return;
  if (step == 1 || step == 2) tune_pool_s_ = std::min(tune_pool_s_, seconds);
  if (step == 4 || step == 5) tune_single_s_ = std::min(tune_single_s_, seconds);
  if (step == 5) {
    tuned_ = true;
    const bool pool = tune_pool_s_ <= tune_single_s_;
    p->set_thread_pool(pool ? &pool_ : nullptr);
    use_pool_ = pool;
    message(fmt::format("threads: {} ms/step with {} threads, {} ms/step with 1: using {}", std::lround(tune_pool_s_ * 1e3),
                        o_.threads, std::lround(tune_single_s_ * 1e3), pool ? o_.threads : 1));
  }
}

Status Run::load_data() {
  if (o_.data_dir.empty()) {
    PCV_ASSIGN_OR_RETURN(auto train, data::IdxDataset::fashion_mnist(true, o_.fashion_mnist_dir));
    PCV_ASSIGN_OR_RETURN(auto test, data::IdxDataset::fashion_mnist(false, o_.fashion_mnist_dir));
    dataset_ = std::make_shared<data::IdxDataset>(std::move(train));
    test_set_ = std::make_shared<data::IdxDataset>(std::move(test));
  } else {
    PCV_ASSIGN_OR_RETURN(auto folder, data::ImageFolderDataset::open(o_.data_dir));
    if (folder.skipped() > 0) message(fmt::format("skipped {} unreadable image files", folder.skipped()));
    dataset_ = std::make_shared<data::ImageFolderDataset>(std::move(folder));
  }
  std::vector<size_t> all(dataset_->size());
  for (size_t i = 0; i < all.size(); ++i) all[i] = i;
  if (o_.limit > 0 && static_cast<size_t>(o_.limit) < all.size()) {
    data::Rng rng(o_.seed, 0x6c696d6974ull);  // "limit"
    rng.shuffle(&all);
    all.resize(static_cast<size_t>(o_.limit));
    std::sort(all.begin(), all.end());
  }
  std::vector<int> labels(all.size());
  for (size_t i = 0; i < all.size(); ++i) labels[i] = dataset_->label(all[i]);
  PCV_ASSIGN_OR_RETURN(data::Split split, data::stratified_split(labels, o_.val_split, o_.seed));
  for (size_t i : split.train) train_idx_.push_back(all[i]);
  for (size_t i : split.val) val_idx_.push_back(all[i]);
  PCV_ENSURE(!train_idx_.empty() && !val_idx_.empty(), StatusCode::kInvalidArgument,
             "{} images are too few for a train/validation split of {}", all.size(), o_.val_split);
  result_.train_samples = static_cast<int64_t>(train_idx_.size());
  result_.val_samples = static_cast<int64_t>(val_idx_.size());
  result_.class_names = dataset_->class_names();
  return Status::ok();
}

Status Run::build_model() {
  const auto& labels = dataset_->class_names();
  if (!o_.init_model.empty()) {
    PCV_ASSIGN_OR_RETURN(ir::Model init, formats::load_model(o_.init_model));
    PCV_ASSIGN_OR_RETURN(transfer_, replace_head(init, labels, o_.seed));
    have_transfer_ = true;
    message(fmt::format("transfer learning from {}: features '{}' ({} channels), {} head nodes replaced by a "
                        "dense layer for {} classes",
                        o_.init_model, transfer_.feature_name, transfer_.feature_channels, transfer_.removed_nodes,
                        labels.size()));
    model_ = transfer_.model;
  } else {
    zoo::ZooOptions z;
    z.arch = o_.arch;
    z.width = o_.width;
    z.size = o_.size > 0 ? o_.size : (o_.data_dir.empty() ? 28 : 224);
    z.channels = o_.data_dir.empty() ? 1 : 3;
    z.classes = static_cast<int>(labels.size());
    z.seed = o_.seed;
    z.labels = labels;
    PCV_ASSIGN_OR_RETURN(model_, zoo::create_model(z));
  }
  if (!o_.resume_path.empty()) {
    ir::Model ck;
    PCV_RETURN_IF_ERROR(load_checkpoint(o_.resume_path, &ck, &state_).with_context("--resume"));
    PCV_ENSURE(ck.graph.values.size() == model_.graph.values.size(), StatusCode::kInvalidArgument,
               "--resume {}: the checkpoint's model does not match these options (architecture, size, classes)",
               o_.resume_path);
    if (state_.seed != o_.seed) {
      message(fmt::format("warning: the checkpoint was made with --seed {}, this run uses {}", state_.seed, o_.seed));
    }
    model_ = std::move(ck);
    resumed_ = true;
    resume_optimizer_state_ = state_.optimizer_state;
    resume_phase_ = state_.phase;
    result_.epochs = state_.history;
    message(fmt::format("resumed from {} after epoch {}", o_.resume_path, state_.epochs_done));
  }
  PCV_ASSIGN_OR_RETURN(pre_, preprocess_for_model(model_));
  return Status::ok();
}

OptimizerOptions Run::optimizer_options() const {
  OptimizerOptions oo;
  oo.kind = optimizer_from_name(o_.optimizer).value();
  oo.momentum = o_.momentum;
  oo.nesterov = o_.nesterov;
  oo.weight_decay = o_.weight_decay;
  return oo;
}

Schedule Run::schedule_for(const Phase& ph, int64_t steps_per_epoch) const {
  Schedule s;
  s.kind = schedule_from_name(o_.schedule).value();
  s.base_lr = ph.lr;
  s.total_steps = std::max<int64_t>(1, steps_per_epoch * ph.epochs);
  s.warmup_steps = static_cast<int64_t>(std::lround(o_.warmup_epochs * static_cast<float>(steps_per_epoch)));
  s.step_size = std::max<int64_t>(1, steps_per_epoch * std::max(1, ph.epochs / 3));
  return s;
}

Status Run::write_trace() {
  result_.trace_csv_path = trace_path_for(o_.output_path, "csv");
  result_.trace_json_path = trace_path_for(o_.output_path, "json");
  PCV_RETURN_IF_ERROR(write_file_atomic(result_.trace_csv_path, csv_trace(result_.epochs)));
  json j;
  j["model"] = o_.output_path;
  j["data"] = o_.data_dir.empty() ? std::string("fashion-mnist") : o_.data_dir;
  j["options"] = {{"arch", have_transfer_ ? std::string("transfer") : o_.arch}, {"init", o_.init_model},
                  {"epochs", o_.epochs}, {"fine_tune_epochs", o_.fine_tune_epochs}, {"batch", o_.batch},
                  {"optimizer", o_.optimizer}, {"schedule", o_.schedule}, {"seed", o_.seed},
                  {"val_split", o_.val_split}, {"threads", o_.threads}, {"limit", o_.limit},
                  {"freeze_backbone", o_.freeze_backbone}, {"input_size", pre_.out_h}};
  j["classes"] = result_.class_names;
  j["train_samples"] = result_.train_samples;
  j["val_samples"] = result_.val_samples;
  j["epochs"] = json::array();
  for (const EpochMetrics& m : result_.epochs) j["epochs"].push_back(metrics_to_json(m));
  j["best_epoch"] = state_.best_epoch;
  j["best_val_accuracy"] = state_.best_val_accuracy;
  if (result_.test_accuracy >= 0) {
    j["test_accuracy"] = result_.test_accuracy;
    j["test_samples"] = result_.test_samples;
  }
  j["seconds"] = result_.seconds;
  return write_file_atomic(result_.trace_json_path, j.dump(2) + "\n");
}

Status Run::end_epoch(EpochMetrics m, const Optimizer& opt, const std::string& phase) {
  result_.epochs.push_back(m);
  state_.history = result_.epochs;
  state_.epochs_done = m.epoch;
  state_.phase = phase;
  state_.optimizer_state = opt.save_state();
  state_.seed = o_.seed;
  if (o_.keep_last || m.val_accuracy > state_.best_val_accuracy) {
    state_.best_val_accuracy = m.val_accuracy;
    state_.best_epoch = m.epoch;
    PCV_RETURN_IF_ERROR(formats::save_model(model_, o_.output_path).with_context("saving the best model"));
  }
  result_.checkpoint_path = checkpoint_path_for(o_.output_path);
  PCV_RETURN_IF_ERROR(save_checkpoint(result_.checkpoint_path, model_, state_));
  PCV_RETURN_IF_ERROR(write_trace());
  if (cb_.epoch) cb_.epoch(m);
  ++epochs_this_run_;
  if (o_.stop_after_epochs > 0 && epochs_this_run_ >= o_.stop_after_epochs) stop_ = true;
  return Status::ok();
}

Status Run::run_phase(const Phase& ph, int first_epoch, int phase_epoch_offset) {
  ProgramOptions po;
  po.batch = o_.batch;
  PCV_ASSIGN_OR_RETURN(auto prog, Program::create(model_, po, use_pool_ ? &pool_ : nullptr));
  prog->set_seed(o_.seed);
  if (ph.frozen_backbone) prog->set_frozen([](const std::string& n) { return !is_head_parameter(n); });
  Optimizer opt(optimizer_options(), prog->parameters());
  if (resumed_ && resume_phase_ == ph.name && phase_epoch_offset > 0) {
    PCV_RETURN_IF_ERROR(opt.load_state(resume_optimizer_state_).with_context("--resume"));
  }
  data::LoaderOptions lo;
  lo.batch_size = o_.batch;
  lo.shuffle = true;
  lo.seed = o_.seed;
  lo.threads = 1;  // the producer thread alone: decode overlaps compute without a spinning pool
  lo.preprocess = pre_;
  lo.augment = o_.augment;
  if (o_.data_dir.empty()) {
    // 28x28 centered clothing: horizontal flips only. Crops lose the garment's outline, and with
    // dropout 0.5 the small CNN underfits already (measured: mild 0.85-1.0 crops gave 0.895
    // test accuracy after 10 epochs).
    lo.augment_options.scale_min = 1.0f;
    lo.augment_options.ratio_min = 1.0f;
    lo.augment_options.ratio_max = 1.0f;
    lo.augment_options.brightness = lo.augment_options.contrast = lo.augment_options.saturation = 0.f;
  }
  PCV_ASSIGN_OR_RETURN(auto train_loader, data::DataLoader::create(dataset_, train_idx_, lo));
  data::LoaderOptions vo = lo;
  vo.shuffle = false;
  vo.augment = false;
  PCV_ASSIGN_OR_RETURN(auto val_loader, data::DataLoader::create(dataset_, val_idx_, vo));
  const int64_t steps_per_epoch = static_cast<int64_t>(train_loader->batches_per_epoch());
  const Schedule sched = schedule_for(ph, steps_per_epoch);
  const size_t classes = static_cast<size_t>(dataset_->num_classes());
  const size_t per_sample = prog->input_elems_per_sample();
  std::vector<float> probs;

  for (int pe = phase_epoch_offset; pe < ph.epochs && !stop_; ++pe) {
    const int epoch = first_epoch + pe;  // 1-based global epoch
    const auto t0 = Clock::now();
    train_loader->start_epoch(epoch);
    data::Batch b;
    double loss_sum = 0;
    int64_t correct = 0, seen = 0;
    float lr = sched.lr_at(opt.steps());
    int step_in_epoch = 0;
    while (true) {
      PCV_ASSIGN_OR_RETURN(bool more, train_loader->next(&b));
      if (!more) break;
      const auto ts = Clock::now();
      tune_before_step(prog.get(), step_in_epoch);
      PCV_ENSURE(b.images.size() == static_cast<size_t>(b.size) * per_sample, StatusCode::kInternal,
                 "batch of {} floats for {} samples of {}", b.images.size(), b.size, per_sample);
      std::memcpy(prog->input(), b.images.data(), b.images.size() * sizeof(float));
      prog->forward(Mode::kTrain, b.size, static_cast<uint64_t>(state_.global_step));
      float* dlogits = prog->output_grad(0);
      const LossResult lr_res = softmax_cross_entropy(static_cast<size_t>(b.size), static_cast<int>(classes),
                                                      prog->output(0), b.labels.data(), o_.label_smoothing,
                                                      1.f / static_cast<float>(b.size), dlogits);
      prog->backward();
      lr = sched.lr_at(opt.steps());
      opt.step(prog->parameters(), lr);
      ++state_.global_step;
      tune_after_step(prog.get(), step_in_epoch++, seconds_since(ts));
      loss_sum += lr_res.loss_sum;
      correct += lr_res.correct;
      seen += b.size;
      if (cb_.batch) {
        cb_.batch(epoch, ph.name, seen, static_cast<int64_t>(train_idx_.size()), loss_sum / static_cast<double>(seen),
                  static_cast<double>(correct) / static_cast<double>(seen), seconds_since(t0));
      }
    }
    const double train_s = seconds_since(t0);
    // Validation: eval mode, the model's evaluation preprocessing.
    prog->weights_changed();
    val_loader->start_epoch(0);
    double vloss = 0;
    int64_t vcorrect = 0, vseen = 0;
    while (true) {
      PCV_ASSIGN_OR_RETURN(bool more, val_loader->next(&b));
      if (!more) break;
      std::memcpy(prog->input(), b.images.data(), b.images.size() * sizeof(float));
      prog->forward(Mode::kEval, b.size);
      const LossResult r = softmax_cross_entropy(static_cast<size_t>(b.size), static_cast<int>(classes),
                                                 prog->output(0), b.labels.data(), 0.f, 0.f, nullptr);
      vloss += r.loss_sum;
      vcorrect += r.correct;
      vseen += b.size;
    }
    PCV_RETURN_IF_ERROR(prog->export_weights(&model_));
    EpochMetrics m;
    m.epoch = epoch;
    m.phase = ph.name;
    m.loss = seen ? loss_sum / static_cast<double>(seen) : 0;
    m.accuracy = seen ? static_cast<double>(correct) / static_cast<double>(seen) : 0;
    m.val_loss = vseen ? vloss / static_cast<double>(vseen) : 0;
    m.val_accuracy = vseen ? static_cast<double>(vcorrect) / static_cast<double>(vseen) : 0;
    m.lr = lr;
    m.images_per_sec = train_s > 0 ? static_cast<double>(seen) / train_s : 0;
    m.seconds = seconds_since(t0);
    PCV_RETURN_IF_ERROR(end_epoch(m, opt, ph.name));
  }
  return Status::ok();
}

Status Run::run_cached_phase(const Phase& ph, int first_epoch, int phase_epoch_offset) {
  // 1. Backbone features of every train and val image, computed once (eval preprocessing).
  const auto tc = Clock::now();
  ir::Model backbone = transfer_.backbone;
  copy_constants_by_name(model_, &backbone);  // a resumed model's (unchanged) backbone
  ProgramOptions bo;
  bo.batch = o_.batch;
  bo.loss_head = false;
  PCV_ASSIGN_OR_RETURN(auto bprog, Program::create(backbone, bo, &pool_));
  bprog->set_frozen([](const std::string&) { return true; });
  const size_t C = static_cast<size_t>(transfer_.feature_channels);
  auto features_of = [&](const std::vector<size_t>& idx, std::vector<float>* feats,
                         std::vector<int32_t>* labels) -> Status {
    data::LoaderOptions lo;
    lo.batch_size = o_.batch;
    lo.shuffle = false;
    lo.threads = 1;  // the producer thread alone: decode overlaps compute without a spinning pool
    lo.preprocess = pre_;
    lo.augment = false;
    PCV_ASSIGN_OR_RETURN(auto loader, data::DataLoader::create(dataset_, idx, lo));
    loader->start_epoch(0);
    feats->clear();
    labels->clear();
    data::Batch b;
    int64_t done = 0;
    while (true) {
      PCV_ASSIGN_OR_RETURN(bool more, loader->next(&b));
      if (!more) break;
      std::memcpy(bprog->input(), b.images.data(), b.images.size() * sizeof(float));
      bprog->forward(Mode::kEval, b.size);
      feats->insert(feats->end(), bprog->output(0), bprog->output(0) + static_cast<size_t>(b.size) * C);
      labels->insert(labels->end(), b.labels.begin(), b.labels.end());
      done += b.size;
      if (cb_.batch) cb_.batch(first_epoch, "features", done, static_cast<int64_t>(idx.size()), 0, 0, seconds_since(tc));
    }
    return Status::ok();
  };
  std::vector<float> train_f, val_f;
  std::vector<int32_t> train_y, val_y;
  PCV_RETURN_IF_ERROR(features_of(train_idx_, &train_f, &train_y));
  PCV_RETURN_IF_ERROR(features_of(val_idx_, &val_f, &val_y));
  result_.feature_cache_seconds = seconds_since(tc);
  message(fmt::format("backbone features of {} images cached in {:.1f} s ({:.1f} images/s)",
                      train_y.size() + val_y.size(), result_.feature_cache_seconds,
                      static_cast<double>(train_y.size() + val_y.size()) / std::max(1e-9, result_.feature_cache_seconds)));

  // 2. The head alone on the cached features.
  PCV_ASSIGN_OR_RETURN(ir::Model head, head_model(model_, transfer_.feature_channels));
  ProgramOptions po;
  po.batch = o_.batch;
  PCV_ASSIGN_OR_RETURN(auto prog, Program::create(head, po, &pool_));
  prog->set_seed(o_.seed);
  Optimizer opt(optimizer_options(), prog->parameters());
  if (resumed_ && resume_phase_ == ph.name && phase_epoch_offset > 0) {
    PCV_RETURN_IF_ERROR(opt.load_state(resume_optimizer_state_).with_context("--resume"));
  }
  const size_t n_train = train_y.size();
  const int64_t steps_per_epoch = static_cast<int64_t>((n_train + static_cast<size_t>(o_.batch) - 1) / static_cast<size_t>(o_.batch));
  const Schedule sched = schedule_for(ph, steps_per_epoch);
  const int classes = dataset_->num_classes();
  std::vector<int32_t> ybuf(static_cast<size_t>(o_.batch));
  for (int pe = phase_epoch_offset; pe < ph.epochs && !stop_; ++pe) {
    const int epoch = first_epoch + pe;
    const auto t0 = Clock::now();
    std::vector<size_t> order(n_train);
    for (size_t i = 0; i < n_train; ++i) order[i] = i;
    data::Rng rng(o_.seed, static_cast<uint64_t>(epoch), 0x68656164ull);  // "head"
    rng.shuffle(&order);
    double loss_sum = 0;
    int64_t correct = 0;
    float lr = sched.lr_at(opt.steps());
    for (size_t b0 = 0; b0 < n_train; b0 += static_cast<size_t>(o_.batch)) {
      const size_t n = std::min(static_cast<size_t>(o_.batch), n_train - b0);
      for (size_t i = 0; i < n; ++i) {
        std::memcpy(prog->input() + i * C, train_f.data() + order[b0 + i] * C, C * sizeof(float));
        ybuf[i] = train_y[order[b0 + i]];
      }
      prog->forward(Mode::kTrain, static_cast<int>(n), static_cast<uint64_t>(state_.global_step));
      const LossResult r = softmax_cross_entropy(n, classes, prog->output(0), ybuf.data(), o_.label_smoothing,
                                                 1.f / static_cast<float>(n), prog->output_grad(0));
      prog->backward();
      lr = sched.lr_at(opt.steps());
      opt.step(prog->parameters(), lr);
      ++state_.global_step;
      loss_sum += r.loss_sum;
      correct += r.correct;
    }
    const double train_s = seconds_since(t0);
    prog->weights_changed();
    double vloss = 0;
    int64_t vcorrect = 0;
    for (size_t b0 = 0; b0 < val_y.size(); b0 += static_cast<size_t>(o_.batch)) {
      const size_t n = std::min(static_cast<size_t>(o_.batch), val_y.size() - b0);
      std::memcpy(prog->input(), val_f.data() + b0 * C, n * C * sizeof(float));
      prog->forward(Mode::kEval, static_cast<int>(n));
      const LossResult r = softmax_cross_entropy(n, classes, prog->output(0), val_y.data() + b0, 0.f, 0.f, nullptr);
      vloss += r.loss_sum;
      vcorrect += r.correct;
    }
    PCV_RETURN_IF_ERROR(prog->export_weights(&head));
    copy_constants_by_name(head, &model_);
    EpochMetrics m;
    m.epoch = epoch;
    m.phase = ph.name;
    m.loss = loss_sum / static_cast<double>(n_train);
    m.accuracy = static_cast<double>(correct) / static_cast<double>(n_train);
    m.val_loss = vloss / static_cast<double>(val_y.size());
    m.val_accuracy = static_cast<double>(vcorrect) / static_cast<double>(val_y.size());
    m.lr = lr;
    // Throughput of this epoch including the (amortized) feature extraction of the phase.
    m.images_per_sec = static_cast<double>(n_train) / std::max(1e-9, train_s);
    m.seconds = seconds_since(t0);
    PCV_RETURN_IF_ERROR(end_epoch(m, opt, ph.name));
  }
  return Status::ok();
}

Expected<TrainResult> Run::go() {
  const auto t0 = Clock::now();
  PCV_RETURN_IF_ERROR(validate(o_));
  // Fail before the first epoch, not after it, when the outputs cannot be written there.
  PCV_RETURN_IF_ERROR(check_output_dir(o_.output_path));
  PCV_RETURN_IF_ERROR(load_data());
  PCV_RETURN_IF_ERROR(build_model());
  const OptimizerKind kind = optimizer_from_name(o_.optimizer).value();
  const float lr = o_.lr > 0 ? o_.lr : (kind == OptimizerKind::kSgd ? 0.01f : 0.001f);
  std::vector<Phase> phases;
  if (have_transfer_ && o_.freeze_backbone) {
    phases.push_back({"head", o_.epochs, lr, true, true});
  } else {
    phases.push_back({"train", o_.epochs, lr, false, false});
  }
  if (o_.fine_tune_epochs > 0) {
    phases.push_back({"fine-tune", o_.fine_tune_epochs, o_.fine_tune_lr > 0 ? o_.fine_tune_lr : lr / 10.f, false, false});
  }
  int first = 1;
  for (const Phase& ph : phases) {
    if (stop_) break;
    const int done_in_phase = std::clamp(state_.epochs_done - (first - 1), 0, ph.epochs);
    if (done_in_phase < ph.epochs) {
      if (ph.cached_features) {
        PCV_RETURN_IF_ERROR(run_cached_phase(ph, first, done_in_phase));
      } else {
        PCV_RETURN_IF_ERROR(run_phase(ph, first, done_in_phase));
      }
    }
    first += ph.epochs;
  }
  result_.final_model = model_;
  result_.model_path = o_.output_path;
  result_.best_epoch = state_.best_epoch;
  result_.best_val_accuracy = state_.best_val_accuracy;
  if (test_set_ != nullptr && !stop_) {
    PCV_ASSIGN_OR_RETURN(ir::Model best, formats::load_model(o_.output_path));
    EvalOptions eo;
    eo.batch = o_.batch;
    eo.threads = o_.threads;
    eo.limit = static_cast<size_t>(o_.test_limit);
    PCV_ASSIGN_OR_RETURN(EvalReport rep, evaluate_model(best, test_set_, {}, eo));
    result_.test_accuracy = rep.accuracy;
    result_.test_samples = rep.samples;
    message(fmt::format("test accuracy of the {} model (epoch {}) on {} test images: {:.4f}",
                        o_.keep_last ? "last" : "best", state_.best_epoch,
                        rep.samples, rep.accuracy));
  }
  result_.seconds = seconds_since(t0);
  PCV_RETURN_IF_ERROR(write_trace());
  return std::move(result_);
}

}  // namespace

Status validate(const TrainOptions& o) {
  auto bad = [](const std::string& m) { return invalid_argument(m); };
  if (o.epochs < 1 || o.epochs > 100000) return bad(fmt::format("--epochs {} must be in 1..100000", o.epochs));
  if (o.batch < 1 || o.batch > 4096) return bad(fmt::format("--batch {} must be in 1..4096", o.batch));
  if (!(o.lr >= 0.f) || !std::isfinite(o.lr) || o.lr > 10.f) return bad(fmt::format("--lr {} must be > 0 and <= 10", o.lr));
  if (!(o.fine_tune_lr >= 0.f) || o.fine_tune_lr > 10.f) return bad(fmt::format("--fine-tune-lr {} must be > 0", o.fine_tune_lr));
  if (o.size < 0 || o.size > 4096) return bad(fmt::format("--size {} must be in 1..4096", o.size));
  if (!(o.val_split > 0.0 && o.val_split < 1.0)) return bad(fmt::format("--val-split {} must be in (0, 1)", o.val_split));
  if (o.threads < 1 || o.threads > 64) return bad(fmt::format("--threads {} must be in 1..64", o.threads));
  if (o.fine_tune_epochs < 0 || o.fine_tune_epochs > 100000) return bad(fmt::format("--fine-tune-epochs {} must be >= 0", o.fine_tune_epochs));
  if (o.limit < 0 || o.test_limit < 0) return bad(fmt::format("--limit {} must be >= 0", o.limit));
  if (!(o.width > 0.f && o.width <= 4.f)) return bad(fmt::format("--width {} must be in (0, 4]", o.width));
  if (!(o.label_smoothing >= 0.f && o.label_smoothing < 1.f)) return bad(fmt::format("--label-smoothing {} must be in [0, 1)", o.label_smoothing));
  if (!(o.weight_decay >= 0.f) || o.weight_decay > 1.f) return bad(fmt::format("--weight-decay {} must be in [0, 1]", o.weight_decay));
  if (!(o.momentum >= 0.f && o.momentum < 1.f)) return bad(fmt::format("--momentum {} must be in [0, 1)", o.momentum));
  if (o.warmup_epochs < 0.f) return bad(fmt::format("--warmup-epochs {} must be >= 0", o.warmup_epochs));
  PCV_RETURN_IF_ERROR(optimizer_from_name(o.optimizer).status());
  PCV_RETURN_IF_ERROR(schedule_from_name(o.schedule).status());
  if (o.freeze_backbone && o.init_model.empty()) return bad("--freeze-backbone needs --init MODEL");
  if (o.output_path.empty()) return bad("-o MODEL is required");
  PCV_RETURN_IF_ERROR(formats::format_from_path(o.output_path).status());
  return Status::ok();
}

std::string checkpoint_path_for(const std::string& model_path) {
  std::filesystem::path p(model_path);
  p.replace_extension(".ckpt");
  return p.string();
}

std::string trace_path_for(const std::string& model_path, const std::string& ext) {
  std::filesystem::path p(model_path);
  p.replace_extension("");
  return p.string() + ".trace." + ext;
}

Expected<TrainResult> train(const TrainOptions& options, const TrainCallbacks& callbacks) {
  Run run(options, callbacks);
  return run.go();
}

}  // namespace pcv::train
