// Helpers for the bad-input catalogue (tests/robustness): tiny models in every format, files
// written and patched in place, snapshots of a directory tree (to prove that a failed command
// wrote nothing, not even half a file), the check every failure must pass, and a CLI run with
// a file-size limit (a full disk, as the process sees it).
//
// The CLI itself runs through tests/cli/cli_util.h (run_cli), shared with the CLI tests.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "cli/cli_util.h"
#include "formats/model_io.h"

namespace pcv::testing {

// Every format the test binary can make models in (those this build has).
std::vector<formats::Format> model_formats();
// "pcv" -> ".pcv", ...
std::string extension_of(formats::Format f);

// A tiny simple_cnn (16x16x3 input, 3 classes, labels a,b,c), saved once per process in
// `format` under a shared temp dir; a .mlpackage is a directory.
const std::string& tiny_model(formats::Format format);
// The tiny model saved as .pcv, loaded (for byte patching through the generated accessors).
const ir::Model& tiny_ir_model();

// A 24x24 RGB PNG / JPEG of a smooth test picture, made once per process.
const std::vector<uint8_t>& tiny_png();
const std::vector<uint8_t>& tiny_jpeg();

void write_bytes(const std::string& path, const std::vector<uint8_t>& bytes);
void write_text(const std::string& path, std::string_view text);
std::vector<uint8_t> read_bytes(const std::string& path);

// Writes `value` (host = little-endian byte order, as flatbuffers and .bin tensors) at
// `offset` of `bytes`.
template <class T>
void patch(std::vector<uint8_t>& bytes, size_t offset, T value) {
  ASSERT_LE(offset + sizeof(T), bytes.size());
  std::memcpy(bytes.data() + offset, &value, sizeof(T));
}
// Offset of `p` inside `bytes` (p must point into it).
size_t offset_in(const std::vector<uint8_t>& bytes, const void* p);

// Relative path -> content ("<dir>" for directories) of everything under `dir`.
using Tree = std::map<std::string, std::string>;
Tree snapshot(const std::string& dir);
// Names the entries added, removed or changed between two snapshots ("" when equal).
std::string tree_diff(const Tree& before, const Tree& after);

// The contract of every failure in the catalogue: exit code `code` (1 user error, 2 usage
// error), a normal exit (no signal, no "internal error"), and stderr containing each of
// `needles` (the file's name and words for the problem).
::testing::AssertionResult failed_cleanly(const CliResult& r, int code,
                                          const std::vector<std::string>& needles);

// Runs `pocketcv <args>` in a child whose files may not grow beyond `max_file_bytes`
// (RLIMIT_FSIZE, SIGXFSZ ignored: write() fails with EFBIG as on a full disk).
CliResult run_cli_with_file_limit(const std::vector<std::string>& args, uint64_t max_file_bytes);

// Starts pocketcv in the background with stdin from /dev/null and stdout / stderr to the
// files `out` / `err`; `max_file_bytes` > 0 limits the size of files it writes (RLIMIT_FSIZE,
// SIGXFSZ ignored, so a write past it fails with EFBIG). Returns the pid, -1 if fork failed.
int spawn_cli(const std::vector<std::string>& args, const std::string& out, const std::string& err,
              uint64_t max_file_bytes = 0);

}  // namespace pcv::testing
