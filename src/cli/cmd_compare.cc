// pocketcv compare A B [--data DIR | --random N] [--json]: top-1 agreement, output difference
// and per-layer SNR / cosine between two models (predict/compare.h).
#include <nlohmann/json.hpp>

#include "cli/command.h"
#include "formats/model_io.h"
#include "predict/names.h"
#include "predict/compare.h"

namespace pcv::cli {
namespace {

std::string snr_text(double db) {
  return db >= predict::kMaxSnrDb ? std::string("exact") : fmt::format("{:.1f}", db);
}

Runner setup(CLI::App& sub) {
  auto path_a = std::make_shared<std::string>();
  auto path_b = std::make_shared<std::string>();
  auto opts = std::make_shared<predict::CompareOptions>();
  auto json = std::make_shared<bool>(false);
  auto all = std::make_shared<bool>(false);
  sub.add_option("a", *path_a, "Reference model")->required();
  sub.add_option("b", *path_b, "Model to compare with it")->required();
  auto* data = sub.add_option("--data", opts->data_dir, "Folder of photos (searched recursively)");
  sub.add_option("--random", opts->random_count, "Random inputs (when no --data)")
      ->capture_default_str()->check(CLI::Range(1, 100000))->excludes(data);
  sub.add_option("--max-images", opts->max_images, "Photos used at most")->capture_default_str()->check(CLI::Range(1, 1000000));
  sub.add_option("--threshold-db", opts->threshold_snr_db, "A layer diverges below this SNR")->capture_default_str();
  sub.add_option("--seed", opts->seed, "Seed of the random inputs")->capture_default_str();
  sub.add_option("--threads", opts->threads, "Threads")->capture_default_str()->check(CLI::Range(1, 64));
  sub.add_flag("--json", *json, "Print JSON");
  sub.add_flag("--all-layers", *all, "List every matched layer (default: up to 40 around the first divergence)");
  return [=]() -> Status {
    auto a = formats::load_model(*path_a);
    if (!a) return a.status();
    auto b = formats::load_model(*path_b);
    if (!b) return b.status();
    PCV_ASSIGN_OR_RETURN(predict::CompareResult r, predict::compare_models(*a, *b, *opts));
    if (*json) {
      nlohmann::json j = {{"a", *path_a}, {"b", *path_b}, {"inputs", r.inputs}, {"samples", r.samples}, {"skipped", r.skipped},
                          {"top1_agreement", r.top1_agreement}, {"max_abs_diff", r.max_abs_diff},
                          {"mean_abs_diff", r.mean_abs_diff}, {"output_snr_db", r.output_snr_db},
                          {"match", r.match}, {"compute_layers", {r.compute_layers_a, r.compute_layers_b}},
                          {"threshold_snr_db", r.threshold_snr_db}, {"layers", nlohmann::json::array()},
                          {"first_divergence", nullptr}};
      for (const auto& l : r.layers) {
        j["layers"].push_back({{"name", l.name}, {"value_a", l.value_a}, {"value_b", l.value_b}, {"op", l.op}, {"shape", l.shape},
                               {"dtype_b", l.dtype_b}, {"max_abs", l.max_abs}, {"mean_abs", l.mean_abs},
                               {"snr_db", l.snr_db}, {"cosine", l.cosine}});
      }
      if (r.first_divergence >= 0) j["first_divergence"] = r.layers[static_cast<size_t>(r.first_divergence)].name;
      out("{}\n", j.dump(2));
      return Status::ok();
    }
    out("A            {}\n", *path_a);
    out("B            {}\n", *path_b);
    out("inputs       {} ({} samples)\n", r.inputs, r.samples);
    for (const auto& m : r.skipped) err("warning: skipped {}\n", m);
    out("top-1 agree  {:.1f}%\n", 100.0 * r.top1_agreement);
    out("output diff  max {:.3g}  mean {:.3g}  SNR {} dB\n", r.max_abs_diff, r.mean_abs_diff, snr_text(r.output_snr_db));
    out("layers       {} matched by {} (A has {} compute layers, B {}); threshold {:.1f} dB\n", r.layers.size(),
        r.match, r.compute_layers_a, r.compute_layers_b, r.threshold_snr_db);
    if (!r.layers.empty()) {
      size_t lo = 0, hi = r.layers.size();
      if (!*all && hi > 40) {
        const size_t center = r.first_divergence >= 0 ? static_cast<size_t>(r.first_divergence) : 0;
        lo = center > 10 ? center - 10 : 0;
        hi = std::min(r.layers.size(), lo + 40);
      }
      out("\n  {:>3}  {:<40} {:<16} {:<18} {:<4} {:>10} {:>10} {:>8} {:>8}\n", "#", "layer", "op", "shape", "B", "max abs",
          "mean abs", "SNR dB", "cosine");
      if (lo > 0) out("  ...\n");
      for (size_t i = lo; i < hi; ++i) {
        const auto& l = r.layers[i];
        const std::string name = predict::short_layer_name(l.name, 40);
        out("  {:>3}  {:<40} {:<16} {:<18} {:<4} {:>10.3g} {:>10.3g} {:>8} {:>8.5f}{}\n", i, name, l.op,
            ir::shape_to_string(l.shape), l.dtype_b, l.max_abs, l.mean_abs, snr_text(l.snr_db), l.cosine,
            static_cast<int>(i) == r.first_divergence ? "  <- first divergence" : "");
      }
      if (hi < r.layers.size()) out("  ... ({} more; --all-layers)\n", r.layers.size() - hi);
    }
    if (r.first_divergence >= 0) {
      const auto& l = r.layers[static_cast<size_t>(r.first_divergence)];
      out("\nfirst divergence: {} ({}), SNR {:.1f} dB < {:.1f} dB\n", l.name, l.op, l.snr_db, r.threshold_snr_db);
    } else {
      out("\nno layer below {:.1f} dB\n", r.threshold_snr_db);
    }
    return Status::ok();
  };
}

}  // namespace
PCV_REGISTER_COMMAND(compare, "Per-layer numeric diff and top-1 agreement of two models", 90, setup);
}  // namespace pcv::cli
