#include "support/oracle.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>
#include <thread>

#include "support/paths.h"

extern char** environ;

namespace pcv::testing {
namespace {

namespace fs = std::filesystem;

std::string oracle_dir() { return source_dir() + "/tools/oracle"; }

bool is_executable_file(const std::string& p) {
  std::error_code ec;
  return fs::is_regular_file(p, ec) && ::access(p.c_str(), X_OK) == 0;
}

// PCV_NODE, else the first `node` on PATH; "" when there is none.
std::string find_node() {
  if (const char* e = std::getenv("PCV_NODE"); e && *e) return is_executable_file(e) ? e : "";
  const char* path = std::getenv("PATH");
  std::stringstream dirs(path ? path : "/usr/local/bin:/usr/bin:/bin");
  std::string dir;
  while (std::getline(dirs, dir, ':')) {
    if (dir.empty()) dir = ".";
    std::string candidate = dir + "/node";
    if (is_executable_file(candidate)) return candidate;
  }
  return "";
}

bool read_whole(const std::string& path, std::string* out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  std::ostringstream ss;
  ss << in.rdbuf();
  *out = ss.str();
  return true;
}

bool write_whole(const std::string& path, const std::vector<uint8_t>& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  return static_cast<bool>(out);
}

struct ProcessResult {
  int exit_code = -1;      // valid when !signaled && !timed_out
  int signal = 0;          // terminating signal, 0 if none
  bool timed_out = false;
  std::string out, err;
};

int oracle_timeout_seconds() {
  if (const char* e = std::getenv("PCV_ORACLE_TIMEOUT_S"); e && std::atoi(e) > 0) return std::atoi(e);
  return 300;
}

// Runs argv[0] (an absolute path) with stdin from /dev/null and stdout/stderr captured in files
// under `work_dir`. Kills it after the timeout.
bool run_process(const std::vector<std::string>& args, const std::string& work_dir, ProcessResult* r,
                 std::string* error) {
  const std::string out_path = work_dir + "/stdout.txt";
  const std::string err_path = work_dir + "/stderr.txt";
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_addopen(&actions, 2, err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  std::vector<char*> argv;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  pid_t pid = 0;
  int rc = posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) {
    *error = "cannot start " + args[0] + ": " + std::strerror(rc);
    return false;
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(oracle_timeout_seconds());
  int status = 0;
  for (;;) {
    pid_t w = ::waitpid(pid, &status, WNOHANG);
    if (w == pid) break;
    if (w < 0 && errno != EINTR) {
      *error = std::string("waitpid failed: ") + std::strerror(errno);
      return false;
    }
    if (std::chrono::steady_clock::now() > deadline) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      r->timed_out = true;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  if (!r->timed_out) {
    if (WIFEXITED(status)) r->exit_code = WEXITSTATUS(status);
    if (WIFSIGNALED(status)) r->signal = WTERMSIG(status);
  }
  read_whole(out_path, &r->out);
  read_whole(err_path, &r->err);
  return true;
}

// The runtime's stderr without its chatty INFO lines, at most the last ~4 KB.
std::string stderr_digest(const std::string& err) {
  std::string kept;
  std::istringstream lines(err);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.rfind("INFO:", 0) == 0) continue;
    kept += line + "\n";
  }
  constexpr size_t kMax = 4000;
  if (kept.size() > kMax) kept = "..." + kept.substr(kept.size() - kMax);
  return kept;
}

// ---- a minimal JSON reader for the runners' one-line result --------------------------------
struct Json {
  enum Kind { kNull, kBool, kNumber, kString, kArray, kObject } kind = kNull;
  bool b = false;
  double num = 0;
  std::string str;
  std::vector<Json> items;
  std::map<std::string, Json> fields;
  const Json* get(const std::string& k) const {
    auto it = fields.find(k);
    return it == fields.end() ? nullptr : &it->second;
  }
};

class JsonParser {
 public:
  explicit JsonParser(const std::string& s) : s_(s) {}
  bool parse(Json* out) {
    if (!value(out, 0)) return false;
    ws();
    return pos_ == s_.size();
  }

 private:
  void ws() {
    while (pos_ < s_.size() && std::strchr(" \t\r\n", s_[pos_]) != nullptr) ++pos_;
  }
  bool lit(const char* w) {
    size_t n = std::strlen(w);
    if (s_.compare(pos_, n, w) != 0) return false;
    pos_ += n;
    return true;
  }
  bool string(std::string* out) {
    if (pos_ >= s_.size() || s_[pos_] != '"') return false;
    ++pos_;
    while (pos_ < s_.size() && s_[pos_] != '"') {
      char c = s_[pos_++];
      if (c != '\\') {
        out->push_back(c);
        continue;
      }
      if (pos_ >= s_.size()) return false;
      char e = s_[pos_++];
      switch (e) {
        case 'n': out->push_back('\n'); break;
        case 't': out->push_back('\t'); break;
        case 'r': out->push_back('\r'); break;
        case 'b': out->push_back('\b'); break;
        case 'f': out->push_back('\f'); break;
        case 'u': {
          if (pos_ + 4 > s_.size()) return false;
          unsigned cp = static_cast<unsigned>(std::stoul(s_.substr(pos_, 4), nullptr, 16));
          pos_ += 4;
          if (cp < 0x80) {
            out->push_back(static_cast<char>(cp));
          } else if (cp < 0x800) {
            out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
            out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
          } else {  // BMP only; names here are ASCII in practice
            out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
            out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
            out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
          }
          break;
        }
        default: out->push_back(e);  // \" \\ \/
      }
    }
    if (pos_ >= s_.size()) return false;
    ++pos_;
    return true;
  }
  bool value(Json* v, int depth) {
    if (depth > 32) return false;
    ws();
    if (pos_ >= s_.size()) return false;
    char c = s_[pos_];
    if (c == '{') {
      v->kind = Json::kObject;
      ++pos_;
      ws();
      if (pos_ < s_.size() && s_[pos_] == '}') {
        ++pos_;
        return true;
      }
      for (;;) {
        ws();
        std::string key;
        if (!string(&key)) return false;
        ws();
        if (pos_ >= s_.size() || s_[pos_++] != ':') return false;
        if (!value(&v->fields[key], depth + 1)) return false;
        ws();
        if (pos_ >= s_.size()) return false;
        if (s_[pos_] != ',' && s_[pos_] != '}') return false;
        if (s_[pos_++] == '}') return true;
      }
    }
    if (c == '[') {
      v->kind = Json::kArray;
      ++pos_;
      ws();
      if (pos_ < s_.size() && s_[pos_] == ']') {
        ++pos_;
        return true;
      }
      for (;;) {
        v->items.emplace_back();
        if (!value(&v->items.back(), depth + 1)) return false;
        ws();
        if (pos_ >= s_.size()) return false;
        if (s_[pos_] != ',' && s_[pos_] != ']') return false;
        if (s_[pos_++] == ']') return true;
      }
    }
    if (c == '"') {
      v->kind = Json::kString;
      return string(&v->str);
    }
    if (lit("true")) { v->kind = Json::kBool; v->b = true; return true; }
    if (lit("false")) { v->kind = Json::kBool; return true; }
    if (lit("null")) return true;
    const char* begin = s_.c_str() + pos_;
    char* end = nullptr;
    v->num = std::strtod(begin, &end);
    if (end == begin) return false;
    v->kind = Json::kNumber;
    pos_ += static_cast<size_t>(end - begin);
    return true;
  }

  const std::string& s_;
  size_t pos_ = 0;
};

// Reads the outputs listed in the runner's JSON line (the last line of stdout starting '{').
bool parse_result(const std::string& stdout_text, std::vector<OracleTensor>* outputs, std::string* error) {
  std::string line;
  std::istringstream lines(stdout_text);
  for (std::string l; std::getline(lines, l);) {
    if (!l.empty() && l[0] == '{') line = l;
  }
  Json root;
  if (line.empty() || !JsonParser(line).parse(&root) || root.kind != Json::kObject) {
    *error = "oracle printed no result line; stdout was: " + stdout_text.substr(0, 2000);
    return false;
  }
  const Json* outs = root.get("outputs");
  if (!outs || outs->kind != Json::kArray) {
    *error = "oracle result has no outputs: " + line;
    return false;
  }
  outputs->clear();
  for (const Json& o : outs->items) {
    const Json* name = o.get("name");
    const Json* dtype = o.get("dtype");
    const Json* shape = o.get("shape");
    const Json* file = o.get("file");
    if (!name || !dtype || !shape || !file || shape->kind != Json::kArray || file->kind != Json::kString) {
      *error = "malformed output entry in: " + line;
      return false;
    }
    OracleTensor t;
    t.name = name->str;
    t.dtype = dtype->str;
    for (const Json& d : shape->items) t.shape.push_back(d.kind == Json::kNumber ? static_cast<int64_t>(d.num) : -1);
    std::string bytes;
    if (!read_whole(file->str, &bytes)) {
      *error = "cannot read oracle output " + file->str;
      return false;
    }
    t.bytes.assign(bytes.begin(), bytes.end());
    outputs->push_back(std::move(t));
  }
  return true;
}

bool run_oracle(const std::string& script, const std::string& model_path, const std::string& runtime,
                const std::vector<std::vector<uint8_t>>& inputs, std::vector<OracleTensor>* outputs,
                std::string* error) {
  std::string scratch;
  std::string* err = error ? error : &scratch;
  outputs->clear();
  if (std::string why = oracle_unavailable_reason(); !why.empty()) {
    *err = why;
    return false;
  }
  const std::string work = make_temp_dir("pcv_oracle");
  std::vector<std::string> args = {find_node(), "--experimental-wasm-relaxed-simd",
                                   oracle_dir() + "/" + script, "--model", model_path};
  if (!runtime.empty()) {
    args.push_back("--runtime");
    args.push_back(runtime);
  }
  for (size_t i = 0; i < inputs.size(); ++i) {
    std::string p = work + "/in" + std::to_string(i) + ".bin";
    if (!write_whole(p, inputs[i])) {
      *err = "cannot write " + p;
      return false;
    }
    args.push_back("--input");
    args.push_back(p);
  }
  args.push_back("--out-dir");
  args.push_back(work + "/out");

  ProcessResult r;
  bool ok = run_process(args, work, &r, err);
  const std::string who = script + (runtime.empty() ? "" : " --runtime " + runtime) + " on " + model_path;
  if (ok && (r.timed_out || r.signal != 0 || r.exit_code != 0)) {
    std::string how = r.timed_out ? "timed out after " + std::to_string(oracle_timeout_seconds()) + " s"
                      : r.signal  ? "was killed by signal " + std::to_string(r.signal)
                                  : "exited with status " + std::to_string(r.exit_code);
    *err = who + " " + how + ":\n" + stderr_digest(r.err);
    ok = false;
  } else if (ok && !parse_result(r.out, outputs, err)) {
    *err = who + ": " + *err + "\n" + stderr_digest(r.err);
    ok = false;
  }
  // PCV_ORACLE_KEEP=1 keeps the inputs, outputs and logs of every call for a look by hand.
  if (const char* keep = std::getenv("PCV_ORACLE_KEEP"); keep && *keep && *keep != '0') {
    if (!ok) *err += "\n(oracle work dir kept: " + work + ")";
  } else {
    std::error_code ec;
    fs::remove_all(work, ec);
  }
  return ok;
}

}  // namespace

std::string oracle_unavailable_reason() {
  static std::once_flag once;
  static std::string reason;
  std::call_once(once, [] {
    const std::string node = find_node();
    if (node.empty()) {
      reason = "node not found on PATH (the official-runtime oracles need Node 20+: scripts/setup)";
      return;
    }
    const std::string dir = oracle_dir();
    for (const char* pkg : {"@litertjs/core", "@tensorflow/tfjs-tflite", "@tensorflow/tfjs-core", "onnxruntime-node"}) {
      std::error_code ec;
      if (!fs::exists(dir + "/node_modules/" + pkg + "/package.json", ec)) {
        reason = "tools/oracle/node_modules/" + std::string(pkg) +
                 " is not installed (run scripts/setup --with-oracles)";
        return;
      }
    }
    // Node 20 is the oldest that runs the LiteRT.js wasm build (with relaxed SIMD behind a flag).
    const std::string work = make_temp_dir("pcv_oracle_probe");
    ProcessResult r;
    std::string err;
    if (!run_process({node, "--version"}, work, &r, &err) || r.exit_code != 0) {
      reason = node + " --version failed: " + err + r.err;
    } else if (r.out.size() < 2 || r.out[0] != 'v' || std::atoi(r.out.c_str() + 1) < 20) {
      reason = "node " + r.out.substr(0, r.out.find('\n')) + " is too old for the oracles (need 20+)";
    }
    std::error_code ec;
    fs::remove_all(work, ec);
  });
  return reason;
}

bool run_tflite_oracle(const std::string& model_path, const std::string& runtime,
                       const std::vector<std::vector<uint8_t>>& inputs,
                       std::vector<OracleTensor>* outputs, std::string* error) {
  if (runtime != "litert" && runtime != "tfjs") {
    if (error) *error = "unknown TFLite oracle runtime '" + runtime + "' (litert or tfjs)";
    return false;
  }
  return run_oracle("run_tflite.mjs", model_path, runtime, inputs, outputs, error);
}

bool run_onnx_oracle(const std::string& model_path, const std::vector<std::vector<uint8_t>>& inputs,
                     std::vector<OracleTensor>* outputs, std::string* error) {
  return run_oracle("run_onnx.mjs", model_path, "", inputs, outputs, error);
}

}  // namespace pcv::testing
