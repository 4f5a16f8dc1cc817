// pocketcv train: train a classifier on a photo folder (or Fashion-MNIST), with a progress
// bar, per-epoch metrics, a final table and terminal charts, the best model, a checkpoint per
// epoch and the training trace (CSV + JSON next to the model).
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>

#include "cli/command.h"
#include "train/trainer.h"

namespace pcv::cli {
namespace {

std::string clock_text(double s) {
  if (!(s >= 0) || s > 1e7) return "--:--";
  const int t = static_cast<int>(std::lround(s));
  if (t >= 3600) return fmt::format("{}:{:02}:{:02}", t / 3600, t / 60 % 60, t % 60);
  return fmt::format("{}:{:02}", t / 60, t % 60);
}

// One chart: rows x columns of series (marker, values) over epochs, min..max on the y axis.
std::string chart(const std::string& title, const std::vector<std::pair<char, std::vector<double>>>& series,
                  int rows = 10) {
  double lo = 1e300, hi = -1e300;
  size_t n = 0;
  for (const auto& s : series) {
    for (double v : s.second) {
      lo = std::min(lo, v);
      hi = std::max(hi, v);
    }
    n = std::max(n, s.second.size());
  }
  if (n == 0) return "";
  if (hi - lo < 1e-9) {
    hi += 0.5;
    lo -= 0.5;
  }
  const int col_w = n > 40 ? 1 : (n > 20 ? 2 : 4);
  std::vector<std::string> grid(static_cast<size_t>(rows), std::string(n * static_cast<size_t>(col_w), ' '));
  for (const auto& s : series) {
    for (size_t e = 0; e < s.second.size(); ++e) {
      const int r = static_cast<int>(std::lround((hi - s.second[e]) / (hi - lo) * (rows - 1)));
      char& c = grid[static_cast<size_t>(std::clamp(r, 0, rows - 1))][e * static_cast<size_t>(col_w) + static_cast<size_t>(col_w) / 2];
      c = c == ' ' ? s.first : '#';
    }
  }
  std::string out = title + "\n";
  for (int r = 0; r < rows; ++r) {
    const double v = hi - (hi - lo) * r / (rows - 1);
    out += fmt::format("{:>8.4f} |{}\n", v, grid[static_cast<size_t>(r)]);
  }
  out += fmt::format("{:>8} +{}\n", "", std::string(n * static_cast<size_t>(col_w), '-'));
  std::string axis(n * static_cast<size_t>(col_w), ' ');
  for (size_t e = 0; e < n; e += (col_w == 1 ? 5 : 1)) {
    const std::string num = std::to_string(e + 1);
    for (size_t k = 0; k < num.size() && e * static_cast<size_t>(col_w) + k < axis.size(); ++k) axis[e * static_cast<size_t>(col_w) + k] = num[k];
  }
  out += fmt::format("{:>8}  {}  epoch\n", "", axis);
  return out;
}

struct Flags {
  train::TrainOptions o;
  float lr = -1.f;
  float fine_tune_lr = -1.f;
  std::string keep = "best";
};

Runner setup(CLI::App& sub) {
  auto f = std::make_shared<Flags>();
  train::TrainOptions& o = f->o;
  sub.add_option("--data", o.data_dir, "Photo folder DIR/<class>/*.jpg|png (default: Fashion-MNIST)");
  sub.add_option("--arch", o.arch, "Architecture: simple_cnn | mobilenet_v2")->capture_default_str();
  sub.add_option("--width", o.width, "MobileNetV2 width multiplier")->capture_default_str();
  CLI::Option* size_opt = sub.add_option("--size", o.size, "Input size (default 28 for Fashion-MNIST, 224 for photos)");
  sub.add_option("--epochs", o.epochs, "Epochs (with --freeze-backbone: head epochs)")->capture_default_str();
  sub.add_option("--batch", o.batch, "Batch size")->capture_default_str();
  CLI::Option* lr_opt = sub.add_option("--lr", f->lr, "Learning rate (default 0.01 for SGD, 0.001 for Adam/AdamW)");
  sub.add_option("--optimizer", o.optimizer, "sgd | adam | adamw")->capture_default_str();
  sub.add_option("--momentum", o.momentum, "SGD momentum")->capture_default_str();
  sub.add_flag("--nesterov", o.nesterov, "Nesterov momentum");
  sub.add_option("--weight-decay", o.weight_decay, "Weight decay (filters and dense weights)")->capture_default_str();
  sub.add_option("--schedule", o.schedule, "LR schedule: cosine | step | constant")->capture_default_str();
  sub.add_option("--warmup-epochs", o.warmup_epochs, "Linear LR warmup, in epochs")->capture_default_str();
  sub.add_option("--label-smoothing", o.label_smoothing, "Label smoothing")->capture_default_str();
  sub.add_option("--val-split", o.val_split, "Validation fraction (stratified)")->capture_default_str();
  sub.add_option("--seed", o.seed, "Random seed (weights, split, order, augmentation)")->capture_default_str();
  sub.add_option("--init", o.init_model, "Pretrained model to start from (any format): transfer learning");
  sub.add_flag("--freeze-backbone", o.freeze_backbone, "With --init: train the new head only (cached features)");
  sub.add_option("--fine-tune-epochs", o.fine_tune_epochs, "Then unfreeze everything for N epochs")->capture_default_str();
  CLI::Option* ft_lr_opt =
      sub.add_option("--fine-tune-lr", f->fine_tune_lr, "Learning rate of the fine-tune epochs (default lr / 10)");
  sub.add_option("--keep", f->keep,
                 "Model -o gets: best (best validation accuracy, the default) or last (the last epoch's)")
      ->capture_default_str();
  sub.add_option("--resume", o.resume_path, "Continue from a checkpoint (MODEL.ckpt)");
  sub.add_option("--threads", o.threads, "Threads")->capture_default_str();
  sub.add_option("--limit", o.limit, "Use only N images (seeded choice), for quick runs");
  sub.add_flag("!--no-augment", o.augment, "Disable training augmentation");
  sub.add_option("--test-limit", o.test_limit, "Fashion-MNIST: test only the first N test images");
  sub.add_option("-o,--output", o.output_path, "Output model (.pcv, .tflite, .mlmodel, ...)")->required();
  return [f, lr_opt, ft_lr_opt, size_opt]() -> Status {
    train::TrainOptions o = f->o;
    if (size_opt->count() > 0 && o.size < 1) return invalid_argument(fmt::format("--size {} must be in 1..4096", o.size));
    if (lr_opt->count() > 0) {
      if (!(f->lr > 0.f)) return invalid_argument(fmt::format("--lr {} must be > 0", f->lr));
      o.lr = f->lr;
    }
    if (ft_lr_opt->count() > 0) {
      if (!(f->fine_tune_lr > 0.f)) return invalid_argument(fmt::format("--fine-tune-lr {} must be > 0", f->fine_tune_lr));
      o.fine_tune_lr = f->fine_tune_lr;
    }
    if (f->keep != "best" && f->keep != "last") {
      return invalid_argument(fmt::format("--keep '{}': use best or last", f->keep));
    }
    o.keep_last = f->keep == "last";
    PCV_RETURN_IF_ERROR(train::validate(o));
    const bool tty = isatty(STDERR_FILENO) != 0;
    const int total_epochs = o.epochs + o.fine_tune_epochs;
    auto last_draw = std::chrono::steady_clock::now() - std::chrono::seconds(10);
    train::TrainCallbacks cb;
    cb.message = [](const std::string& m) { err("{}\n", m); };
    cb.batch = [&](int epoch, const std::string& phase, int64_t done, int64_t total, double loss, double acc,
                   double elapsed) {
      const auto now = std::chrono::steady_clock::now();
      const bool last = done >= total;
      if (!last && now - last_draw < std::chrono::milliseconds(tty ? 100 : 15000)) return;
      last_draw = now;
      const double frac = total > 0 ? static_cast<double>(done) / static_cast<double>(total) : 0;
      const double eta = frac > 0 ? elapsed * (1 - frac) / frac : -1;
      const std::string stats = phase == "features" ? std::string("extracting backbone features")
                                                    : fmt::format("loss {:.4f} acc {:.4f}", loss, acc);
      if (tty) {
        constexpr int kWidth = 28;
        const int filled = static_cast<int>(frac * kWidth);
        std::string bar(static_cast<size_t>(filled), '=');
        if (filled < kWidth) bar += '>' + std::string(static_cast<size_t>(kWidth - filled - 1), ' ');
        err("\r\033[Kepoch {}/{} [{}] {}/{} {} {:.0f} img/s ETA {}", epoch, total_epochs, bar, done, total, stats,
            elapsed > 0 ? static_cast<double>(done) / elapsed : 0.0, clock_text(eta));
        if (last) err("\r\033[K");
      } else if (!last) {
        err("epoch {}/{}: {}/{} {} ETA {}\n", epoch, total_epochs, done, total, stats, clock_text(eta));
      }
    };
    cb.epoch = [&](const train::EpochMetrics& m) {
      err("epoch {}/{} {}: loss {:.4f} acc {:.4f} val_loss {:.4f} val_acc {:.4f} lr {:.3g} {:.0f} img/s {:.1f} s\n",
          m.epoch, total_epochs, m.phase, m.loss, m.accuracy, m.val_loss, m.val_accuracy, m.lr, m.images_per_sec,
          m.seconds);
    };
    err("training on {} ({} threads)\n", o.data_dir.empty() ? "Fashion-MNIST" : o.data_dir, o.threads);
    PCV_ASSIGN_OR_RETURN(train::TrainResult r, train::train(o, cb));

    out("{:>5} {:>9} {:>8} {:>8} {:>9} {:>8} {:>9} {:>8} {:>7}\n", "epoch", "phase", "loss", "acc", "val_loss",
        "val_acc", "lr", "img/s", "s");
    std::vector<double> loss, vloss, acc, vacc;
    for (const auto& m : r.epochs) {
      out("{:>5} {:>9} {:>8.4f} {:>8.4f} {:>9.4f} {:>8.4f} {:>9.3g} {:>8.0f} {:>7.1f}\n", m.epoch, m.phase, m.loss,
          m.accuracy, m.val_loss, m.val_accuracy, m.lr, m.images_per_sec, m.seconds);
      loss.push_back(m.loss);
      vloss.push_back(m.val_loss);
      acc.push_back(m.accuracy);
      vacc.push_back(m.val_accuracy);
    }
    out("\n{}", chart("loss (* train, o val)", {{'*', loss}, {'o', vloss}}));
    out("\n{}", chart("accuracy (* train, o val)", {{'*', acc}, {'o', vacc}}));
    out("\n{} val_acc {:.4f} at epoch {} -> {}\n", f->keep == "last" ? "last" : "best", r.best_val_accuracy,
        r.best_epoch, r.model_path);
    if (r.test_accuracy >= 0) out("test accuracy {:.4f} on {} test images\n", r.test_accuracy, r.test_samples);
    out("train {} / val {} images, {:.1f} s; checkpoint {}; trace {} {}\n", r.train_samples, r.val_samples, r.seconds,
        r.checkpoint_path, r.trace_csv_path, r.trace_json_path);
    return Status::ok();
  };
}

}  // namespace
PCV_REGISTER_COMMAND(train, "Train a classifier on a folder of photos (or Fashion-MNIST)", 20, setup);
}  // namespace pcv::cli
