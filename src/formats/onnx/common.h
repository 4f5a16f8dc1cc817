// Internals shared by the ONNX reader and writer (not part of the public API): host copies of
// ONNX tensors, layout permutations, and the metadata_props keys pocketcv writes.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/status.h"
#include "ir/graph.h"

// libonnx-dev's generated classes (namespace onnx; ONNX_ML=1 comes from the onnx_proto target).
#include <onnx/onnx_pb.h>

namespace pcv::onnx::detail {

namespace pb = ::onnx;

// A constant in ONNX terms: dims as ONNX has them, values widened to float (FLOAT, FLOAT16,
// DOUBLE) or int64 (every integer type and BOOL). `type` remembers the source element type.
struct Const {
  int32_t type = pb::TensorProto::FLOAT;
  ir::Shape dims;
  std::vector<float> f;
  std::vector<int64_t> i;

  bool is_float() const;
  int64_t numel() const { return is_float() ? static_cast<int64_t>(f.size()) : static_cast<int64_t>(i.size()); }
  float as_float(int64_t k) const { return is_float() ? f[static_cast<size_t>(k)] : static_cast<float>(i[static_cast<size_t>(k)]); }
  int64_t as_int(int64_t k) const { return is_float() ? static_cast<int64_t>(f[static_cast<size_t>(k)]) : i[static_cast<size_t>(k)]; }
};

bool is_float_type(int32_t onnx_type);
// "FLOAT", "INT64"...
std::string onnx_type_name(int32_t onnx_type);

// Decodes an initializer / Constant value. Checks: known element type, dims >= 0 and within
// ir::kMaxElements, raw_data byte size == elements * element size, typed field counts ==
// elements; refuses external data and segments. `what` names the tensor in errors.
Expected<Const> const_from_proto(const pb::TensorProto& t, const std::string& what);

// IR tensor -> ONNX TensorProto (raw_data, little-endian) with `dims`.
void tensor_to_proto(const ir::Tensor& t, const ir::Shape& dims, const std::string& name,
                     pb::TensorProto* out);
// IR dtype -> ONNX element type (f32 FLOAT, i8 INT8, u8 UINT8, i32 INT32, i64 INT64, f16 FLOAT16).
int32_t onnx_type_of(ir::DType t);

// Permutes rank-4 data: NCHW (n, c, h, w) -> NHWC and back; OIHW -> OHWI is NCHW -> NHWC.
template <class T>
std::vector<T> nchw_to_nhwc(const std::vector<T>& src, const ir::Shape& nchw) {
  const int64_t n = nchw[0], c = nchw[1], h = nchw[2], w = nchw[3];
  std::vector<T> dst(src.size());
  for (int64_t a = 0; a < n; ++a)
    for (int64_t ci = 0; ci < c; ++ci)
      for (int64_t y = 0; y < h; ++y)
        for (int64_t x = 0; x < w; ++x)
          dst[static_cast<size_t>(((a * h + y) * w + x) * c + ci)] =
              src[static_cast<size_t>(((a * c + ci) * h + y) * w + x)];
  return dst;
}
template <class T>
std::vector<T> nhwc_to_nchw(const std::vector<T>& src, const ir::Shape& nhwc) {
  const int64_t n = nhwc[0], h = nhwc[1], w = nhwc[2], c = nhwc[3];
  std::vector<T> dst(src.size());
  for (int64_t a = 0; a < n; ++a)
    for (int64_t y = 0; y < h; ++y)
      for (int64_t x = 0; x < w; ++x)
        for (int64_t ci = 0; ci < c; ++ci)
          dst[static_cast<size_t>(((a * c + ci) * h + y) * w + x)] =
              src[static_cast<size_t>(((a * h + y) * w + x) * c + ci)];
  return dst;
}
inline ir::Shape nchw_shape_to_nhwc(const ir::Shape& s) { return {s[0], s[2], s[3], s[1]}; }
inline ir::Shape nhwc_shape_to_nchw(const ir::Shape& s) { return {s[0], s[3], s[1], s[2]}; }
// Axis of an NCHW tensor -> the same axis of its NHWC storage, and back.
inline int64_t nchw_axis_to_nhwc(int64_t a) { static constexpr int64_t m[4] = {0, 3, 1, 2}; return m[a]; }
inline int64_t nhwc_axis_to_nchw(int64_t a) { static constexpr int64_t m[4] = {0, 2, 3, 1}; return m[a]; }

// metadata_props keys for what ONNX has no field for (the input spec, labels).
inline constexpr const char* kMetaColor = "pocketcv.input.color";        // "rgb" | "bgr" | "gray"
inline constexpr const char* kMetaMean = "pocketcv.input.mean";          // "m0,m1,m2" (0..255 scale)
inline constexpr const char* kMetaStd = "pocketcv.input.std";            // "s0,s1,s2"
inline constexpr const char* kMetaCrop = "pocketcv.input.crop_fraction"; // "0.875"
inline constexpr const char* kMetaLayout = "pocketcv.input.layout";      // "NCHW"
inline constexpr const char* kMetaLabels = "pocketcv.labels";            // one label per line
inline constexpr const char* kMetaAuthor = "author";
inline constexpr const char* kMetaLicense = "license";

}  // namespace pcv::onnx::detail
