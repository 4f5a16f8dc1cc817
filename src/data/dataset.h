// Dataset: labelled 8-bit images, indexable. Implementations: IdxDataset (idx.h),
// ImageFolderDataset (image_folder.h). Thread safety: const methods may be called from many
// threads at once (the loader decodes in parallel).
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "base/status.h"
#include "vision/decode.h"
#include "vision/image.h"

namespace pcv::data {

class Dataset {
 public:
  virtual ~Dataset() = default;
  virtual size_t size() const = 0;
  // Class index in [0, num_classes()).
  virtual int label(size_t i) const = 0;
  // Class names; label i is class_names()[i].
  virtual const std::vector<std::string>& class_names() const = 0;
  // Sample i as a gray (1 channel) or RGB (3 channels) image. `hint` lets JPEG decoding
  // shrink with DCT scaling; the image may be larger than the hint asks, never smaller
  // unless the source is.
  virtual Expected<vision::Image> load(size_t i, const vision::DecodeOptions& hint) const = 0;
  // For messages: a file path or "<file>[index]".
  virtual std::string sample_name(size_t i) const = 0;

  int num_classes() const { return static_cast<int>(class_names().size()); }
  std::vector<int> labels() const {
    std::vector<int> l(size());
    for (size_t i = 0; i < l.size(); ++i) l[i] = label(i);
    return l;
  }
};

}  // namespace pcv::data
