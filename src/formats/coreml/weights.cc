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

std::vector<uint8_t> pack_bits_lsb_first(std::span<const uint8_t> codes, int bits) {
  std::vector<uint8_t> out((codes.size() * static_cast<size_t>(bits) + 7) / 8, 0);
  size_t pos = 0;
  for (uint8_t c : codes) {
    for (int b = 0; b < bits; ++b, ++pos) {
      if ((c >> b) & 1u) out[pos / 8] = static_cast<uint8_t>(out[pos / 8] | (1u << (pos % 8)));
    }
  }
  return out;
}

uint8_t unpack_bits_lsb_first(std::span<const uint8_t> packed, int64_t index, int bits) {
  size_t pos = static_cast<size_t>(index) * static_cast<size_t>(bits);
  unsigned v = 0;
  for (int b = 0; b < bits; ++b, ++pos) v |= ((packed[pos / 8] >> (pos % 8)) & 1u) << b;
  return static_cast<uint8_t>(v);
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

void encode_lut(std::span<const float> data, int bits, spec::WeightParams* w) {
  const Palette p = palettize_table(data, bits, /*fp16_table=*/false);
  auto* q = w->mutable_quantization();
  q->set_numberofbits(static_cast<uint64_t>(bits));
  for (float c : p.table) q->mutable_lookuptablequantization()->add_floatvalue(c);
  w->set_rawvalue(pack_bits(p.codes, bits));
}

float round_fp16(float v) { return f32_from_fp16(fp16_from_f32(v)); }

// Index of the entry of `sorted` (ascending, non-empty) nearest to v (ties to the lower).
size_t nearest(std::span<const float> sorted, float v) {
  auto it = std::lower_bound(sorted.begin(), sorted.end(), v);
  const auto j = static_cast<size_t>(it - sorted.begin());
  if (j == sorted.size()) return j - 1;
  if (j > 0 && v - sorted[j - 1] <= sorted[j] - v) return j - 1;
  return j;
}

// Lloyd's algorithm on ascending `sorted` (prefix sums `sum`, `sum_sq` of the values and their
// squares, n + 1 entries) from ascending `centers`: a cluster is the run of values up to the
// midpoint with the next center (ties to the lower, as nearest()), so a step costs
// O(k log n). Empty clusters keep their center. Returns the squared error.
double lloyd_sorted(const std::vector<float>& sorted, const std::vector<double>& sum, const std::vector<double>& sum_sq,
                    std::vector<float>* centers) {
  std::vector<float>& c = *centers;
  std::vector<size_t> end(c.size());
  auto split = [&] {
    size_t lo = 0;
    for (size_t j = 0; j < c.size(); ++j) {
      size_t hi = sorted.size();
      if (j + 1 < c.size()) {
        const float mid = c[j] + (c[j + 1] - c[j]) * 0.5f;
        hi = static_cast<size_t>(std::upper_bound(sorted.begin() + static_cast<std::ptrdiff_t>(lo), sorted.end(), mid) - sorted.begin());
      }
      end[j] = lo = hi;
    }
  };
  for (int iter = 0; iter < 100; ++iter) {
    split();
    bool moved = false;
    for (size_t j = 0, lo = 0; j < c.size(); lo = end[j++]) {
      if (end[j] == lo) continue;
      const auto mean = static_cast<float>((sum[end[j]] - sum[lo]) / static_cast<double>(end[j] - lo));
      moved |= mean != c[j];
      c[j] = mean;
    }
    std::sort(c.begin(), c.end());
    if (!moved) break;
  }
  split();
  double error = 0;
  for (size_t j = 0, lo = 0; j < c.size(); lo = end[j++]) {
    const double cnt = static_cast<double>(end[j] - lo), s = sum[end[j]] - sum[lo];
    error += (sum_sq[end[j]] - sum_sq[lo]) - 2.0 * c[j] * s + cnt * c[j] * static_cast<double>(c[j]);
  }
  return error;
}

}  // namespace

AffineInt8 quantize_affine_int8(std::span<const float> data, int64_t rows, bool fp16_scale) {
  const auto n = static_cast<int64_t>(data.size());
  if (rows < 1 || n % rows != 0) rows = 1;
  const int64_t cols = n / rows;
  AffineInt8 out;
  out.q.resize(data.size());
  for (int64_t r = 0; r < rows; ++r) {
    const float* row = data.data() + r * cols;
    float max_abs = 0.f;
    for (int64_t c = 0; c < cols; ++c) max_abs = std::max(max_abs, std::abs(row[c]));
    float scale = max_abs / 127.f;
    if (fp16_scale) scale = round_fp16(scale);
    // An all-zero row, or one too small for an fp16 scale (its fp16 values are 0 anyway).
    if (!(scale > 0.f) || !std::isfinite(scale)) scale = 1.f, max_abs = 0.f;
    out.scale.push_back(scale);
    for (int64_t c = 0; c < cols; ++c) {
      const float v = max_abs == 0.f ? 0.f : std::round(row[c] / scale);
      out.q[static_cast<size_t>(r * cols + c)] = static_cast<int8_t>(std::clamp(v, -127.f, 127.f));
    }
  }
  return out;
}

Palette palettize_table(std::span<const float> data, int bits, bool fp16_table) {
  const size_t k = size_t{1} << bits;
  std::vector<float> sorted(data.begin(), data.end());
  if (fp16_table) {
    for (float& v : sorted) v = round_fp16(v);
  }
  std::sort(sorted.begin(), sorted.end());
  std::vector<float> centers = sorted;
  centers.erase(std::unique(centers.begin(), centers.end()), centers.end());
  if (centers.size() > k) {
    // Lloyd from two starts, the uniform grid over [min, max] (never worse than a linear table)
    // and centers spread with density proportional to p^(1/3), p the values' histogram (the
    // high-resolution optimum, Panter & Dite 1951; much better for bell-shaped weights); the
    // lower squared error wins.
    const size_t n = sorted.size();
    std::vector<double> sum(n + 1, 0.0), sum_sq(n + 1, 0.0);
    for (size_t i = 0; i < n; ++i) {
      sum[i + 1] = sum[i] + sorted[i];
      sum_sq[i + 1] = sum_sq[i] + static_cast<double>(sorted[i]) * sorted[i];
    }
    const float lo = sorted.front(), hi = sorted.back();
    std::vector<float> grid(k), companded(k);
    for (size_t j = 0; j < k; ++j) grid[j] = lo + (hi - lo) * static_cast<float>(j) / static_cast<float>(std::max<size_t>(1, k - 1));
    constexpr size_t kBins = 1024;
    const double width = (static_cast<double>(hi) - lo) / kBins;
    std::vector<double> mass(kBins, 0.0);
    for (float v : sorted) mass[std::min(kBins - 1, static_cast<size_t>((v - lo) / width))] += 1.0;
    double total = 0;
    for (double& m : mass) total += (m = std::cbrt(m));
    double acc = 0;
    for (size_t b = 0, j = 0; b < kBins && j < k; ++b) {
      // Centers whose target (j + 0.5) / k of the total falls in bin b, placed linearly in it.
      while (j < k && (static_cast<double>(j) + 0.5) / static_cast<double>(k) * total <= acc + mass[b]) {
        const double t = mass[b] > 0 ? ((static_cast<double>(j) + 0.5) / static_cast<double>(k) * total - acc) / mass[b] : 0.5;
        companded[j++] = static_cast<float>(lo + (static_cast<double>(b) + t) * width);
      }
      acc += mass[b];
      if (b + 1 == kBins) {
        for (; j < k; ++j) companded[j] = hi;
      }
    }
    const double grid_error = lloyd_sorted(sorted, sum, sum_sq, &grid);
    const double companded_error = lloyd_sorted(sorted, sum, sum_sq, &companded);
    centers = companded_error < grid_error ? companded : grid;
    if (fp16_table) {
      for (float& c : centers) c = round_fp16(c);  // monotonic: stays sorted
    }
  }
  Palette p;
  p.codes.resize(data.size());
  if (centers.empty()) centers.push_back(0.f);
  for (size_t i = 0; i < data.size(); ++i) {
    p.codes[i] = static_cast<uint8_t>(nearest(centers, fp16_table ? round_fp16(data[i]) : data[i]));
  }
  p.table = std::move(centers);
  p.table.resize(k, 0.f);
  return p;
}

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
