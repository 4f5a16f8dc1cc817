#include "formats/coreml/weights.h"

#include <fmt/core.h>

#include <algorithm>
#include <cmath>

#include "base/fp16.h"

namespace pcv::coreml::detail {
namespace spec = ::CoreML::Specification;

std::string pack_bits(std::span<const uint8_t> codes, int bits) {
  const size_t total_bits = codes.size() * static_cast<size_t>(bits);
  std::string out((total_bits + 7) / 8, '\0');
  size_t pos = 0;
  for (uint8_t c : codes) {
    for (int b = bits - 1; b >= 0; --b, ++pos) {
      if ((c >> b) & 1u) out[pos / 8] = static_cast<char>(out[pos / 8] | (0x80u >> (pos % 8)));
    }
  }
  return out;
}

uint8_t unpack_bits(const std::string& packed, int64_t index, int bits) {
  size_t pos = static_cast<size_t>(index) * static_cast<size_t>(bits);
  uint8_t v = 0;
  for (int b = 0; b < bits; ++b, ++pos) {
    const auto byte = static_cast<uint8_t>(packed[pos / 8]);
    v = static_cast<uint8_t>((v << 1) | ((byte >> (7 - pos % 8)) & 1u));
  }
  return v;
}

namespace {

std::string to_fp16_bytes(std::span<const float> data) {
  std::string bytes(data.size() * 2, '\0');
  for (size_t i = 0; i < data.size(); ++i) {
    const uint16_t h = fp16_from_f32(data[i]);
    bytes[2 * i] = static_cast<char>(h & 0xFF);  // little-endian
    bytes[2 * i + 1] = static_cast<char>(h >> 8);
  }
  return bytes;
}

// Per-output-channel asymmetric 8-bit: W = q * scale + bias, bias = min, scale = range / 255.
void encode_linear8(std::span<const float> data, int64_t out_channels, spec::WeightParams* w) {
  const int64_t n = static_cast<int64_t>(data.size());
  const int64_t rows = out_channels > 0 && n % out_channels == 0 ? out_channels : 1;
  const int64_t cols = n / rows;
  std::string raw(static_cast<size_t>(n), '\0');
  auto* q = w->mutable_quantization();
  q->set_numberofbits(8);
  auto* lin = q->mutable_linearquantization();
  for (int64_t r = 0; r < rows; ++r) {
    const float* row = data.data() + r * cols;
    const auto [lo, hi] = std::minmax_element(row, row + cols);
    const float mn = cols ? *lo : 0.f, mx = cols ? *hi : 0.f;
    const float scale = mx > mn ? (mx - mn) / 255.f : 1.f;
    lin->add_scale(scale);
    lin->add_bias(mn);
    for (int64_t c = 0; c < cols; ++c) {
      const float v = std::round((row[c] - mn) / scale);
      raw[static_cast<size_t>(r * cols + c)] = static_cast<char>(static_cast<uint8_t>(std::clamp(v, 0.f, 255.f)));
    }
  }
  w->set_rawvalue(std::move(raw));
}

// 1-D k-means (Lloyd) into 2^bits centroids, started from the uniform grid over [min, max] so
// the result is never worse than a linear table (each Lloyd step lowers the squared error).
void encode_lut(std::span<const float> data, int bits, spec::WeightParams* w) {
  const int k = 1 << bits;
  std::vector<float> sorted(data.begin(), data.end());
  std::sort(sorted.begin(), sorted.end());
  std::vector<float> centers(static_cast<size_t>(k), 0.f);
  const size_t n = sorted.size();
  const float lo = n ? sorted.front() : 0.f, hi = n ? sorted.back() : 0.f;
  for (int i = 0; i < k; ++i) centers[static_cast<size_t>(i)] = lo + (hi - lo) * static_cast<float>(i) / static_cast<float>(std::max(1, k - 1));
  auto assign = [&](float v) {
    // centers are sorted: the nearest is at the insertion point or just before it.
    auto it = std::lower_bound(centers.begin(), centers.end(), v);
    size_t j = static_cast<size_t>(it - centers.begin());
    if (j == centers.size()) return j - 1;
    if (j > 0 && v - centers[j - 1] <= centers[j] - v) return j - 1;
    return j;
  };
  for (int iter = 0; iter < 30 && n > 0; ++iter) {
    std::vector<double> sum(static_cast<size_t>(k), 0.0);
    std::vector<int64_t> cnt(static_cast<size_t>(k), 0);
    for (float v : sorted) {
      const size_t j = assign(v);
      sum[j] += v;
      ++cnt[j];
    }
    for (size_t j = 0; j < centers.size(); ++j) {
      if (cnt[j]) centers[j] = static_cast<float>(sum[j] / static_cast<double>(cnt[j]));
    }
    std::sort(centers.begin(), centers.end());
  }
  std::vector<uint8_t> codes(data.size());
  for (size_t i = 0; i < data.size(); ++i) codes[i] = static_cast<uint8_t>(assign(data[i]));
  auto* q = w->mutable_quantization();
  q->set_numberofbits(static_cast<uint64_t>(bits));
  for (float c : centers) q->mutable_lookuptablequantization()->add_floatvalue(c);
  w->set_rawvalue(pack_bits(codes, bits));
}

}  // namespace

int encode_weights(std::span<const float> data, int64_t out_channels, WeightFormat format, int lut_bits,
                   bool quantizable, spec::WeightParams* w) {
  w->Clear();
  if (quantizable && format == WeightFormat::kLinear8) {
    encode_linear8(data, out_channels, w);
    return kSpecVersionQuantized;
  }
  if (quantizable && format == WeightFormat::kLookupTable) {
    encode_lut(data, lut_bits, w);
    return kSpecVersionQuantized;
  }
  if (format == WeightFormat::kFloat16) {
    w->set_float16value(to_fp16_bytes(data));
    return kSpecVersionFp16;
  }
  w->mutable_floatvalue()->Assign(data.begin(), data.end());
  return kSpecVersionBase;
}

Expected<std::vector<float>> decode_weights(const spec::WeightParams& w, int64_t count, int64_t out_channels,
                                            const std::string& what) {
  std::vector<float> out;
  const int kinds = (w.floatvalue_size() > 0) + (!w.float16value().empty()) + (!w.rawvalue().empty()) +
                    (!w.int8rawvalue().empty());
  if (count == 0 && kinds == 0) return out;
  if (kinds != 1) {
    return invalid_model(fmt::format("{}: expected {} values in exactly one of floatValue, float16Value, "
                                     "rawValue, int8RawValue; {} are set", what, count, kinds));
  }
  if (w.floatvalue_size() > 0) {
    if (w.floatvalue_size() != count) {
      return invalid_model(fmt::format("{}: {} float values, the layer's shape needs {}", what,
                                       w.floatvalue_size(), count));
    }
    out.assign(w.floatvalue().begin(), w.floatvalue().end());
    return out;
  }
  if (!w.float16value().empty()) {
    const std::string& b = w.float16value();
    if (static_cast<int64_t>(b.size()) != 2 * count) {
      return invalid_model(fmt::format("{}: {} bytes of fp16 values, the layer's shape needs {}", what, b.size(),
                                       2 * count));
    }
    out.resize(static_cast<size_t>(count));
    for (int64_t i = 0; i < count; ++i) {
      const auto lo = static_cast<uint8_t>(b[static_cast<size_t>(2 * i)]);
      const auto hi = static_cast<uint8_t>(b[static_cast<size_t>(2 * i + 1)]);
      out[static_cast<size_t>(i)] = f32_from_fp16(static_cast<uint16_t>(lo | (hi << 8)));
    }
    return out;
  }
  if (!w.int8rawvalue().empty()) {
    const auto& q = w.quantization();
    if (static_cast<int64_t>(w.int8rawvalue().size()) != count || !q.has_linearquantization() ||
        q.linearquantization().scale_size() != 1) {
      return invalid_model(fmt::format("{}: int8RawValue needs {} bytes and one linear scale", what, count));
    }
    const float s = q.linearquantization().scale(0);
    out.resize(static_cast<size_t>(count));
    for (int64_t i = 0; i < count; ++i) {
      out[static_cast<size_t>(i)] = s * static_cast<float>(static_cast<int8_t>(w.int8rawvalue()[static_cast<size_t>(i)]));
    }
    return out;
  }
  // rawValue: n-bit codes with linear or lookup-table quantization.
  const auto& q = w.quantization();
  const uint64_t bits = q.numberofbits();
  if (bits < 1 || bits > 8) return invalid_model(fmt::format("{}: numberOfBits {} must be 1..8", what, bits));
  const std::string& raw = w.rawvalue();
  const uint64_t need = (static_cast<uint64_t>(count) * bits + 7) / 8;
  if (raw.size() != need) {
    return invalid_model(fmt::format("{}: {} bytes of {}-bit values, the layer's shape needs {}", what, raw.size(),
                                     bits, need));
  }
  out.resize(static_cast<size_t>(count));
  const int b = static_cast<int>(bits);
  if (q.has_lookuptablequantization()) {
    const auto& lut = q.lookuptablequantization().floatvalue();
    if (lut.size() != (1 << b)) {
      return invalid_model(fmt::format("{}: lookup table has {} entries, {} bits need {}", what, lut.size(), b, 1 << b));
    }
    for (int64_t i = 0; i < count; ++i) out[static_cast<size_t>(i)] = lut[unpack_bits(raw, i, b)];
    return out;
  }
  if (!q.has_linearquantization()) return invalid_model(fmt::format("{}: rawValue without quantization params", what));
  const auto& lin = q.linearquantization();
  const int64_t ns = lin.scale_size(), nb = lin.bias_size();
  const int64_t rows = ns > 1 ? ns : (nb > 1 ? nb : 1);
  if ((ns != 1 && ns != rows) || (nb != 0 && nb != 1 && nb != rows) || (rows > 1 && (rows != out_channels || count % rows != 0))) {
    return invalid_model(fmt::format("{}: linear quantization has {} scales and {} biases for {} output channels", what,
                                     ns, nb, out_channels));
  }
  const int64_t cols = count / rows;
  for (int64_t i = 0; i < count; ++i) {
    const int64_t r = rows > 1 ? i / cols : 0;
    const float s = lin.scale(static_cast<int>(ns > 1 ? r : 0));
    const float bias = nb == 0 ? 0.f : lin.bias(static_cast<int>(nb > 1 ? r : 0));
    out[static_cast<size_t>(i)] = static_cast<float>(unpack_bits(raw, i, b)) * s + bias;
  }
  return out;
}

std::string weight_storage_name(const spec::WeightParams& w) {
  if (w.floatvalue_size() > 0) return "fp32";
  if (!w.float16value().empty()) return "fp16";
  if (!w.int8rawvalue().empty()) return "int8";
  if (!w.rawvalue().empty()) {
    const auto& q = w.quantization();
    if (q.has_lookuptablequantization()) return fmt::format("lut{}", q.numberofbits());
    return fmt::format("linear{}", q.numberofbits());
  }
  return "empty";
}

}  // namespace pcv::coreml::detail
