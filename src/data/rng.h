// Rng: a small deterministic generator (xoshiro256**, seeded through splitmix64) whose
// output is the same on every platform and standard library (std::uniform_*_distribution and
// std::shuffle are not). Streams: Rng(seed, a, b) for e.g. (seed, epoch, sample index) gives
// independent sequences, so results do not depend on which thread draws them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

namespace pcv::data {

class Rng {
 public:
  explicit Rng(uint64_t seed, uint64_t stream_a = 0, uint64_t stream_b = 0) {
    uint64_t x = seed ^ (stream_a * 0x9E3779B97F4A7C15ull) ^ (stream_b * 0xC2B2AE3D27D4EB4Full);
    x = splitmix(x) ^ stream_a;
    x = splitmix(x) ^ stream_b;
    for (uint64_t& s : s_) s = splitmix(x);
  }

  uint64_t next_u64() {
    const uint64_t result = rotl(s_[1] * 5, 7) * 9;
    const uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = rotl(s_[3], 45);
    return result;
  }
  // Uniform in [0, n), n >= 1 (multiply-shift; bias < 2^-32, irrelevant here).
  uint64_t below(uint64_t n) {
    return static_cast<uint64_t>((static_cast<unsigned __int128>(next_u64() >> 32) * n) >> 32);
  }
  // Uniform in [0, 1) with 24 bits.
  float uniform() { return static_cast<float>(next_u64() >> 40) * (1.0f / 16777216.0f); }
  float uniform(float lo, float hi) { return lo + (hi - lo) * uniform(); }

  template <class T>
  void shuffle(std::vector<T>* v) {
    for (size_t i = v->size(); i > 1; --i) std::swap((*v)[i - 1], (*v)[below(i)]);
  }

 private:
  static uint64_t splitmix(uint64_t& x) {
    uint64_t z = (x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  uint64_t s_[4];
};

}  // namespace pcv::data
