#include "base/log.h"

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>

namespace pcv {
namespace {

LogLevel level_from_env() {
  const char* e = std::getenv("PCV_LOG_LEVEL");
  if (e == nullptr) return LogLevel::kInfo;
  if (std::strcmp(e, "debug") == 0) return LogLevel::kDebug;
  if (std::strcmp(e, "warning") == 0) return LogLevel::kWarning;
  if (std::strcmp(e, "error") == 0) return LogLevel::kError;
  if (std::strcmp(e, "quiet") == 0) return LogLevel::kQuiet;
  return LogLevel::kInfo;
}

std::atomic<int>& level_ref() {
  static std::atomic<int> level{static_cast<int>(level_from_env())};
  return level;
}

}  // namespace

LogLevel log_level() { return static_cast<LogLevel>(level_ref().load(std::memory_order_relaxed)); }
void set_log_level(LogLevel level) { level_ref().store(static_cast<int>(level)); }

void log_message(LogLevel level, std::string_view message) {
  static std::mutex mu;
  static const char* kNames[] = {"debug", "info", "warning", "error", ""};
  std::lock_guard<std::mutex> lock(mu);
  if (level == LogLevel::kInfo) {
    std::fprintf(stderr, "%.*s\n", static_cast<int>(message.size()), message.data());
  } else {
    std::fprintf(stderr, "%s: %.*s\n", kNames[static_cast<int>(level)],
                 static_cast<int>(message.size()), message.data());
  }
}

}  // namespace pcv
