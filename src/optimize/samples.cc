#include "optimize/samples.h"

#include <fmt/core.h>

#include <algorithm>
#include <filesystem>
#include <random>
#include <set>

#include "data/augment.h"
#include "data/idx.h"
#include "data/image_folder.h"

namespace pcv::optimize {

Expected<InputGeometry> input_geometry(const ir::Model& model) {
  const ir::Graph& g = model.graph;
  if (g.inputs.empty()) return invalid_model("the model has no input");
  const ir::Shape& s = g.value(g.inputs[0]).shape;
  if (s.size() != 4) {
    return unsupported(fmt::format("input {} is {}: images need (N, H, W, C)", g.value(g.inputs[0]).name,
                                   ir::shape_to_string(s)));
  }
  return InputGeometry{static_cast<int>(s[1]), static_cast<int>(s[2]), static_cast<int>(s[3])};
}

Expected<vision::Preprocess> preprocess_for(const ir::Model& model) {
  PCV_ASSIGN_OR_RETURN(InputGeometry geo, input_geometry(model));
  const ir::InputSpec& spec = model.input_spec;
  vision::Preprocess p;
  p.out_h = geo.height;
  p.out_w = geo.width;
  p.mode = vision::ResizeMode::kCenterCrop;
  p.crop_fraction = spec.crop_fraction > 0.f && spec.crop_fraction <= 1.f ? spec.crop_fraction : 1.f;
  if (geo.channels == 1) {
    p.color = vision::ColorOrder::kGray;
  } else if (geo.channels == 3) {
    p.color = spec.color == ir::ColorOrder::kBGR ? vision::ColorOrder::kBGR : vision::ColorOrder::kRGB;
  } else {
    return unsupported(fmt::format("input with {} channels: images have 1 or 3", geo.channels));
  }
  for (int c = 0; c < 3; ++c) {
    p.mean[c] = spec.mean[static_cast<size_t>(c)];
    p.std[c] = spec.std[static_cast<size_t>(c)] != 0.f ? spec.std[static_cast<size_t>(c)] : 1.f;
  }
  PCV_RETURN_IF_ERROR(vision::validate(p));
  return p;
}

Expected<SampleSet> load_samples(const data::Dataset& ds, const ir::Model& model, size_t max_samples,
                                 const std::string& source_name) {
  PCV_ASSIGN_OR_RETURN(vision::Preprocess pre, preprocess_for(model));
  // Class by class in turn, each class in dataset order.
  std::vector<std::vector<size_t>> by_class(static_cast<size_t>(std::max(1, ds.num_classes())));
  for (size_t i = 0; i < ds.size(); ++i) {
    const int l = ds.label(i);
    if (l >= 0 && static_cast<size_t>(l) < by_class.size()) by_class[static_cast<size_t>(l)].push_back(i);
  }
  const size_t want = max_samples == 0 ? ds.size() : std::min(max_samples, ds.size());
  std::vector<size_t> picked;
  for (size_t round = 0; picked.size() < want; ++round) {
    bool any = false;
    for (const auto& cls : by_class) {
      if (round < cls.size() && picked.size() < want) {
        picked.push_back(cls[round]);
        any = true;
      }
    }
    if (!any) break;
  }
  SampleSet s;
  s.class_names = ds.class_names();
  s.dataset_classes = ds.num_classes();
  s.source = source_name;
  const vision::DecodeOptions hint = vision::decode_options_for(pre);
  for (size_t i : picked) {
    PCV_ASSIGN_OR_RETURN(vision::Image img, ds.load(i, hint));
    ir::Tensor t(ir::DType::kF32, {1, pre.out_h, pre.out_w, pre.out_channels()});
    PCV_RETURN_IF_ERROR(data::eval_to_tensor(img.view(), pre, t.data<float>(), static_cast<size_t>(t.num_elements()))
                            .with_context(ds.sample_name(i)));
    s.inputs.push_back(std::move(t));
    s.labels.push_back(ds.label(i));
  }
  return s;
}

Expected<SampleSet> load_samples(const std::string& path, const ir::Model& model, size_t max_samples) {
  if (path == "fashion-mnist" || path == "fashion-mnist:test" || path == "fashion-mnist:train") {
    const bool train = path == "fashion-mnist:train";
    PCV_ASSIGN_OR_RETURN(auto ds, data::IdxDataset::fashion_mnist(train));
    return load_samples(ds, model, max_samples, train ? "fashion-mnist train" : "fashion-mnist test");
  }
  std::error_code ec;
  if (!std::filesystem::is_directory(path, ec)) return io_error(fmt::format("{}: not a directory of class folders", path));
  PCV_ASSIGN_OR_RETURN(auto ds, data::ImageFolderDataset::open(path));
  return load_samples(ds, model, max_samples, path);
}

SampleSet random_samples(const ir::Model& model, size_t n, uint64_t seed) {
  SampleSet s;
  s.source = "random";
  auto geo = input_geometry(model);
  if (!geo) return s;
  const ir::InputSpec& spec = model.input_spec;
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> pixel(0.f, 255.f);
  for (size_t k = 0; k < n; ++k) {
    ir::Tensor t(ir::DType::kF32, {1, geo->height, geo->width, geo->channels});
    float* d = t.data<float>();
    for (int64_t i = 0; i < t.num_elements(); ++i) {
      const auto c = static_cast<size_t>(std::min<int64_t>(2, i % geo->channels));
      const float sd = spec.std[c] != 0.f ? spec.std[c] : 1.f;
      d[i] = (pixel(rng) - spec.mean[c]) / sd;
    }
    s.inputs.push_back(std::move(t));
  }
  return s;
}

std::vector<std::string> calibration_warnings(const SampleSet& s, int model_classes, size_t min_samples) {
  std::vector<std::string> w;
  if (s.size() < min_samples) {
    w.push_back(fmt::format("calibration set is tiny: {} images (< {}); activation ranges may not cover real "
                            "inputs, use --calibration-size with more photos",
                            s.size(), min_samples));
  }
  if (!s.labelled()) return w;
  const std::set<int> seen(s.labels.begin(), s.labels.end());
  std::vector<std::string> missing;
  for (int c = 0; c < s.dataset_classes; ++c) {
    if (!seen.count(c)) missing.push_back(static_cast<size_t>(c) < s.class_names.size() ? s.class_names[static_cast<size_t>(c)] : std::to_string(c));
  }
  if (!missing.empty()) {
    std::string names;
    for (size_t i = 0; i < missing.size() && i < 8; ++i) names += (i ? ", " : "") + missing[i];
    if (missing.size() > 8) names += ", ...";
    w.push_back(fmt::format("calibration set misses {} of {} classes ({})", missing.size(), s.dataset_classes, names));
  }
  if (model_classes > 0 && s.dataset_classes > 0 && s.dataset_classes != model_classes) {
    w.push_back(fmt::format("calibration data has {} classes, the model outputs {}", s.dataset_classes, model_classes));
  }
  return w;
}

}  // namespace pcv::optimize
