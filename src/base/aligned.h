// AlignedBuffer: an owning, 64-byte aligned, zero-initialized byte buffer (cache line and
// AVX-512 vector alignment). Moves, never copies implicitly (use clone()).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>
#include <span>
#include <utility>
#include <vector>

namespace pcv {

inline constexpr size_t kAlignment = 64;

class AlignedBuffer {
 public:
  AlignedBuffer() = default;
  explicit AlignedBuffer(size_t size_bytes) { resize(size_bytes); }
  AlignedBuffer(AlignedBuffer&& o) noexcept : data_(std::exchange(o.data_, nullptr)),
                                              size_(std::exchange(o.size_, 0)) {}
  AlignedBuffer& operator=(AlignedBuffer&& o) noexcept {
    if (this != &o) {
      std::free(data_);
      data_ = std::exchange(o.data_, nullptr);
      size_ = std::exchange(o.size_, 0);
    }
    return *this;
  }
  AlignedBuffer(const AlignedBuffer&) = delete;
  AlignedBuffer& operator=(const AlignedBuffer&) = delete;
  ~AlignedBuffer() { std::free(data_); }

  // Reallocates (contents are not kept) and zero-fills. Returns false on allocation failure.
  bool resize(size_t size_bytes) {
    std::free(data_);
    data_ = nullptr;
    size_ = 0;
    if (size_bytes == 0) return true;
    const size_t rounded = (size_bytes + kAlignment - 1) / kAlignment * kAlignment;
    data_ = static_cast<uint8_t*>(std::aligned_alloc(kAlignment, rounded));
    if (data_ == nullptr) return false;
    std::memset(data_, 0, rounded);
    size_ = size_bytes;
    return true;
  }
  AlignedBuffer clone() const {
    AlignedBuffer b(size_);
    if (size_) std::memcpy(b.data_, data_, size_);
    return b;
  }

  uint8_t* data() { return data_; }
  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }

 private:
  uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

// Flatbuffers are read in place, so their buffer must start 8-byte aligned (the largest scalar);
// a model handed over from memory, or nested in another file, may not be. Returns `bytes`
// when it is aligned, else a copy kept in *storage (operator new aligns to 16).
inline std::span<const uint8_t> aligned_for_flatbuffers(std::span<const uint8_t> bytes,
                                                        std::vector<uint8_t>* storage) {
  if (reinterpret_cast<uintptr_t>(bytes.data()) % 8 == 0) return bytes;
  storage->assign(bytes.begin(), bytes.end());
  return {storage->data(), storage->size()};
}

}  // namespace pcv
