#include "report/pipeline.h"

#include <fmt/core.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <memory>

#include "base/file.h"
#include "data/idx.h"
#include "data/image_folder.h"
#include "data/split.h"
#include "formats/model_io.h"
#include "predict/compare.h"
#include "predict/predictor.h"
#include "report/html.h"
#include "report/thumbnail.h"
#include "runtime/session.h"
#include "vision/frame.h"

#if defined(PCV_TRAIN_AVAILABLE)
#include "train/evaluate.h"
#include "train/trainer.h"
#endif
#if defined(PCV_OPTIMIZE_AVAILABLE)
#include "optimize/optimize.h"
#endif
#if defined(PCV_CAPI_AVAILABLE)
#include "pocketcv/pocketcv.h"
#endif

namespace pcv::report {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// JSON has no NaN / infinity: store them as null.
json num(double v) { return std::isfinite(v) ? json(v) : json(nullptr); }

json trace_json(const predict::PredictionTrace& t, bool with_layers) {
  json j = {{"source_size", {t.source_height, t.source_width}},
            {"input_shape", {t.input_height, t.input_width, t.input_channels}},
            {"input_dtype", t.input_dtype},
            {"decode_ms", num(t.decode_ms)},
            {"preprocess_ms", num(t.preprocess_ms)},
            {"inference_ms", num(t.inference_ms)},
            {"postprocess_ms", num(t.postprocess_ms)},
            {"total_ms", num(t.total_ms)}};
  if (with_layers) {
    j["layers"] = json::array();
    for (const auto& l : t.layers) {
      j["layers"].push_back({{"name", l.name}, {"op", l.op}, {"kernel", l.kernel}, {"output_shape", l.output_shape},
                             {"ms", num(l.ms)}});
    }
  }
  return j;
}

double median_latency_ms(const ir::Model& model, int runs, int* threads_used) {
  runtime::SessionOptions so;
  so.threads = 1;
  so.batch = 1;
  auto s = runtime::Session::create(model, so);
  if (!s) return -1;
  *threads_used = 1;
  std::vector<double> t;
  if (!(*s)->run().is_ok()) return -1;  // warm-up (inputs are zero: timing does not depend on them)
  for (int i = 0; i < runs; ++i) {
    const auto t0 = Clock::now();
    if (!(*s)->run().is_ok()) return -1;
    t.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

// One labelled picture for the predict and integrate stages.
struct Sample {
  vision::Image image;
  std::string path;  // photo file ("" for Fashion-MNIST)
  std::string name;
  int label = 0;
};

// NV21 (Y plane, then interleaved V, U at half resolution), BT.601 full range: the layout an
// Android camera delivers. Sides must be even.
struct Nv21Frame {
  int width = 0, height = 0;
  std::vector<uint8_t> y, vu;
};

Nv21Frame to_nv21(const vision::ImageView& rgb) {
  Nv21Frame f;
  f.width = rgb.width & ~1;
  f.height = rgb.height & ~1;
  f.y.resize(static_cast<size_t>(f.width) * f.height);
  f.vu.resize(static_cast<size_t>(f.width) * f.height / 2);
  auto px = [&](int yy, int xx, int c) -> float {
    const uint8_t* p = rgb.pixel(yy, xx);
    return rgb.channels == 1 ? p[0] : p[c];
  };
  for (int yy = 0; yy < f.height; ++yy) {
    for (int xx = 0; xx < f.width; ++xx) {
      const float r = px(yy, xx, 0), g = px(yy, xx, 1), b = px(yy, xx, 2);
      f.y[static_cast<size_t>(yy) * f.width + xx] =
          static_cast<uint8_t>(std::clamp(std::lround(0.299f * r + 0.587f * g + 0.114f * b), 0L, 255L));
    }
  }
  for (int cy = 0; cy < f.height / 2; ++cy) {
    for (int cx = 0; cx < f.width / 2; ++cx) {
      float u = 0, v = 0;
      for (int dy = 0; dy < 2; ++dy) {
        for (int dx = 0; dx < 2; ++dx) {
          const float r = px(2 * cy + dy, 2 * cx + dx, 0), g = px(2 * cy + dy, 2 * cx + dx, 1),
                      b = px(2 * cy + dy, 2 * cx + dx, 2);
          u += -0.168736f * r - 0.331264f * g + 0.5f * b + 128.f;
          v += 0.5f * r - 0.418688f * g - 0.081312f * b + 128.f;
        }
      }
      const size_t o = static_cast<size_t>(cy) * f.width + 2 * static_cast<size_t>(cx);
      f.vu[o] = static_cast<uint8_t>(std::clamp(std::lround(v / 4), 0L, 255L));
      f.vu[o + 1] = static_cast<uint8_t>(std::clamp(std::lround(u / 4), 0L, 255L));
    }
  }
  return f;
}

class Pipeline {
 public:
  explicit Pipeline(const PipelineOptions& o) : o_(o) {}

  Expected<PipelineResult> run();

 private:
  void say(const std::string& s) const {
    if (o_.progress) o_.progress(s);
  }
  // Runs one stage: records status, message and seconds in stage_json(id).
  void stage(const std::string& id, const std::string& title, const std::function<Status(json&)>& body);
  void skip(const std::string& id, const std::string& title, const std::string& status, const std::string& why);

  Status train_stage(json& s);
  Status convert_stage(json& s);
  Status optimize_stage(json& s);
  void variants_section();
  Status integrate_stage(json& s);
  Status predict_stage(json& s);
  Status load_eval_set();
  Status pick_samples();

  PipelineOptions o_;
  json report_;
  std::string out_;
  std::string model_path_;  // the trained float model (.pcv)
  bool have_model_ = false;
  ir::Model model_;
  std::vector<std::string> class_names_;
  std::shared_ptr<const data::Dataset> eval_set_;
  std::vector<size_t> eval_indices_;
  std::string eval_source_;
  std::vector<Sample> samples_;
  // Files to measure as variants: (name, format/description, path).
  struct VariantFile {
    std::string name, kind, path;
  };
  std::vector<VariantFile> variant_files_;
  std::string shipped_model_;  // what integrate loads through the C API
};

void Pipeline::stage(const std::string& id, const std::string& title, const std::function<Status(json&)>& body) {
  say(fmt::format("[{}] {}", id, title));
  json s = {{"id", id}, {"title", title}, {"status", "ok"}, {"message", ""}};
  const auto t0 = Clock::now();
  Status st;
  try {
    st = body(s);
  } catch (const std::exception& e) {
    st = internal_error(fmt::format("unexpected exception: {}", e.what()));
  }
  s["seconds"] = seconds_since(t0);
  if (!st.is_ok()) {
    s["status"] = "failed";
    s["message"] = st.to_string();
    say(fmt::format("[{}] failed: {}", id, st.message()));
  } else {
    say(fmt::format("[{}] done in {:.1f} s", id, s["seconds"].get<double>()));
  }
  report_["stages"].push_back(std::move(s));
}

void Pipeline::skip(const std::string& id, const std::string& title, const std::string& status, const std::string& why) {
  say(fmt::format("[{}] {}: {}", id, status, why));
  report_["stages"].push_back({{"id", id}, {"title", title}, {"status", status}, {"message", why}, {"seconds", 0.0}});
}

Status Pipeline::load_eval_set() {
  const size_t eval_n = o_.quick ? 300 : 2000;
  if (o_.data_dir.empty()) {
    PCV_ASSIGN_OR_RETURN(auto test, data::IdxDataset::fashion_mnist(false, o_.fashion_mnist_dir));
    auto ds = std::make_shared<data::IdxDataset>(std::move(test));
    // Spread over the test set: every k-th image.
    const size_t n = std::min(eval_n, ds->size());
    for (size_t i = 0; i < n; ++i) eval_indices_.push_back(i * ds->size() / n);
    eval_source_ = fmt::format("Fashion-MNIST test set ({} of {} images)", n, ds->size());
    eval_set_ = ds;
  } else {
    PCV_ASSIGN_OR_RETURN(auto folder, data::ImageFolderDataset::open(o_.data_dir));
    auto ds = std::make_shared<data::ImageFolderDataset>(std::move(folder));
    const std::vector<int> labels = ds->labels();
    // The trainer's validation split (same fraction and seed): pictures it did not train on.
    PCV_ASSIGN_OR_RETURN(data::Split split, data::stratified_split(labels, 0.2, o_.seed));
    eval_indices_ = split.val;
    if (eval_indices_.size() > eval_n) eval_indices_.resize(eval_n);
    eval_source_ = fmt::format("{}: validation split ({} images)", o_.data_dir, eval_indices_.size());
    eval_set_ = ds;
  }
  class_names_ = eval_set_->class_names();
  return Status::ok();
}

Status Pipeline::train_stage(json& s) {
#if defined(PCV_TRAIN_AVAILABLE)
  train::TrainOptions to;
  to.data_dir = o_.data_dir;
  to.fashion_mnist_dir = o_.fashion_mnist_dir;
  to.epochs = o_.epochs > 0 ? o_.epochs : (o_.quick ? 1 : 3);
  to.threads = o_.threads;
  to.seed = o_.seed;
  to.output_path = out_ + "/model.pcv";
  if (o_.data_dir.empty()) {
    to.arch = "simple_cnn";
    if (o_.quick) to.limit = 600;
  } else {
    to.arch = "mobilenet_v2";
    if (!o_.init_model.empty()) {
      to.init_model = o_.init_model;
      to.freeze_backbone = true;
    } else {
      to.size = o_.quick ? 64 : 128;
      to.width = o_.quick ? 0.35f : 0.5f;
    }
    if (o_.quick) to.limit = 300;
  }
  s["arch"] = to.init_model.empty() ? fmt::format("{}{}", to.arch, to.width != 1.0f ? fmt::format(" {:g}", to.width) : "")
                                     : fmt::format("{} + new head", fs::path(to.init_model).filename().string());
  s["dataset"] = o_.data_dir.empty() ? "Fashion-MNIST" : o_.data_dir;
  s["steps"] = json::array();
  train::TrainCallbacks cb;
  int64_t last_point = -1;
  cb.batch = [&](int epoch, const std::string& phase, int64_t done, int64_t total, double loss, double acc, double) {
    if (phase == "features") return;  // the feature cache being filled: no loss yet
    // About 40 points per epoch.
    const int64_t bucket = total > 0 ? done * 40 / total : 0;
    if (bucket == last_point && done != total) return;
    last_point = done == total ? -1 : bucket;
    const double x = (epoch - 1) + (total > 0 ? static_cast<double>(done) / static_cast<double>(total) : 1.0);
    s["steps"].push_back({{"x", x}, {"loss", num(loss)}, {"accuracy", num(acc)}, {"phase", phase}});
  };
  cb.epoch = [&](const train::EpochMetrics& m) {
    say(fmt::format("  epoch {} ({}): loss {:.4f} acc {:.4f}, val loss {:.4f} acc {:.4f}", m.epoch, m.phase, m.loss,
                    m.accuracy, m.val_loss, m.val_accuracy));
  };
  cb.message = [&](const std::string& m) { say("  " + m); };
  PCV_ASSIGN_OR_RETURN(train::TrainResult r, train::train(to, cb));
  s["epochs"] = json::array();
  for (const auto& e : r.epochs) {
    s["epochs"].push_back({{"epoch", e.epoch}, {"phase", e.phase}, {"loss", num(e.loss)}, {"accuracy", num(e.accuracy)},
                           {"val_loss", num(e.val_loss)}, {"val_accuracy", num(e.val_accuracy)}, {"lr", num(e.lr)},
                           {"images_per_sec", num(e.images_per_sec)}, {"seconds", num(e.seconds)}});
  }
  s["best_epoch"] = r.best_epoch;
  s["best_val_accuracy"] = num(r.best_val_accuracy);
  if (r.test_accuracy >= 0) s["test_accuracy"] = num(r.test_accuracy);
  s["train_samples"] = r.train_samples;
  s["val_samples"] = r.val_samples;
  s["test_samples"] = r.test_samples;
  s["classes"] = r.class_names;
  model_path_ = r.model_path;
  PCV_ASSIGN_OR_RETURN(model_, formats::load_model(model_path_));
  have_model_ = true;
  s["model_path"] = model_path_;
  s["model_bytes"] = bytes_on_disk(model_path_);
  s["parameters"] = model_.graph.parameter_count();
  const auto& in = model_.graph.value(model_.graph.inputs[0]).shape;
  s["input_shape"] = in;

  // Evaluation of the best model on the held-out set: accuracy, per-class metrics, confusion.
  PCV_RETURN_IF_ERROR(load_eval_set());
  train::EvalOptions eo;
  eo.threads = o_.threads;
  PCV_ASSIGN_OR_RETURN(train::EvalReport ev, train::evaluate_model(model_, eval_set_, eval_indices_, eo));
  json e = {{"source", eval_source_}, {"samples", ev.samples}, {"accuracy", num(ev.accuracy)}, {"loss", num(ev.loss)},
            {"confusion", ev.confusion}, {"classes", json::array()}, {"images_per_sec", num(ev.images_per_sec)}};
  for (const auto& c : ev.classes) {
    e["classes"].push_back({{"name", c.name}, {"support", c.support}, {"precision", num(c.precision)},
                            {"recall", num(c.recall)}, {"f1", num(c.f1)}});
  }
  s["eval"] = std::move(e);
  variant_files_.push_back({"float", "pcv (trained)", model_path_});
  return Status::ok();
#else
  (void)s;
  return unsupported("training is not available in this build (pcv_train not built)");
#endif
}

Status Pipeline::convert_stage(json& s) {
  s["files"] = json::array();
  int failed = 0;
  const std::pair<formats::Format, const char*> targets[] = {
      {formats::Format::kTflite, "model.tflite"}, {formats::Format::kMlmodel, "model.mlmodel"},
      {formats::Format::kMlpackage, "model.mlpackage"}};
  for (const auto& [fmt_id, file] : targets) {
    const std::string path = out_ + "/" + file;
    json f = {{"format", formats::format_name(fmt_id)}, {"path", path}, {"status", "ok"}};
    const auto t0 = Clock::now();
    std::error_code ec;
    fs::remove_all(path, ec);
    Status st = formats::save_model(model_, path, fmt_id);
    if (st.is_ok()) {
      f["bytes"] = bytes_on_disk(path);
      f["write_seconds"] = seconds_since(t0);
      auto back = formats::load_model(path);
      if (!back) {
        st = back.status().with_context("reading it back: ");
      } else {
        predict::CompareOptions co;
        co.random_count = 3;
        co.threads = o_.threads;
        auto cmp = predict::compare_models(model_, *back, co);
        if (!cmp) {
          st = cmp.status().with_context("comparing with the source: ");
        } else {
          f["top1_agreement"] = num(cmp->top1_agreement);
          f["max_abs_diff"] = num(cmp->max_abs_diff);
          f["output_snr_db"] = num(cmp->output_snr_db);
          f["layers_matched"] = cmp->layers.size();
          f["layer_match"] = cmp->match;
          variant_files_.push_back({formats::format_name(fmt_id), file, path});
        }
      }
    }
    if (!st.is_ok()) {
      f["status"] = "failed";
      f["message"] = st.to_string();
      ++failed;
    }
    say(fmt::format("  {} {}", file, st.is_ok() ? "ok" : "failed: " + st.message()));
    s["files"].push_back(std::move(f));
  }
  if (failed == 3) return internal_error("no format could be written");
  if (failed > 0) s["message"] = fmt::format("{} of 3 formats failed (see the table)", failed);
  return Status::ok();
}

Status Pipeline::optimize_stage(json& s) {
  s["variants"] = json::array();
#if defined(PCV_OPTIMIZE_AVAILABLE)
  struct Step {
    const char* name;
    const char* file;
    optimize::QuantizeMode q;
    float prune;
    const char* what;
  };
  const Step steps[] = {
      {"fp16", "model_fp16.tflite", optimize::QuantizeMode::kFp16, 0.f, "fp16 weights"},
      {"int8", "model_int8.tflite", optimize::QuantizeMode::kInt8, 0.f, "int8 weights and activations (calibrated)"},
      {"pruned", "model_pruned50.tflite", optimize::QuantizeMode::kNone, 0.5f, "50% of weights pruned (magnitude)"},
  };
  int failed = 0;
  for (const Step& st : steps) {
    const std::string path = out_ + "/" + st.file;
    json v = {{"name", st.name}, {"path", path}, {"what", st.what}, {"status", "ok"}};
    optimize::OptimizeOptions oo;
    oo.quantize = st.q;
    oo.prune = st.prune;
    oo.report = false;
    oo.calibration_data = o_.data_dir.empty() ? "fashion-mnist:train" : o_.data_dir;
    oo.calibration_size = o_.quick ? 64 : 200;
    const auto t0 = Clock::now();
    auto r = optimize::optimize_model(model_, model_path_, path, oo);
    v["seconds"] = seconds_since(t0);
    if (r) {
      v["bytes"] = bytes_on_disk(path);
      variant_files_.push_back({st.name, st.file, path});
      if (st.q == optimize::QuantizeMode::kInt8) shipped_model_ = path;
    } else {
      v["status"] = "failed";
      v["message"] = r.status().to_string();
      ++failed;
    }
    say(fmt::format("  {} {}", st.file, r ? "ok" : "failed: " + r.status().message()));
    s["variants"].push_back(std::move(v));
  }
  if (failed == 3) return internal_error("no variant could be made");
  if (failed > 0) s["message"] = fmt::format("{} of 3 variants failed (see the table)", failed);
  return Status::ok();
#else
  for (const char* name : {"fp16", "int8", "pruned"}) {
    s["variants"].push_back({{"name", name}, {"status", "unavailable"}, {"message", "not available in this build"}});
  }
  s["status_override"] = "unavailable";
  return Status::ok();
#endif
}

void Pipeline::variants_section() {
  json rows = json::array();
  const int runs = o_.quick ? 10 : 30;
  for (const auto& vf : variant_files_) {
    say(fmt::format("  measuring {}", vf.path));
    json v = {{"name", vf.name}, {"file", vf.kind}, {"path", vf.path}, {"bytes", bytes_on_disk(vf.path)}};
#if defined(PCV_OPTIMIZE_AVAILABLE)
    int64_t raw = 0, gz = 0;
    if (optimize::measure_file(vf.path, &raw, &gz).is_ok()) v["gzip_bytes"] = gz;
#endif
    auto m = formats::load_model(vf.path);
    if (!m) {
      v["error"] = m.status().to_string();
      rows.push_back(std::move(v));
      continue;
    }
    int threads = 1;
    v["latency_ms"] = num(median_latency_ms(*m, runs, &threads));
    v["threads"] = threads;
#if defined(PCV_TRAIN_AVAILABLE)
    if (eval_set_) {
      train::EvalOptions eo;
      eo.threads = o_.threads;
      std::vector<size_t> idx = eval_indices_;
      if (idx.size() > static_cast<size_t>(o_.quick ? 200 : 1000)) idx.resize(o_.quick ? 200 : 1000);
      auto ev = train::evaluate_model(*m, eval_set_, idx, eo);
      if (!ev) {
        // Imported graphs may fix the batch at 1 (a reshape to (1, K)): evaluate one by one.
        eo.batch = 1;
        ev = train::evaluate_model(*m, eval_set_, idx, eo);
      }
      if (ev) {
        v["accuracy"] = num(ev->accuracy);
        v["eval_samples"] = ev->samples;
      } else {
        v["error"] = ev.status().to_string();
      }
    }
#endif
    rows.push_back(std::move(v));
  }
  report_["variants"] = std::move(rows);
  report_["variants_note"] = fmt::format(
      "pocketcv runtime, 1 thread, batch 1, median of {} runs; accuracy on {}", runs, eval_source_);
}

Status Pipeline::pick_samples() {
  if (!samples_.empty()) return Status::ok();
  PCV_ENSURE(eval_set_ != nullptr && !eval_indices_.empty(), StatusCode::kInvalidArgument, "no evaluation data");
  const size_t want = static_cast<size_t>(o_.samples > 0 ? o_.samples : (o_.quick ? 6 : 8));
  // Round-robin over classes so the samples show several classes.
  const int classes = eval_set_->num_classes();
  std::vector<std::vector<size_t>> by_class(static_cast<size_t>(classes));
  for (size_t i : eval_indices_) by_class[static_cast<size_t>(eval_set_->label(i))].push_back(i);
  for (size_t round = 0; samples_.size() < want; ++round) {
    bool any = false;
    for (int c = 0; c < classes && samples_.size() < want; ++c) {
      if (round >= by_class[static_cast<size_t>(c)].size()) continue;
      any = true;
      const size_t i = by_class[static_cast<size_t>(c)][round];
      vision::DecodeOptions hint;
      hint.min_height = hint.min_width = 256;
      PCV_ASSIGN_OR_RETURN(vision::Image img, eval_set_->load(i, hint));
      Sample smp;
      smp.image = std::move(img);
      smp.label = eval_set_->label(i);
      smp.name = eval_set_->sample_name(i);
      if (!o_.data_dir.empty()) smp.path = smp.name;
      samples_.push_back(std::move(smp));
    }
    if (!any) break;
  }
  return Status::ok();
}

Status Pipeline::integrate_stage(json& s) {
#if defined(PCV_CAPI_AVAILABLE)
  PCV_RETURN_IF_ERROR(pick_samples());
  const std::string path = shipped_model_.empty() ? out_ + "/model.tflite" : shipped_model_;
  s["api"] = "C API (include/pocketcv/pocketcv.h)";
  s["model_path"] = path;
  // The camera frame: the sample picture as a sensor mounted 90° off would deliver it (the
  // upright picture rotated 270° clockwise), at least 160 pixels on its short side, in NV21.
  const Sample& smp = samples_[0];
  vision::Image upright = smp.image;
  const int short_side = std::min(upright.height(), upright.width());
  if (short_side < 160) {
    const int f = (160 + short_side - 1) / short_side;
    PCV_ASSIGN_OR_RETURN(upright, vision::resize_image(upright, upright.height() * f, upright.width() * f));
  }
  vision::Image sensor = vision::rotate_image(upright, vision::Rotation::k270, false);
  Nv21Frame nv = to_nv21(sensor);

  pcv_model* model = nullptr;
  auto capi_error = [](const char* what) {
    return internal_error(fmt::format("{}: {}", what, pcv_last_error_message()));
  };
  if (pcv_model_load_file(path.c_str(), &model) != PCV_OK) return capi_error("pcv_model_load_file");
  std::unique_ptr<pcv_model, void (*)(pcv_model*)> model_guard(model, pcv_model_free);
  pcv_session* session = nullptr;
  if (pcv_session_create(model, nullptr, &session) != PCV_OK) return capi_error("pcv_session_create");
  std::unique_ptr<pcv_session, void (*)(pcv_session*)> session_guard(session, pcv_session_free);
  pcv_frame frame{};
  frame.format = PCV_FRAME_NV21;
  frame.width = nv.width;
  frame.height = nv.height;
  frame.planes[0] = {nv.y.data(), nv.width, 1};
  frame.planes[1] = {nv.vu.data(), nv.width, 2};
  if (pcv_session_set_input_frame(session, &frame, 90, 0, PCV_CROP_CENTER) != PCV_OK) {
    return capi_error("pcv_session_set_input_frame");
  }
  if (pcv_session_run(session) != PCV_OK) return capi_error("pcv_session_run");
  pcv_classification top[3];
  int32_t n = 0;
  if (pcv_session_top_k(session, 3, top, &n) != PCV_OK) return capi_error("pcv_session_top_k");
  pcv_trace tr = PCV_TRACE_INIT;
  if (pcv_session_last_trace(session, &tr) != PCV_OK) return capi_error("pcv_session_last_trace");

  s["frame"] = {{"format", "NV21"}, {"width", nv.width}, {"height", nv.height}, {"rotation_degrees", 90},
                {"mirror", false}, {"crop", "center"}};
  s["top"] = json::array();
  for (int i = 0; i < n; ++i) s["top"].push_back({{"label", top[i].label}, {"index", top[i].class_index}, {"score", num(top[i].score)}});
  s["trace"] = {{"preprocess_ms", num(tr.preprocess_ms)}, {"inference_ms", num(tr.inference_ms)},
                {"postprocess_ms", num(tr.postprocess_ms)}};
  s["true_label"] = smp.label < static_cast<int>(class_names_.size()) ? class_names_[static_cast<size_t>(smp.label)] : "";
  if (auto t = thumbnail_data_uri(sensor, 160)) s["frame_image"] = *t;
  if (auto t = thumbnail_data_uri(upright, 160)) s["upright_image"] = *t;

  // The same model through the C++ predictor on the upright RGB picture: same top-1 expected
  // (the frame differs only by chroma subsampling).
  PCV_ASSIGN_OR_RETURN(ir::Model m, formats::load_model(path));
  PCV_ASSIGN_OR_RETURN(auto predictor, predict::Predictor::create(std::move(m)));
  PCV_ASSIGN_OR_RETURN(predict::Prediction p, predictor->predict_image(upright, 1));
  s["predict_top1"] = {{"label", p.top[0].label}, {"score", num(p.top[0].score)}};
  s["agrees_with_predict"] = n > 0 && top[0].class_index == p.top[0].index;
  return Status::ok();
#else
  (void)s;
  return unsupported("the C API is not available in this build (pcv_capi not built)");
#endif
}

Status Pipeline::predict_stage(json& s) {
  PCV_RETURN_IF_ERROR(pick_samples());
  predict::PredictorOptions po;
  po.profile = true;
  po.warmup_runs = 2;
  PCV_ASSIGN_OR_RETURN(auto predictor, predict::Predictor::create(model_, po));
  s["model_path"] = model_path_;
  s["samples"] = json::array();
  int correct = 0;
  for (size_t i = 0; i < samples_.size(); ++i) {
    const Sample& smp = samples_[i];
    Expected<predict::Prediction> p = smp.path.empty() ? predictor->predict_image(smp.image, 3)
                                                        : predictor->predict_file(smp.path, 3);
    if (!p) return p.status();
    const std::string truth =
        smp.label < static_cast<int>(class_names_.size()) ? class_names_[static_cast<size_t>(smp.label)] : "";
    json e = {{"name", smp.name}, {"true_label", truth}, {"true_index", smp.label}, {"top", json::array()}, {"correct", p->top[0].index == smp.label},
              {"trace", trace_json(p->trace, i == 0)}};
    if (p->top[0].index == smp.label) ++correct;
    for (const auto& c : p->top) e["top"].push_back({{"label", c.label}, {"index", c.index}, {"score", num(c.score)}});
    auto thumb = thumbnail_data_uri(smp.image, 192);
    if (thumb) e["image"] = *thumb;
    s["samples"].push_back(std::move(e));
  }
  s["correct"] = correct;
  if (!s["samples"].empty()) s["trace"] = s["samples"][0]["trace"];
  return Status::ok();
}

Expected<PipelineResult> Pipeline::run() {
  out_ = o_.out_dir.empty() ? "." : o_.out_dir;
  std::error_code ec;
  fs::create_directories(out_, ec);
  PCV_ENSURE(!ec && fs::is_directory(out_), StatusCode::kIoError, "{}: cannot create the output directory{}", out_,
             ec ? ": " + ec.message() : "");
  const auto t0 = Clock::now();
  const std::time_t now = std::time(nullptr);
  char when[64];
  std::strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S %Z", std::localtime(&now));
  report_ = {{"title", "pocketcv pipeline"},
             {"generated", when},
             {"pocketcv_version", "0.1.0"},
             {"options",
              {{"data", o_.data_dir.empty() ? "Fashion-MNIST" : o_.data_dir},
               {"init", o_.init_model},
               {"quick", o_.quick},
               {"epochs", o_.epochs},
               {"threads", o_.threads},
               {"out", out_}}},
             {"stages", json::array()}};

  stage("train", "Train", [&](json& s) { return train_stage(s); });
  if (have_model_) {
    stage("convert", "Convert", [&](json& s) { return convert_stage(s); });
    stage("optimize", "Optimize", [&](json& s) {
      Status st = optimize_stage(s);
      if (s.contains("status_override")) {
        s["status"] = s["status_override"];
        s["message"] = "not available in this build (pcv_optimize not built)";
        s.erase("status_override");
      }
      return st;
    });
    say("[variants] accuracy and latency per file");
    variants_section();
    stage("integrate", "Integrate", [&](json& s) { return integrate_stage(s); });
    stage("predict", "Predict", [&](json& s) { return predict_stage(s); });
  } else {
    for (auto [id, title] : {std::pair{"convert", "Convert"}, {"optimize", "Optimize"}, {"integrate", "Integrate"},
                             {"predict", "Predict"}}) {
      skip(id, title, "skipped", "needs the trained model (the train stage failed)");
    }
  }

  int failed = 0, ok = 0;
  for (const auto& s : report_["stages"]) {
    if (s["status"] == "failed") ++failed;
    if (s["status"] == "ok") ++ok;
  }
  report_["summary"] = {{"stages_ok", ok}, {"stages_failed", failed}, {"stages", report_["stages"].size()},
                        {"seconds", seconds_since(t0)}};

  PipelineResult r;
  r.failed_stages = failed;
  r.json_path = out_ + "/report.json";
  r.html_path = out_ + "/report.html";
  {
    std::ofstream f(r.json_path);
    f << report_.dump(2) << "\n";
    PCV_ENSURE(f.good(), StatusCode::kIoError, "{}: write failed", r.json_path);
  }
  {
    std::ofstream f(r.html_path);
    f << render_html(report_);
    PCV_ENSURE(f.good(), StatusCode::kIoError, "{}: write failed", r.html_path);
  }
  r.report = std::move(report_);
  return r;
}

}  // namespace

Expected<PipelineResult> run_pipeline(const PipelineOptions& options) {
  Pipeline p(options);
  return p.run();
}

}  // namespace pcv::report
