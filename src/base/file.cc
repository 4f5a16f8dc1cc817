#include "base/file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <random>

namespace pcv {
namespace {

std::string errno_text(int err) { return std::strerror(err); }

std::string random_suffix() {
  static thread_local std::mt19937_64 rng(std::random_device{}() ^
                                          static_cast<uint64_t>(::getpid()));
  static const char kDigits[] = "0123456789abcdef";
  std::string s(8, '0');
  for (auto& c : s) c = kDigits[rng() % 16];
  return s;
}

std::string parent_dir(const std::string& path) {
  std::filesystem::path p(path);
  auto parent = p.parent_path();
  return parent.empty() ? std::string(".") : parent.string();
}

Status fsync_dir(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (fd < 0) return Status::ok();  // best effort: some filesystems refuse
  ::fsync(fd);
  ::close(fd);
  return Status::ok();
}

}  // namespace

Expected<std::vector<uint8_t>> read_file(const std::string& path, uint64_t max_bytes) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return io_error(path + ": cannot open: " + errno_text(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    int err = errno;
    ::close(fd);
    return io_error(path + ": cannot stat: " + errno_text(err));
  }
  if (S_ISDIR(st.st_mode)) {
    ::close(fd);
    return io_error(path + ": is a directory, expected a file");
  }
  if (static_cast<uint64_t>(st.st_size) > max_bytes) {
    ::close(fd);
    return out_of_memory(path + ": file is " + std::to_string(st.st_size) +
                         " bytes, above the limit of " + std::to_string(max_bytes));
  }
  std::vector<uint8_t> data(static_cast<size_t>(st.st_size));
  size_t got = 0;
  while (got < data.size()) {
    ssize_t n = ::read(fd, data.data() + got, data.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      int err = errno;
      ::close(fd);
      return io_error(path + ": read failed after " + std::to_string(got) + " bytes: " +
                      (n == 0 ? std::string("unexpected end of file") : errno_text(err)));
    }
    got += static_cast<size_t>(n);
  }
  ::close(fd);
  return data;
}

Expected<std::string> read_text_file(const std::string& path) {
  PCV_ASSIGN_OR_RETURN(auto bytes, read_file(path));
  return std::string(bytes.begin(), bytes.end());
}

Status check_output_dir(const std::string& path) {
  const std::string dir = parent_dir(path);
  if (!is_directory(dir)) return io_error(path + ": directory " + dir + " does not exist");
  return Status::ok();
}

Status write_file_atomic(const std::string& path, std::span<const uint8_t> bytes) {
  if (path.empty()) return invalid_argument("empty output path");
  if (is_directory(path)) return io_error(path + ": is a directory, cannot write a file there");
  PCV_RETURN_IF_ERROR(check_output_dir(path));
  const std::string dir = parent_dir(path);
  const std::string tmp = path + ".tmp-" + random_suffix();
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) return io_error(path + ": cannot create a file in " + dir + ": " + errno_text(errno));
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      int err = errno;
      ::close(fd);
      ::unlink(tmp.c_str());
      return io_error(path + ": write failed after " + std::to_string(done) + " of " +
                      std::to_string(bytes.size()) + " bytes: " + errno_text(err) +
                      " (the previous file, if any, is unchanged)");
    }
    done += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0) {
    int err = errno;
    ::close(fd);
    ::unlink(tmp.c_str());
    return io_error(path + ": fsync failed: " + errno_text(err));
  }
  ::close(fd);
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    return io_error(path + ": rename failed: " + errno_text(err));
  }
  return fsync_dir(dir);
}

Status write_file_atomic(const std::string& path, std::string_view text) {
  return write_file_atomic(
      path, std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(text.data()), text.size()));
}

Status make_temp_dir_beside(const std::string& path, std::string* temp_dir) {
  PCV_RETURN_IF_ERROR(check_output_dir(path));
  const std::string dir = parent_dir(path);
  std::string tmp = path + ".tmp-" + random_suffix();
  if (::mkdir(tmp.c_str(), 0755) != 0) {
    return io_error(path + ": cannot create a directory in " + dir + ": " + errno_text(errno));
  }
  *temp_dir = tmp;
  return Status::ok();
}

void remove_tree(const std::string& path) {
  std::error_code ec;
  std::filesystem::remove_all(path, ec);
}

Status replace_dir(const std::string& temp_dir, const std::string& path) {
  std::error_code ec;
  std::string old;
  if (std::filesystem::exists(path, ec)) {
    old = path + ".old-" + random_suffix();
    if (::rename(path.c_str(), old.c_str()) != 0) {
      int err = errno;
      remove_tree(temp_dir);
      return io_error(path + ": cannot move the previous output aside: " + errno_text(err));
    }
  }
  if (::rename(temp_dir.c_str(), path.c_str()) != 0) {
    int err = errno;
    if (!old.empty()) ::rename(old.c_str(), path.c_str());
    remove_tree(temp_dir);
    return io_error(path + ": rename failed: " + errno_text(err));
  }
  if (!old.empty()) remove_tree(old);
  return fsync_dir(parent_dir(path));
}

std::string file_extension(const std::string& path) {
  std::string ext = std::filesystem::path(path).extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return ext;
}

bool file_exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

bool is_directory(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

int64_t bytes_on_disk(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::is_directory(path, ec)) {
    const auto n = fs::file_size(path, ec);
    return ec ? 0 : static_cast<int64_t>(n);
  }
  int64_t total = 0;
  for (auto it = fs::recursive_directory_iterator(path, ec); !ec && it != fs::recursive_directory_iterator();
       it.increment(ec)) {
    if (it->is_regular_file(ec)) total += static_cast<int64_t>(it->file_size(ec));
  }
  return total;
}

}  // namespace pcv
