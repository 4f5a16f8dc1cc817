#include "optimize/report.h"

#include <fmt/core.h>
#include <zlib.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>

#include "base/file.h"
#include "runtime/session.h"

namespace pcv::optimize {

namespace fs = std::filesystem;

int64_t gzip_size(const void* data, size_t size) {
  z_stream z{};
  // windowBits 15 + 16: gzip header and trailer, as `gzip -9` writes.
  if (deflateInit2(&z, 9, Z_DEFLATED, 15 + 16, 9, Z_DEFAULT_STRATEGY) != Z_OK) return -1;
  std::vector<uint8_t> out(deflateBound(&z, static_cast<uLong>(size)) + 64);
  z.next_in = static_cast<Bytef*>(const_cast<void*>(data));
  z.avail_in = static_cast<uInt>(size);
  z.next_out = out.data();
  z.avail_out = static_cast<uInt>(out.size());
  const int rc = deflate(&z, Z_FINISH);
  const int64_t n = rc == Z_STREAM_END ? static_cast<int64_t>(z.total_out) : -1;
  deflateEnd(&z);
  return n;
}

Status measure_file(const std::string& path, int64_t* bytes, int64_t* gzip_bytes) {
  std::error_code ec;
  std::vector<std::string> files;
  if (fs::is_directory(path, ec)) {
    for (const auto& e : fs::recursive_directory_iterator(path, ec)) {
      if (e.is_regular_file()) files.push_back(e.path().string());
    }
    std::sort(files.begin(), files.end());
  } else {
    files.push_back(path);
  }
  std::vector<uint8_t> all;
  for (const std::string& f : files) {
    PCV_ASSIGN_OR_RETURN(auto data, read_file(f));
    all.insert(all.end(), data.begin(), data.end());
  }
  *bytes = static_cast<int64_t>(all.size());
  *gzip_bytes = gzip_size(all.data(), all.size());
  return Status::ok();
}

namespace {

void fill_input(const ir::Tensor& x, ir::Tensor& in, const ir::Value& info) {
  const int64_t n = std::min(x.num_elements(), in.num_elements());
  const float* src = x.data<float>();
  if (in.dtype() == ir::DType::kF32) {
    std::memcpy(in.raw(), src, static_cast<size_t>(n) * sizeof(float));
    return;
  }
  const float s = info.quant.scale.empty() ? 1.f : info.quant.scale[0];
  const int32_t zp = info.quant.zero_point.empty() ? 0 : info.quant.zero_point[0];
  const bool u8 = in.dtype() == ir::DType::kU8;
  for (int64_t i = 0; i < n; ++i) {
    const float q = std::round(src[i] / s) + static_cast<float>(zp);
    if (u8) in.data<uint8_t>()[i] = static_cast<uint8_t>(std::clamp(q, 0.f, 255.f));
    else in.data<int8_t>()[i] = static_cast<int8_t>(std::clamp(q, -128.f, 127.f));
  }
}

// A value as f32 (dequantized per tensor when i8 / u8).
std::vector<float> as_f32(const ir::Tensor& t, const ir::QuantParams& q) {
  const int64_t n = t.num_elements();
  std::vector<float> out(static_cast<size_t>(n));
  const float s = q.scale.empty() ? 1.f : q.scale[0];
  const int32_t zp = q.zero_point.empty() ? 0 : q.zero_point[0];
  switch (t.dtype()) {
    case ir::DType::kF32: std::memcpy(out.data(), t.raw(), out.size() * sizeof(float)); break;
    case ir::DType::kI8:
      for (int64_t i = 0; i < n; ++i) out[static_cast<size_t>(i)] = s * static_cast<float>(t.data<int8_t>()[i] - zp);
      break;
    case ir::DType::kU8:
      for (int64_t i = 0; i < n; ++i) out[static_cast<size_t>(i)] = s * static_cast<float>(t.data<uint8_t>()[i] - zp);
      break;
    default: out.clear();
  }
  return out;
}

int argmax(const std::vector<float>& v) {
  return v.empty() ? -1 : static_cast<int>(std::max_element(v.begin(), v.end()) - v.begin());
}

}  // namespace

Expected<std::vector<std::vector<float>>> run_samples(const ir::Model& model, const SampleSet& samples,
                                                      bool fast_kernels) {
  runtime::SessionOptions so;
  so.fast_kernels = fast_kernels;
  PCV_ASSIGN_OR_RETURN(auto session, runtime::Session::create(model, so));
  std::vector<std::vector<float>> outs;
  for (const ir::Tensor& x : samples.inputs) {
    fill_input(x, session->input(0), session->input_info(0));
    PCV_RETURN_IF_ERROR(session->run());
    outs.push_back(as_f32(session->output(0), session->output_info(0).quant));
  }
  return outs;
}

void score_variant(const std::vector<std::vector<float>>& outputs, const std::vector<std::vector<float>>& ref,
                   const SampleSet& samples, VariantReport* v) {
  const size_t n = outputs.size();
  v->samples = static_cast<int>(n);
  size_t agree = 0, correct = 0;
  double max_diff = 0, sum_diff = 0;
  size_t diff_count = 0;
  std::map<int, size_t> predicted;
  bool labels_fit = samples.labelled() && samples.labels.size() == n;
  for (size_t i = 0; i < n; ++i) {
    const int top = argmax(outputs[i]);
    ++predicted[top];
    if (i < ref.size()) {
      agree += top == argmax(ref[i]);
      const size_t m = std::min(outputs[i].size(), ref[i].size());
      for (size_t k = 0; k < m; ++k) {
        const double d = std::fabs(static_cast<double>(outputs[i][k]) - ref[i][k]);
        max_diff = std::max(max_diff, d);
        sum_diff += d;
      }
      diff_count += m;
    }
    if (labels_fit && outputs[i].size() < static_cast<size_t>(samples.dataset_classes)) labels_fit = false;
    if (labels_fit) correct += top == samples.labels[i];
  }
  v->top1_agreement = n ? static_cast<double>(agree) / static_cast<double>(n) : 1.0;
  v->max_abs_diff = max_diff;
  v->mean_abs_diff = diff_count ? sum_diff / static_cast<double>(diff_count) : 0.0;
  if (labels_fit && n) v->accuracy = static_cast<double>(correct) / static_cast<double>(n);
  if (n >= 10 && predicted.size() == 1) v->constant_class = predicted.begin()->first;
}

Expected<double> median_latency_ms(const ir::Model& model, const SampleSet& samples, int runs) {
  if (samples.inputs.empty()) return 0.0;
  runtime::SessionOptions so;
  so.threads = 1;
  PCV_ASSIGN_OR_RETURN(auto session, runtime::Session::create(model, so));
  fill_input(samples.inputs[0], session->input(0), session->input_info(0));
  PCV_RETURN_IF_ERROR(session->run());
  std::vector<double> ms;
  for (int r = 0; r < std::max(1, runs); ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    PCV_RETURN_IF_ERROR(session->run());
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(ms.begin(), ms.end());
  return ms[ms.size() / 2];
}

Expected<std::vector<LayerError>> layer_errors(const ir::Model& reference, const ir::Model& optimized,
                                               const SampleSet& samples, size_t max_samples, std::string* worst) {
  runtime::SessionOptions so;
  so.keep_all_values = true;
  so.optimize_graph = false;
  PCV_ASSIGN_OR_RETURN(auto rs, runtime::Session::create(reference, so));
  PCV_ASSIGN_OR_RETURN(auto os, runtime::Session::create(optimized, so));
  const ir::Graph& rg = rs->graph();
  const ir::Graph& og = os->graph();
  std::map<std::string, ir::ValueId> rnames;
  for (size_t v = 0; v < rg.values.size(); ++v) {
    if (!rg.values[v].is_constant()) rnames[rg.values[v].name] = static_cast<ir::ValueId>(v);
  }
  struct Acc {
    ir::ValueId ref = ir::kNoValue;
    double signal = 0, noise = 0, dot = 0, nx = 0, ny = 0;
  };
  std::vector<Acc> acc(og.values.size());
  for (size_t v = 0; v < og.values.size(); ++v) {
    const ir::Value& val = og.values[v];
    if (val.is_constant()) continue;
    auto it = rnames.find(val.name);
    if (it == rnames.end()) continue;
    if (ir::num_elements(rg.value(it->second).shape) != ir::num_elements(val.shape)) continue;
    acc[v].ref = it->second;
  }
  // A quantize / dequantize output compares against what its input stands for.
  for (const ir::Node& node : og.nodes) {
    if (node.op != ir::OpType::kQuantize && node.op != ir::OpType::kDequantize) continue;
    const auto in = static_cast<size_t>(node.inputs[0]);
    const auto out = static_cast<size_t>(node.outputs[0]);
    if (acc[out].ref == ir::kNoValue && acc[in].ref != ir::kNoValue) acc[out].ref = acc[in].ref;
  }
  const size_t n = std::min(max_samples, samples.inputs.size());
  for (size_t s = 0; s < n; ++s) {
    fill_input(samples.inputs[s], rs->input(0), rs->input_info(0));
    fill_input(samples.inputs[s], os->input(0), os->input_info(0));
    PCV_RETURN_IF_ERROR(rs->run());
    PCV_RETURN_IF_ERROR(os->run());
    for (size_t v = 0; v < acc.size(); ++v) {
      if (acc[v].ref == ir::kNoValue) continue;
      const ir::Tensor ot = os->value(static_cast<ir::ValueId>(v));
      const ir::Tensor rt = rs->value(acc[v].ref);
      if (ot.empty() || rt.empty()) continue;
      const std::vector<float> y = as_f32(ot, og.values[v].quant);
      const std::vector<float> x = as_f32(rt, {});
      if (x.size() != y.size()) continue;
      for (size_t i = 0; i < x.size(); ++i) {
        const double a = x[i], b = y[i];
        acc[v].signal += a * a;
        acc[v].noise += (a - b) * (a - b);
        acc[v].dot += a * b;
        acc[v].nx += a * a;
        acc[v].ny += b * b;
      }
    }
  }
  constexpr double kEqualDb = 200.0;
  auto snr_of = [&](const Acc& a) {
    if (a.noise <= 0) return kEqualDb;
    if (a.signal <= 0) return -kEqualDb;
    return std::min(kEqualDb, 10.0 * std::log10(a.signal / a.noise));
  };
  // SNR of every value: matched ones measured, others inherit their producer's worst input.
  std::vector<double> snr(og.values.size(), kEqualDb);
  for (size_t v = 0; v < og.values.size(); ++v) {
    if (acc[v].ref != ir::kNoValue) snr[v] = snr_of(acc[v]);
  }
  std::vector<LayerError> out;
  double worst_noise = 0.0;
  for (const ir::Node& node : og.nodes) {
    double in_snr = kEqualDb;
    for (ir::ValueId in : node.inputs) {
      if (in != ir::kNoValue && !og.value(in).is_constant()) in_snr = std::min(in_snr, snr[static_cast<size_t>(in)]);
    }
    for (ir::ValueId y : node.outputs) {
      const auto k = static_cast<size_t>(y);
      if (acc[k].ref == ir::kNoValue) {
        snr[k] = in_snr;
        continue;
      }
      LayerError e;
      e.name = og.values[k].name;
      e.op = ir::op_name(node.op);
      e.snr_db = snr[k];
      const double den = std::sqrt(acc[k].nx) * std::sqrt(acc[k].ny);
      e.cosine = den > 0 ? acc[k].dot / den : (acc[k].nx == acc[k].ny ? 1.0 : 0.0);
      e.snr_drop_db = std::max(0.0, in_snr - e.snr_db);
      e.noise_added = std::pow(10.0, -e.snr_db / 10.0) - std::pow(10.0, -in_snr / 10.0);
      if (e.noise_added > worst_noise && e.snr_db < kEqualDb) {
        worst_noise = e.noise_added;
        if (worst) *worst = e.name;
      }
      out.push_back(std::move(e));
    }
  }
  return out;
}

namespace {

std::string human_bytes(int64_t b) {
  if (b >= 1000 * 1000) return fmt::format("{:.2f} MB", static_cast<double>(b) / 1e6);
  if (b >= 1000) return fmt::format("{:.1f} KB", static_cast<double>(b) / 1e3);
  return fmt::format("{} B", b);
}

}  // namespace

std::string report_table(const Report& r) {
  std::string s = fmt::format("optimize {} -> {}\n", r.model, r.output.empty() ? "(not written)" : r.output);
  for (const std::string& st : r.steps) s += fmt::format("  step: {}\n", st);
  if (r.sparsity) s += fmt::format("  weight sparsity: {:.1f}%\n", *r.sparsity * 100.0);
  s += fmt::format("  evaluated on {} samples ({})\n\n", r.eval_samples, r.eval_source);
  s += fmt::format("{:<10} {:>10} {:>10} {:>7} {:>7} {:>16} {:>8} {:>10} {:>11} {:>10}\n", "variant", "size", "gzip",
                   "size x", "gzip x", "accuracy", "top-1 =", "max|diff|", "mean|diff|", "latency");
  const VariantReport* base = r.variants.empty() ? nullptr : &r.variants[0];
  for (const VariantReport& v : r.variants) {
    std::string acc = "-";
    if (v.accuracy) {
      acc = fmt::format("{:.2f}%", *v.accuracy * 100.0);
      if (base && base->accuracy && &v != base) acc += fmt::format(" ({:+.2f})", (*v.accuracy - *base->accuracy) * 100.0);
    }
    const double rx = base && base->file_bytes ? static_cast<double>(v.file_bytes) / static_cast<double>(base->file_bytes) : 1.0;
    const double gx = base && base->gzip_bytes ? static_cast<double>(v.gzip_bytes) / static_cast<double>(base->gzip_bytes) : 1.0;
    s += fmt::format("{:<10} {:>10} {:>10} {:>6.3f}x {:>6.3f}x {:>16} {:>7.1f}% {:>10.4g} {:>11.4g} {:>7.3f} ms\n", v.name,
                     human_bytes(v.file_bytes), human_bytes(v.gzip_bytes), rx, gx, acc, v.top1_agreement * 100.0,
                     v.max_abs_diff, v.mean_abs_diff, v.latency_ms);
  }
  if (!r.layers.empty()) {
    s += fmt::format("\nper-layer error, float vs {} (values matched by name):\n", r.variants.size() > 1 ? r.variants.back().name : "optimized");
    s += fmt::format("  {:<40} {:<16} {:>9} {:>9} {:>11} {:>10}\n", "value", "op", "SNR dB", "drop dB", "noise +%",
                     "cosine");
    for (const LayerError& e : r.layers) {
      s += fmt::format("  {:<40} {:<16} {:>9.2f} {:>9.2f} {:>11.4f} {:>10.6f}{}\n", e.name, e.op, e.snr_db,
                       e.snr_drop_db, e.noise_added * 100.0, e.cosine, e.name == r.worst_layer ? "  <- hurts most" : "");
    }
    if (!r.worst_layer.empty()) s += fmt::format("  the layer that hurts most: {}\n", r.worst_layer);
  }
  for (const std::string& n : r.notes) s += fmt::format("note: {}\n", n);
  for (const std::string& w : r.warnings) s += fmt::format("warning: {}\n", w);
  return s;
}

std::string report_json(const Report& r) {
  using nlohmann::json;
  json j;
  j["model"] = r.model;
  j["output"] = r.output;
  j["steps"] = r.steps;
  j["eval_source"] = r.eval_source;
  j["eval_samples"] = r.eval_samples;
  if (r.sparsity) j["sparsity"] = *r.sparsity;
  json vs = json::array();
  for (const VariantReport& v : r.variants) {
    json jv;
    jv["name"] = v.name;
    jv["path"] = v.path;
    jv["file_bytes"] = v.file_bytes;
    jv["gzip_bytes"] = v.gzip_bytes;
    if (!r.variants.empty() && r.variants[0].file_bytes) {
      jv["size_ratio"] = static_cast<double>(v.file_bytes) / static_cast<double>(r.variants[0].file_bytes);
    }
    if (!r.variants.empty() && r.variants[0].gzip_bytes) {
      jv["gzip_ratio"] = static_cast<double>(v.gzip_bytes) / static_cast<double>(r.variants[0].gzip_bytes);
    }
    jv["accuracy"] = v.accuracy ? json(*v.accuracy) : json(nullptr);
    jv["top1_agreement"] = v.top1_agreement;
    jv["max_abs_diff"] = v.max_abs_diff;
    jv["mean_abs_diff"] = v.mean_abs_diff;
    jv["latency_ms"] = v.latency_ms;
    jv["samples"] = v.samples;
    jv["constant_class"] = v.constant_class ? json(*v.constant_class) : json(nullptr);
    vs.push_back(std::move(jv));
  }
  j["variants"] = std::move(vs);
  json ls = json::array();
  for (const LayerError& e : r.layers) {
    ls.push_back({{"name", e.name}, {"op", e.op}, {"snr_db", e.snr_db}, {"snr_drop_db", e.snr_drop_db}, {"noise_added", e.noise_added}, {"cosine", e.cosine}});
  }
  j["layers"] = std::move(ls);
  j["worst_layer"] = r.worst_layer;
  j["warnings"] = r.warnings;
  j["notes"] = r.notes;
  return j.dump(2);
}

}  // namespace pcv::optimize
