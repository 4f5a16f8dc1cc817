#include "formats/coreml/blob_storage.h"

#include <fmt/core.h>

#include <cstring>

namespace pcv::coreml::detail {
namespace {

void put32(std::vector<uint8_t>& b, size_t at, uint32_t v) {
  for (int i = 0; i < 4; ++i) b[at + static_cast<size_t>(i)] = static_cast<uint8_t>(v >> (8 * i));
}
void put64(std::vector<uint8_t>& b, size_t at, uint64_t v) {
  for (int i = 0; i < 8; ++i) b[at + static_cast<size_t>(i)] = static_cast<uint8_t>(v >> (8 * i));
}
uint32_t get32(std::span<const uint8_t> b, size_t at) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | b[at + static_cast<size_t>(i)];
  return v;
}
uint64_t get64(std::span<const uint8_t> b, size_t at) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | b[at + static_cast<size_t>(i)];
  return v;
}
uint64_t align(uint64_t v) { return (v + kBlobAlignment - 1) / kBlobAlignment * kBlobAlignment; }

}  // namespace

size_t blob_type_size(BlobType t) {
  switch (t) {
    case BlobType::kFloat16: return 2;
    case BlobType::kFloat32: return 4;
    case BlobType::kUInt8:
    case BlobType::kInt8: return 1;
  }
  return 0;
}

BlobWriter::BlobWriter() : bytes_(64, 0) { put32(bytes_, 4, kBlobVersion); }

uint64_t BlobWriter::add(BlobType type, std::span<const uint8_t> data) {
  const uint64_t meta = align(bytes_.size());
  const uint64_t at = meta + 64;  // already aligned
  bytes_.resize(static_cast<size_t>(at + data.size()), 0);
  put32(bytes_, static_cast<size_t>(meta), kBlobSentinel);
  put32(bytes_, static_cast<size_t>(meta) + 4, static_cast<uint32_t>(type));
  put64(bytes_, static_cast<size_t>(meta) + 8, data.size());
  put64(bytes_, static_cast<size_t>(meta) + 16, at);
  if (!data.empty()) std::memcpy(bytes_.data() + at, data.data(), data.size());
  put32(bytes_, 0, ++count_);
  return meta;
}

Status check_blob_header(std::span<const uint8_t> file, const std::string& name) {
  if (file.size() < 64) return invalid_model(fmt::format("{}: {} bytes, the blob header needs 64", name, file.size()));
  if (get32(file, 4) != kBlobVersion) {
    return invalid_model(fmt::format("{}: blob storage version {} (pocketcv reads version 2)", name, get32(file, 4)));
  }
  return Status::ok();
}

Expected<BlobView> read_blob(std::span<const uint8_t> file, uint64_t meta, const std::string& name) {
  PCV_RETURN_IF_ERROR(check_blob_header(file, name));
  if (meta < 64 || meta % kBlobAlignment != 0 || meta > file.size() || file.size() - meta < 64) {
    return invalid_model(fmt::format("{}: blob metadata offset {} is outside the file ({} bytes) or misaligned", name,
                                     meta, file.size()));
  }
  const auto m = static_cast<size_t>(meta);
  if (get32(file, m) != kBlobSentinel) {
    return invalid_model(fmt::format("{}: no blob metadata at offset {} (sentinel 0x{:08X})", name, meta, get32(file, m)));
  }
  const auto type = static_cast<BlobType>(get32(file, m + 4));
  if (blob_type_size(type) == 0) {
    return unsupported(fmt::format("{}: blob at {} has data type {}", name, meta, get32(file, m + 4)));
  }
  const uint64_t size = get64(file, m + 8), at = get64(file, m + 16);
  if (at > file.size() || size > file.size() - at) {
    return invalid_model(fmt::format("{}: blob at {} claims {} bytes at offset {}, past the end of the file ({} bytes)",
                                     name, meta, size, at, file.size()));
  }
  return BlobView{type, file.subspan(static_cast<size_t>(at), static_cast<size_t>(size))};
}

}  // namespace pcv::coreml::detail
