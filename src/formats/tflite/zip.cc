#include "formats/tflite/zip.h"

#include <fmt/core.h>
#include <zip.h>

#include <cstring>
#include <memory>

namespace pcv::tflite {
namespace {

uint32_t get_u32(const uint8_t* p) {
  return uint32_t{p[0]} | uint32_t{p[1]} << 8 | uint32_t{p[2]} << 16 | uint32_t{p[3]} << 24;
}
uint16_t get_u16(const uint8_t* p) { return static_cast<uint16_t>(p[0] | p[1] << 8); }
void put_u32(uint8_t* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}

constexpr uint32_t kEocdSignature = 0x06054b50;
constexpr uint32_t kCentralSignature = 0x02014b50;
constexpr size_t kEocdSize = 22;
constexpr size_t kCentralSize = 46;

// Adds `delta` to every offset of a zip (no comment, no zip64) held in `zip`.
Status rebase_zip(std::vector<uint8_t>& zip, uint32_t delta) {
  if (zip.size() < kEocdSize) return internal_error("zip: archive too small");
  uint8_t* eocd = zip.data() + zip.size() - kEocdSize;
  if (get_u32(eocd) != kEocdSignature) return internal_error("zip: end record not found");
  const uint16_t entries = get_u16(eocd + 10);
  const uint32_t cd_size = get_u32(eocd + 12);
  const uint32_t cd_offset = get_u32(eocd + 16);
  if (uint64_t{cd_offset} + cd_size > zip.size() - kEocdSize) return internal_error("zip: bad central directory");
  size_t pos = cd_offset;
  for (uint16_t i = 0; i < entries; ++i) {
    if (pos + kCentralSize > cd_offset + cd_size || get_u32(zip.data() + pos) != kCentralSignature) {
      return internal_error("zip: bad central directory entry");
    }
    uint8_t* e = zip.data() + pos;
    put_u32(e + 42, get_u32(e + 42) + delta);
    pos += kCentralSize + get_u16(e + 28) + get_u16(e + 30) + get_u16(e + 32);
  }
  put_u32(eocd + 16, cd_offset + delta);
  return Status::ok();
}

struct ZipCloser {
  void operator()(zip_t* z) const { zip_discard(z); }
};

}  // namespace

Status append_zip(std::vector<uint8_t>& bytes, const ZipFiles& files) {
  if (bytes.size() > 0xFFFFFFF0u) return unsupported("zip: models above 4 GB can't carry files");
  zip_error_t err;
  zip_error_init(&err);
  zip_source_t* src = zip_source_buffer_create(nullptr, 0, 0, &err);
  if (src == nullptr) return internal_error(fmt::format("zip: {}", zip_error_strerror(&err)));
  zip_source_keep(src);  // survives zip_close, so the archive can be read back
  std::unique_ptr<zip_source_t, void (*)(zip_source_t*)> src_owner(src, zip_source_free);
  zip_t* za = zip_open_from_source(src, ZIP_CREATE | ZIP_TRUNCATE, &err);
  if (za == nullptr) return internal_error(fmt::format("zip: {}", zip_error_strerror(&err)));
  for (const auto& [name, contents] : files) {
    zip_source_t* fs = zip_source_buffer(za, contents.data(), contents.size(), 0);
    if (fs == nullptr) {
      zip_discard(za);
      return internal_error("zip: cannot add " + name);
    }
    const zip_int64_t idx = zip_file_add(za, name.c_str(), fs, ZIP_FL_ENC_UTF_8 | ZIP_FL_OVERWRITE);
    if (idx < 0) {
      zip_source_free(fs);
      const std::string why = zip_strerror(za);
      zip_discard(za);
      return internal_error(fmt::format("zip: cannot add {}: {}", name, why));
    }
    const auto uidx = static_cast<zip_uint64_t>(idx);
    // Stored (the Task Library maps files in place) with a fixed time: same model, same bytes.
    if (zip_set_file_compression(za, uidx, ZIP_CM_STORE, 0) != 0 ||
        zip_file_set_mtime(za, uidx, 315532800 /* 1980-01-01 */, 0) != 0) {
      const std::string why = zip_strerror(za);
      zip_discard(za);
      return internal_error("zip: " + why);
    }
  }
  if (zip_close(za) != 0) {
    const std::string why = zip_strerror(za);
    zip_discard(za);
    return internal_error("zip: " + why);
  }
  if (zip_source_open(src) != 0) return internal_error("zip: cannot reopen the archive");
  std::vector<uint8_t> zip;
  uint8_t chunk[8192];
  for (;;) {
    const zip_int64_t n = zip_source_read(src, chunk, sizeof(chunk));
    if (n < 0) {
      zip_source_close(src);
      return internal_error("zip: cannot read the archive back");
    }
    if (n == 0) break;
    zip.insert(zip.end(), chunk, chunk + n);
  }
  zip_source_close(src);
  PCV_RETURN_IF_ERROR(rebase_zip(zip, static_cast<uint32_t>(bytes.size())));
  bytes.insert(bytes.end(), zip.begin(), zip.end());
  return Status::ok();
}

Expected<ZipFiles> read_zip(std::span<const uint8_t> bytes, uint64_t max_total_bytes) {
  ZipFiles files;
  // Cheap check first: an end-of-central-directory record near the end.
  bool has_eocd = false;
  const size_t scan = std::min<size_t>(bytes.size(), kEocdSize + 0xFFFF);
  for (size_t back = kEocdSize; back <= scan && !has_eocd; ++back) {
    has_eocd = get_u32(bytes.data() + bytes.size() - back) == kEocdSignature;
  }
  if (!has_eocd) return files;
  zip_error_t err;
  zip_error_init(&err);
  zip_source_t* src = zip_source_buffer_create(bytes.data(), bytes.size(), 0, &err);
  if (src == nullptr) return internal_error(fmt::format("zip: {}", zip_error_strerror(&err)));
  zip_t* raw = zip_open_from_source(src, ZIP_RDONLY, &err);
  if (raw == nullptr) {
    zip_source_free(src);
    if (zip_error_code_zip(&err) == ZIP_ER_NOZIP) return files;
    return invalid_model(fmt::format("appended zip: {}", zip_error_strerror(&err)));
  }
  std::unique_ptr<zip_t, ZipCloser> za(raw);
  const zip_int64_t n = zip_get_num_entries(raw, 0);
  uint64_t total = 0;
  for (zip_int64_t i = 0; i < n; ++i) {
    zip_stat_t st;
    zip_stat_init(&st);
    if (zip_stat_index(raw, static_cast<zip_uint64_t>(i), 0, &st) != 0 || st.name == nullptr ||
        !(st.valid & ZIP_STAT_SIZE)) {
      return invalid_model(fmt::format("appended zip: entry {}: {}", i, zip_strerror(raw)));
    }
    total += st.size;
    if (total > max_total_bytes) {
      return out_of_memory(fmt::format("appended zip: files exceed {} bytes", max_total_bytes));
    }
    zip_file_t* f = zip_fopen_index(raw, static_cast<zip_uint64_t>(i), 0);
    if (f == nullptr) return invalid_model(fmt::format("appended zip: {}: {}", st.name, zip_strerror(raw)));
    std::string contents(static_cast<size_t>(st.size), '\0');
    const zip_int64_t got = zip_fread(f, contents.data(), st.size);
    zip_fclose(f);
    if (got < 0 || static_cast<zip_uint64_t>(got) != st.size) {
      return invalid_model(fmt::format("appended zip: {}: truncated or corrupt", st.name));
    }
    files.emplace_back(st.name, std::move(contents));
  }
  return files;
}

}  // namespace pcv::tflite
