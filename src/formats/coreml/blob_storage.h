// Core ML's "blob v2" weight file (Data/com.apple.CoreML/weights/weight.bin in an .mlpackage):
//
//   storage_header (64 bytes): uint32 count, uint32 version = 2, 56 reserved bytes
//   per blob, each at a 64-byte aligned offset:
//     blob_metadata (64 bytes): uint32 sentinel 0xDEADBEEF, uint32 data type, uint64 size in
//       bytes, uint64 data offset, uint64 padding_size_in_bits, 32 reserved bytes
//     data (at the next 64-byte boundary: right after the metadata)
// A MIL BlobFileValue's offset points at the metadata record. All integers little-endian.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "base/status.h"

namespace pcv::coreml::detail {

inline constexpr uint32_t kBlobSentinel = 0xDEADBEEF;
inline constexpr uint32_t kBlobVersion = 2;
inline constexpr uint64_t kBlobAlignment = 64;

// Blob data types (MILBlob::Blob::BlobDataType).
enum class BlobType : uint32_t { kFloat16 = 1, kFloat32 = 2, kUInt8 = 3, kInt8 = 4 };
size_t blob_type_size(BlobType t);  // 0 for an unknown type

class BlobWriter {
 public:
  BlobWriter();
  // Appends a blob; returns the offset of its metadata record (for BlobFileValue.offset).
  uint64_t add(BlobType type, std::span<const uint8_t> data);
  const std::vector<uint8_t>& bytes() const { return bytes_; }
  uint32_t count() const { return count_; }

 private:
  std::vector<uint8_t> bytes_;
  uint32_t count_ = 0;
};

struct BlobView {
  BlobType type;
  std::span<const uint8_t> data;
};

// Checks the header, then the record at `metadata_offset`: sentinel, type, and that the data
// lies inside the file. Errors (invalid_model) name `file`.
Status check_blob_header(std::span<const uint8_t> file, const std::string& name);
Expected<BlobView> read_blob(std::span<const uint8_t> file, uint64_t metadata_offset, const std::string& name);

}  // namespace pcv::coreml::detail
