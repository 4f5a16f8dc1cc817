#include "train/evaluate.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>

#include "data/loader.h"
#include "runtime/session.h"
#include "zoo/zoo.h"

namespace pcv::train {

Expected<vision::Preprocess> preprocess_for_model(const ir::Model& model) {
  const ir::Graph& g = model.graph;
  PCV_ENSURE(!g.inputs.empty(), StatusCode::kInvalidModel, "model has no input");
  const ir::Shape& s = g.value(g.inputs[0]).shape;
  PCV_ENSURE(s.size() == 4 && (s[3] == 1 || s[3] == 3), StatusCode::kUnsupported,
             "input 0 {} is not an NHWC image with 1 or 3 channels", ir::shape_to_string(s));
  const ir::InputSpec& spec = model.input_spec;
  vision::Preprocess p;
  p.out_h = static_cast<int>(s[1]);
  p.out_w = static_cast<int>(s[2]);
  p.mode = vision::ResizeMode::kCenterCrop;
  p.crop_fraction = spec.crop_fraction > 0.f && spec.crop_fraction <= 1.f ? spec.crop_fraction : 1.f;
  if (s[3] == 1) {
    p.color = vision::ColorOrder::kGray;
  } else {
    p.color = spec.color == ir::ColorOrder::kBGR ? vision::ColorOrder::kBGR : vision::ColorOrder::kRGB;
  }
  for (int c = 0; c < 3; ++c) {
    p.mean[c] = spec.mean[static_cast<size_t>(c)];
    p.std[c] = spec.std[static_cast<size_t>(c)] != 0.f ? spec.std[static_cast<size_t>(c)] : 1.f;
  }
  PCV_RETURN_IF_ERROR(vision::validate(p));
  return p;
}

namespace {

// Class scores of one sample as floats (dequantized for i8/u8 outputs).
void scores_of(const ir::Tensor& out, const ir::QuantParams& q, size_t sample, size_t classes, float* dst) {
  const size_t off = sample * classes;
  const float scale = q.scale.empty() ? 1.f : q.scale[0];
  const int32_t zp = q.zero_point.empty() ? 0 : q.zero_point[0];
  for (size_t k = 0; k < classes; ++k) {
    switch (out.dtype()) {
      case ir::DType::kF32: dst[k] = out.data<float>()[off + k]; break;
      case ir::DType::kU8: dst[k] = scale * static_cast<float>(out.data<uint8_t>()[off + k] - zp); break;
      case ir::DType::kI8: dst[k] = scale * static_cast<float>(out.data<int8_t>()[off + k] - zp); break;
      default: dst[k] = 0.f; break;
    }
  }
}

}  // namespace

Expected<EvalReport> evaluate_model(const ir::Model& model, std::shared_ptr<const data::Dataset> dataset,
                                    std::vector<size_t> indices, const EvalOptions& options) {
  const auto t0 = std::chrono::steady_clock::now();
  PCV_ASSIGN_OR_RETURN(vision::Preprocess pre, preprocess_for_model(model));
  runtime::SessionOptions so;
  // Small models gain nothing from a second thread (waking it costs more than the work).
  so.threads = zoo::count_macs(model.graph) < 20'000'000 ? 1 : options.threads;
  so.batch = options.batch;
  PCV_ASSIGN_OR_RETURN(auto session, runtime::Session::create(model, so));
  PCV_ENSURE(session->num_outputs() >= 1, StatusCode::kInvalidModel, "model has no output");
  const ir::Value& out_info = session->output_info(0);
  const size_t classes = static_cast<size_t>(out_info.shape.back());
  const int nc = dataset->num_classes();
  PCV_ENSURE(classes == static_cast<size_t>(nc), StatusCode::kInvalidArgument,
             "the model has {} classes, the dataset {} ({})", classes, nc, fmt::join(dataset->class_names(), ", "));
  // Does the output already hold probabilities? (softmax at the end: sums to 1)
  if (indices.empty()) {
    indices.resize(dataset->size());
    for (size_t i = 0; i < indices.size(); ++i) indices[i] = i;
  }
  if (options.limit > 0 && indices.size() > options.limit) indices.resize(options.limit);
  data::LoaderOptions lo;
  lo.batch_size = options.batch;
  lo.shuffle = false;
  lo.threads = 1;  // the loader's producer thread decodes while the session runs
  lo.preprocess = pre;
  lo.augment = false;
  PCV_ASSIGN_OR_RETURN(auto loader, data::DataLoader::create(dataset, indices, lo));
  loader->start_epoch(0);

  EvalReport r;
  r.confusion.assign(static_cast<size_t>(nc), std::vector<int64_t>(static_cast<size_t>(nc), 0));
  ir::Tensor& input = session->input(0);
  const ir::Value& in_info = session->input_info(0);
  const size_t per_sample = static_cast<size_t>(ir::num_elements(in_info.shape) / in_info.shape[0]);
  std::vector<float> scores(classes);
  data::Batch b;
  while (true) {
    PCV_ASSIGN_OR_RETURN(bool more, loader->next(&b));
    if (!more) break;
    // Input: float, or quantized with the input's parameters.
    const size_t n = static_cast<size_t>(b.size);
    if (input.dtype() == ir::DType::kF32) {
      std::memcpy(input.raw(), b.images.data(), n * per_sample * sizeof(float));
      std::memset(input.data<float>() + n * per_sample, 0, (static_cast<size_t>(options.batch) - n) * per_sample * sizeof(float));
    } else {
      const float scale = in_info.quant.scale.empty() ? 1.f : in_info.quant.scale[0];
      const int32_t zp = in_info.quant.zero_point.empty() ? 0 : in_info.quant.zero_point[0];
      const bool u8 = input.dtype() == ir::DType::kU8;
      const int lo_q = u8 ? 0 : -128, hi_q = u8 ? 255 : 127;
      for (size_t i = 0; i < static_cast<size_t>(options.batch) * per_sample; ++i) {
        const float v = i < n * per_sample ? b.images[i] : 0.f;
        const int q = std::clamp(static_cast<int>(std::lround(v / scale)) + zp, lo_q, hi_q);
        if (u8) input.data<uint8_t>()[i] = static_cast<uint8_t>(q);
        else input.data<int8_t>()[i] = static_cast<int8_t>(q);
      }
    }
    PCV_RETURN_IF_ERROR(session->run());
    const ir::Tensor& out = session->output(0);
    for (size_t i = 0; i < n; ++i) {
      scores_of(out, out_info.quant, i, classes, scores.data());
      // Probabilities: softmax unless they already form a distribution.
      double sum = 0;
      bool in01 = true;
      for (float s : scores) {
        sum += s;
        in01 = in01 && s >= -1e-6f && s <= 1.f + 1e-6f;
      }
      if (!(in01 && std::fabs(sum - 1.0) < 2e-2)) {
        const float mx = *std::max_element(scores.begin(), scores.end());
        double z = 0;
        for (float& s : scores) z += (s = std::exp(s - mx));
        for (float& s : scores) s = static_cast<float>(s / z);
      }
      const int pred = static_cast<int>(std::max_element(scores.begin(), scores.end()) - scores.begin());
      const int y = b.labels[i];
      r.loss -= std::log(std::max(1e-12, static_cast<double>(scores[static_cast<size_t>(y)])));
      r.confusion[static_cast<size_t>(y)][static_cast<size_t>(pred)]++;
      if (pred == y) ++r.correct;
      ++r.samples;
    }
  }
  r.accuracy = r.samples ? static_cast<double>(r.correct) / static_cast<double>(r.samples) : 0.0;
  r.loss = r.samples ? r.loss / static_cast<double>(r.samples) : 0.0;
  for (int c = 0; c < nc; ++c) {
    ClassMetrics m;
    m.name = dataset->class_names()[static_cast<size_t>(c)];
    int64_t tp = r.confusion[static_cast<size_t>(c)][static_cast<size_t>(c)];
    for (int k = 0; k < nc; ++k) {
      m.support += r.confusion[static_cast<size_t>(c)][static_cast<size_t>(k)];
      m.predicted += r.confusion[static_cast<size_t>(k)][static_cast<size_t>(c)];
    }
    m.precision = m.predicted ? static_cast<double>(tp) / static_cast<double>(m.predicted) : 0.0;
    m.recall = m.support ? static_cast<double>(tp) / static_cast<double>(m.support) : 0.0;
    m.f1 = m.precision + m.recall > 0 ? 2 * m.precision * m.recall / (m.precision + m.recall) : 0.0;
    r.classes.push_back(m);
  }
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  r.images_per_sec = r.seconds > 0 ? static_cast<double>(r.samples) / r.seconds : 0.0;
  return r;
}

}  // namespace pcv::train
