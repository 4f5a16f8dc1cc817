// The zip archive that TFLite metadata appends to a model to carry associated files (labels).
//
// The archive sits after the flatbuffer; its central directory is at the end of the file and
// its offsets count from the start of the whole file (what the official metadata populator
// writes), so the file is both a valid flatbuffer and a valid zip. Files are stored
// uncompressed (the Task Library reads them in place).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "base/status.h"

namespace pcv::tflite {

using ZipFiles = std::vector<std::pair<std::string, std::string>>;  // name, contents

// Appends a zip holding `files` to `bytes` (offsets rebased to the start of `bytes`).
Status append_zip(std::vector<uint8_t>& bytes, const ZipFiles& files);
// Files of a zip at the end of `bytes`; empty when there is no zip. Errors: invalid_model when
// an archive is there but broken, out_of_memory beyond `max_total_bytes` of contents.
Expected<ZipFiles> read_zip(std::span<const uint8_t> bytes, uint64_t max_total_bytes = 64u << 20);

}  // namespace pcv::tflite
