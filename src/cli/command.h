// The `pocketcv` command line: one file per subcommand (cmd_<name>.cc), each registering
// itself with PCV_REGISTER_COMMAND. A command's setup adds its options to its CLI11
// subcommand and returns the function to run after parsing.
//
// Exit codes (docs/design.md): 0 success, 1 user error (bad input, missing file, unsupported
// model), 2 usage error (bad flags, a command not built yet), 3 internal error.
#pragma once

#include <CLI/CLI.hpp>
#include <fmt/core.h>

#include <functional>
#include <string>

#include "base/status.h"

namespace pcv::cli {

using Runner = std::function<Status()>;
using Setup = std::function<Runner(CLI::App& sub)>;

struct CommandInfo {
  const char* name;
  const char* help;
  int order;  // position in --help
  Setup setup;
  const char* not_built_reason = nullptr;  // stubs: the command exists in the design, not yet here
};

std::vector<CommandInfo>& command_registry();

struct CommandRegistrar {
  explicit CommandRegistrar(CommandInfo info) { command_registry().push_back(std::move(info)); }
};

#define PCV_REGISTER_COMMAND(name, help, order, setup) \
  static ::pcv::cli::CommandRegistrar pcv_register_##name({#name, help, order, setup})
#define PCV_REGISTER_STUB(name, help, order, reason) \
  static ::pcv::cli::CommandRegistrar pcv_register_stub_##name({#name, help, order, nullptr, reason})

// Prints to stdout (the data) / stderr (progress, warnings).
template <class... Args>
void out(fmt::format_string<Args...> f, Args&&... args) {
  fmt::print(stdout, f, std::forward<Args>(args)...);
}
template <class... Args>
void err(fmt::format_string<Args...> f, Args&&... args) {
  fmt::print(stderr, f, std::forward<Args>(args)...);
}

// --max-memory SIZE ("512M", "2G", plain bytes; K = 1024) for the commands that load and run a
// model: the model file (weights) and then the session's weights + activations + packed
// weights must fit, checked before allocating. 0 (the default) keeps the library's limit.
CLI::Option* add_max_memory_option(CLI::App& sub, uint64_t& bytes);

// "1.2 MB", "340 KB", "512 B".
std::string human_bytes(int64_t bytes);
// "3.5M", "12.3K", "980".
std::string human_count(int64_t n);

}  // namespace pcv::cli
