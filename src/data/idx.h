// IDX files (the MNIST / Fashion-MNIST format), plain or gzipped.
//
// Layout: magic 0x00 0x00 <type> <ndims>, then ndims big-endian uint32 sizes, then the data
// row-major. Only type 0x08 (unsigned byte) is supported (what the image and label files
// use). Validation: magic, 1..4 dims each >= 1, data size == product of the sizes (a shorter
// file is "truncated", a longer one has "trailing bytes").
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "data/dataset.h"

namespace pcv::data {

struct IdxArray {
  std::vector<uint32_t> dims;
  std::vector<uint8_t> data;  // row-major
};

// Parses IDX bytes (already decompressed). `name` is used in messages.
Expected<IdxArray> parse_idx(std::span<const uint8_t> bytes, std::string_view name);
// Reads a file, gunzipping it when it starts with the gzip magic (zlib gzread reads plain
// files as is). Errors: io_error for missing/unreadable/corrupt gzip, invalid_argument for a
// malformed IDX.
Expected<IdxArray> read_idx(const std::string& path);

// The ten Fashion-MNIST classes in label order: T-shirt/top, Trouser, Pullover, Dress, Coat,
// Sandal, Shirt, Sneaker, Bag, Ankle boot.
const std::vector<std::string>& fashion_mnist_class_names();
inline constexpr const char* kFashionMnistDir = "/usr/share/datasets/fashion-mnist";

// Images (N, H, W) uint8 + labels (N) from two IDX files. Samples load as gray H x W images.
class IdxDataset final : public Dataset {
 public:
  // `class_names` empty: names "0".."max label". Labels must be < class count.
  static Expected<IdxDataset> open(const std::string& images_path, const std::string& labels_path,
                                   std::vector<std::string> class_names = {});
  // train: train-images-idx3-ubyte.gz / train-labels-idx1-ubyte.gz, else t10k-*.
  static Expected<IdxDataset> fashion_mnist(bool train, const std::string& dir = kFashionMnistDir);

  size_t size() const override { return labels_.size(); }
  int label(size_t i) const override { return labels_[i]; }
  const std::vector<std::string>& class_names() const override { return class_names_; }
  Expected<vision::Image> load(size_t i, const vision::DecodeOptions& hint) const override;
  std::string sample_name(size_t i) const override;

  int height() const { return height_; }
  int width() const { return width_; }
  // A view of image i (valid while the dataset lives).
  vision::ImageView image(size_t i) const;

 private:
  std::string name_;
  int height_ = 0, width_ = 0;
  std::vector<uint8_t> pixels_;
  std::vector<int> labels_;
  std::vector<std::string> class_names_;
};

}  // namespace pcv::data
