// pocketcv pipeline [--data DIR] [--init MODEL] [--out DIR] [--epochs N] [--quick]: all six
// stages end to end (report/pipeline.h), then OUT/report.html and OUT/report.json.
// Exit code 0 when every stage ran, 1 when one failed (the report shows which and why).
#include "cli/command.h"
#include "report/pipeline.h"

namespace pcv::cli {
namespace {

Runner setup(CLI::App& sub) {
  auto o = std::make_shared<report::PipelineOptions>();
  sub.add_option("--data", o->data_dir, "Photo folder DIR/<class>/*.jpg (default: Fashion-MNIST)");
  sub.add_option("--init", o->init_model, "Pretrained model to transfer from (with --data)");
  sub.add_option("--out,-o", o->out_dir, "Output folder: models, report.html, report.json")->capture_default_str();
  sub.add_option("--epochs", o->epochs, "Training epochs (default 3; 1 with --quick)")->check(CLI::Range(1, 1000));
  sub.add_option("--threads", o->threads, "Threads")->capture_default_str()->check(CLI::Range(1, 64));
  sub.add_option("--samples", o->samples, "Sample predictions in the report (default 8; 6 with --quick)")
      ->check(CLI::Range(1, 64));
  sub.add_option("--seed", o->seed, "Seed")->capture_default_str();
  sub.add_flag("--quick", o->quick, "A few hundred images, 1 epoch, small evaluation sets (a smoke test)");
  return [o]() -> Status {
    report::PipelineOptions opts = *o;
    opts.progress = [](const std::string& line) { err("{}\n", line); };
    PCV_ASSIGN_OR_RETURN(report::PipelineResult r, report::run_pipeline(opts));
    out("report  {}\n", r.html_path);
    out("data    {}\n", r.json_path);
    for (const auto& s : r.report["stages"]) {
      out("  {:<10} {:<11} {}\n", s["id"].get<std::string>(), s["status"].get<std::string>(),
          s["message"].get<std::string>());
    }
    if (r.failed_stages > 0) {
      return invalid_argument(fmt::format("{} stage{} failed; the report shows why", r.failed_stages,
                                          r.failed_stages == 1 ? "" : "s"));
    }
    return Status::ok();
  };
}

}  // namespace
PCV_REGISTER_COMMAND(pipeline, "All six stages end to end, with an HTML + JSON report", 100, setup);
}  // namespace pcv::cli
