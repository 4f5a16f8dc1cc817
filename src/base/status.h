// pcv::Status and pcv::Expected<T>: how every pocketcv library reports errors.
//
// No exception crosses a library boundary. A function that can fail returns Status (or
// Expected<T> when it also produces a value). The message names the file or object and the
// problem ("model.pcv: truncated: 120 bytes, header needs 256"). Only the CLI and the C API
// turn a Status into an exit code or a return code.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace pcv {

enum class StatusCode : uint8_t {
  kOk = 0,
  kInvalidArgument,  // the caller passed something wrong (shape, option, path)
  kUnsupported,      // well-formed but not handled (an op, a dtype, a format feature)
  kInvalidModel,     // a model file or graph is malformed
  kIoError,          // reading or writing a file failed
  kOutOfMemory,      // an allocation or a configured limit was exceeded
  kInternal,         // a bug in pocketcv
};

const char* status_code_name(StatusCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status ok() { return Status(); }
  bool is_ok() const { return code_ == StatusCode::kOk; }
  explicit operator bool() const { return is_ok(); }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }
  // "invalid_model: model.pcv: truncated".
  std::string to_string() const;
  // Prepends context: "reading m.pcv: " + message. Keeps the code.
  Status with_context(std::string_view context) const;

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

inline Status invalid_argument(std::string m) { return {StatusCode::kInvalidArgument, std::move(m)}; }
inline Status unsupported(std::string m) { return {StatusCode::kUnsupported, std::move(m)}; }
inline Status invalid_model(std::string m) { return {StatusCode::kInvalidModel, std::move(m)}; }
inline Status io_error(std::string m) { return {StatusCode::kIoError, std::move(m)}; }
inline Status out_of_memory(std::string m) { return {StatusCode::kOutOfMemory, std::move(m)}; }
inline Status internal_error(std::string m) { return {StatusCode::kInternal, std::move(m)}; }

// A value or the Status that explains why there is none.
template <class T>
class [[nodiscard]] Expected {
 public:
  Expected(T value) : v_(std::move(value)) {}  // NOLINT: implicit by design
  Expected(Status status) : v_(std::move(status)) {  // NOLINT
    if (std::get<Status>(v_).is_ok()) v_ = Status(StatusCode::kInternal, "Expected from ok Status");
  }

  bool has_value() const { return v_.index() == 0; }
  explicit operator bool() const { return has_value(); }
  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &std::get<T>(v_); }
  const T* operator->() const { return &std::get<T>(v_); }
  // The error; Status::ok() when there is a value.
  Status status() const { return has_value() ? Status() : std::get<Status>(v_); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace pcv

#define PCV_CONCAT_INNER_(a, b) a##b
#define PCV_CONCAT_(a, b) PCV_CONCAT_INNER_(a, b)

// Returns the Status from the enclosing function when `expr` is not ok.
#define PCV_RETURN_IF_ERROR(expr)                  \
  do {                                             \
    ::pcv::Status pcv_status_ = (expr);            \
    if (!pcv_status_.is_ok()) return pcv_status_;  \
  } while (0)

// `PCV_ASSIGN_OR_RETURN(auto x, f());` declares x from an Expected or returns its Status.
#define PCV_ASSIGN_OR_RETURN(lhs, expr) \
  PCV_ASSIGN_OR_RETURN_IMPL_(PCV_CONCAT_(pcv_expected_, __LINE__), lhs, expr)
#define PCV_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                               \
  if (!tmp.has_value()) return tmp.status();       \
  lhs = std::move(tmp).value()

// Returns a Status of `code` with a fmt-formatted message when `cond` is false.
#define PCV_ENSURE(cond, code, ...)                                       \
  do {                                                                    \
    if (!(cond)) return ::pcv::Status((code), ::fmt::format(__VA_ARGS__)); \
  } while (0)
