// pocketcv.hpp: a header-only C++ (17 or later) wrapper over the C API in pocketcv.h.
//
// RAII handles (move-only) and EXCEPTIONS: every failing call throws pocketcv::Error, which
// carries the pcv_status and the library's message. Thread safety is the C API's: a Model may
// be shared by any number of threads (and Sessions); a Session is used by one thread at a time.
//
//   auto model = pocketcv::Model::load_file("flowers.tflite");
//   pocketcv::Session session(model);
//   for (const auto& c : session.classify(frame, /*rotation=*/90, /*mirror=*/false, 3))
//     std::printf("%s %.2f\n", c.label.c_str(), c.score);
#ifndef POCKETCV_POCKETCV_HPP_
#define POCKETCV_POCKETCV_HPP_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "pocketcv/pocketcv.h"

namespace pocketcv {

class Error : public std::runtime_error {
 public:
  Error(pcv_status status, const std::string& message)
      : std::runtime_error(message.empty() ? std::string(pcv_status_name(status)) : message), status_(status) {}
  pcv_status status() const noexcept { return status_; }

 private:
  pcv_status status_;
};

namespace detail {
inline void check(pcv_status s) {
  if (s != PCV_OK) throw Error(s, pcv_last_error_message());
}
struct ModelDeleter {
  void operator()(pcv_model* m) const noexcept { pcv_model_free(m); }
};
struct SessionDeleter {
  void operator()(pcv_session* s) const noexcept { pcv_session_free(s); }
};
}  // namespace detail

struct Classification {
  int class_index = 0;
  std::string label;
  float score = 0.f;
};

class Model {
 public:
  static Model load_file(const std::string& path) {
    pcv_model* m = nullptr;
    detail::check(pcv_model_load_file(path.c_str(), &m));
    return Model(m);
  }
  // The bytes are copied.
  static Model load_memory(const void* data, size_t size_bytes, const std::string& name = "<memory>") {
    pcv_model* m = nullptr;
    detail::check(pcv_model_load_memory(data, size_bytes, name.c_str(), &m));
    return Model(m);
  }

  pcv_input_spec input_spec() const {
    pcv_input_spec spec = PCV_INPUT_SPEC_INIT;
    detail::check(pcv_model_input_spec(get(), &spec));
    return spec;
  }
  // "" when the model has no label at `index`.
  std::string label(int index) const {
    const char* l = pcv_model_label(get(), index);
    return l ? l : "";
  }
  std::vector<std::string> labels() const {
    std::vector<std::string> out;
    const int n = input_spec().label_count;
    out.reserve(static_cast<size_t>(n));
    for (int i = 0; i < n; ++i) out.push_back(label(i));
    return out;
  }
  pcv_model* get() const noexcept { return handle_.get(); }

 private:
  explicit Model(pcv_model* m) : handle_(m) {}
  std::unique_ptr<pcv_model, detail::ModelDeleter> handle_;
};

class Session {
 public:
  // threads: 0 default (1), -1 one per core, 1..64.
  explicit Session(const Model& model, int threads = 0, bool reference_kernels = false) {
    pcv_session_options o = PCV_SESSION_OPTIONS_INIT;
    o.threads = threads;
    o.reference_kernels = reference_kernels ? 1 : 0;
    pcv_session* s = nullptr;
    detail::check(pcv_session_create(model.get(), &o, &s));
    handle_.reset(s);
  }

  Session& set_input_frame(const pcv_frame& frame, int rotation_degrees = 0, bool mirror = false,
                           pcv_crop_mode crop = PCV_CROP_CENTER) {
    detail::check(pcv_session_set_input_frame(get(), &frame, rotation_degrees, mirror ? 1 : 0, crop));
    return *this;
  }
  Session& set_input_image(const uint8_t* pixels, int width, int height, int row_stride,
                           pcv_frame_format format) {
    detail::check(pcv_session_set_input_image(get(), pixels, width, height, row_stride, format));
    return *this;
  }
  Session& set_input_tensor(int index, const void* data, size_t size_bytes) {
    detail::check(pcv_session_set_input_tensor(get(), index, data, size_bytes));
    return *this;
  }
  Session& run() {
    detail::check(pcv_session_run(get()));
    return *this;
  }
  std::vector<Classification> top_k(int k) {
    std::vector<pcv_classification> raw(static_cast<size_t>(k > 0 ? k : 1));
    int32_t n = 0;
    detail::check(pcv_session_top_k(get(), k, raw.data(), &n));
    std::vector<Classification> out;
    out.reserve(static_cast<size_t>(n));
    for (int32_t i = 0; i < n; ++i) out.push_back({raw[i].class_index, raw[i].label, raw[i].score});
    return out;
  }
  // set_input_frame + run + top_k.
  std::vector<Classification> classify(const pcv_frame& frame, int rotation_degrees = 0, bool mirror = false,
                                       int k = 1) {
    return set_input_frame(frame, rotation_degrees, mirror).run().top_k(k);
  }

  int num_inputs() const noexcept { return pcv_session_num_inputs(get()); }
  int num_outputs() const noexcept { return pcv_session_num_outputs(get()); }
  // A view of the session's memory (valid while the session is; contents change per run).
  pcv_tensor_info input(int index) {
    pcv_tensor_info info = PCV_TENSOR_INFO_INIT;
    detail::check(pcv_session_input(get(), index, &info));
    return info;
  }
  pcv_tensor_info output(int index) const {
    pcv_tensor_info info = PCV_TENSOR_INFO_INIT;
    detail::check(pcv_session_output(get(), index, &info));
    return info;
  }
  pcv_trace last_trace() const {
    pcv_trace t = PCV_TRACE_INIT;
    detail::check(pcv_session_last_trace(get(), &t));
    return t;
  }
  pcv_session* get() const noexcept { return handle_.get(); }

 private:
  std::unique_ptr<pcv_session, detail::SessionDeleter> handle_;
};

}  // namespace pocketcv

#endif  // POCKETCV_POCKETCV_HPP_
