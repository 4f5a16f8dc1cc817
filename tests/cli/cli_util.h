// Runs the pocketcv binary as a user would, capturing stdout, stderr and the exit code.
#pragma once

#include <string>
#include <vector>

namespace pcv::testing {

struct CliResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};

// Runs `pocketcv <args>` (args are shell-quoted) with stdin closed.
CliResult run_cli(const std::vector<std::string>& args);

}  // namespace pcv::testing
