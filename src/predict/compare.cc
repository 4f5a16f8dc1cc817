#include "predict/compare.h"

#include <fmt/core.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <random>

#include "base/fp16.h"
#include "ir/passes/passes.h"
#include "predict/predictor.h"
#include "runtime/session.h"
#include "vision/decode.h"

namespace pcv::predict {
namespace {

namespace fs = std::filesystem;

bool is_shape_only(ir::OpType op) {
  return op == ir::OpType::kReshape || op == ir::OpType::kFlatten || op == ir::OpType::kDropout ||
         op == ir::OpType::kQuantize || op == ir::OpType::kDequantize;
}

// The form the runtime executes (what Session does when optimize_graph is on), applied up front
// so both models are compared value for value with every value kept.
Expected<ir::Model> canonical(const ir::Model& m, const char* which) {
  ir::Model c = m;
  auto ctx = [&](const Status& s) { return s.with_context(fmt::format("model {}: ", which)); };
  auto r1 = ir::remove_identity(c.graph);
  if (!r1) return ctx(r1.status());
  auto r2 = ir::fold_batch_norm(c.graph);
  if (!r2) return ctx(r2.status());
  auto r3 = ir::fuse_activations(c.graph);
  if (!r3) return ctx(r3.status());
  auto r4 = ir::prune_unused(c.graph);
  if (!r4) return ctx(r4.status());
  return c;
}

std::vector<int> compute_nodes(const ir::Graph& g) {
  std::vector<int> out;
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    if (!is_shape_only(g.nodes[i].op) && !g.nodes[i].outputs.empty()) out.push_back(static_cast<int>(i));
  }
  return out;
}

int64_t elems_of(const ir::Graph& g, ir::ValueId v) { return ir::num_elements(g.value(v).shape); }

struct Pair {
  ir::ValueId a = ir::kNoValue, b = ir::kNoValue;
  int node_a = -1;
};

std::vector<Pair> match_by_name(const ir::Graph& ga, const ir::Graph& gb, const std::vector<int>& ca) {
  std::vector<Pair> pairs;
  for (int n : ca) {
    const ir::ValueId va = ga.nodes[static_cast<size_t>(n)].outputs[0];
    const ir::ValueId vb = gb.find_value(ga.value(va).name);
    if (vb == ir::kNoValue || gb.producer(vb) < 0 || elems_of(ga, va) != elems_of(gb, vb)) continue;
    pairs.push_back({va, vb, n});
  }
  return pairs;
}

// Longest common subsequence of (op, element count) over the compute nodes.
std::vector<Pair> match_by_sequence(const ir::Graph& ga, const ir::Graph& gb, const std::vector<int>& ca,
                                    const std::vector<int>& cb) {
  auto same = [&](int i, int j) {
    const ir::Node& x = ga.nodes[static_cast<size_t>(ca[static_cast<size_t>(i)])];
    const ir::Node& y = gb.nodes[static_cast<size_t>(cb[static_cast<size_t>(j)])];
    return x.op == y.op && elems_of(ga, x.outputs[0]) == elems_of(gb, y.outputs[0]);
  };
  const size_t n = ca.size(), m = cb.size();
  std::vector<std::vector<int>> L(n + 1, std::vector<int>(m + 1, 0));
  for (size_t i = n; i-- > 0;) {
    for (size_t j = m; j-- > 0;) {
      L[i][j] = same(static_cast<int>(i), static_cast<int>(j)) ? L[i + 1][j + 1] + 1
                                                               : std::max(L[i + 1][j], L[i][j + 1]);
    }
  }
  std::vector<Pair> pairs;
  for (size_t i = 0, j = 0; i < n && j < m;) {
    if (same(static_cast<int>(i), static_cast<int>(j))) {
      pairs.push_back({ga.nodes[static_cast<size_t>(ca[i])].outputs[0], gb.nodes[static_cast<size_t>(cb[j])].outputs[0], ca[i]});
      ++i, ++j;
    } else if (L[i + 1][j] >= L[i][j + 1]) {
      ++i;
    } else {
      ++j;
    }
  }
  return pairs;
}

struct Acc {
  double a2 = 0, b2 = 0, ab = 0, d2 = 0, abs_sum = 0, max_abs = 0;
  int64_t count = 0;

  void add(const std::vector<float>& a, const std::vector<float>& b) {
    const size_t n = std::min(a.size(), b.size());
    for (size_t i = 0; i < n; ++i) {
      const double x = a[i], y = b[i], d = x - y;
      a2 += x * x;
      b2 += y * y;
      ab += x * y;
      d2 += d * d;
      abs_sum += std::abs(d);
      max_abs = std::max(max_abs, std::abs(d));
    }
    count += static_cast<int64_t>(n);
  }
  double snr_db() const {
    if (d2 == 0) return kMaxSnrDb;
    if (a2 == 0) return 0;
    return std::min(kMaxSnrDb, 10.0 * std::log10(a2 / d2));
  }
  double cosine() const {
    if (a2 == 0 && b2 == 0) return 1;
    if (a2 == 0 || b2 == 0) return 0;
    return ab / std::sqrt(a2 * b2);
  }
  double mean_abs() const { return count ? abs_sum / static_cast<double>(count) : 0; }
};

bool is_image_model(const ir::Model& m) {
  if (m.graph.inputs.size() != 1) return false;
  const auto& s = m.graph.value(m.graph.inputs[0]).shape;
  return s.size() == 4 && (s[3] == 1 || s[3] == 3);
}

std::vector<std::string> list_photos(const std::string& dir, int max_images) {
  std::vector<std::string> out;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir, fs::directory_options::skip_permission_denied, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (!it->is_regular_file(ec)) continue;
    std::string ext = it->path().extension().string();
    std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
    if (ext == ".jpg" || ext == ".jpeg" || ext == ".png") out.push_back(it->path().string());
  }
  std::sort(out.begin(), out.end());
  // Spread the pick over the (sorted, usually class-grouped) list.
  if (static_cast<int>(out.size()) > max_images && max_images > 0) {
    std::vector<std::string> pick;
    for (int i = 0; i < max_images; ++i) pick.push_back(out[static_cast<size_t>(i) * out.size() / static_cast<size_t>(max_images)]);
    out = std::move(pick);
  }
  return out;
}

// A picture with smooth color shapes and some noise: closer to what a classifier sees than
// white noise, so activations stay in their usual ranges.
vision::Image random_picture(int h, int w, std::mt19937_64& rng) {
  vision::Image img(h, w, 3);
  std::uniform_real_distribution<float> u(0.f, 1.f);
  float fx[3], fy[3], ph[3], base[3];
  for (int c = 0; c < 3; ++c) {
    fx[c] = 1.f + 5.f * u(rng);
    fy[c] = 1.f + 5.f * u(rng);
    ph[c] = 6.283f * u(rng);
    base[c] = 60.f + 140.f * u(rng);
  }
  std::normal_distribution<float> noise(0.f, 12.f);
  for (int y = 0; y < h; ++y) {
    for (int x = 0; x < w; ++x) {
      uint8_t* p = img.pixel(y, x);
      for (int c = 0; c < 3; ++c) {
        const float v = base[c] + 60.f * std::sin(fx[c] * 6.283f * x / w + ph[c]) * std::cos(fy[c] * 6.283f * y / h) + noise(rng);
        p[c] = static_cast<uint8_t>(std::clamp(v, 0.f, 255.f));
      }
    }
  }
  return img;
}

Status fill_values(ir::Tensor& t, const ir::QuantParams& q, const std::vector<float>& v, const std::string& name) {
  const size_t n = static_cast<size_t>(t.num_elements());
  PCV_ENSURE(v.size() == n, StatusCode::kInvalidArgument, "input '{}' has {} elements, the other model's {}",
             name, n, v.size());
  const float s = q.scale.empty() ? 1.f : q.scale[0];
  const int32_t zp = q.zero_point.empty() ? 0 : q.zero_point[0];
  for (size_t i = 0; i < n; ++i) {
    switch (t.dtype()) {
      case ir::DType::kF32: t.data<float>()[i] = v[i]; break;
      case ir::DType::kF16: t.data<uint16_t>()[i] = fp16_from_f32(v[i]); break;
      case ir::DType::kI8:
        t.data<int8_t>()[i] = static_cast<int8_t>(std::clamp<long>(std::lround(v[i] / s) + zp, -128, 127));
        break;
      case ir::DType::kU8:
        t.data<uint8_t>()[i] = static_cast<uint8_t>(std::clamp<long>(std::lround(v[i] / s) + zp, 0, 255));
        break;
      default:
        return unsupported(fmt::format("input '{}' is {}: compare feeds f32, f16, i8 and u8 inputs", name,
                                       ir::dtype_name(t.dtype())));
    }
  }
  return Status::ok();
}

int argmax_first(const std::vector<float>& v, const ir::Shape& shape) {
  const size_t classes = shape.empty() ? v.size() : std::min(v.size(), static_cast<size_t>(shape.back()));
  if (classes == 0) return -1;
  return static_cast<int>(std::max_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(classes)) - v.begin());
}

}  // namespace

Expected<CompareResult> compare_models(const ir::Model& a_in, const ir::Model& b_in, const CompareOptions& options) {
  PCV_ASSIGN_OR_RETURN(ir::Model a, canonical(a_in, "A"));
  PCV_ASSIGN_OR_RETURN(ir::Model b, canonical(b_in, "B"));
  PCV_ENSURE(a.graph.inputs.size() == b.graph.inputs.size(), StatusCode::kInvalidArgument,
             "the models have {} and {} inputs: compare needs the same inputs", a.graph.inputs.size(),
             b.graph.inputs.size());
  runtime::SessionOptions so;
  so.threads = options.threads;
  so.fast_kernels = options.fast_kernels;
  so.keep_all_values = true;
  so.batch = 1;
  auto sa_or = runtime::Session::create(a, so);
  if (!sa_or) return sa_or.status().with_context("model A: ");
  auto sb_or = runtime::Session::create(b, so);
  if (!sb_or) return sb_or.status().with_context("model B: ");
  runtime::Session& sa = **sa_or;
  runtime::Session& sb = **sb_or;
  const ir::Graph& ga = sa.graph();
  const ir::Graph& gb = sb.graph();

  CompareResult r;
  r.threshold_snr_db = options.threshold_snr_db;
  const std::vector<int> ca = compute_nodes(ga), cb = compute_nodes(gb);
  r.compute_layers_a = static_cast<int>(ca.size());
  r.compute_layers_b = static_cast<int>(cb.size());
  std::vector<Pair> pairs = match_by_name(ga, gb, ca);
  r.match = "name";
  if (pairs.size() * 2 < ca.size()) {
    std::vector<Pair> seq = match_by_sequence(ga, gb, ca, cb);
    if (seq.size() > pairs.size()) {
      pairs = std::move(seq);
      r.match = "sequence";
    }
  }
  std::vector<Acc> acc(pairs.size());
  Acc out_acc;
  int agree = 0;
  const int oa = class_output_index(ga, a.input_spec.labels);
  const int ob = class_output_index(gb, b.input_spec.labels.empty() ? a.input_spec.labels : b.input_spec.labels);

  auto run_sample = [&]() -> Status {
    PCV_RETURN_IF_ERROR(sa.run());
    PCV_RETURN_IF_ERROR(sb.run());
    for (size_t i = 0; i < pairs.size(); ++i) {
      const ir::Tensor ta = sa.value(pairs[i].a), tb = sb.value(pairs[i].b);
      if (ta.empty() || tb.empty()) continue;
      acc[i].add(to_float(ta, ga.value(pairs[i].a).quant), to_float(tb, gb.value(pairs[i].b).quant));
    }
    const auto va = to_float(sa.output(oa), sa.output_info(oa).quant);
    const auto vb = to_float(sb.output(ob), sb.output_info(ob).quant);
    PCV_ENSURE(va.size() == vb.size(), StatusCode::kInvalidArgument,
               "the class outputs differ in size: {} vs {} elements", va.size(), vb.size());
    out_acc.add(va, vb);
    if (argmax_first(va, sa.output(oa).shape()) == argmax_first(vb, sb.output(ob).shape())) ++agree;
    ++r.samples;
    return Status::ok();
  };

  const bool images = is_image_model(a) && is_image_model(b);
  if (!options.data_dir.empty()) {
    PCV_ENSURE(images, StatusCode::kInvalidArgument, "--data needs two image models (one NHWC input of 1 or 3 channels)");
    std::error_code ec;
    PCV_ENSURE(fs::is_directory(options.data_dir, ec), StatusCode::kIoError, "{}: not a directory", options.data_dir);
    const auto photos = list_photos(options.data_dir, options.max_images);
    PCV_ENSURE(!photos.empty(), StatusCode::kInvalidArgument, "{}: no .jpg/.jpeg/.png pictures", options.data_dir);
    PCV_ASSIGN_OR_RETURN(auto pa, preprocess_for(a));
    PCV_ASSIGN_OR_RETURN(auto pb, preprocess_for(b));
    auto hint = vision::decode_options_for(pa);
    const auto hb = vision::decode_options_for(pb);
    hint.min_height = std::max(hint.min_height, hb.min_height);
    hint.min_width = std::max(hint.min_width, hb.min_width);
    r.inputs = "photos";
    for (const auto& path : photos) {
      auto img_or = vision::read_image(path, hint);
      if (!img_or) {  // like ImageFolder: an unreadable picture is skipped and reported
        r.skipped.push_back(img_or.status().message());
        continue;
      }
      const vision::Image& img = *img_or;
      PCV_RETURN_IF_ERROR(image_to_input(img, pa, sa.input(0), sa.input_info(0).quant, sa.input_info(0).name));
      PCV_RETURN_IF_ERROR(image_to_input(img, pb, sb.input(0), sb.input_info(0).quant, sb.input_info(0).name));
      PCV_RETURN_IF_ERROR(run_sample());
    }
  } else if (images) {
    PCV_ASSIGN_OR_RETURN(auto pa, preprocess_for(a));
    PCV_ASSIGN_OR_RETURN(auto pb, preprocess_for(b));
    std::mt19937_64 rng(options.seed);
    r.inputs = "random";
    for (int s = 0; s < std::max(1, options.random_count); ++s) {
      vision::Image img = random_picture(std::max(pa.out_h, pb.out_h), std::max(pa.out_w, pb.out_w), rng);
      PCV_RETURN_IF_ERROR(image_to_input(img, pa, sa.input(0), sa.input_info(0).quant, sa.input_info(0).name));
      PCV_RETURN_IF_ERROR(image_to_input(img, pb, sb.input(0), sb.input_info(0).quant, sb.input_info(0).name));
      PCV_RETURN_IF_ERROR(run_sample());
    }
  } else {
    std::mt19937_64 rng(options.seed);
    std::uniform_real_distribution<float> u(-1.f, 1.f);
    r.inputs = "random";
    for (int s = 0; s < std::max(1, options.random_count); ++s) {
      for (int i = 0; i < sa.num_inputs(); ++i) {
        std::vector<float> v(static_cast<size_t>(sa.input(i).num_elements()));
        for (float& x : v) x = u(rng);
        PCV_RETURN_IF_ERROR(fill_values(sa.input(i), sa.input_info(i).quant, v, sa.input_info(i).name));
        PCV_RETURN_IF_ERROR(fill_values(sb.input(i), sb.input_info(i).quant, v, sb.input_info(i).name));
      }
      PCV_RETURN_IF_ERROR(run_sample());
    }
  }

  PCV_ENSURE(r.samples > 0, StatusCode::kInvalidArgument, "{}: no picture could be read ({})", options.data_dir,
             r.skipped.empty() ? std::string("none found") : r.skipped.front());
  r.top1_agreement = r.samples ? static_cast<double>(agree) / r.samples : 0;
  r.max_abs_diff = out_acc.max_abs;
  r.mean_abs_diff = out_acc.mean_abs();
  r.output_snr_db = out_acc.snr_db();
  for (size_t i = 0; i < pairs.size(); ++i) {
    LayerDiff d;
    d.name = ga.nodes[static_cast<size_t>(pairs[i].node_a)].name;
    d.value_a = ga.value(pairs[i].a).name;
    d.value_b = gb.value(pairs[i].b).name;
    d.op = ir::op_name(ga.nodes[static_cast<size_t>(pairs[i].node_a)].op);
    d.shape = ga.value(pairs[i].a).shape;
    d.dtype_b = ir::dtype_name(gb.value(pairs[i].b).dtype);
    d.max_abs = acc[i].max_abs;
    d.mean_abs = acc[i].mean_abs();
    d.snr_db = acc[i].snr_db();
    d.cosine = acc[i].cosine();
    if (r.first_divergence < 0 && d.snr_db < options.threshold_snr_db) r.first_divergence = static_cast<int>(r.layers.size());
    r.layers.push_back(std::move(d));
  }
  return r;
}

}  // namespace pcv::predict
