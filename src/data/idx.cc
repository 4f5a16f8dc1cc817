#include "data/idx.h"

#include <fmt/core.h>
#include <zlib.h>

#include <algorithm>
#include <cstring>

#include "base/file.h"

namespace pcv::data {

Expected<IdxArray> parse_idx(std::span<const uint8_t> b, std::string_view name) {
  PCV_ENSURE(b.size() >= 4, StatusCode::kInvalidArgument,
             "{}: truncated IDX header ({} bytes, need 4)", name, b.size());
  PCV_ENSURE(b[0] == 0 && b[1] == 0, StatusCode::kInvalidArgument,
             "{}: not an IDX file (magic {:02x} {:02x}, expected 00 00)", name, b[0], b[1]);
  PCV_ENSURE(b[2] == 0x08, StatusCode::kUnsupported,
             "{}: IDX element type 0x{:02x} unsupported (only 0x08 unsigned byte)", name, b[2]);
  const int ndims = b[3];
  PCV_ENSURE(ndims >= 1 && ndims <= 4, StatusCode::kInvalidArgument,
             "{}: IDX with {} dimensions (expected 1..4)", name, ndims);
  const size_t header = 4 + 4 * static_cast<size_t>(ndims);
  PCV_ENSURE(b.size() >= header, StatusCode::kInvalidArgument,
             "{}: truncated IDX header ({} bytes, need {})", name, b.size(), header);
  IdxArray a;
  uint64_t count = 1;
  for (int d = 0; d < ndims; ++d) {
    const uint8_t* p = b.data() + 4 + 4 * d;
    const uint32_t v = (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
    PCV_ENSURE(v >= 1, StatusCode::kInvalidArgument, "{}: IDX dimension {} is zero", name, d);
    count *= v;
    PCV_ENSURE(count <= (uint64_t{1} << 34), StatusCode::kInvalidArgument,
               "{}: IDX dimensions too large", name);
    a.dims.push_back(v);
  }
  const uint64_t have = b.size() - header;
  PCV_ENSURE(have >= count, StatusCode::kInvalidArgument,
             "{}: truncated IDX data ({} bytes, dimensions need {})", name, have, count);
  PCV_ENSURE(have == count, StatusCode::kInvalidArgument,
             "{}: {} trailing bytes after the IDX data", name, have - count);
  a.data.assign(b.begin() + header, b.end());
  return a;
}

Expected<IdxArray> read_idx(const std::string& path) {
  PCV_ENSURE(file_exists(path), StatusCode::kIoError, "{}: no such file", path);
  gzFile f = gzopen(path.c_str(), "rb");
  PCV_ENSURE(f != nullptr, StatusCode::kIoError, "{}: cannot open", path);
  std::vector<uint8_t> bytes;
  constexpr size_t kChunk = 1 << 20;
  constexpr size_t kMax = size_t{1} << 31;
  for (;;) {
    const size_t old = bytes.size();
    bytes.resize(old + kChunk);
    const int n = gzread(f, bytes.data() + old, static_cast<unsigned>(kChunk));
    if (n < 0) {
      int err = 0;
      std::string msg = gzerror(f, &err);
      gzclose(f);
      return io_error(fmt::format("{}: read failed: {}", path, msg));
    }
    bytes.resize(old + static_cast<size_t>(n));
    if (n == 0) break;
    if (bytes.size() > kMax) {
      gzclose(f);
      return out_of_memory(fmt::format("{}: more than {} bytes uncompressed", path, kMax));
    }
  }
  int err = 0;
  const char* msg = gzerror(f, &err);
  if (err != Z_OK && err != Z_STREAM_END) {
    std::string m = msg;
    gzclose(f);
    return io_error(fmt::format("{}: corrupt or truncated gzip data: {}", path, m));
  }
  gzclose(f);
  return parse_idx(bytes, path);
}

const std::vector<std::string>& fashion_mnist_class_names() {
  static const std::vector<std::string> names = {"T-shirt/top", "Trouser", "Pullover", "Dress",
                                                 "Coat",        "Sandal",  "Shirt",    "Sneaker",
                                                 "Bag",         "Ankle boot"};
  return names;
}

Expected<IdxDataset> IdxDataset::open(const std::string& images_path,
                                      const std::string& labels_path,
                                      std::vector<std::string> class_names) {
  PCV_ASSIGN_OR_RETURN(IdxArray images, read_idx(images_path));
  PCV_ASSIGN_OR_RETURN(IdxArray labels, read_idx(labels_path));
  PCV_ENSURE(images.dims.size() == 3, StatusCode::kInvalidArgument,
             "{}: images need 3 dimensions (N, H, W), found {}", images_path, images.dims.size());
  PCV_ENSURE(labels.dims.size() == 1, StatusCode::kInvalidArgument,
             "{}: labels need 1 dimension (N), found {}", labels_path, labels.dims.size());
  PCV_ENSURE(images.dims[0] == labels.dims[0], StatusCode::kInvalidArgument,
             "{} has {} images but {} has {} labels", images_path, images.dims[0], labels_path,
             labels.dims[0]);
  PCV_ENSURE(images.dims[1] <= 32768 && images.dims[2] <= 32768, StatusCode::kInvalidArgument,
             "{}: image size {}x{} too large", images_path, images.dims[1], images.dims[2]);
  const int max_label = *std::max_element(labels.data.begin(), labels.data.end());
  if (class_names.empty()) {
    for (int c = 0; c <= max_label; ++c) class_names.push_back(std::to_string(c));
  }
  PCV_ENSURE(max_label < static_cast<int>(class_names.size()), StatusCode::kInvalidArgument,
             "{}: label {} but only {} classes", labels_path, max_label, class_names.size());
  IdxDataset d;
  d.name_ = images_path;
  d.height_ = static_cast<int>(images.dims[1]);
  d.width_ = static_cast<int>(images.dims[2]);
  d.pixels_ = std::move(images.data);
  d.labels_.assign(labels.data.begin(), labels.data.end());
  d.class_names_ = std::move(class_names);
  return d;
}

Expected<IdxDataset> IdxDataset::fashion_mnist(bool train, const std::string& dir) {
  const std::string prefix = dir + "/" + (train ? "train" : "t10k");
  return open(prefix + "-images-idx3-ubyte.gz", prefix + "-labels-idx1-ubyte.gz",
              fashion_mnist_class_names());
}

vision::ImageView IdxDataset::image(size_t i) const {
  const size_t n = static_cast<size_t>(height_) * width_;
  return {pixels_.data() + i * n, height_, width_, 1, static_cast<size_t>(width_)};
}

Expected<vision::Image> IdxDataset::load(size_t i, const vision::DecodeOptions&) const {
  PCV_ENSURE(i < size(), StatusCode::kInvalidArgument, "{}: sample {} out of range ({})", name_,
             i, size());
  return vision::Image::copy_of(image(i));
}

std::string IdxDataset::sample_name(size_t i) const { return fmt::format("{}[{}]", name_, i); }

}  // namespace pcv::data
