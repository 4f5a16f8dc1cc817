#include "robustness/robustness_util.h"

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "base/file.h"
#include "ir/pcv_format.h"
#include "support/paths.h"
#include "vision/test_images.h"
#include "zoo/zoo.h"

namespace pcv::testing {
namespace fs = std::filesystem;

std::vector<formats::Format> model_formats() {
  std::vector<formats::Format> out = {formats::Format::kPcv};
#if PCV_TFLITE_AVAILABLE
  out.push_back(formats::Format::kTflite);
#endif
#if PCV_COREML_AVAILABLE
  out.push_back(formats::Format::kMlmodel);
  out.push_back(formats::Format::kMlpackage);
#endif
#if PCV_ONNX_AVAILABLE
  out.push_back(formats::Format::kOnnx);
#endif
  return out;
}

std::string extension_of(formats::Format f) { return std::string(".") + formats::format_name(f); }

const ir::Model& tiny_ir_model() {
  static const ir::Model m = [] {
    zoo::ZooOptions z;
    z.arch = "simple_cnn";
    z.size = 16;
    z.classes = 3;
    z.labels = {"a", "b", "c"};
    auto model = zoo::create_model(z);
    EXPECT_TRUE(model.has_value()) << model.status().to_string();
    return std::move(model).value();
  }();
  return m;
}

const std::string& tiny_model(formats::Format format) {
  static const std::string dir = make_temp_dir("pcv_robust_models");
  static std::map<formats::Format, std::string> paths;
  auto it = paths.find(format);
  if (it != paths.end()) return it->second;
  const std::string path = dir + "/tiny" + extension_of(format);
  const Status s = formats::save_model(tiny_ir_model(), path, format);
  EXPECT_TRUE(s.is_ok()) << s.to_string();
  return paths.emplace(format, path).first->second;
}

const std::vector<uint8_t>& tiny_png() {
  static const std::vector<uint8_t> b =
      vision::testing::encode_png_rgb(vision::testing::make_test_image(24, 24));
  return b;
}

const std::vector<uint8_t>& tiny_jpeg() {
  static const std::vector<uint8_t> b =
      vision::testing::encode_jpeg(vision::testing::make_test_image(24, 24));
  return b;
}

void write_bytes(const std::string& path, const std::vector<uint8_t>& bytes) {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  ASSERT_TRUE(f.good()) << path;
}

void write_text(const std::string& path, std::string_view text) {
  write_bytes(path, std::vector<uint8_t>(text.begin(), text.end()));
}

std::vector<uint8_t> read_bytes(const std::string& path) {
  auto b = read_file(path);
  EXPECT_TRUE(b.has_value()) << b.status().to_string();
  return b.has_value() ? std::move(b).value() : std::vector<uint8_t>{};
}

size_t offset_in(const std::vector<uint8_t>& bytes, const void* p) {
  const auto* q = static_cast<const uint8_t*>(p);
  EXPECT_TRUE(q >= bytes.data() && q < bytes.data() + bytes.size());
  return static_cast<size_t>(q - bytes.data());
}

Tree snapshot(const std::string& dir) {
  Tree t;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    const std::string rel = fs::relative(it->path(), dir).string();
    if (it->is_directory()) {
      t[rel] = "<dir>";
    } else {
      std::ifstream f(it->path(), std::ios::binary);
      std::stringstream ss;
      ss << f.rdbuf();
      t[rel] = ss.str();
    }
  }
  return t;
}

std::string tree_diff(const Tree& before, const Tree& after) {
  std::string d;
  for (const auto& [k, v] : before) {
    auto it = after.find(k);
    if (it == after.end()) {
      d += " removed " + k + ";";
    } else if (it->second != v) {
      d += " changed " + k + ";";
    }
  }
  for (const auto& [k, v] : after) {
    if (!before.count(k)) d += " added " + k + ";";
  }
  return d;
}

::testing::AssertionResult failed_cleanly(const CliResult& r, int code,
                                          const std::vector<std::string>& needles) {
  std::string why;
  if (r.exit_code < 0 || r.exit_code >= 128) {
    why += "abnormal exit (signal?) " + std::to_string(r.exit_code) + ";";
  } else if (r.exit_code != code) {
    why += " exit " + std::to_string(r.exit_code) + ", expected " + std::to_string(code) + ";";
  }
  if (r.err.find("internal error") != std::string::npos) why += " an internal error;";
  for (const std::string& n : needles) {
    if (r.err.find(n) == std::string::npos) why += " stderr lacks '" + n + "';";
  }
  if (why.empty()) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << why << "\n  stderr: " << r.err;
}

int spawn_cli(const std::vector<std::string>& args, const std::string& out, const std::string& err,
              uint64_t max_file_bytes) {
  std::vector<std::string> argv_s = {PCV_CLI_PATH};
  argv_s.insert(argv_s.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : argv_s) argv.push_back(a.data());
  argv.push_back(nullptr);
  const pid_t pid = ::fork();
  if (pid == 0) {
    // Child: only async-signal-safe calls until exec.
    const int in_fd = ::open("/dev/null", O_RDONLY);
    const int out_fd = ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    const int err_fd = ::open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (in_fd < 0 || out_fd < 0 || err_fd < 0) ::_exit(120);
    ::dup2(in_fd, 0);
    ::dup2(out_fd, 1);
    ::dup2(err_fd, 2);
    if (max_file_bytes > 0) {
      ::signal(SIGXFSZ, SIG_IGN);
      const struct rlimit lim = {max_file_bytes, max_file_bytes};
      if (::setrlimit(RLIMIT_FSIZE, &lim) != 0) ::_exit(121);
    }
    ::execv(argv[0], argv.data());
    ::_exit(122);
  }
  return pid;
}

CliResult run_cli_with_file_limit(const std::vector<std::string>& args, uint64_t max_file_bytes) {
  static const std::string dir = make_temp_dir("pcv_robust_limited_io");
  static int counter = 0;
  const std::string out = dir + "/out" + std::to_string(counter) + ".txt";
  const std::string err = dir + "/err" + std::to_string(counter++) + ".txt";
  CliResult r;
  const pid_t pid = spawn_cli(args, out, err, max_file_bytes);
  int status = 0;
  if (pid < 0 || ::waitpid(pid, &status, 0) != pid) return r;
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  auto slurp = [](const std::string& p) {
    std::ifstream f(p);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
  };
  r.out = slurp(out);
  r.err = slurp(err);
  return r;
}

}  // namespace pcv::testing
