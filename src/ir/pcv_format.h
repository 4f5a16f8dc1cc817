// The native .pcv format: serialize a Model to bytes and back (flatbuffers, schema pcv.fbs).
// Reading treats bytes as untrusted: flatbuffers Verifier, then every index, size, name and
// attribute checked, then ir::verify. read(write(m)) == m (values, nodes, attributes,
// constants bit for bit, input spec, metadata).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "ir/graph.h"

namespace pcv::ir {

// Version 2 added sparse constants (Buffer.nonzero_mask); a file without them says 1.
inline constexpr uint32_t kPcvFormatVersion = 2;

// A constant is stored sparse when that takes at most this share of its dense bytes (a
// pruned tensor: a bit per element plus the nonzero elements). Lossless either way.
inline constexpr double kPcvSparseMaxShare = 0.75;

Expected<std::vector<uint8_t>> write_pcv(const Model& model);
// `name` (usually the path) is used in error messages.
Expected<Model> read_pcv(std::span<const uint8_t> bytes, const std::string& name);
// True when the bytes carry the .pcv file identifier.
bool looks_like_pcv(std::span<const uint8_t> bytes);

Status save_pcv(const Model& model, const std::string& path);  // atomic
Expected<Model> load_pcv(const std::string& path);

// Deep comparison for tests and round trips; returns "" when equal, else the first difference.
std::string model_difference(const Model& a, const Model& b);

}  // namespace pcv::ir
