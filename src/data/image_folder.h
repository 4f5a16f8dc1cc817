// ImageFolderDataset: DIR/<class>/*.{jpg,jpeg,png} (extensions case-insensitive).
//
// Classes are the sub-folder names sorted byte-wise; label = position in that order. Files
// in a class are sorted by name, so the sample order is deterministic. Hidden entries
// (".name") and other files are ignored.
// With `verify` (default), every file is decoded once at open (JPEGs at 1/8 scale, cheap):
// unreadable or corrupt files are skipped with a warning and counted in skipped().
// Errors: io_error for a missing or non-directory DIR; invalid_argument when there are no
// class folders or fewer than 2 classes with images. A class folder without usable images is
// dropped with a warning.
#pragma once

#include <string>
#include <vector>

#include "data/dataset.h"

namespace pcv::data {

struct ImageFolderOptions {
  bool verify = true;
};

class ImageFolderDataset final : public Dataset {
 public:
  static Expected<ImageFolderDataset> open(const std::string& dir,
                                           const ImageFolderOptions& options = {});

  size_t size() const override { return paths_.size(); }
  int label(size_t i) const override { return labels_[i]; }
  const std::vector<std::string>& class_names() const override { return class_names_; }
  // Decodes file i to RGB8 (JPEG DCT scaling per `hint`, EXIF orientation applied).
  Expected<vision::Image> load(size_t i, const vision::DecodeOptions& hint) const override;
  std::string sample_name(size_t i) const override { return paths_[i]; }

  const std::string& path(size_t i) const { return paths_[i]; }
  // Files that matched an image extension but could not be read or decoded.
  size_t skipped() const { return skipped_; }
  const std::vector<std::string>& skipped_paths() const { return skipped_paths_; }

 private:
  std::vector<std::string> paths_;
  std::vector<int> labels_;
  std::vector<std::string> class_names_;
  size_t skipped_ = 0;
  std::vector<std::string> skipped_paths_;
};

}  // namespace pcv::data
