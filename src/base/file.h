// Whole-file reads and crash-safe writes.
//
// Every file pocketcv writes goes through write_file_atomic: the bytes go to a temporary file
// in the same directory, are fsync'ed, then renamed over the target. A crash, a full disk or
// an unwritable directory leaves the previous file intact and returns an io_error naming the
// path and the reason.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "base/status.h"

namespace pcv {

// Reads a whole file. Errors: io_error naming the path ("no such file", "is a directory").
// `max_bytes` refuses larger files before reading them (out_of_memory).
Expected<std::vector<uint8_t>> read_file(const std::string& path,
                                         uint64_t max_bytes = uint64_t{1} << 32);
Expected<std::string> read_text_file(const std::string& path);

// io_error "PATH: directory DIR does not exist" unless the directory a file at `path` would be
// written in exists: for commands that work a long time (train, optimize) before they write.
Status check_output_dir(const std::string& path);

// Writes `bytes` to `path` atomically (temp file + fsync + rename).
Status write_file_atomic(const std::string& path, std::span<const uint8_t> bytes);
Status write_file_atomic(const std::string& path, std::string_view text);

// Writes a directory tree atomically: `fill` populates a fresh temporary directory beside
// `path`, which then replaces `path` (the old tree is removed only after the rename).
// For bundle formats such as .mlpackage.
template <class Fill>
Status write_dir_atomic(const std::string& path, Fill&& fill);
Status make_temp_dir_beside(const std::string& path, std::string* temp_dir);
Status replace_dir(const std::string& temp_dir, const std::string& path);
void remove_tree(const std::string& path);

template <class Fill>
Status write_dir_atomic(const std::string& path, Fill&& fill) {
  std::string tmp;
  PCV_RETURN_IF_ERROR(make_temp_dir_beside(path, &tmp));
  Status s = fill(tmp);
  if (!s.is_ok()) {
    remove_tree(tmp);
    return s;
  }
  return replace_dir(tmp, path);
}

// Lower-case extension with the dot: "model.TFLite" -> ".tflite"; "" when none.
std::string file_extension(const std::string& path);
bool file_exists(const std::string& path);
bool is_directory(const std::string& path);
// Bytes on disk: a file's size, or the sum over a bundle directory's regular files (.mlpackage);
// 0 when the path can't be read.
int64_t bytes_on_disk(const std::string& path);

}  // namespace pcv
