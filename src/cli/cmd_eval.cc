// pocketcv eval: accuracy, per-class precision/recall/F1 and the confusion matrix of any model
// on a labelled photo folder (default: the Fashion-MNIST test set), through the inference
// runtime with batches.
#include <nlohmann/json.hpp>

#include "cli/command.h"
#include "data/idx.h"
#include "data/image_folder.h"
#include "formats/model_io.h"
#include "train/evaluate.h"

namespace pcv::cli {
namespace {

Runner setup(CLI::App& sub) {
  auto model_path = std::make_shared<std::string>();
  auto data_dir = std::make_shared<std::string>();
  auto as_json = std::make_shared<bool>(false);
  auto opt = std::make_shared<train::EvalOptions>();
  auto limit = std::make_shared<int64_t>(0);
  sub.add_option("model", *model_path, "Model (.pcv, .tflite, .mlmodel, .mlpackage, .onnx)")->required();
  sub.add_option("--data", *data_dir, "Photo folder DIR/<class>/*.jpg|png (default: Fashion-MNIST test set)");
  sub.add_option("--batch", opt->batch, "Batch size")->capture_default_str();
  sub.add_option("--threads", opt->threads, "Threads")->capture_default_str();
  sub.add_option("--limit", *limit, "Evaluate only the first N images");
  sub.add_flag("--json", *as_json, "Print the report as JSON");
  return [=]() -> Status {
    if (opt->batch < 1 || opt->batch > 4096) return invalid_argument(fmt::format("--batch {} must be in 1..4096", opt->batch));
    if (opt->threads < 1 || opt->threads > 64) return invalid_argument(fmt::format("--threads {} must be in 1..64", opt->threads));
    if (*limit < 0) return invalid_argument(fmt::format("--limit {} must be >= 0", *limit));
    opt->limit = static_cast<size_t>(*limit);
    PCV_ASSIGN_OR_RETURN(ir::Model model, formats::load_model(*model_path));
    std::shared_ptr<const data::Dataset> ds;
    if (data_dir->empty()) {
      PCV_ASSIGN_OR_RETURN(auto test, data::IdxDataset::fashion_mnist(false));
      ds = std::make_shared<data::IdxDataset>(std::move(test));
    } else {
      PCV_ASSIGN_OR_RETURN(auto folder, data::ImageFolderDataset::open(*data_dir));
      ds = std::make_shared<data::ImageFolderDataset>(std::move(folder));
    }
    PCV_ASSIGN_OR_RETURN(train::EvalReport r, train::evaluate_model(model, ds, {}, *opt));
    if (*as_json) {
      nlohmann::json j;
      j["model"] = *model_path;
      j["data"] = data_dir->empty() ? std::string("fashion-mnist-test") : *data_dir;
      j["samples"] = r.samples;
      j["correct"] = r.correct;
      j["accuracy"] = r.accuracy;
      j["loss"] = r.loss;
      j["seconds"] = r.seconds;
      j["images_per_sec"] = r.images_per_sec;
      j["classes"] = nlohmann::json::array();
      for (const auto& c : r.classes) {
        j["classes"].push_back({{"name", c.name}, {"support", c.support}, {"predicted", c.predicted},
                                {"precision", c.precision}, {"recall", c.recall}, {"f1", c.f1}});
      }
      j["confusion"] = r.confusion;
      out("{}\n", j.dump(2));
      return Status::ok();
    }
    out("{}: accuracy {:.4f} ({} / {}), loss {:.4f}, {:.0f} images/s\n\n", *model_path, r.accuracy, r.correct, r.samples,
        r.loss, r.images_per_sec);
    size_t w = 5;
    for (const auto& c : r.classes) w = std::max(w, c.name.size());
    out("{:<{}} {:>9} {:>9} {:>9} {:>8}\n", "class", w, "precision", "recall", "f1", "support");
    for (const auto& c : r.classes) {
      out("{:<{}} {:>9.4f} {:>9.4f} {:>9.4f} {:>8}\n", c.name, w, c.precision, c.recall, c.f1, c.support);
    }
    out("\nconfusion matrix (rows: true class, columns: predicted)\n{:<{}}", "", w);
    for (size_t k = 0; k < r.classes.size(); ++k) out(" {:>6}", k);
    out("\n");
    for (size_t t = 0; t < r.classes.size(); ++t) {
      out("{:<{}}", fmt::format("{} {}", t, r.classes[t].name).substr(0, w), w);
      for (int64_t v : r.confusion[t]) out(" {:>6}", v);
      out("\n");
    }
    return Status::ok();
  };
}

}  // namespace
PCV_REGISTER_COMMAND(eval, "Accuracy, per-class metrics and confusion matrix on a dataset", 30, setup);
}  // namespace pcv::cli
