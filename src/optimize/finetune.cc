#include "optimize/finetune.h"

#include <fmt/core.h>

#include <cstring>

#include "optimize/samples.h"

#if defined(PCV_OPTIMIZE_HAVE_TRAIN)
#include "base/thread_pool.h"
#include "data/loader.h"
#include "train/loss.h"
#include "train/optimizer.h"
#include "train/program.h"
#endif

namespace pcv::optimize {

#if defined(PCV_OPTIMIZE_HAVE_TRAIN)
namespace {

// A plain supervised loop over pcv_train's Program: SGD with momentum, cosine learning rate,
// softmax cross-entropy on the logits.
class ProgramFinetuner final : public Finetuner {
 public:
  ProgramFinetuner(std::shared_ptr<const data::Dataset> ds, vision::Preprocess pre, const FinetuneOptions& o)
      : ds_(std::move(ds)), pre_(pre), o_(o) {
    const size_t n = o_.max_samples ? std::min(o_.max_samples, ds_->size()) : ds_->size();
    for (size_t i = 0; i < n; ++i) indices_.push_back(i * ds_->size() / n);
    const size_t b = static_cast<size_t>(o_.batch_size);
    steps_per_epoch_ = static_cast<int64_t>((indices_.size() + b - 1) / b);
  }

  int64_t total_steps() const override { return steps_per_epoch_ * o_.epochs; }

  void set_teacher(const ir::Model* teacher) override { teacher_ = teacher; }

  std::string describe() const override {
    return fmt::format("{} epochs x {} steps on {} images, sgd lr {} cosine, batch {}", o_.epochs, steps_per_epoch_,
                       indices_.size(), o_.learning_rate, o_.batch_size);
  }

  Status run(ir::Model& model, const StepHook& after_step) override {
    ThreadPool pool(o_.threads);
    train::ProgramOptions po;
    po.batch = o_.batch_size;
    // Feature distillation: the teacher (set_teacher, else the model as given) runs beside the
    // model; the classifier's input (the features) becomes a second output of both programs.
    const ir::ValueId features = o_.distill_weight > 0.f ? classifier_features(model.graph) : ir::kNoValue;
    std::unique_ptr<train::Program> teacher;
    ir::Model student_model;
    const ir::Model* student_src = &model;
    if (features != ir::kNoValue) {
      ir::Model teacher_model = teacher_ != nullptr ? *teacher_ : model;
      teacher_model.graph.mark_output(features);
      PCV_ASSIGN_OR_RETURN(teacher, train::Program::create(teacher_model, po, &pool));
      teacher->set_frozen([](const std::string&) { return true; });
      student_model = model;
      student_model.graph.mark_output(features);
      student_src = &student_model;
    }
    PCV_ASSIGN_OR_RETURN(auto prog, train::Program::create(*student_src, po, &pool));
    train::OptimizerOptions oo;
    oo.kind = train::OptimizerKind::kSgd;
    oo.momentum = 0.9f;
    train::Optimizer opt(oo, prog->parameters());
    train::Schedule sched;
    sched.kind = train::ScheduleKind::kCosine;
    sched.base_lr = o_.learning_rate;
    sched.total_steps = std::max<int64_t>(1, total_steps());
    data::LoaderOptions lo;
    lo.batch_size = o_.batch_size;
    lo.shuffle = true;
    lo.seed = o_.seed;
    lo.threads = o_.threads;
    lo.preprocess = pre_;
    lo.augment = o_.augment;
    PCV_ASSIGN_OR_RETURN(auto loader, data::DataLoader::create(ds_, indices_, lo));
    const int classes = static_cast<int>(prog->output_elems_per_sample(0));
    int64_t step = 0;
    std::vector<WeightRef> refs;
    for (int epoch = 0; epoch < o_.epochs; ++epoch) {
      loader->start_epoch(epoch);
      data::Batch b;
      while (true) {
        PCV_ASSIGN_OR_RETURN(bool more, loader->next(&b));
        if (!more) break;
        if (b.images.size() != static_cast<size_t>(b.size) * prog->input_elems_per_sample()) {
          return invalid_argument(fmt::format("fine-tuning batch has {} values per image, the model takes {}",
                                              b.images.size() / std::max(1, b.size), prog->input_elems_per_sample()));
        }
        std::memcpy(prog->input(), b.images.data(), b.images.size() * sizeof(float));
        prog->forward(train::Mode::kTrain, b.size, static_cast<uint64_t>(step));
        if (teacher) {
          std::memcpy(teacher->input(), b.images.data(), b.images.size() * sizeof(float));
          teacher->forward(train::Mode::kEval, b.size);
          distill(*teacher, *prog, b.size);
        }
        for (int32_t l : b.labels) {
          if (l < 0 || l >= classes) return invalid_argument(fmt::format("label {} but the model has {} outputs", l, classes));
        }
        train::softmax_cross_entropy(static_cast<size_t>(b.size), classes, prog->output(0), b.labels.data(), 0.f,
                                     1.f / static_cast<float>(b.size), prog->output_grad(0));
        prog->backward();
        opt.step(prog->parameters(), sched.lr_at(step));
        if (after_step) {
          refs.clear();
          for (train::Parameter& p : prog->parameters()) refs.push_back({p.name, p.data, p.size});
          after_step(step, total_steps(), refs);
        }
        prog->weights_changed();
        ++step;
      }
    }
    return prog->export_weights(&model);
  }

 private:
  // The input of the last fully_connected node (the classifier head's features), or kNoValue.
  static ir::ValueId classifier_features(const ir::Graph& g) {
    for (size_t i = g.nodes.size(); i-- > 0;) {
      if (g.nodes[i].op == ir::OpType::kFullyConnected) return g.nodes[i].inputs[0];
    }
    return ir::kNoValue;
  }

  // Adds the gradient of  w * sum (s - t)^2 / sum t^2  (student and teacher features over the
  // batch: a relative squared error, so w does not depend on the features' scale).
  void distill(const train::Program& teacher, train::Program& student, int n) const {
    const size_t count = static_cast<size_t>(n) * student.output_elems_per_sample(1);
    const float* t = teacher.output(1);
    const float* s = student.output(1);
    double energy = 1e-12;
    for (size_t i = 0; i < count; ++i) energy += static_cast<double>(t[i]) * t[i];
    const float scale = static_cast<float>(2.0 * o_.distill_weight / energy);
    float* g = student.output_grad(1);
    for (size_t i = 0; i < count; ++i) g[i] += scale * (s[i] - t[i]);
  }

  std::shared_ptr<const data::Dataset> ds_;
  vision::Preprocess pre_;
  FinetuneOptions o_;
  std::vector<size_t> indices_;
  int64_t steps_per_epoch_ = 0;
  const ir::Model* teacher_ = nullptr;
};

}  // namespace

bool finetune_available() { return true; }

Expected<std::unique_ptr<Finetuner>> make_finetuner(std::shared_ptr<const data::Dataset> dataset,
                                                    const ir::Model& model, const FinetuneOptions& options) {
  if (!dataset || dataset->size() == 0) return invalid_argument("fine-tuning needs a non-empty dataset");
  if (options.epochs < 0 || options.batch_size < 1) return invalid_argument("fine-tuning epochs >= 0 and batch >= 1");
  PCV_ASSIGN_OR_RETURN(vision::Preprocess pre, preprocess_for(model));
  return std::unique_ptr<Finetuner>(std::make_unique<ProgramFinetuner>(std::move(dataset), pre, options));
}

#else

bool finetune_available() { return false; }

Expected<std::unique_ptr<Finetuner>> make_finetuner(std::shared_ptr<const data::Dataset>, const ir::Model&,
                                                    const FinetuneOptions&) {
  return unsupported("fine-tuning needs the trainer (pcv_train), which this build does not have");
}

#endif

}  // namespace pcv::optimize
