#include "cli_util.h"

#include <sys/wait.h>

#include <cstdio>
#include <fstream>
#include <sstream>

#include "support/paths.h"

namespace pcv::testing {
namespace {

std::string quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

std::string slurp(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

}  // namespace

CliResult run_cli(const std::vector<std::string>& args) {
  static const std::string dir = make_temp_dir("pcv_cli_io");
  static int counter = 0;
  const std::string out = dir + "/out" + std::to_string(counter) + ".txt";
  const std::string err = dir + "/err" + std::to_string(counter++) + ".txt";
  std::string cmd = quote(PCV_CLI_PATH);
  for (auto& a : args) cmd += " " + quote(a);
  cmd += " < /dev/null > " + quote(out) + " 2> " + quote(err);
  CliResult r;
  const int status = std::system(cmd.c_str());
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.out = slurp(out);
  r.err = slurp(err);
  return r;
}

}  // namespace pcv::testing
