// Loading a model from bytes in memory (apps that ship models as assets or download them).
#pragma once

#include <cstdint>
#include <span>
#include <string>

#include "base/status.h"
#include "ir/graph.h"

namespace pcv::capi {

// Sniffs the content: "PCV1" / "TFL3" flatbuffers identifiers at offset 4 -> the .pcv / TFLite
// reader; anything else is tried as a Core ML .mlmodel (protobuf, no identifier) when this
// build has Core ML. The bytes are untrusted (every reader verifies them). `name` prefixes
// error messages. Errors: invalid_model (unrecognized or malformed), unsupported (a format
// this build was configured without).
Expected<ir::Model> load_model_from_memory(std::span<const uint8_t> bytes, const std::string& name);

}  // namespace pcv::capi
