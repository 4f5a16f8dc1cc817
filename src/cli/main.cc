// pocketcv: from photos to phone. See `pocketcv --help` and docs/design.md.
#include <algorithm>
#include <cstdio>
#include <new>

#include "cli/command.h"

namespace pcv::cli {

std::vector<CommandInfo>& command_registry() {
  static std::vector<CommandInfo> registry;
  return registry;
}

std::string human_bytes(int64_t b) {
  if (b >= (int64_t{1} << 30)) return fmt::format("{:.2f} GB", static_cast<double>(b) / (1 << 30));
  if (b >= (int64_t{1} << 20)) return fmt::format("{:.2f} MB", static_cast<double>(b) / (1 << 20));
  if (b >= 1024) return fmt::format("{:.1f} KB", static_cast<double>(b) / 1024);
  return fmt::format("{} B", b);
}

CLI::Option* add_max_memory_option(CLI::App& sub, uint64_t& bytes) {
  return sub
      .add_option("--max-memory", bytes,
                  "Refuse models needing more memory (weights + activations), e.g. 512M, 2G; 0: 8G")
      ->transform(CLI::AsSizeValue(false))
      ->check(CLI::Range(uint64_t{0}, uint64_t{1} << 50));
}

std::string human_count(int64_t n) {
  if (n >= 1000000) return fmt::format("{:.2f}M", static_cast<double>(n) / 1e6);
  if (n >= 1000) return fmt::format("{:.1f}K", static_cast<double>(n) / 1e3);
  return std::to_string(n);
}

int exit_code_for(const Status& s) {
  switch (s.code()) {
    case StatusCode::kOk: return 0;
    case StatusCode::kInternal: return 3;
    default: return 1;
  }
}

}  // namespace pcv::cli

int main(int argc, char** argv) {
  using namespace pcv::cli;
  CLI::App app{"pocketcv: train, convert, optimize and run image classifiers, from photos to phone"};
  app.name("pocketcv");
  app.set_version_flag("--version", "pocketcv 0.1.0");
  app.require_subcommand(1);
  app.fallthrough(false);

  auto& registry = command_registry();
  std::sort(registry.begin(), registry.end(), [](const CommandInfo& a, const CommandInfo& b) { return a.order < b.order; });
  Runner runner;
  for (const CommandInfo& info : registry) {
    if (!info.setup) {
      // A stub yields to a real command of the same name.
      bool real = std::any_of(registry.begin(), registry.end(), [&](const CommandInfo& o) {
        return o.setup && std::string(o.name) == info.name;
      });
      if (real) continue;
    }
    CLI::App* sub = app.add_subcommand(info.name, info.help);
    if (info.setup) {
      Runner r = info.setup(*sub);
      sub->callback([r, &runner] { runner = r; });
    } else {
      sub->allow_extras();
      const std::string name = info.name;
      const std::string reason = info.not_built_reason;
      sub->callback([name, reason] {
        fmt::print(stderr, "pocketcv {}: not built yet ({})\n", name, reason);
        std::exit(2);
      });
    }
  }

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return code == 0 ? 0 : 2;
  }
  if (!runner) return 2;
  try {
    pcv::Status s = runner();
    if (!s.is_ok()) {
      fmt::print(stderr, "error: {}\n", s.message());
      return exit_code_for(s);
    }
  } catch (const std::bad_alloc&) {
    fmt::print(stderr, "error: out of memory\n");
    return 1;
  } catch (const std::exception& e) {
    fmt::print(stderr, "internal error: {}\n", e.what());
    return 3;
  }
  std::fflush(stdout);
  return 0;
}
