// The C API (include/pocketcv/pocketcv.h) over runtime::Session and vision::frame_to_tensor.
//
// Every exported function converts pcv::Status to a pcv_status and the thread-local message,
// and catches every exception (std::bad_alloc -> PCV_ERROR_OUT_OF_MEMORY, anything else ->
// PCV_ERROR_INTERNAL): nothing is thrown across the C boundary.
#include "pocketcv/pocketcv.h"

#include <fmt/core.h>

#include <chrono>
#include <cstring>
#include <exception>
#include <memory>
#include <new>
#include <string>
#include <vector>

#include "base/file.h"
#include "capi/classify.h"
#include "capi/model_memory.h"
#include "formats/model_io.h"
#include "ir/graph.h"
#include "runtime/session.h"
#include "vision/frame.h"

using pcv::Expected;
using pcv::Status;
using pcv::StatusCode;

struct pcv_model {
  std::shared_ptr<const pcv::ir::Model> model;
};

struct pcv_session {
  std::shared_ptr<const pcv::ir::Model> model;  // labels and input spec outlive pcv_model_free
  std::unique_ptr<pcv::runtime::Session> session;
  // Input 0 as a picture: the preprocessing and target, or why it can't take one.
  bool image_input = false;
  std::string image_input_problem;
  pcv::vision::Preprocess pre;
  pcv::vision::TensorType target_type = pcv::vision::TensorType::kFloat32;
  float target_scale = 1.f;
  int32_t target_zero_point = 0;
  size_t batch0_elems = 0;  // elements of batch element 0 of input 0
  bool output_is_softmax = false;
  bool has_run = false;
  pcv_trace trace = PCV_TRACE_INIT;
  std::vector<float> probs;    // top_k scratch
  std::vector<int32_t> order;  // top_k scratch
};

namespace {

using Clock = std::chrono::steady_clock;
double ms_since(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

thread_local std::string t_last_error;

pcv_status to_c_status(StatusCode code) {
  switch (code) {
    case StatusCode::kOk: return PCV_OK;
    case StatusCode::kInvalidArgument: return PCV_ERROR_INVALID_ARGUMENT;
    case StatusCode::kUnsupported: return PCV_ERROR_UNSUPPORTED;
    case StatusCode::kInvalidModel: return PCV_ERROR_INVALID_MODEL;
    case StatusCode::kIoError: return PCV_ERROR_IO;
    case StatusCode::kOutOfMemory: return PCV_ERROR_OUT_OF_MEMORY;
    case StatusCode::kInternal: return PCV_ERROR_INTERNAL;
  }
  return PCV_ERROR_INTERNAL;
}

pcv_status report(const char* fn, const Status& s) {
  if (s.is_ok()) {
    t_last_error.clear();
    return PCV_OK;
  }
  try {
    t_last_error = fmt::format("{}: {}", fn, s.message());
  } catch (...) {
    t_last_error.clear();
  }
  return to_c_status(s.code());
}

// Runs `body` (returning Status) with every exception turned into a status.
template <class F>
pcv_status guarded(const char* fn, F&& body) noexcept {
  try {
    return report(fn, body());
  } catch (const std::bad_alloc&) {
    return report(fn, pcv::out_of_memory("out of memory"));
  } catch (const std::exception& e) {
    return report(fn, pcv::internal_error(std::string("unexpected exception: ") + e.what()));
  } catch (...) {
    return report(fn, pcv::internal_error("unexpected exception"));
  }
}

Status null_argument(const char* what) { return pcv::invalid_argument(fmt::format("{} is NULL", what)); }

// Copies the fields of `full` that fit in dst->struct_size (the caller's idea of the struct).
template <class T>
Status copy_sized(const T& full, T* dst, const char* what) {
  if (dst == nullptr) return null_argument(what);
  const size_t n = dst->struct_size;
  if (n < sizeof(size_t)) {
    return pcv::invalid_argument(fmt::format("{}->struct_size is {} (set it to sizeof)", what, n));
  }
  std::memcpy(reinterpret_cast<unsigned char*>(dst) + sizeof(size_t),
              reinterpret_cast<const unsigned char*>(&full) + sizeof(size_t),
              std::min(n, sizeof(T)) - sizeof(size_t));
  return Status::ok();
}

// How a picture becomes input 0 of `model`, from the input spec and the input's dtype/shape.
Status plan_image_input(pcv_session& s) {
  const pcv::ir::Model& m = *s.model;
  const pcv::ir::Value& in = s.session->input_info(0);
  const auto& shape = in.shape;
  if (shape.size() != 4 || (shape[3] != 1 && shape[3] != 3) || shape[1] < 1 || shape[2] < 1) {
    return pcv::unsupported(fmt::format("input 0 '{}' is not an NHWC image tensor with 1 or 3 channels: {}", in.name,
                                        pcv::ir::shape_to_string(shape)));
  }
  switch (in.dtype) {
    case pcv::ir::DType::kF32: s.target_type = pcv::vision::TensorType::kFloat32; break;
    case pcv::ir::DType::kI8: s.target_type = pcv::vision::TensorType::kInt8; break;
    case pcv::ir::DType::kU8: s.target_type = pcv::vision::TensorType::kUInt8; break;
    default:
      return pcv::unsupported(fmt::format("input 0 '{}' has dtype {}: pictures go to f32, i8 or u8 inputs", in.name,
                                          pcv::ir::dtype_name(in.dtype)));
  }
  if (pcv::ir::is_quantized_dtype(in.dtype)) {
    if (in.quant.empty() || in.quant.per_channel()) {
      return pcv::unsupported(fmt::format("input 0 '{}' is {} without per-tensor quantization", in.name,
                                          pcv::ir::dtype_name(in.dtype)));
    }
    s.target_scale = in.quant.scale[0];
    s.target_zero_point = in.quant.zero_point.empty() ? 0 : in.quant.zero_point[0];
  }
  pcv::vision::Preprocess& p = s.pre;
  p.out_h = static_cast<int>(shape[1]);
  p.out_w = static_cast<int>(shape[2]);
  const pcv::ir::InputSpec& spec = m.input_spec;
  if (shape[3] == 1) {
    p.color = pcv::vision::ColorOrder::kGray;
  } else {
    p.color = spec.color == pcv::ir::ColorOrder::kBGR ? pcv::vision::ColorOrder::kBGR : pcv::vision::ColorOrder::kRGB;
  }
  for (int c = 0; c < 3; ++c) {
    p.mean[c] = spec.mean[static_cast<size_t>(c)];
    p.std[c] = spec.std[static_cast<size_t>(c)];
  }
  p.crop_fraction = spec.crop_fraction > 0.f && spec.crop_fraction <= 1.f ? spec.crop_fraction : 1.f;
  s.batch0_elems = p.out_elems();
  return pcv::vision::validate(p);
}

pcv::vision::FrameFormat to_frame_format(pcv_frame_format f, bool* ok) {
  *ok = true;
  switch (f) {
    case PCV_FRAME_NV21: return pcv::vision::FrameFormat::kNV21;
    case PCV_FRAME_NV12: return pcv::vision::FrameFormat::kNV12;
    case PCV_FRAME_I420: return pcv::vision::FrameFormat::kI420;
    case PCV_FRAME_YUV_420_888: return pcv::vision::FrameFormat::kYUV_420_888;
    case PCV_FRAME_BGRA: return pcv::vision::FrameFormat::kBGRA;
    case PCV_FRAME_RGBA: return pcv::vision::FrameFormat::kRGBA;
    case PCV_FRAME_RGB: return pcv::vision::FrameFormat::kRGB;
    case PCV_FRAME_GRAY: return pcv::vision::FrameFormat::kGray;
    default: break;
  }
  *ok = false;
  return pcv::vision::FrameFormat::kRGB;
}

Status set_frame(pcv_session* s, const pcv_frame* frame, int32_t rotation_degrees, int32_t mirror,
                 pcv_crop_mode crop) {
  const auto t0 = Clock::now();
  if (s == nullptr) return null_argument("session");
  if (frame == nullptr) return null_argument("frame");
  if (!s->image_input) return pcv::Status(StatusCode::kUnsupported, s->image_input_problem);
  pcv::vision::Frame f;
  bool ok = false;
  f.format = to_frame_format(frame->format, &ok);
  if (!ok) return pcv::invalid_argument(fmt::format("unknown frame format {}", static_cast<int>(frame->format)));
  f.width = frame->width;
  f.height = frame->height;
  for (int i = 0; i < 3; ++i) {
    f.planes[i].data = frame->planes[i].data;
    f.planes[i].row_stride_bytes = frame->planes[i].row_stride;
    f.planes[i].pixel_stride_bytes = frame->planes[i].pixel_stride;
  }
  pcv::vision::FrameTransform t;
  switch (rotation_degrees) {
    case 0: t.rotation = pcv::vision::Rotation::k0; break;
    case 90: t.rotation = pcv::vision::Rotation::k90; break;
    case 180: t.rotation = pcv::vision::Rotation::k180; break;
    case 270: t.rotation = pcv::vision::Rotation::k270; break;
    default:
      return pcv::invalid_argument(fmt::format("rotation must be 0, 90, 180 or 270 degrees, got {}", rotation_degrees));
  }
  t.mirror = mirror != 0;
  pcv::vision::Preprocess p = s->pre;
  switch (crop) {
    case PCV_CROP_CENTER: p.mode = pcv::vision::ResizeMode::kCenterCrop; break;
    case PCV_CROP_STRETCH: p.mode = pcv::vision::ResizeMode::kStretch; break;
    case PCV_CROP_LETTERBOX: p.mode = pcv::vision::ResizeMode::kFitLetterbox; break;
    default: return pcv::invalid_argument(fmt::format("unknown crop mode {}", static_cast<int>(crop)));
  }
  pcv::vision::OutputTarget out;
  out.type = s->target_type;
  out.data = s->session->input(0).raw();
  out.capacity_elems = s->batch0_elems;
  out.scale = s->target_scale;
  out.zero_point = s->target_zero_point;
  PCV_RETURN_IF_ERROR(pcv::vision::frame_to_tensor(f, t, p, out));
  s->trace.preprocess_ms = ms_since(t0);
  return Status::ok();
}

void fill_tensor_info(const pcv::ir::Value& v, const pcv::ir::Tensor& t, pcv_tensor_info* full) {
  *full = PCV_TENSOR_INFO_INIT;
  full->name = v.name.c_str();
  full->dtype = static_cast<pcv_dtype>(static_cast<int>(t.dtype()));
  full->rank = static_cast<int32_t>(std::min<size_t>(t.shape().size(), PCV_MAX_RANK));
  for (int32_t i = 0; i < full->rank; ++i) full->dims[i] = t.shape()[static_cast<size_t>(i)];
  full->data = const_cast<void*>(t.raw());
  full->size_bytes = t.size_bytes();
  full->scale = v.quant.empty() ? 1.f : v.quant.scale[0];
  full->zero_point = v.quant.zero_point.empty() ? 0 : v.quant.zero_point[0];
}

}  // namespace

extern "C" {

const char* pcv_version(void) { return "0.1.0"; }

const char* pcv_status_name(pcv_status status) {
  switch (status) {
    case PCV_OK: return "ok";
    case PCV_ERROR_INVALID_ARGUMENT: return "invalid_argument";
    case PCV_ERROR_UNSUPPORTED: return "unsupported";
    case PCV_ERROR_INVALID_MODEL: return "invalid_model";
    case PCV_ERROR_IO: return "io_error";
    case PCV_ERROR_OUT_OF_MEMORY: return "out_of_memory";
    case PCV_ERROR_INTERNAL: return "internal";
    default: break;
  }
  return "unknown";
}

const char* pcv_last_error_message(void) { return t_last_error.c_str(); }

pcv_status pcv_model_load_file(const char* path, pcv_model** out_model) {
  if (out_model != nullptr) *out_model = nullptr;
  return guarded("model_load_file", [&]() -> Status {
    if (path == nullptr) return null_argument("path");
    if (out_model == nullptr) return null_argument("out_model");
    PCV_ASSIGN_OR_RETURN(auto model, pcv::formats::load_model(path));
    *out_model = new pcv_model{std::make_shared<const pcv::ir::Model>(std::move(model))};
    return Status::ok();
  });
}

pcv_status pcv_model_load_memory(const void* data, size_t size_bytes, const char* name, pcv_model** out_model) {
  if (out_model != nullptr) *out_model = nullptr;
  return guarded("model_load_memory", [&]() -> Status {
    if (data == nullptr) return null_argument("data");
    if (out_model == nullptr) return null_argument("out_model");
    const std::string n = name != nullptr ? name : "<memory>";
    PCV_ASSIGN_OR_RETURN(auto model, pcv::capi::load_model_from_memory(
                                         {static_cast<const uint8_t*>(data), size_bytes}, n));
    *out_model = new pcv_model{std::make_shared<const pcv::ir::Model>(std::move(model))};
    return Status::ok();
  });
}

void pcv_model_free(pcv_model* model) { delete model; }

pcv_status pcv_model_input_spec(const pcv_model* model, pcv_input_spec* spec) {
  return guarded("model_input_spec", [&]() -> Status {
    if (model == nullptr) return null_argument("model");
    const pcv::ir::Model& m = *model->model;
    const pcv::ir::Graph& g = m.graph;
    pcv_input_spec full = PCV_INPUT_SPEC_INIT;
    full.width = m.input_spec.width;
    full.height = m.input_spec.height;
    full.channels = m.input_spec.channels;
    full.color = static_cast<pcv_color_order>(static_cast<int>(m.input_spec.color));
    for (int c = 0; c < 3; ++c) {
      full.mean[c] = m.input_spec.mean[static_cast<size_t>(c)];
      full.std[c] = m.input_spec.std[static_cast<size_t>(c)];
    }
    full.crop_fraction = m.input_spec.crop_fraction;
    full.input_scale = 1.f;
    if (!g.inputs.empty()) {
      const pcv::ir::Value& in = g.value(g.inputs[0]);
      full.input_dtype = static_cast<pcv_dtype>(static_cast<int>(in.dtype));
      if (!in.quant.empty()) {
        full.input_scale = in.quant.scale[0];
        full.input_zero_point = in.quant.zero_point.empty() ? 0 : in.quant.zero_point[0];
      }
      // The tensor is what counts when the spec says nothing.
      if (in.shape.size() == 4 && !m.input_spec.is_image()) {
        full.height = static_cast<int32_t>(in.shape[1]);
        full.width = static_cast<int32_t>(in.shape[2]);
        full.channels = static_cast<int32_t>(in.shape[3]);
      }
    }
    full.label_count = static_cast<int32_t>(m.input_spec.labels.size());
    if (!g.outputs.empty()) {
      const auto& shape = g.value(g.outputs[0]).shape;
      full.num_classes = shape.empty() ? 1 : static_cast<int32_t>(shape.back());
    }
    return copy_sized(full, spec, "spec");
  });
}

const char* pcv_model_label(const pcv_model* model, int32_t index) {
  if (model == nullptr || index < 0) return nullptr;
  const auto& labels = model->model->input_spec.labels;
  return static_cast<size_t>(index) < labels.size() ? labels[static_cast<size_t>(index)].c_str() : nullptr;
}

pcv_status pcv_session_create(const pcv_model* model, const pcv_session_options* options, pcv_session** out_session) {
  if (out_session != nullptr) *out_session = nullptr;
  return guarded("session_create", [&]() -> Status {
    if (model == nullptr) return null_argument("model");
    if (out_session == nullptr) return null_argument("out_session");
    pcv_session_options o = PCV_SESSION_OPTIONS_INIT;
    if (options != nullptr) {
      if (options->struct_size < sizeof(size_t)) {
        return pcv::invalid_argument(
            fmt::format("options->struct_size is {} (set it to sizeof(pcv_session_options))", options->struct_size));
      }
      std::memcpy(&o, options, std::min(options->struct_size, sizeof(o)));
    }
    pcv::runtime::SessionOptions so;
    if (o.threads == 0) {
      so.threads = 1;
    } else if (o.threads == -1) {
      so.threads = 0;  // one per core
    } else if (o.threads >= 1 && o.threads <= 64) {
      so.threads = o.threads;
    } else {
      return pcv::invalid_argument(fmt::format("threads must be 0, -1 or 1..64, got {}", o.threads));
    }
    so.fast_kernels = o.reference_kernels == 0;
    if (o.max_memory_bytes < 0) {
      return pcv::invalid_argument(fmt::format("max_memory_bytes is negative ({})", o.max_memory_bytes));
    }
    if (o.max_memory_bytes > 0) so.max_memory_bytes = o.max_memory_bytes;

    auto s = std::make_unique<pcv_session>();
    s->model = model->model;
    PCV_ASSIGN_OR_RETURN(s->session, pcv::runtime::Session::create(*s->model, so));
    if (s->session->num_inputs() < 1 || s->session->num_outputs() < 1) {
      return pcv::unsupported("the model needs at least one input and one output");
    }
    Status img = plan_image_input(*s);
    s->image_input = img.is_ok();
    if (!img.is_ok()) s->image_input_problem = img.message();
    s->output_is_softmax = pcv::capi::output_is_softmax(s->session->graph(), 0);
    *out_session = s.release();
    return Status::ok();
  });
}

void pcv_session_free(pcv_session* session) { delete session; }

pcv_status pcv_session_set_input_frame(pcv_session* session, const pcv_frame* frame, int32_t rotation_degrees,
                                       int32_t mirror, pcv_crop_mode crop) {
  return guarded("session_set_input_frame",
                 [&]() -> Status { return set_frame(session, frame, rotation_degrees, mirror, crop); });
}

pcv_status pcv_session_set_input_image(pcv_session* session, const uint8_t* pixels, int32_t width, int32_t height,
                                       int32_t row_stride, pcv_frame_format format) {
  return guarded("session_set_input_image", [&]() -> Status {
    if (format != PCV_FRAME_RGB && format != PCV_FRAME_RGBA && format != PCV_FRAME_BGRA && format != PCV_FRAME_GRAY) {
      return pcv::invalid_argument(
          fmt::format("image format must be PCV_FRAME_RGB, RGBA, BGRA or GRAY, got {}", static_cast<int>(format)));
    }
    if (pixels == nullptr) return null_argument("pixels");
    pcv_frame f{};
    f.format = format;
    f.width = width;
    f.height = height;
    f.planes[0] = {pixels, row_stride, 0};
    return set_frame(session, &f, 0, 0, PCV_CROP_CENTER);
  });
}

pcv_status pcv_session_set_input_tensor(pcv_session* session, int32_t index, const void* data, size_t size_bytes) {
  return guarded("session_set_input_tensor", [&]() -> Status {
    const auto t0 = Clock::now();
    if (session == nullptr) return null_argument("session");
    if (data == nullptr) return null_argument("data");
    if (index < 0 || index >= session->session->num_inputs()) {
      return pcv::invalid_argument(
          fmt::format("input index {} out of range (the model has {})", index, session->session->num_inputs()));
    }
    pcv::ir::Tensor& t = session->session->input(index);
    if (size_bytes != t.size_bytes()) {
      return pcv::invalid_argument(fmt::format("input {} needs {} bytes ({} {}), got {}", index, t.size_bytes(),
                                               pcv::ir::dtype_name(t.dtype()), pcv::ir::shape_to_string(t.shape()),
                                               size_bytes));
    }
    std::memcpy(t.raw(), data, size_bytes);
    session->trace.preprocess_ms = ms_since(t0);
    return Status::ok();
  });
}

pcv_status pcv_session_run(pcv_session* session) {
  return guarded("session_run", [&]() -> Status {
    if (session == nullptr) return null_argument("session");
    const auto t0 = Clock::now();
    PCV_RETURN_IF_ERROR(session->session->run());
    session->trace.inference_ms = ms_since(t0);
    session->has_run = true;
    return Status::ok();
  });
}

pcv_status pcv_session_top_k(pcv_session* session, int32_t k, pcv_classification* results, int32_t* out_count) {
  if (out_count != nullptr) *out_count = 0;
  return guarded("session_top_k", [&]() -> Status {
    const auto t0 = Clock::now();
    if (session == nullptr) return null_argument("session");
    if (results == nullptr) return null_argument("results");
    if (k < 1) return pcv::invalid_argument(fmt::format("k must be >= 1, got {}", k));
    if (!session->has_run) return pcv::invalid_argument("no results yet: call pcv_session_run first");
    const pcv::ir::Tensor& out = session->session->output(0);
    const pcv::ir::Value& info = session->session->output_info(0);
    if (!pcv::capi::output_probabilities(out, info.quant, session->output_is_softmax, session->probs)) {
      return pcv::unsupported(fmt::format("output 0 '{}' ({} {}) is not a class score vector", info.name,
                                          pcv::ir::dtype_name(out.dtype()), pcv::ir::shape_to_string(out.shape())));
    }
    const auto top = pcv::capi::top_k_indices(session->probs, k, session->order);
    const auto& labels = session->model->input_spec.labels;
    for (size_t i = 0; i < top.size(); ++i) {
      const auto c = static_cast<size_t>(top[i]);
      results[i].class_index = top[i];
      results[i].label = c < labels.size() ? labels[c].c_str() : "";
      results[i].score = session->probs[c];
    }
    if (out_count != nullptr) *out_count = static_cast<int32_t>(top.size());
    session->trace.postprocess_ms = ms_since(t0);
    return Status::ok();
  });
}

int32_t pcv_session_num_inputs(const pcv_session* session) {
  return session == nullptr ? -1 : session->session->num_inputs();
}

int32_t pcv_session_num_outputs(const pcv_session* session) {
  return session == nullptr ? -1 : session->session->num_outputs();
}

pcv_status pcv_session_input(pcv_session* session, int32_t index, pcv_tensor_info* info) {
  return guarded("session_input", [&]() -> Status {
    if (session == nullptr) return null_argument("session");
    if (index < 0 || index >= session->session->num_inputs()) {
      return pcv::invalid_argument(
          fmt::format("input index {} out of range (the model has {})", index, session->session->num_inputs()));
    }
    pcv_tensor_info full;
    fill_tensor_info(session->session->input_info(index), session->session->input(index), &full);
    return copy_sized(full, info, "info");
  });
}

pcv_status pcv_session_output(const pcv_session* session, int32_t index, pcv_tensor_info* info) {
  return guarded("session_output", [&]() -> Status {
    if (session == nullptr) return null_argument("session");
    if (index < 0 || index >= session->session->num_outputs()) {
      return pcv::invalid_argument(
          fmt::format("output index {} out of range (the model has {})", index, session->session->num_outputs()));
    }
    pcv_tensor_info full;
    fill_tensor_info(session->session->output_info(index), session->session->output(index), &full);
    return copy_sized(full, info, "info");
  });
}

pcv_status pcv_session_last_trace(const pcv_session* session, pcv_trace* trace) {
  return guarded("session_last_trace", [&]() -> Status {
    if (session == nullptr) return null_argument("session");
    return copy_sized(session->trace, trace, "trace");
  });
}

}  // extern "C"
